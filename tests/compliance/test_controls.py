"""The control registry over recorded resources: prod passes; one edit makes each control fail."""

from __future__ import annotations

import json
from typing import Any

import pytest

from compliance.controls import (
    FULL_BACKUP_INTERVAL_LABEL,
    HOST_LABEL,
    REGISTRY,
    controls_by_id,
    run_control,
)
from compliance.inventory import CONTAINER, Declared, Unknown, build_inventory
from tests.compliance.conftest import (
    ACCOUNT,
    declared_of,
    edit,
    edit_policy,
    sibling,
    without_sid,
)

PRIMARY = "biometrics-backups (backup-primary-bucket)"
REPLICA = "biometrics-backups-replica (backup-replica-bucket)"
PRIMARY_LOGS = "biometrics-backups-access-logs (backup-primary-access-logs)"
REPLICA_LOGS = "biometrics-backups-replica-access-logs (backup-replica-access-logs)"
BACKUP_ROLE = f"arn:aws:iam::{ACCOUNT}:role/backup-server"

PROD_STATUSES = {
    "s3-account-public-access-block": "n/a",
    "s3-ssl-only": "pass",
    "s3-tls-1-2": "pass",
    "s3-public-access-blocked": "pass",
    "s3-acls-disabled": "pass",
    "s3-versioning": "pass",
    "s3-object-lock-default-retention": "pass",
    "s3-kms-encryption-with-rotation": "pass",
    "s3-log-bucket-encrypted": "pass",
    "s3-lifecycle-versioned": "pass",
    "s3-cross-region-replication": "pass",
    "s3-delete-event-notifications": "pass",
    "s3-access-logging": "pass",
    "s3-no-policy-or-acl-changes-granted": "pass",
    "s3-version-delete-break-glass-only": "pass",
    "s3-replica-written-by-replication-only": "pass",
    "s3-writes-use-the-bucket-key": "pass",
    "s3-retention-capped": "pass",
    "iam-condition-keys-valid": "pass",
    "iam-policy-lint-clean": "pass",
    "iam-no-wildcard-allow": "pass",
    "iam-restore-role-read-only": "pass",
    "sns-topic-encrypted-for-publishers-only": "pass",
    # Rendered for the management account: the stack checks it, cannot see it applied.
    "org-guard-rendered": "manual",
    "iam-key-management-tag-scoped": "n/a",  # no role creates keys without github config
    "container-no-static-credentials": "pass",
    "restore-host-no-write-credentials": "pass",
    "rto-restorable-backup-not-cold": "pass",
}


def result(resources: list[Declared], control_id: str):
    return run_control(controls_by_id()[control_id], build_inventory(resources))


def failures(resources: list[Declared], control_id: str) -> list[tuple[str, str]]:
    outcome = result(resources, control_id)
    assert outcome.status == "fail", outcome
    return [(f.subject, f.evidence) for f in outcome.findings if f.status == "fail"]


def test_registry_ids_are_unique_and_every_control_is_described():
    assert len({c.id for c in REGISTRY}) == len(REGISTRY) == len(PROD_STATUSES)
    for control in REGISTRY:
        assert control.title and control.scope.name and control.severity in (
            "critical", "high", "medium", "low")


def test_prod_statuses(prod_inventory):
    statuses = {c.id: run_control(c, prod_inventory).status for c in REGISTRY}
    assert statuses == PROD_STATUSES


def test_prod_evidence_names_resources_and_sids(prod_inventory):
    ssl = run_control(controls_by_id()["s3-ssl-only"], prod_inventory)
    assert [(f.subject, f.sids) for f in ssl.findings] == [
        (PRIMARY, ("EnforceSSL",)), (PRIMARY_LOGS, ("EnforceSSL",)),
        (REPLICA, ("EnforceSSL",)), (REPLICA_LOGS, ("EnforceSSL",))]
    lock = run_control(controls_by_id()["s3-object-lock-default-retention"], prod_inventory)
    assert [(f.subject, f.evidence) for f in lock.findings] == [
        (PRIMARY, "backup-primary-object-lock: default retention COMPLIANCE 30 days"),
        (REPLICA, "backup-replica-object-lock: default retention COMPLIANCE 30 days")]
    version = run_control(controls_by_id()["s3-version-delete-break-glass-only"], prod_inventory)
    assert [f.sids for f in version.findings] == [
        ("DenyDeleteBackup",), ("DenyDeleteBackup", "DenyReplicaWritesExceptReplication")]
    assert version.findings[1].evidence == (
        "backup-replica-policy: s3:DeleteObjectVersion explicitly denied to the account root, "
        "every role of the stack and an administrator allowed *:*")  # no break-glass configured


def test_not_applicable_controls_give_their_reason(prod_inventory, stack_run):
    account = run_control(controls_by_id()["s3-account-public-access-block"], prod_inventory)
    assert account.reason == (
        "account-level setting (the account's S3 public access block); this package manages "
        "buckets, not the account, so it neither sets nor reads it (facts §5)")
    without_runtime = build_inventory(declared_of(stack_run("prod", {"runtime": None})))
    reasons = {c: run_control(controls_by_id()[c], without_runtime).reason for c in (
        "container-no-static-credentials", "restore-host-no-write-credentials",
        "rto-restorable-backup-not-cold")}
    no_containers = ("the stack declares no docker:index/container:Container (no backup "
                     "runtime configured)")
    assert reasons == {
        "container-no-static-credentials": no_containers,
        "restore-host-no-write-credentials":
            "no container carries the label biometrics-backup.host=restore",
        "rto-restorable-backup-not-cold": "no container declares its full base-backup interval "
        "(label biometrics-backup.full-backup-interval-days): " + no_containers,
    }


def test_prod_runtime_containers_are_judged(prod_inventory):
    evidence = {c: [(f.subject, f.evidence) for f in run_control(controls_by_id()[c],
                                                                  prod_inventory).findings]
                for c in ("container-no-static-credentials", "restore-host-no-write-credentials",
                          "rto-restorable-backup-not-cold")}
    assert evidence == {
        "container-no-static-credentials": [
            (name, f"{name}: 0 env var(s) and {uploads} uploaded file(s), no static AWS "
                   "credentials, no secret in the environment; AWS access comes from the host's "
                   "instance profile")
            for name, uploads in (("runtime-backup-agent-backup-1", 4),
                                  ("runtime-backup-agent-restore-1", 3),
                                  ("runtime-backup-exporter-restore-1", 1))],
        "restore-host-no-write-credentials": [
            (name, f"{name}: no AWS credentials of its own (env, mounts, uploads); it can only "
                   "use the host's instance profile")
            for name in ("runtime-backup-agent-restore-1", "runtime-backup-exporter-restore-1")],
        "rto-restorable-backup-not-cold": [(
            "runtime-backup-agent-backup-1", "runtime-backup-agent-backup-1: full base backups "
            "every 1 day(s); the newest base backup and its WAL leave STANDARD only after that")],
    }


# --- one failing edit per control ------------------------------------------------------------


def _set(path: tuple[Any, ...], value: Any):
    def change(inputs: dict[str, Any]) -> None:
        target = inputs
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


def _add_statement(statement: dict[str, Any]):
    return lambda document: document["Statement"].append(statement)


def _except_backup_role(document: dict[str, Any]) -> None:
    deny = next(s for s in document["Statement"] if s["Sid"] == "DenyDeleteBackup")
    deny["Condition"] = {"ArnNotEquals": {"aws:PrincipalArn": BACKUP_ROLE}}


def _restore_may_write(document: dict[str, Any]) -> None:
    document["Statement"][0]["Action"].append("s3:PutObject")


def _restore_appends_elsewhere(document: dict[str, Any]) -> None:
    """The outcome-record grant widened from evidence/ to the backups."""
    _statement(document, "AllowRestoreServerRecordOutcomes")["Resource"] = \
        "arn:aws:s3:::biometrics-backups/restic/*"


def _restore_rewrites_outcomes(document: dict[str, Any]) -> None:
    _statement(document, "AllowRestoreServerRecordOutcomes")["Action"].append("s3:DeleteObject")


def _statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in document["Statement"] if s["Sid"] == sid)


def _change(sid: str, change):
    return lambda document: change(_statement(document, sid))


def _drop_condition(sid: str, operator: str, key: str | None = None):
    def change(statement: dict[str, Any]) -> None:
        if key is None:
            del statement["Condition"][operator]
        else:
            del statement["Condition"][operator][key]
            if not statement["Condition"][operator]:
                del statement["Condition"][operator]
    return _change(sid, change)


ADMIN = f"arn:aws:iam::{ACCOUNT}:role/any-administrator"
REPLICATION = f"arn:aws:iam::{ACCOUNT}:role/biometrics-backups-replication"
TOPIC = "backup-alerts-topic"
RCP = "organization-guard-resource-control-policy"
SCP = "organization-guard-service-control-policy"


FAILING_EDITS = [
    ("s3-ssl-only", lambda r: edit_policy(r, "backup-primary-policy", without_sid("EnforceSSL")),
     [(PRIMARY, "backup-primary-policy: s3:GetObject by anonymous with "
                "{'aws:SecureTransport': 'false'} is not explicitly denied (implicit-deny)")]),
    ("s3-tls-1-2", lambda r: edit_policy(r, "backup-replica-policy",
                                         without_sid("DenyOutdatedTLS")),
     [(REPLICA, "backup-replica-policy: s3:GetObject by anonymous with {'aws:SecureTransport': "
                "'true', 's3:TlsVersion': '1.1'} is not explicitly denied (implicit-deny)")]),
    ("s3-public-access-blocked",
     lambda r: edit(r, "backup-primary-access-logs-public-access-block",
                    _set(("blockPublicPolicy",), False)),
     [(PRIMARY_LOGS, "backup-primary-access-logs-public-access-block: blockPublicPolicy not "
                     "true")]),
    ("s3-acls-disabled", lambda r: edit(r, "backup-replica-ownership",
                                        _set(("rule", "objectOwnership"), "ObjectWriter")),
     [(REPLICA, "backup-replica-ownership: objectOwnership is 'ObjectWriter'")]),
    ("s3-versioning", lambda r: edit(r, "backup-primary-versioning",
                                     _set(("versioningConfiguration", "status"), "Suspended")),
     [(PRIMARY, "backup-primary-versioning: status 'Suspended'")]),
    ("s3-kms-encryption-with-rotation",
     lambda r: edit(r, "backup-primary-encryption",
                    _set(("rules", 0, "applyServerSideEncryptionByDefault"),
                         {"sseAlgorithm": "AES256"})),
     [(PRIMARY, "backup-primary-encryption: sseAlgorithm 'AES256', no customer managed key")]),
    ("s3-kms-encryption-with-rotation",
     lambda r: edit(r, "backup-replica-key", _set(("enableKeyRotation",), False)),
     [(REPLICA, "backup-replica-key: enableKeyRotation is not true")]),
    ("s3-log-bucket-encrypted",
     lambda r: edit(r, "backup-replica-access-logs-encryption", _set(("rules",), [])),
     [(REPLICA_LOGS, "backup-replica-access-logs-encryption: sseAlgorithm None")]),
    ("s3-lifecycle-versioned",
     lambda r: edit(r, "backup-primary-lifecycle", lambda i: i.update(rules=[
         rule for rule in i["rules"] if rule["id"] != "expire-noncurrent-versions"])),
     [(PRIMARY, "backup-primary-lifecycle: no enabled rule with NoncurrentVersionExpiration")]),
    ("s3-delete-event-notifications",
     lambda r: edit(r, "backup-alerts-delete-events",
                    _set(("topics", 0, "events"), ["s3:ObjectCreated:*"])),
     [(PRIMARY, "biometrics-backups: no notification for s3:ObjectRemoved:* events")]),
    ("s3-access-logging",
     lambda r: edit(r, "backup-primary-logging",
                    _set(("targetBucket",), "biometrics-backups-replica-access-logs")),
     [(PRIMARY, "backup-primary-logging: target biometrics-backups-replica-access-logs is in "
                "eu-west-1, the bucket in eu-central-1: S3 delivers logs only within a region")]),
    ("s3-no-policy-or-acl-changes-granted",
     lambda r: edit_policy(r, "backup-primary-policy", _add_statement({
         "Sid": "AllowPartnerPolicyChanges", "Effect": "Allow",
         "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
         "Action": ["s3:PutBucket*"], "Resource": "arn:aws:s3:::biometrics-backups"})),
     [(PRIMARY, "backup-primary-policy: AllowPartnerPolicyChanges grants s3:PutBucketAcl, "
                "s3:PutBucketPolicy")]),
    ("s3-version-delete-break-glass-only",
     lambda r: edit_policy(r, "backup-primary-policy", without_sid("DenyDeleteBackup")),
     [(PRIMARY, "backup-primary-policy: s3:DeleteObjectVersion by arn:aws:iam::111122223333:"
                "role/any-administrator is not explicitly denied (allow)")]),
    ("s3-version-delete-break-glass-only",
     lambda r: edit_policy(r, "backup-primary-policy", _except_backup_role),
     [(PRIMARY, "backup-primary-policy: s3:DeleteObjectVersion by arn:aws:iam::111122223333:"
                "role/backup-server is not explicitly denied (implicit-deny)")]),
    # Point 1: only replication writes into the replica.
    ("s3-replica-written-by-replication-only",
     lambda r: edit_policy(r, "backup-replica-policy",
                           without_sid("DenyReplicaWritesExceptReplication")),
     [(REPLICA, f"backup-replica-policy: s3:PutObject by {ADMIN} is not explicitly denied "
                "(allow)")]),
    ("s3-replica-written-by-replication-only",  # a widened exemption
     lambda r: edit_policy(r, "backup-replica-policy", _change(
         "DenyReplicaWritesExceptReplication", lambda s: s["Condition"]["ArnNotEquals"].update(
             {"aws:PrincipalArn": [REPLICATION, f"arn:aws:iam::{ACCOUNT}:role/*"]}))),
     [(REPLICA, f"backup-replica-policy: s3:PutObject by {ADMIN} is not explicitly denied "
                "(allow)")]),
    ("s3-replica-written-by-replication-only",  # Replicate* left out of the Deny
     lambda r: edit_policy(r, "backup-replica-policy", _change(
         "DenyReplicaWritesExceptReplication",
         lambda s: s["NotAction"].append("s3:Replicate*"))),
     [(REPLICA, f"backup-replica-policy: s3:ReplicateObject by {ADMIN} is not explicitly "
                "denied (allow)")]),
    # Point 2: the bucket's own key or nothing.
    ("s3-writes-use-the-bucket-key",  # without Null false, header-less PUTs are denied too
     lambda r: edit_policy(r, "backup-primary-policy",
                           _drop_condition("DenyNonKmsEncryption", "Null")),
     [(PRIMARY, f"backup-primary-policy: a PUT by {ADMIN} without encryption headers is "
                "denied")]),
    ("s3-writes-use-the-bucket-key",
     lambda r: edit_policy(r, "backup-replica-policy", without_sid("DenyOtherKmsKey")),
     [(REPLICA, f"backup-replica-policy: a PUT by {REPLICATION} naming another KMS key is not "
                "explicitly denied (implicit-deny)")]),
    ("s3-writes-use-the-bucket-key",
     lambda r: edit_policy(r, "backup-primary-policy", without_sid("DenyCustomerProvidedKeys")),
     [(PRIMARY, f"backup-primary-policy: a PUT by {ADMIN} naming SSE-C is not explicitly "
                "denied (allow)")]),
    # Point 3: no retention beyond the cap; the backup role sets COMPLIANCE only.
    ("s3-retention-capped",
     lambda r: edit_policy(r, "backup-primary-policy", without_sid("DenyRetentionBeyondMaximum")),
     [(PRIMARY, f"backup-primary-policy: s3:PutObjectRetention by {ADMIN} with "
                "{'s3:object-lock-mode': 'COMPLIANCE', 's3:object-lock-remaining-retention-days':"
                " '36500'} is not explicitly denied (allow)")]),
    ("s3-retention-capped",
     lambda r: edit_policy(r, "backup-primary-backup-access",
                           _drop_condition("AllowBackupServerKeepRetention", "StringEquals")),
     [(PRIMARY, "backup-primary-policy: backup-server may set a GOVERNANCE retention, which "
                "s3:BypassGovernanceRetention could shorten")]),
    ("iam-no-wildcard-allow",
     lambda r: edit_policy(r, "backup-primary-restore-access",
                           lambda d: d["Statement"][0].update(Action=["s3:Get*"])),
     [("backup-primary-restore-access (identity)",
       "AllowReadForRestore: wildcard action(s) s3:Get*")]),
    ("iam-no-wildcard-allow",
     lambda r: edit_policy(r, "backup-primary-backup-access",
                           _change("AllowBackupServerKey", lambda s: s.update(Resource="*"))),
     [("backup-primary-backup-access (identity)", "AllowBackupServerKey: wildcard resource '*'")]),
    # Point 4: the topic's key admits exactly its publishers.
    ("sns-topic-encrypted-for-publishers-only",
     lambda r: edit(r, TOPIC, lambda inputs: inputs.pop("kmsMasterKeyId")),
     [(TOPIC, f"{TOPIC}: no customer managed key (kmsMasterKeyId None)")]),
    ("sns-topic-encrypted-for-publishers-only",
     lambda r: edit(r, TOPIC, _set(("kmsMasterKeyId",), "alias/aws/sns")),
     [(TOPIC, f"{TOPIC}: alias/aws/sns is AWS managed: its policy admits no service")]),
    ("sns-topic-encrypted-for-publishers-only",
     lambda r: edit_policy(r, "backup-alerts-key",
                           _drop_condition("AllowS3DeleteEventsKey", "ArnEquals")),
     [(TOPIC, "backup-alerts-key: s3.amazonaws.com may use the key for another source")]),
    ("sns-topic-encrypted-for-publishers-only",
     lambda r: edit_policy(r, "backup-alerts-key", _drop_condition(
         "AllowCloudWatchAlarmsKey", "StringEquals", "kms:EncryptionContext:aws:sns:topicArn")),
     [(TOPIC, "backup-alerts-key: cloudwatch.amazonaws.com may use the key for another "
              "topic")]),
    ("sns-topic-encrypted-for-publishers-only",  # a widened principal
     lambda r: edit_policy(r, "backup-alerts-key", _change(
         "AllowCloudWatchAlarmsKey", lambda s: s["Principal"].update(
             Service=["cloudwatch.amazonaws.com", "events.amazonaws.com"]))),
     [(TOPIC, "backup-alerts-key: events.amazonaws.com may use the key but does not publish to "
              f"{TOPIC}")]),
    ("sns-topic-encrypted-for-publishers-only",
     lambda r: edit_policy(r, "backup-alerts-key", without_sid("AllowS3DeleteEventsKey")),
     [(TOPIC, f"backup-alerts-key: s3.amazonaws.com (publishes to {TOPIC}) cannot "
              "kms:GenerateDataKey")]),
    # Point 5: the organization guard.
    ("org-guard-rendered",
     lambda r: edit_policy(r, RCP, without_sid("DenyKeyPolicyChanges"), field="content"),
     [(RCP, "kms:PutKeyPolicy on arn:aws:kms:eu-central-1:111122223333:key/"
            "e2282bd4-1938-5543-b337-23227e99edb8 by an administrator is not denied by the "
            "guard")]),
    ("org-guard-rendered",
     lambda r: edit_policy(r, RCP, _drop_condition("DenyAccessFromOutsideOrganization",
                                                   "BoolIfExists"), field="content"),
     [(RCP, "s3:GetObject on arn:aws:s3:::biometrics-backups/x by an AWS service is denied by "
            "the guard")]),
    ("org-guard-rendered",
     lambda r: edit_policy(r, SCP, without_sid("DenyExemptRoleChanges"), field="content"),
     [(RCP, f"iam:UpdateAssumeRolePolicy on {REPLICATION} by an administrator is not denied "
            "by the guard")]),
    ("org-guard-rendered",
     lambda r: edit_policy(r, RCP, _change("DenyProtectedBucketChanges", lambda s: s.update(
         Action=["s3:PutBucketPolicy"])), field="content"),
     [(RCP, "s3:PutBucketObjectLockConfiguration on arn:aws:s3:::biometrics-backups by an "
            "administrator is not denied by the guard")]),
    ("iam-restore-role-read-only",
     lambda r: edit_policy(r, "backup-replica-restore-access", _restore_may_write),
     [("restore-server", "backup-replica-restore-access: AllowReadForRestore grants "
                         "s3:PutObject")]),
    ("iam-restore-role-read-only",
     lambda r: edit_policy(r, "backup-primary-restore-access", _restore_appends_elsewhere),
     [("restore-server", "backup-primary-restore-access: AllowRestoreServerRecordOutcomes "
                         "grants s3:PutObject")]),
    ("iam-restore-role-read-only",
     lambda r: edit_policy(r, "backup-primary-restore-access", _restore_rewrites_outcomes),
     [("restore-server", "backup-primary-restore-access: AllowRestoreServerRecordOutcomes "
                         "grants s3:PutObject, s3:DeleteObject")]),
]


@pytest.mark.parametrize(("control_id", "change", "expected"), FAILING_EDITS,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(FAILING_EDITS)])
def test_one_edit_fails_the_control(prod_declared, control_id, change, expected):
    assert failures(change(prod_declared), control_id) == expected


def test_resource_star_passes_only_for_actions_aws_cannot_scope(prod_declared):
    def grant(actions: list[str]):
        return lambda d: d["Statement"].append(
            {"Sid": "ListAliases", "Effect": "Allow", "Action": actions, "Resource": "*"})

    unscoped = result(edit_policy(prod_declared, "backup-primary-backup-access",
                                  grant(["kms:ListAliases", "kms:CreateKey"])),
                      "iam-no-wildcard-allow")
    assert unscoped.status == "pass"
    finding = next(f for f in unscoped.findings
                   if f.subject == "backup-primary-backup-access (identity)")
    assert finding.evidence == ("7 Allow statement(s) name actions and resources (Resource \"*\" "
                                "in ListAliases: actions AWS cannot scope to a resource)")
    assert failures(edit_policy(prod_declared, "backup-primary-backup-access",
                                grant(["kms:ListAliases", "kms:Decrypt"])),
                    "iam-no-wildcard-allow") == [
        ("backup-primary-backup-access (identity)", "ListAliases: wildcard resource '*'")]


def test_break_glass_exception_for_a_role_outside_the_stack_passes(prod_declared):
    glass = f"arn:aws:iam::{ACCOUNT}:role/break-glass"

    def except_glass(document: dict[str, Any]) -> None:
        deny = next(s for s in document["Statement"] if s["Sid"] == "DenyDeleteBackup")
        deny["Condition"] = {"ArnNotEquals": {"aws:PrincipalArn": glass}}

    outcome = result(edit_policy(prod_declared, "backup-primary-policy", except_glass),
                     "s3-version-delete-break-glass-only")
    assert outcome.status == "pass"
    assert outcome.findings[0].evidence.endswith(f"; excepted: {glass} (break-glass)")


def test_seed_bucket_policy_fails_the_condition_key_control(prod_declared, seed_policy):
    resources = edit(prod_declared, "backup-primary-policy",
                     _set(("policy",), json.dumps(seed_policy)))
    failing = failures(resources, "iam-condition-keys-valid")
    assert failing == [("backup-primary-policy (resource)",
                        "UNKNOWN_CONDITION_FOR_ACTION: Unknown condition s3:ObjectTag/Retention "
                        "for action s3:DeleteObject")]
    finding = next(f for f in result(resources, "iam-condition-keys-valid").findings
                   if f.subject == "backup-primary-policy (resource)")
    assert finding.sids == ("DenyDeleteBackup",)
    assert failures(resources, "iam-policy-lint-clean") == [
        ("backup-primary-policy (resource)",
         "MEDIUM UNKNOWN_CONDITION_FOR_ACTION: Unknown condition s3:ObjectTag/Retention for "
         "action s3:DeleteObject")]


# --- stack variants (each configuration runs once per session) -------------------------------


def test_object_lock_off_fails_by_name(stack_run):
    run = stack_run("prod", {"objectLock": {"enabled": False}})
    assert failures(declared_of(run), "s3-object-lock-default-retention") == [
        ("biometrics-backups (backup-primary-bucket)",
         "backup-primary-bucket: objectLockEnabled is not true"),
        ("biometrics-backups-replica (backup-replica-bucket)",
         "backup-replica-bucket: objectLockEnabled is not true")]


def test_replication_off_fails_by_name(stack_run):
    run = stack_run("prod", {"replica": {"enabled": False}})
    assert failures(declared_of(run), "s3-cross-region-replication") == [
        (PRIMARY, "biometrics-backups has no replication configuration")]


# --- containers (the runtime has not landed: synthetic recorded resources) -------------------


def container(name: str, envs: list[str], labels: dict[str, str],
              **inputs: Any) -> Declared:
    return Declared(
        urn=f"urn:pulumi:prod::biometrics-backup::biometrics:backup:BackupRuntime${CONTAINER}::"
            f"{name}",
        type=CONTAINER, name=name,
        inputs={"name": name, "image": "backup-agent:1", "envs": envs,
                "labels": [{"label": k, "value": v} for k, v in labels.items()], **inputs},
        parent="urn:pulumi:prod::biometrics-backup::biometrics:backup:BackupRuntime::runtime")


CLEAN_ENV = ["AWS_REGION=eu-central-1", "RESTIC_PASSWORD_FILE=/run/secrets/restic-password",
             "WALG_S3_PREFIX=s3://biometrics-backups/postgres/main"]


def test_container_controls_pass_on_clean_containers(prod_declared):
    resources = [*prod_declared,
                 container("backup-agent", CLEAN_ENV, {FULL_BACKUP_INTERVAL_LABEL: "7"}),
                 container("restore-agent", CLEAN_ENV, {HOST_LABEL: "restore"})]
    statuses = {c: result(resources, c).status for c in (
        "container-no-static-credentials", "restore-host-no-write-credentials",
        "rto-restorable-backup-not-cold")}
    assert statuses == dict.fromkeys(statuses, "pass")
    assert result(resources, "rto-restorable-backup-not-cold").findings[0].evidence == (
        "backup-agent: full base backups every 7 day(s); the newest base backup and its WAL "
        "leave STANDARD only after that")


def test_static_credentials_in_a_container_fail(prod_declared):
    resources = [*prod_declared, container("backup-agent", [
        *CLEAN_ENV, "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "RESTIC_PASSWORD=your-encryption-password"], {})]
    assert failures(resources, "container-no-static-credentials") == [(
        "backup-agent", "backup-agent: env AWS_SECRET_ACCESS_KEY (static AWS credentials); "
                        "env RESTIC_PASSWORD holds a plaintext secret (use a *_FILE mount)")]


def test_write_credentials_on_the_restore_host_fail(prod_declared):
    resources = [*prod_declared, container(
        "restore-agent", [*CLEAN_ENV, "AWS_PROFILE=backup-writer"], {HOST_LABEL: "restore"},
        volumes=[{"hostPath": "/root/.aws", "containerPath": "/root/.aws"}])]
    assert failures(resources, "restore-host-no-write-credentials") == [(
        "restore-agent", "restore-agent: env AWS_PROFILE selects other credentials than the "
                         "restore instance profile; volumes /root/.aws mounts AWS credentials")]


def test_base_backups_older_than_the_glacier_transition_fail_the_rto(prod_declared):
    resources = [*prod_declared,
                 container("backup-agent", CLEAN_ENV, {FULL_BACKUP_INTERVAL_LABEL: "45"})]
    assert failures(resources, "rto-restorable-backup-not-cold") == [(
        "backup-agent", "backup-agent: full base backups every 45 day(s), but "
                        "backup-primary-lifecycle rule 'tier-postgres' → GLACIER after 30 days "
                        "(biometrics-backups): Glacier restores take hours")]


# --- unknown values (a real first preview) ---------------------------------------------------

# What Pulumi cannot know before the resources exist: ids and ARNs, and everything built from
# them (policy documents, the `bucket` of configuration resources, the key of the encryption).
UNKNOWN_INPUTS = ("policy", "assumeRolePolicy", "bucket", "targetBucket", "role", "rules",
                  "topics", "kmsMasterKeyId", "content")


def unknown_outputs(resources: list[Declared]) -> list[Declared]:
    result = []
    for resource in resources:
        inputs = dict(resource.inputs)
        for key in UNKNOWN_INPUTS:
            if key in inputs and not (resource.type == "aws:s3/bucket:Bucket"):
                if key == "rules" and "ServerSideEncryption" not in resource.type and \
                        "Replication" not in resource.type:
                    continue
                inputs[key] = Unknown(key)
        result.append(Declared(resource.urn, resource.type, resource.name, inputs,
                               resource.parent))
    return result


def test_unknown_values_are_reported_unknown_never_pass_or_fail(prod_declared):
    inventory = build_inventory(unknown_outputs(prod_declared))
    statuses = {c.id: run_control(c, inventory).status for c in REGISTRY}
    assert statuses == {
        **PROD_STATUSES,
        # Read from values known at preview (the naming convention attaches them).
        "s3-public-access-blocked": "pass", "s3-acls-disabled": "pass",
        "s3-versioning": "pass", "s3-object-lock-default-retention": "pass",
        "s3-lifecycle-versioned": "pass",
        # Need a policy document, an ARN or a bucket name that is not known yet.
        "s3-ssl-only": "unknown", "s3-tls-1-2": "unknown",
        "s3-kms-encryption-with-rotation": "unknown", "s3-log-bucket-encrypted": "unknown",
        "s3-cross-region-replication": "unknown", "s3-delete-event-notifications": "unknown",
        "s3-access-logging": "unknown", "s3-no-policy-or-acl-changes-granted": "unknown",
        "s3-version-delete-break-glass-only": "unknown", "iam-condition-keys-valid": "unknown",
        "iam-policy-lint-clean": "unknown", "iam-no-wildcard-allow": "unknown",
        "iam-restore-role-read-only": "unknown",
        "s3-replica-written-by-replication-only": "unknown",
        "s3-writes-use-the-bucket-key": "unknown", "s3-retention-capped": "unknown",
        "sns-topic-encrypted-for-publishers-only": "unknown", "org-guard-rendered": "unknown",
    }
    ssl = run_control(controls_by_id()["s3-ssl-only"], inventory)
    assert [f.evidence for f in ssl.findings] == [
        f"backup-{name}-policy.policy is unknown during preview"
        for name in ("primary", "primary-access-logs", "replica", "replica-access-logs")]


# --- the CI deploy role, the guard's exemptions, EventBridge (stack variants) ----------------

GITHUB = {"repository": "octo-org/octo-repo", "environment": "prod"}
GLASS = f"arn:aws:iam::{ACCOUNT}:role/break-glass"
DEPLOY = f"arn:aws:iam::{ACCOUNT}:role/biometrics-backup-prod-github-deploy"


@pytest.fixture(scope="module")
def with_github(stack_run):
    return declared_of(stack_run("prod", {"github": GITHUB, "roles": {
        "backup": "backup-server", "restore": "restore-server", "walArchiver": "wal-archiver",
        "replication": "biometrics-backups-replication", "breakGlassArn": GLASS}}))


def test_deploy_role_key_management_is_tag_scoped(with_github):
    outcome = result(with_github, "iam-key-management-tag-scoped")
    assert [(f.subject, f.status, f.evidence, f.sids) for f in outcome.findings] == [(
        "biometrics-backup-prod-github-deploy", "pass",
        "biometrics-backup-prod-github-deploy: creates keys only with "
        "{'biometrics-backup-stack': 'prod'} (and no other tag key), manages only keys carrying "
        "it", ("CreateKeys", "ManageKeys"))]
    unscoped = edit_policy(with_github, "github-deploy-access",
                           _drop_condition("ManageKeys", "StringEquals"))
    assert failures(unscoped, "iam-key-management-tag-scoped") == [(
        "biometrics-backup-prod-github-deploy",
        "biometrics-backup-prod-github-deploy changes the policy of a key without it: allowed")]
    any_tag = edit_policy(with_github, "github-deploy-access",
                          _drop_condition("CreateKeys", "ForAllValues:StringEquals"))
    assert failures(any_tag, "iam-key-management-tag-scoped") == [(
        "biometrics-backup-prod-github-deploy", "biometrics-backup-prod-github-deploy creates a "
        "key with another tag key too: allowed")]


def test_guard_exempts_exactly_the_deploy_role_and_break_glass(with_github):
    outcome = result(with_github, "org-guard-rendered")
    assert outcome.status == "manual"
    assert outcome.findings[0].evidence.startswith(
        "rendered, apply in the management account: organization-guard-resource-control-policy,"
        " organization-guard-service-control-policy deny ")
    assert f"by anyone but {DEPLOY}, {GLASS}" in outcome.findings[0].evidence
    assert outcome.findings[0].evidence.endswith(
        "and the OIDC provider); AWS services and the organization's principals pass")
    widened = edit_policy(with_github, RCP, _change(
        "DenyProtectedBucketChanges", lambda s: s["Condition"]["ArnNotLike"].update(
            {"aws:PrincipalArn": [DEPLOY, GLASS, f"arn:aws:iam::{ACCOUNT}:role/*"]})),
        field="content")
    assert failures(widened, "org-guard-rendered") == [(
        RCP, "s3:PutBucketPolicy on arn:aws:s3:::biometrics-backups by an administrator is not "
             "denied by the guard")]
    provider = edit_policy(with_github, SCP, without_sid("DenyOidcProviderChanges"),
                           field="content")
    assert failures(provider, "org-guard-rendered") == [(
        RCP, "iam:UpdateOpenIDConnectProviderThumbprint on arn:aws:iam::111122223333:"
             "oidc-provider/token.actions.githubusercontent.com by an administrator is not "
             "denied by the guard")]


def test_an_eventbridge_rule_publishing_to_the_topic_must_be_admitted_by_its_key(prod_declared):
    topic_arn = f"arn:aws:sns:eu-central-1:{ACCOUNT}:backup-alerts"
    rule = sibling(prod_declared, "backup-alerts-topic",
                   "aws:cloudwatch/eventTarget:EventTarget", "backup-alerts-rule-target",
                   {"rule": "any-rule", "arn": topic_arn})
    assert failures([*prod_declared, rule], "sns-topic-encrypted-for-publishers-only") == [(
        TOPIC, "backup-alerts-key: events.amazonaws.com (publishes to backup-alerts-topic) "
               "cannot kms:GenerateDataKey")]
