"""The GitHub Actions workflows: zizmor (offline) and the properties the delivery relies on."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
# Each SHA resolved from the action's own repository (docs/delivery.md, "Pinned actions").
PINS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/cache": ("27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c",
                                              "v6.2.3"),
    "pulumi/actions": ("8e5e406f4007fca908480587cb9893c07090f58d", "v7.0.0"),
}
USES = re.compile(r"^\s*(?:-\s+)?uses:\s+(\S+)(?:\s+#\s+(\S+))?\s*$")


def workflow(name):
    # PyYAML reads the key `on` as True (YAML 1.1).
    return yaml.safe_load((WORKFLOWS / name).read_text())


def zizmor_executable():
    # The one requirements-dev.txt pins, beside this interpreter (.venv/bin under make).
    beside = Path(sys.executable).parent / "zizmor"
    found = str(beside) if beside.exists() else shutil.which("zizmor")
    assert found, "zizmor (requirements-dev.txt) is not installed"
    return found


def test_zizmor_finds_nothing_at_medium_or_above():
    result = subprocess.run([zizmor_executable(), "--offline", "--format", "json",
                             str(WORKFLOWS)], capture_output=True, text=True, timeout=120,
                            check=False)
    findings = json.loads(result.stdout)
    summary = sorted((f["ident"], f["determinations"]["severity"],
                      Path(f["locations"][0]["symbolic"]["key"]["Local"]["verbatim_path"]).name)
                     for f in findings)
    # Only zizmor's suggestion of GitHub's newer `$/` syntax for the local reusable workflow;
    # `./.github/workflows/...` is the documented form and stays.
    assert summary == [("self-repository", "Low", "deploy.yml"),
                       ("self-repository", "Low", "pr.yml")]
    assert result.returncode == 12  # zizmor: highest finding is Low


def test_every_action_is_pinned_to_its_resolved_commit():
    seen = set()
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for line in path.read_text().splitlines():
            match = USES.match(line)
            if not match or match.group(1).startswith("./"):
                continue
            action, _, sha = match.group(1).partition("@")
            assert (sha, match.group(2)) == PINS[action], f"{path.name}: {line.strip()}"
            seen.add(action)
    assert seen == set(PINS)


def test_least_permissions():
    jobs = {}
    for name in ("tests.yml", "pr.yml", "deploy.yml"):
        document = workflow(name)
        assert document["permissions"] == {}, name
        jobs.update({f"{name}:{job}": spec["permissions"]
                     for job, spec in document["jobs"].items()})
    assert jobs == {
        "tests.yml:test": {"contents": "read"},
        "pr.yml:test": {"contents": "read"},
        "pr.yml:preview": {"contents": "read", "id-token": "write", "pull-requests": "write"},
        "deploy.yml:test": {"contents": "read"},
        "deploy.yml:deploy": {"contents": "read", "id-token": "write"},
    }


def step(job, uses_prefix):
    matches = [s for s in job["steps"] if s.get("uses", "").startswith(uses_prefix)]
    assert len(matches) == 1, uses_prefix
    return matches[0]


def test_pull_request_preview_comments_and_skips_without_a_role():
    document = workflow("pr.yml")
    assert document[True] == {"pull_request": {"branches": ["main"]}}
    job = document["jobs"]["preview"]
    assert job["needs"] == "test"
    skip = job["steps"][0]
    assert skip["if"] == "env.ROLE_ARN == '' || env.FROM_FORK == 'true'"
    assert "::notice title=pulumi preview skipped::" in skip["run"]
    assert all(s["if"] == "env.ROLE_ARN != '' && env.FROM_FORK == 'false'"
               for s in job["steps"][1:])
    credentials = step(job, "aws-actions/configure-aws-credentials@")
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}"
    pulumi = step(job, "pulumi/actions@")["with"]
    assert (pulumi["command"], pulumi["comment-on-pr"], pulumi["refresh"]) == (
        "preview", True, True)
    assert pulumi["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"
    assert step(job, "actions/cache@")["with"]["path"] == "~/.pulumi/plugins"


def test_deploy_is_gated_serialized_and_smoke_checked():
    document = workflow("deploy.yml")
    assert document[True] == {"push": {"branches": ["main"]}}
    assert document["concurrency"] == {"group": "deploy-prod", "cancel-in-progress": False}
    job = document["jobs"]["deploy"]
    assert (job["needs"], job["environment"]) == ("test", "prod")
    names = [s.get("name") or s["uses"].split("@")[0] for s in job["steps"]]
    assert names.index("pulumi up") < names.index(
        "Smoke check the live buckets against the offline preview")
    assert step(job, "pulumi/actions@")["with"]["command"] == "up"
    assert step(job, "aws-actions/configure-aws-credentials@")["with"]["role-to-assume"] == (
        "${{ vars.AWS_DEPLOY_ROLE_ARN }}")
    smoke = job["steps"][-1]["run"]
    assert "pulumi stack output --json" in smoke and "delivery.smoke_check" in smoke


def test_tests_job_runs_ci_and_publishes_the_preview():
    job = workflow("tests.yml")["jobs"]["test"]
    runs = [s.get("run", "") for s in job["steps"]]
    assert ".ci/run" in runs and "make preview" in runs
    assert any('>> "$GITHUB_STEP_SUMMARY"' in run for run in runs)
    upload = step(job, "actions/upload-artifact@")
    assert upload["with"]["path"] == "preview/prod/"
    assert step(job, "actions/cache@")["with"]["path"] == "~/.cache/pip"


@pytest.mark.parametrize("name", ["tests.yml", "pr.yml", "deploy.yml"])
def test_checkout_never_persists_credentials(name):
    for job in workflow(name)["jobs"].values():
        for item in job.get("steps", []):
            if item.get("uses", "").startswith("actions/checkout@"):
                assert item["with"]["persist-credentials"] is False
