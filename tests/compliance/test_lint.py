"""Tests for compliance.lint. The expected values are what parliament 1.6.4 reports."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from compliance.lint import RULES, AcceptedFinding, LintFinding, LintResult, lint_policy

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

V = "2012-10-17"
B = "arn:aws:s3:::b"
ROLE = "arn:aws:iam::123456789012:role/backup-server"
REASONS = {r.id: r.reason for r in RULES}

UNKNOWN = "UNKNOWN_CONDITION_FOR_ACTION"
UNKNOWN_TITLE = "Unknown condition for action"
# s3:* expands to these two actions, which parliament's data lists without the
# S3 request keys (s3:TlsVersion, s3:authType, ...).
ACTIONS_WITHOUT_S3_REQUEST_KEYS = ("s3:InitiateReplication", "s3:PutAccessPointPublicAccessBlock")


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": V, "Statement": list(statements)}


def unknown(key: str, action: str, sid: str | None) -> LintFinding:
    return LintFinding(
        UNKNOWN, "MEDIUM", UNKNOWN_TITLE, f"Unknown condition {key} for action {action}", sid
    )


def accepted(finding: LintFinding, rule: str) -> AcceptedFinding:
    return AcceptedFinding(finding, rule, REASONS[rule])


def tls_type_mismatch(sid: str) -> LintFinding:
    return LintFinding(
        "MISMATCHED_TYPE",
        "MEDIUM",
        "Mismatched type",
        "Type mismatch: s3:TlsVersion requires a value of type Numeric but given ['1.2']",
        sid,
    )


ENFORCE_SSL = {
    "Sid": "EnforceSSL",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [B, f"{B}/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
DENY_OUTDATED_TLS = {
    "Sid": "DenyOutdatedTLS",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": [B, f"{B}/*"],
    "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}},
}
ALLOW_POSTGRES_READ = {
    "Sid": "AllowPostgresRead",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:role/postgres"},
    "Action": "s3:GetObject",
    "Resource": f"{B}/postgres/*",
}
TAG_ACTIONS = [
    "s3:PutObjectTagging",
    "s3:DeleteObjectTagging",
    "s3:PutObjectVersionTagging",
    "s3:DeleteObjectVersionTagging",
]
DENY_TAG_CHANGE = {
    "Sid": "DenyRetentionTagChange",
    "Effect": "Deny",
    "Principal": "*",
    "Action": TAG_ACTIONS,
    "Resource": f"{B}/*",
    "Condition": {"StringEquals": {"s3:ExistingObjectTag/Retention": "active"}},
}
TRUST = policy(
    {
        "Sid": "EC2Assume",
        "Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
)
TRUST_MISSING_RESOURCE = LintFinding(
    "MALFORMED",
    "HIGH",
    "Malformed",
    "Statement contains neither Resource nor NotResource",
    "EC2Assume",
)
KMS_KEY_STATEMENT = {
    "Sid": "AllowS3UseOfKey",
    "Effect": "Allow",
    "Principal": {"AWS": ROLE},
    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
    "Resource": "*",
    "Condition": {
        "StringEquals": {
            "kms:ViaService": "s3.eu-central-1.amazonaws.com",
            "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::b",
        }
    },
}
KMS_RESOURCE_STAR = LintFinding(
    "RESOURCE_STAR",
    "LOW",
    "Unnecessary use of Resource *",
    '["kms:Decrypt", "kms:GenerateDataKey"]',
    "AllowS3UseOfKey",
)
CLEAN = LintResult(findings=(), accepted=())


def canonical_tls_accepted(sid: str) -> tuple[AcceptedFinding, ...]:
    return (
        accepted(tls_type_mismatch(sid), "decimal-tls-version"),
        *(
            accepted(unknown("s3:TlsVersion", a, sid), "canonical-transport-deny")
            for a in ACTIONS_WITHOUT_S3_REQUEST_KEYS
        ),
    )


# --- seed policy ------------------------------------------------------------


def test_seed_policy_flags_nonexistent_object_tag_key() -> None:
    seed = json.loads((FIXTURES / "seed_bucket_policy.json").read_text())
    result = lint_policy(seed, kind="resource")
    assert result.findings == (
        LintFinding(
            UNKNOWN,
            "MEDIUM",
            UNKNOWN_TITLE,
            "Unknown condition s3:ObjectTag/Retention for action s3:DeleteObject",
            "DenyDeleteBackup",
        ),
    )
    # parliament 1.6.4 treats aws:SecureTransport as a global key, so the
    # EnforceSSL statement produces no finding and nothing needs accepting.
    assert result.accepted == ()


# --- canonical transport denies -----------------------------------------------


def test_canonical_transport_denies_are_clean_with_explicit_acceptances() -> None:
    result = lint_policy(
        policy(ENFORCE_SSL, DENY_OUTDATED_TLS, ALLOW_POSTGRES_READ), kind="resource"
    )
    assert result.findings == ()
    assert result.accepted == canonical_tls_accepted("DenyOutdatedTLS")


def test_tls_version_as_string_is_accepted_the_same_way() -> None:
    stmt = {**DENY_OUTDATED_TLS, "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}}}
    assert lint_policy(policy(stmt), kind="resource") == LintResult(
        findings=(), accepted=canonical_tls_accepted("DenyOutdatedTLS")
    )


def test_enforce_ssl_alone_produces_nothing() -> None:
    assert lint_policy(policy(ENFORCE_SSL), kind="resource") == CLEAN


def test_merged_transport_conditions_are_not_accepted() -> None:
    merged = {
        **ENFORCE_SSL,
        "Sid": "Merged",
        "Condition": {
            "Bool": {"aws:SecureTransport": "false"},
            "NumericLessThan": {"s3:TlsVersion": 1.2},
        },
    }
    result = lint_policy(policy(merged), kind="resource")
    assert result.findings == tuple(
        unknown("s3:TlsVersion", a, "Merged") for a in ACTIONS_WITHOUT_S3_REQUEST_KEYS
    )
    # The decimal-value false positive does not depend on the statement's shape.
    assert result.accepted == (accepted(tls_type_mismatch("Merged"), "decimal-tls-version"),)


def test_deny_all_s3_with_other_request_key_is_reported() -> None:
    stmt = {
        **ENFORCE_SSL,
        "Sid": "DenyNonHeaderAuth",
        "Condition": {"StringNotEquals": {"s3:authType": "REST-HEADER"}},
    }
    result = lint_policy(policy(stmt), kind="resource")
    assert result.findings == tuple(
        unknown("s3:authType", a, "DenyNonHeaderAuth") for a in ACTIONS_WITHOUT_S3_REQUEST_KEYS
    )
    assert result.accepted == ()


def test_tls_deny_with_other_threshold_is_not_canonical() -> None:
    stmt = {
        **DENY_OUTDATED_TLS,
        "Sid": "DenyBelowTLS13",
        "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.3}},
    }
    mismatch = LintFinding(
        "MISMATCHED_TYPE",
        "MEDIUM",
        "Mismatched type",
        "Type mismatch: s3:TlsVersion requires a value of type Numeric but given ['1.3']",
        "DenyBelowTLS13",
    )
    assert lint_policy(policy(stmt), kind="resource") == LintResult(
        findings=tuple(
            unknown("s3:TlsVersion", a, "DenyBelowTLS13") for a in ACTIONS_WITHOUT_S3_REQUEST_KEYS
        ),
        accepted=(accepted(mismatch, "decimal-tls-version"),),
    )


def test_tls_version_with_string_operator_is_reported() -> None:
    stmt = {
        **DENY_OUTDATED_TLS,
        "Sid": "StringTls",
        "Action": "s3:GetObject",
        "Resource": f"{B}/*",
        "Condition": {"StringEquals": {"s3:TlsVersion": "1.2"}},
    }
    # parliament reports two MISMATCHED_TYPE findings: the key-level one
    # (decimal value) is the known false positive, while the operator-level one
    # (String operator on a numeric key) is real.
    assert lint_policy(policy(stmt), kind="resource") == LintResult(
        findings=(
            LintFinding(
                "MISMATCHED_TYPE",
                "MEDIUM",
                "Mismatched type",
                "Type mismatch: StringEquals requires a value of type String but given Number",
                "StringTls",
            ),
        ),
        accepted=(accepted(tls_type_mismatch("StringTls"), "decimal-tls-version"),),
    )


# --- trust policies ---------------------------------------------------------------


def test_trust_policy_missing_resource_is_accepted_for_trust_kind() -> None:
    assert lint_policy(TRUST, kind="trust") == LintResult(
        findings=(), accepted=(accepted(TRUST_MISSING_RESOURCE, "trust-policy-has-no-resource"),)
    )


def test_trust_policy_missing_resource_is_reported_for_identity_kind() -> None:
    assert lint_policy(TRUST, kind="identity") == LintResult(
        findings=(TRUST_MISSING_RESOURCE,), accepted=()
    )


def test_trust_policy_with_action_list_is_accepted() -> None:
    doc = policy(
        {**TRUST["Statement"][0], "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]}
    )
    assert lint_policy(doc, kind="trust") == LintResult(
        findings=(), accepted=(accepted(TRUST_MISSING_RESOURCE, "trust-policy-has-no-resource"),)
    )


def test_missing_resource_with_non_sts_action_is_reported_even_for_trust_kind() -> None:
    doc = policy({**TRUST["Statement"][0], "Action": ["sts:AssumeRole", "s3:GetObject"]})
    assert lint_policy(doc, kind="trust") == LintResult(
        findings=(TRUST_MISSING_RESOURCE,), accepted=()
    )


# --- object tags, prefixes, legal hold ------------------------------------------


def test_existing_object_tag_on_tagging_actions_is_clean() -> None:
    assert lint_policy(policy(DENY_TAG_CHANGE), kind="resource") == CLEAN


def test_existing_object_tag_on_delete_object_is_reported() -> None:
    stmt = {**DENY_TAG_CHANGE, "Sid": "DenyDeleteTagged", "Action": "s3:DeleteObject"}
    assert lint_policy(policy(stmt), kind="resource") == LintResult(
        findings=(
            unknown("s3:ExistingObjectTag/Retention", "s3:DeleteObject", "DenyDeleteTagged"),
        ),
        accepted=(),
    )


def test_finding_on_statement_without_sid_has_no_sid() -> None:
    stmt = {k: v for k, v in DENY_TAG_CHANGE.items() if k != "Sid"} | {"Action": "s3:DeleteObject"}
    result = lint_policy(policy(stmt), kind="resource")
    assert result.findings == (unknown("s3:ExistingObjectTag/Retention", "s3:DeleteObject", None),)


def test_list_bucket_with_prefix_condition_is_clean() -> None:
    stmt = {
        "Sid": "AllowListBackupPrefixes",
        "Effect": "Allow",
        "Principal": {"AWS": ROLE},
        "Action": "s3:ListBucket",
        "Resource": B,
        "Condition": {"StringLike": {"s3:prefix": ["postgres/*", "restic/*"]}},
    }
    assert lint_policy(policy(stmt), kind="resource") == CLEAN


def test_deny_legal_hold_off_is_clean() -> None:
    stmt = {
        "Sid": "DenyLegalHoldOff",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObjectLegalHold",
        "Resource": f"{B}/*",
        "Condition": {"StringEquals": {"s3:object-lock-legal-hold": "OFF"}},
    }
    assert lint_policy(policy(stmt), kind="resource") == CLEAN


# --- KMS key policy -----------------------------------------------------------------


def test_kms_key_policy_resource_star_is_accepted() -> None:
    assert lint_policy(policy(KMS_KEY_STATEMENT), kind="resource") == LintResult(
        findings=(), accepted=(accepted(KMS_RESOURCE_STAR, "kms-key-policy-resource-star"),)
    )


def test_kms_resource_star_in_identity_policy_is_reported() -> None:
    stmt = {k: v for k, v in KMS_KEY_STATEMENT.items() if k != "Principal"}
    assert lint_policy(policy(stmt), kind="identity") == LintResult(
        findings=(KMS_RESOURCE_STAR,), accepted=()
    )


# --- Resource "*" named by a condition (ecs:ListTasks on a Fargate cluster) ---------------

CLUSTER = "arn:aws:ecs:eu-central-1:123456789012:cluster/biometrics-backup"
LIST_TASKS = {"Sid": "AllowOverlapGuardList", "Effect": "Allow", "Action": ["ecs:ListTasks"],
              "Resource": "*", "Condition": {"ArnEquals": {"ecs:cluster": CLUSTER}}}
LIST_TASKS_STAR = LintFinding("RESOURCE_STAR", "LOW", "Unnecessary use of Resource *",
                              '["ecs:ListTasks"]', "AllowOverlapGuardList")


def test_list_tasks_pinned_to_one_cluster_is_accepted() -> None:
    assert lint_policy(policy(LIST_TASKS), kind="identity") == LintResult(
        findings=(), accepted=(accepted(LIST_TASKS_STAR, "condition-scoped-resource-star"),))


@pytest.mark.parametrize("condition", [
    {"ArnLike": {"ecs:cluster": CLUSTER.replace("biometrics-backup", "*")}},  # any cluster
    {"ArnEquals": {"ecs:cluster": CLUSTER.replace("biometrics-backup", "*")}},
    {"StringEquals": {"aws:ResourceTag/team": "backup"}},  # a tag names no resource
    {},
], ids=["arn-like-wildcard", "arn-equals-wildcard", "tag", "none"])
def test_list_tasks_on_any_cluster_is_reported(condition: dict[str, Any]) -> None:
    stmt = {**LIST_TASKS, "Condition": condition} if condition else \
        {k: v for k, v in LIST_TASKS.items() if k != "Condition"}
    assert lint_policy(policy(stmt), kind="identity") == LintResult(
        findings=(LIST_TASKS_STAR,), accepted=())


# --- general behaviour ------------------------------------------------------------


def test_accepts_any_mapping_and_single_statement_object() -> None:
    doc = MappingProxyType({"Version": V, "Statement": MappingProxyType(dict(DENY_OUTDATED_TLS))})
    assert lint_policy(doc, kind="resource") == LintResult(
        findings=(), accepted=canonical_tls_accepted("DenyOutdatedTLS")
    )


def test_does_not_mutate_input() -> None:
    doc = policy(DENY_OUTDATED_TLS)
    before = json.dumps(doc, sort_keys=True)
    lint_policy(doc, kind="resource")
    assert json.dumps(doc, sort_keys=True) == before


def test_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    lint_policy(policy(ENFORCE_SSL, DENY_OUTDATED_TLS), kind="resource")
    lint_policy(TRUST, kind="trust")
    assert capfd.readouterr() == ("", "")


def test_rule_ids_are_unique_and_documented() -> None:
    assert [r.id for r in RULES] == [
        "canonical-transport-deny",
        "decimal-tls-version",
        "trust-policy-has-no-resource",
        "kms-key-policy-resource-star",
        "condition-scoped-resource-star",
    ]
    assert all(r.reason for r in RULES)


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError):
        lint_policy(TRUST, kind="bucket")  # type: ignore[arg-type]


IMPORT_PROBE = """
import gc, json, sys
import compliance.lint as lint
import parliament
from importlib.resources import files
print(json.dumps({
    "pkg_resources": "pkg_resources" in sys.modules,
    "collecting": gc.isenabled(),
    "frozen": gc.get_freeze_count() > 100000,
    "data": [parliament.iam_definition_path, parliament.config_path],
    "expected": [str(files("parliament") / "iam_definition.json"),
                 str(files("parliament") / "config.yaml")],
    "services": len(parliament.iam_definition),
}))
"""


def test_parliament_loads_its_own_data_without_pkg_resources_and_leaves_the_collector_on():
    """A fresh interpreter, as the preview: parliament reads its own two files, setuptools'
    pkg_resources is never imported for it, and its table is frozen with the collector on."""
    import subprocess
    import sys

    probe = subprocess.run([sys.executable, "-c", IMPORT_PROBE], check=True,
                           capture_output=True, text=True)
    found = json.loads(probe.stdout)
    assert found["data"] == found["expected"]
    assert (found["pkg_resources"], found["collecting"], found["frozen"]) == (False, True, True)
    assert found["services"] > 300
