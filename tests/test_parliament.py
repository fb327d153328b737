"""parliament over every generated document: no finding except the documented false positives."""

from __future__ import annotations

import json
from collections import Counter

from compliance.lint import lint_policy
from tests.support import ROOT


def kind_of(path: str) -> str:
    if path.endswith("trust-policy.json"):
        return "trust"
    if path.endswith(("-access.json", "service-control-policy.json")):
        return "identity"  # an SCP is written like an identity policy, an RCP like a resource one
    return "resource"


def test_every_generated_policy_is_clean(prod_documents):
    policies = {path: doc for path, doc in prod_documents.items()
                if isinstance(doc, dict) and "Statement" in doc}
    # 4 bucket, 3 key, 6 role, 4 trust policies, the topic policy and the organization guard's
    # RCP and SCP.
    assert len(policies) == 20
    accepted = Counter()
    for path, document in policies.items():
        result = lint_policy(document, kind=kind_of(path))
        assert result.findings == (), path
        for item in result.accepted:
            accepted[(path.split("/")[-1], item.rule, item.finding.sid)] += 1
    # Only the documented exceptions: the canonical s3:* TLS deny, key policies' Resource "*",
    # trust policies without Resource.
    rules = {rule for (_, rule, _) in accepted}
    assert rules == {"canonical-transport-deny", "decimal-tls-version",
                     "kms-key-policy-resource-star", "trust-policy-has-no-resource"}
    sids = {(rule, sid) for (_, rule, sid) in accepted}
    assert sids == {
        ("canonical-transport-deny", "DenyOutdatedTLS"),
        ("decimal-tls-version", "DenyOutdatedTLS"),
        ("trust-policy-has-no-resource", "AllowEc2InstanceProfile"),
        ("trust-policy-has-no-resource", "AllowS3Replication"),
        *(("kms-key-policy-resource-star", sid) for sid in (
            "EnableKeyAdministration", "AllowBackupServerKey", "AllowWalArchiverKey",
            "AllowDecryptForRestore", "AllowRestoreServerOutcomeKey", "AllowReplicationDecrypt",
            "AllowReplicationEncrypt",
            "AllowS3DeleteEventsKey", "AllowCloudWatchAlarmsKey")),
    }


def test_the_seed_delete_deny_is_flagged_through_the_same_path():
    seed = json.loads((ROOT / "tests/fixtures/seed_bucket_policy.json").read_text())
    result = lint_policy(seed, kind="resource")
    flagged = [(f.code, f.sid) for f in result.findings]
    assert ("UNKNOWN_CONDITION_FOR_ACTION", "DenyDeleteBackup") in flagged
    assert any("s3:ObjectTag/Retention" in f.detail or "s3:ObjectTag/Retention" in f.title
               for f in result.findings)
