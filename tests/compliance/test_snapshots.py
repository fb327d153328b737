"""snapshots/prod/ holds exactly what the code renders for prod; `make snapshots` refreshes it."""

from __future__ import annotations

from compliance.snapshots import SNAPSHOTS, snapshot_files
from components.preview.stack_config import load_stack_config
from tests.conftest import ROOT


def test_committed_prod_snapshots_match_what_the_code_renders(prod):
    config, _ = load_stack_config(ROOT / "Pulumi.prod.yaml")
    rendered = snapshot_files(prod, "prod", config)
    committed = {str(path.relative_to(SNAPSHOTS / "prod")): path.read_text()
                 for path in sorted((SNAPSHOTS / "prod").rglob("*")) if path.is_file()}
    assert sorted(committed) == sorted(rendered), "files differ: run `make snapshots`"
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} differs: run `make snapshots` and review the diff"


def test_snapshots_hold_every_policy_document_and_the_report(prod):
    config, _ = load_stack_config(ROOT / "Pulumi.prod.yaml")
    names = set(snapshot_files(prod, "prod", config))
    assert {"compliance.md", "compliance.json", "backup-primary/policy.json",
            "backup-primary/key-policy.json", "backup-roles/restore-server-trust-policy.json",
            "backup-replica/restore-access.json", "backup-alerts/topic-policy.json"} <= names
    assert "backup-primary/versioning.json" not in names  # configuration, not a policy
