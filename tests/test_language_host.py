"""The program runs the way Pulumi's language host runs it, and the offline preview CLI works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import ROOT, required_tool

# What pulumi-language-python does: cwd = project root, `runpy.run_path("infra/")`, so only
# infra/ is on sys.path. `-I` keeps the cwd and PYTHON* variables off sys.path too: `components`
# must come from the installed package. Mocks stand in for the engine (no CLI here).
LANGUAGE_HOST = """
import json, sys, warnings
warnings.filterwarnings("ignore", category=DeprecationWarning)
assert not {"", "."} & set(sys.path) and sys.argv[1] not in sys.path
from pathlib import Path
from review.recording import run_program
from review.stack_config import load_stack_config
config, secrets = load_stack_config(Path("Pulumi.prod.yaml"))
run = run_program(Path("infra/"), stack="prod", config=config, secret_keys=secrets)
print(json.dumps({"resources": len(run.resources),
                  "bucket": run.outputs["buckets"]["primary"]["bucket"],
                  "infra_on_path": any(p.endswith("infra") for p in sys.path)}))
"""


def test_program_runs_like_the_language_host():
    result = subprocess.run([sys.executable, "-I", "-c", LANGUAGE_HOST, str(ROOT)], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == {"resources": 77, "bucket": "biometrics-backups",
                                         "infra_on_path": False}


def test_preview_cli_writes_documents(tmp_path: Path):
    out = tmp_path / "prod"
    result = subprocess.run(
        [sys.executable, "-m", "review.preview", "--stack", "prod", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"77 resources, 50 documents written to {out}"
    assert "objects stay 60 days in GLACIER" in result.stderr
    policy = json.loads((out / "backup-primary/policy.json").read_text())
    assert [s["Sid"] for s in policy["Statement"]][:2] == ["EnforceSSL", "DenyOutdatedTLS"]
    summary = (out / "summary.md").read_text()
    outputs = json.loads((out / "outputs.json").read_text())
    assert outputs["buckets"]["primary"]["bucket"] == "biometrics-backups"
    assert "```json\n" + json.dumps(outputs, indent=2, sort_keys=True) + "\n```" in summary
    assert "`aws:s3/bucket:Bucket` **backup-primary-bucket** (region eu-central-1, protected)" \
        in summary
    scrape = out / "monitoring/scrape-configs.yml"
    promtool = required_tool("promtool", "prometheus")
    check = subprocess.run([promtool, "check", "config", str(scrape)], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    # prod's runtime: the exporter on restore-1:8080, a scheduler on each host at 9101.
    assert {(job["job_name"], target, group["labels"]["host"], group["labels"]["role"])
            for job in yaml.safe_load(scrape.read_text())["scrape_configs"]
            for group in job["static_configs"] for target in group["targets"]} == {
        ("backup-exporter", "restore-1.internal:8080", "restore-1", "restore"),
        ("backup-agent", "backup-1.internal:9101", "backup-1", "backup"),
        ("backup-agent", "restore-1.internal:9101", "restore-1", "restore"),
    }


def test_preview_cli_refuses_bad_config_by_key(tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "infra").symlink_to(ROOT / "infra")
    (project / "Pulumi.bad.yaml").write_text(
        (ROOT / "Pulumi.prod.yaml").read_text().replace("region: eu-west-1",
                                                        "region: eu-central-1"))
    result = subprocess.run(
        [sys.executable, "-m", "review.preview", "--stack", "bad", "--project-dir",
         str(project)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == (
        "error: biometrics-backup:replica.region: must differ from primary.region "
        "(eu-central-1): cross-region replication needs a second region; allowed: an AWS "
        "region other than eu-central-1\n")
    assert not (project / "preview").exists()
