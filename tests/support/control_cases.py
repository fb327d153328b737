"""The compliance tests' shared cases: prod's expected statuses and one failing edit per
control (tests/compliance/test_controls.py and test_policy_pack.py both run them), and prod's
resources with the inputs a first preview cannot know yet."""

from __future__ import annotations

from typing import Any

from compliance.inventory import Declared, Unknown
from tests.support.resources import ACCOUNT, edit, edit_policy, without_sid

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
    # Prod places nothing on ECS: the ECS placement's controls have no subject.
    "ecs-cluster-container-insights": "n/a",
    "ecs-task-read-only-root": "n/a",
    "ecs-task-not-privileged": "n/a",
    "ecs-task-non-root-user": "n/a",
    "ecs-task-no-added-capabilities": "n/a",
    "ecs-task-logs-to-cloudwatch": "n/a",
    "ecs-task-execution-role-separate": "n/a",
    "ecs-task-efs-encrypted-in-transit": "n/a",
    "ecs-task-no-plaintext-secret": "n/a",
    "ecs-role-trust-scoped": "n/a",
    "ecs-execution-role-least-privilege": "n/a",
    "ecs-scheduler-role-least-privilege": "n/a",
    "scheduler-failed-deliveries-dead-lettered": "n/a",
    "scheduler-runs-in-job-task-group": "n/a",
    "logs-log-group-kms-encrypted": "n/a",
    "logs-log-group-retained": "n/a",
    "sqs-queue-kms-encrypted": "n/a",
    "secrets-kms-encrypted": "n/a",
    "ecr-tags-immutable": "n/a",
    "ecr-scan-on-push": "n/a",
    "ecr-kms-encrypted": "n/a",
    "ecr-customer-managed-key": "n/a",
}


# --- one failing edit per control ------------------------------------------------------------


def set_input(path: tuple[Any, ...], value: Any):
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


def change_statement(sid: str, change):
    return lambda document: change(_statement(document, sid))


def drop_condition(sid: str, operator: str, key: str | None = None):
    def change(statement: dict[str, Any]) -> None:
        if key is None:
            del statement["Condition"][operator]
        else:
            del statement["Condition"][operator][key]
            if not statement["Condition"][operator]:
                del statement["Condition"][operator]
    return change_statement(sid, change)


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
                    set_input(("blockPublicPolicy",), False)),
     [(PRIMARY_LOGS, "backup-primary-access-logs-public-access-block: blockPublicPolicy not "
                     "true")]),
    ("s3-acls-disabled", lambda r: edit(r, "backup-replica-ownership",
                                        set_input(("rule", "objectOwnership"), "ObjectWriter")),
     [(REPLICA, "backup-replica-ownership: objectOwnership is 'ObjectWriter'")]),
    ("s3-versioning", lambda r: edit(r, "backup-primary-versioning",
                                     set_input(("versioningConfiguration", "status"), "Suspended")),
     [(PRIMARY, "backup-primary-versioning: status 'Suspended'")]),
    ("s3-kms-encryption-with-rotation",
     lambda r: edit(r, "backup-primary-encryption",
                    set_input(("rules", 0, "applyServerSideEncryptionByDefault"),
                         {"sseAlgorithm": "AES256"})),
     [(PRIMARY, "backup-primary-encryption: sseAlgorithm 'AES256', no customer managed key")]),
    ("s3-kms-encryption-with-rotation",
     lambda r: edit(r, "backup-replica-key", set_input(("enableKeyRotation",), False)),
     [(REPLICA, "backup-replica-key: enableKeyRotation is not true")]),
    ("s3-log-bucket-encrypted",
     lambda r: edit(r, "backup-replica-access-logs-encryption", set_input(("rules",), [])),
     [(REPLICA_LOGS, "backup-replica-access-logs-encryption: sseAlgorithm None")]),
    ("s3-lifecycle-versioned",
     lambda r: edit(r, "backup-primary-lifecycle", lambda i: i.update(rules=[
         rule for rule in i["rules"] if rule["id"] != "expire-noncurrent-versions"])),
     [(PRIMARY, "backup-primary-lifecycle: no enabled rule with NoncurrentVersionExpiration")]),
    ("s3-delete-event-notifications",
     lambda r: edit(r, "backup-alerts-delete-events",
                    set_input(("topics", 0, "events"), ["s3:ObjectCreated:*"])),
     [(PRIMARY, "biometrics-backups: no notification for s3:ObjectRemoved:* events")]),
    ("s3-access-logging",
     lambda r: edit(r, "backup-primary-logging",
                    set_input(("targetBucket",), "biometrics-backups-replica-access-logs")),
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
     lambda r: edit_policy(r, "backup-replica-policy", change_statement(
         "DenyReplicaWritesExceptReplication", lambda s: s["Condition"]["ArnNotEquals"].update(
             {"aws:PrincipalArn": [REPLICATION, f"arn:aws:iam::{ACCOUNT}:role/*"]}))),
     [(REPLICA, f"backup-replica-policy: s3:PutObject by {ADMIN} is not explicitly denied "
                "(allow)")]),
    ("s3-replica-written-by-replication-only",  # Replicate* left out of the Deny
     lambda r: edit_policy(r, "backup-replica-policy", change_statement(
         "DenyReplicaWritesExceptReplication",
         lambda s: s["NotAction"].append("s3:Replicate*"))),
     [(REPLICA, f"backup-replica-policy: s3:ReplicateObject by {ADMIN} is not explicitly "
                "denied (allow)")]),
    # Point 2: the bucket's own key or nothing.
    ("s3-writes-use-the-bucket-key",  # without Null false, header-less PUTs are denied too
     lambda r: edit_policy(r, "backup-primary-policy",
                           drop_condition("DenyNonKmsEncryption", "Null")),
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
                           drop_condition("AllowBackupServerKeepRetention", "StringEquals")),
     [(PRIMARY, "backup-primary-policy: backup-server may set a GOVERNANCE retention, which "
                "s3:BypassGovernanceRetention could shorten")]),
    ("iam-no-wildcard-allow",
     lambda r: edit_policy(r, "backup-primary-restore-access",
                           lambda d: d["Statement"][0].update(Action=["s3:Get*"])),
     [("backup-primary-restore-access (identity)",
       "AllowReadForRestore: wildcard action(s) s3:Get*")]),
    ("iam-no-wildcard-allow",
     lambda r: edit_policy(r, "backup-primary-backup-access",
                           change_statement("AllowBackupServerKey",
                                            lambda s: s.update(Resource="*"))),
     [("backup-primary-backup-access (identity)", "AllowBackupServerKey: wildcard resource '*'")]),
    # Point 4: the topic's key admits exactly its publishers.
    ("sns-topic-encrypted-for-publishers-only",
     lambda r: edit(r, TOPIC, lambda inputs: inputs.pop("kmsMasterKeyId")),
     [(TOPIC, f"{TOPIC}: no customer managed key (kmsMasterKeyId None)")]),
    ("sns-topic-encrypted-for-publishers-only",
     lambda r: edit(r, TOPIC, set_input(("kmsMasterKeyId",), "alias/aws/sns")),
     [(TOPIC, f"{TOPIC}: alias/aws/sns is AWS managed: its policy admits no service")]),
    ("sns-topic-encrypted-for-publishers-only",
     lambda r: edit_policy(r, "backup-alerts-key",
                           drop_condition("AllowS3DeleteEventsKey", "ArnEquals")),
     [(TOPIC, "backup-alerts-key: s3.amazonaws.com may use the key for another source")]),
    ("sns-topic-encrypted-for-publishers-only",
     lambda r: edit_policy(r, "backup-alerts-key", drop_condition(
         "AllowCloudWatchAlarmsKey", "StringEquals", "kms:EncryptionContext:aws:sns:topicArn")),
     [(TOPIC, "backup-alerts-key: cloudwatch.amazonaws.com may use the key for another "
              "topic")]),
    ("sns-topic-encrypted-for-publishers-only",  # a widened principal
     lambda r: edit_policy(r, "backup-alerts-key", change_statement(
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
     lambda r: edit_policy(r, RCP, drop_condition("DenyAccessFromOutsideOrganization",
                                                   "BoolIfExists"), field="content"),
     [(RCP, "s3:GetObject on arn:aws:s3:::biometrics-backups/x by an AWS service is denied by "
            "the guard")]),
    ("org-guard-rendered",
     lambda r: edit_policy(r, SCP, without_sid("DenyExemptRoleChanges"), field="content"),
     [(RCP, f"iam:UpdateAssumeRolePolicy on {REPLICATION} by an administrator is not denied "
            "by the guard")]),
    ("org-guard-rendered",
     lambda r: edit_policy(r, RCP, change_statement(
         "DenyProtectedBucketChanges", lambda s: s.update(Action=["s3:PutBucketPolicy"])),
         field="content"),
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


# --- unknown values (a real first preview) ---------------------------------------------------

# What Pulumi cannot know before the resources exist: ids and ARNs, and everything built from
# them (policy documents, the `bucket` of configuration resources, the key of the encryption).
UNKNOWN_INPUTS = ("policy", "assumeRolePolicy", "bucket", "targetBucket", "role", "rules",
                  "topics", "kmsMasterKeyId", "content",
                  # the ECS placement's (no prod resource has them)
                  "containerDefinitions", "executionRoleArn", "taskRoleArn", "kmsKeyId",
                  "target", "encryptionConfigurations")


def unknown_outputs(resources: list[Declared]) -> list[Declared]:
    """A real first preview: ARNs, ids and what is built from them unknown; the engine still
    names the resources each input depends on (property dependencies)."""
    bucket_urns = {r.inputs.get("bucket"): r.urn for r in resources
                   if r.type == "aws:s3/bucket:Bucket"}
    result = []
    for resource in resources:
        inputs = dict(resource.inputs)
        dependencies = dict(resource.property_dependencies)
        for key in UNKNOWN_INPUTS:
            if key in inputs and not (resource.type == "aws:s3/bucket:Bucket"):
                if key == "rules" and "ServerSideEncryption" not in resource.type and \
                        "Replication" not in resource.type:
                    continue
                if key == "bucket" and inputs[key] in bucket_urns:
                    dependencies[key] = (bucket_urns[inputs[key]],)
                inputs[key] = Unknown(key)
        result.append(Declared(resource.urn, resource.type, resource.name, inputs,
                               resource.parent, dependencies))
    return result
