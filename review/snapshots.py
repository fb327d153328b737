"""Committed snapshots of a stack's review material: `snapshots/<stack>/`.

The prod preview's policy documents (exact JSON text) and its compliance report live in the
repository, so a pull request that changes a policy shows the diff to reviewers. A test fails
when the code would render something different; `make snapshots` refreshes them:

    python -m review.snapshots --stack prod
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from compliance.report import WaiverLike
from components.runtime_settings import RuntimeSettings
from review.stack_config import ROOT

SNAPSHOTS: Final = ROOT / "snapshots"


def snapshot_files(run: Any, stack: str, waivers: Sequence[WaiverLike],
                   runtime: RuntimeSettings | None = None) -> dict[str, str]:
    """Relative path → text: every policy document of the run, compliance.md and .json."""
    import json

    from compliance.report import build_report, to_json, to_markdown
    from review.inventory import from_recorded
    from review.render import render_documents, to_text

    files = {path: to_text(document) for path, document in render_documents(run).items()
             if isinstance(document, dict) and "Statement" in document}
    report = build_report(stack, from_recorded(run.resources), waivers, runtime=runtime)
    files["compliance.md"] = to_markdown(report)
    files["compliance.json"] = json.dumps(to_json(report), indent=2, ensure_ascii=False) + "\n"
    return dict(sorted(files.items()))


def render_stack(stack: str, project_dir: Path = ROOT) -> dict[str, str]:
    from review.stack_config import run_stack

    run, settings = run_stack(project_dir, stack)
    return snapshot_files(run, stack, settings.waivers, settings.runtime)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m review.snapshots",
                                     description="Refresh snapshots/<stack>/")
    parser.add_argument("--stack", default="prod")
    args = parser.parse_args(argv)
    files = render_stack(args.stack)
    out = SNAPSHOTS / args.stack
    if out.exists():
        shutil.rmtree(out)
    for relative, text in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"{len(files)} files written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
