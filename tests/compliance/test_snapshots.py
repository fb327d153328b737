"""snapshots/prod/ holds exactly what the code renders for prod; `make snapshots` refreshes it."""

from __future__ import annotations

from review.snapshots import SNAPSHOTS, snapshot_files


def test_committed_prod_snapshots_match_what_the_code_renders(prod, prod_settings):
    rendered = snapshot_files(prod, "prod", prod_settings.waivers)
    committed = {str(path.relative_to(SNAPSHOTS / "prod")): path.read_text()
                 for path in sorted((SNAPSHOTS / "prod").rglob("*")) if path.is_file()}
    assert sorted(committed) == sorted(rendered), "files differ: run `make snapshots`"
    for name, text in rendered.items():
        assert committed[name] == text, f"{name} differs: run `make snapshots` and review the diff"


def test_snapshots_hold_every_policy_document_and_the_report(prod, prod_settings):
    names = set(snapshot_files(prod, "prod", prod_settings.waivers))
    assert {"compliance.md", "compliance.json", "backup-primary/policy.json",
            "backup-primary/key-policy.json", "backup-roles/restore-server-trust-policy.json",
            "backup-replica/restore-access.json", "backup-alerts/topic-policy.json"} <= names
    assert "backup-primary/versioning.json" not in names  # configuration, not a policy
