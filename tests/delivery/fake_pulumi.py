"""A FAKE `pulumi` CLI for tests/delivery/test_local_up.py (no Pulumi CLI can be installed here).

It records every call with the environment scripts/local-up gives it, and instead of running the
AWS provider, `up` creates the stack's buckets in the moto that Pulumi.local.yaml points at with
boto3, from the offline preview's documents (as tests/delivery/conftest.py does). It proves the
script's plumbing, not what the real CLI and provider would do against moto.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", category=DeprecationWarning)


def main(args: list[str]) -> int:
    project = Path.cwd()
    with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
        log.write(json.dumps({
            "args": args,
            "cwd": str(project),
            "backend": os.environ.get("PULUMI_BACKEND_URL"),
            "passphraseFile": os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"),
            "awsAccessKeyId": os.environ.get("AWS_ACCESS_KEY_ID"),
        }) + "\n")
    state = Path(os.environ["PULUMI_BACKEND_URL"].removeprefix("file://"))
    if args[0] == "up":
        # Imported here: the other commands stay quick.
        from review.recording import run_program
        from review.render import OUTPUTS_DOCUMENT, render_documents, to_text
        from review.stack_config import load_stack_config
        from tests.support.delivery import deploy_from_preview

        config, _ = load_stack_config(project / "Pulumi.local.yaml")
        endpoint = json.loads(config["aws:endpoints"])[0]["s3"]
        run = run_program(project / "infra", stack="local", config=config)
        preview = state / "fake-up-preview"
        for relative, document in {**render_documents(run),
                                   OUTPUTS_DOCUMENT: run.outputs}.items():
            (preview / relative).parent.mkdir(parents=True, exist_ok=True)
            (preview / relative).write_text(to_text(document))
        mistake = os.environ.get("FAKE_PULUMI_MISTAKE")

        def mutate(check):
            if mistake == "versioning-suspended" and check.aspect == "versioning" \
                    and check.resource.endswith("access-logs"):
                return {"Status": "Suspended"}
            return check.expected

        outputs = deploy_from_preview(endpoint, preview, run.outputs, mutate)
        (state / "fake-outputs.json").write_text(json.dumps(outputs))
    elif args[:2] == ["stack", "output"]:
        print((state / "fake-outputs.json").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
