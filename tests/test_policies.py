"""Every generated policy of the prod stack, statement by statement, exactly as Pulumi sends it.

Removing, adding or loosening any statement, action, resource, principal or condition fails here.
"""

from __future__ import annotations

import uuid

import pytest

from components import policies
from components.policies import BucketRef
from review.render import render_documents

ACCOUNT = "111122223333"  # the offline preview's placeholder account
PRIMARY = "arn:aws:s3:::biometrics-backups"
REPLICA = "arn:aws:s3:::biometrics-backups-replica"
BACKUP_ROLE = f"arn:aws:iam::{ACCOUNT}:role/backup-server"
RESTORE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/restore-server"
WAL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/wal-archiver"
REPLICATION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/biometrics-backups-replication"
BACKUP_OBJECTS = [f"{PRIMARY}/postgres/*", f"{PRIMARY}/restic/*"]
PREFIX_CONDITION = {"StringLike": {"s3:prefix": ["postgres/*", "restic/*"]}}
# The restore role also reads the outcome record (backup-agent report).
RESTORE_PREFIX_CONDITION = {"StringLike": {"s3:prefix": ["postgres/*", "restic/*", "evidence/*"]}}


def via_s3(region: str, bucket_arn: str) -> dict:
    return {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com",
                             "kms:EncryptionContext:aws:s3:arn": bucket_arn}}


PRIMARY_KMS = via_s3("eu-central-1", PRIMARY)
REPLICA_KMS = via_s3("eu-west-1", REPLICA)


def transport_denies(bucket_arn: str) -> list[dict]:
    return [
        {"Sid": "EnforceSSL", "Effect": "Deny", "Principal": "*", "Action": ["s3:*"],
         "Resource": [bucket_arn, f"{bucket_arn}/*"],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "DenyOutdatedTLS", "Effect": "Deny", "Principal": "*", "Action": ["s3:*"],
         "Resource": [bucket_arn, f"{bucket_arn}/*"],
         "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}}},
    ]


def protection_denies(bucket_arn: str, max_days: int = 365) -> list[dict]:
    return [
        {"Sid": "DenyDeleteBackup", "Effect": "Deny", "Principal": "*",
         "Action": ["s3:DeleteObjectVersion"], "Resource": f"{bucket_arn}/*"},
        {"Sid": "DenyGovernanceBypass", "Effect": "Deny", "Principal": "*",
         "Action": ["s3:BypassGovernanceRetention"], "Resource": f"{bucket_arn}/*"},
        {"Sid": "DenyLegalHoldRemoval", "Effect": "Deny", "Principal": "*",
         "Action": ["s3:PutObjectLegalHold"], "Resource": f"{bucket_arn}/*",
         "Condition": {"StringEquals": {"s3:object-lock-legal-hold": "OFF"}}},
        {"Sid": "DenyRetentionTagChange", "Effect": "Deny", "Principal": "*",
         "Action": ["s3:PutObjectTagging", "s3:PutObjectVersionTagging",
                    "s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging"],
         "Resource": f"{bucket_arn}/*",
         "Condition": {"StringEquals": {"s3:ExistingObjectTag/Retention": "active"}}},
        {"Sid": "DenyRetentionBeyondMaximum", "Effect": "Deny", "Principal": "*",
         "Action": ["s3:PutObject", "s3:PutObjectRetention"], "Resource": f"{bucket_arn}/*",
         "Condition": {"NumericGreaterThan": {"s3:object-lock-remaining-retention-days":
                                              max_days}}},
    ]


def encryption_denies(bucket_arn: str, key_arn: str) -> list[dict]:
    """A named algorithm other than aws:kms, or a named key other than the bucket's, is denied
    only when the header is present (Null false): a PUT without headers stays allowed."""
    return [
        {"Sid": "DenyNonKmsEncryption", "Effect": "Deny", "Principal": "*",
         "Action": ["s3:PutObject"], "Resource": f"{bucket_arn}/*",
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                       "Null": {"s3:x-amz-server-side-encryption": "false"}}},
        {"Sid": "DenyOtherKmsKey", "Effect": "Deny", "Principal": "*",
         "Action": ["s3:PutObject"], "Resource": f"{bucket_arn}/*",
         "Condition": {"ArnNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id":
                                        key_arn},
                       "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"}}},
        {"Sid": "DenyCustomerProvidedKeys", "Effect": "Deny", "Principal": "*",
         "Action": ["s3:PutObject"], "Resource": f"{bucket_arn}/*",
         "Condition": {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm":
                                "false"}}},
    ]


def document(statements: list[dict]) -> dict:
    return {"Version": "2012-10-17", "Statement": statements}


@pytest.fixture(scope="module")
def keys(prod) -> dict[str, str]:
    return {purpose: bucket["keyArn"] for purpose, bucket in prod.outputs["buckets"].items()}


KEEP_RETENTION = [
    {"Sid": "AllowBackupServerKeep", "Effect": "Allow", "Principal": {"AWS": BACKUP_ROLE},
     "Action": ["s3:GetObjectTagging", "s3:PutObjectTagging", "s3:GetObjectRetention"],
     "Resource": f"{PRIMARY}/postgres/*"},
    {"Sid": "AllowBackupServerKeepRetention", "Effect": "Allow", "Principal": {"AWS": BACKUP_ROLE},
     "Action": ["s3:PutObjectRetention"], "Resource": f"{PRIMARY}/postgres/*",
     "Condition": {"StringEquals": {"s3:object-lock-mode": "COMPLIANCE"}}},
]


def test_primary_bucket_policy(prod_documents, keys):
    assert prod_documents["backup-primary/policy.json"] == document([
        *transport_denies(PRIMARY),
        {"Sid": "AllowBackupServerWrite", "Effect": "Allow", "Principal": {"AWS": BACKUP_ROLE},
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                    "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
         "Resource": BACKUP_OBJECTS},
        {"Sid": "AllowBackupServerList", "Effect": "Allow", "Principal": {"AWS": BACKUP_ROLE},
         "Action": ["s3:ListBucket"], "Resource": PRIMARY, "Condition": PREFIX_CONDITION},
        *KEEP_RETENTION,
        # The outcome record: create objects under evidence/, nothing else there.
        {"Sid": "AllowBackupServerRecordOutcomes", "Effect": "Allow",
         "Principal": {"AWS": BACKUP_ROLE}, "Action": ["s3:PutObject"],
         "Resource": f"{PRIMARY}/evidence/*"},
        {"Sid": "AllowWalArchiverWrite", "Effect": "Allow", "Principal": {"AWS": WAL_ROLE},
         "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
         "Resource": f"{PRIMARY}/postgres/*/wal_005/*"},
        {"Sid": "AllowReadForRestore", "Effect": "Allow", "Principal": {"AWS": RESTORE_ROLE},
         "Action": ["s3:GetObject"], "Resource": [*BACKUP_OBJECTS, f"{PRIMARY}/evidence/*"]},
        {"Sid": "AllowListForRestore", "Effect": "Allow", "Principal": {"AWS": RESTORE_ROLE},
         "Action": ["s3:ListBucket", "s3:ListBucketVersions"], "Resource": PRIMARY,
         "Condition": RESTORE_PREFIX_CONDITION},
        {"Sid": "AllowRestoreServerRecordOutcomes", "Effect": "Allow",
         "Principal": {"AWS": RESTORE_ROLE}, "Action": ["s3:PutObject"],
         "Resource": f"{PRIMARY}/evidence/*"},
        {"Sid": "AllowReplicationSourceBucket", "Effect": "Allow",
         "Principal": {"AWS": REPLICATION_ROLE},
         "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": PRIMARY},
        {"Sid": "AllowReplicationSourceObjects", "Effect": "Allow",
         "Principal": {"AWS": REPLICATION_ROLE},
         "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl",
                    "s3:GetObjectVersionTagging", "s3:GetObjectRetention",
                    "s3:GetObjectLegalHold"],
         "Resource": f"{PRIMARY}/*"},
        *protection_denies(PRIMARY),
        *encryption_denies(PRIMARY, keys["primary"]),
    ])


def test_replica_bucket_policy_allows_only_restore_reads_and_replication(prod_documents, keys):
    assert prod_documents["backup-replica/policy.json"] == document([
        *transport_denies(REPLICA),
        {"Sid": "AllowReadForRestore", "Effect": "Allow", "Principal": {"AWS": RESTORE_ROLE},
         "Action": ["s3:GetObject"],
         "Resource": [f"{REPLICA}/postgres/*", f"{REPLICA}/restic/*", f"{REPLICA}/evidence/*"]},
        {"Sid": "AllowListForRestore", "Effect": "Allow", "Principal": {"AWS": RESTORE_ROLE},
         "Action": ["s3:ListBucket", "s3:ListBucketVersions"], "Resource": REPLICA,
         "Condition": RESTORE_PREFIX_CONDITION},
        {"Sid": "AllowReplicationDestination", "Effect": "Allow",
         "Principal": {"AWS": REPLICATION_ROLE},
         "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
         "Resource": f"{REPLICA}/*"},
        *protection_denies(REPLICA),
        *encryption_denies(REPLICA, keys["replica"]),
        # Every object action but reads, to everyone but the replication role: Replicate* too.
        {"Sid": "DenyReplicaWritesExceptReplication", "Effect": "Deny", "Principal": "*",
         "NotAction": ["s3:Get*", "s3:List*"], "Resource": f"{REPLICA}/*",
         "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [REPLICATION_ROLE]}}},
    ])


KEY_ADMIN = {
    "Sid": "EnableKeyAdministration", "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": ["kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey",
               "kms:EnableKeyRotation", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus",
               "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:TagResource",
               "kms:UntagResource", "kms:UpdateAlias", "kms:UpdateKeyDescription"],
    "Resource": "*",
}


def test_primary_key_policy(prod_documents):
    assert prod_documents["backup-primary/key-policy.json"] == document([
        KEY_ADMIN,
        {"Sid": "AllowBackupServerKey", "Effect": "Allow", "Principal": {"AWS": BACKUP_ROLE},
         "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
         "Condition": PRIMARY_KMS},
        {"Sid": "AllowWalArchiverKey", "Effect": "Allow", "Principal": {"AWS": WAL_ROLE},
         "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
         "Condition": PRIMARY_KMS},
        {"Sid": "AllowDecryptForRestore", "Effect": "Allow", "Principal": {"AWS": RESTORE_ROLE},
         "Action": ["kms:Decrypt"], "Resource": "*", "Condition": PRIMARY_KMS},
        {"Sid": "AllowRestoreServerOutcomeKey", "Effect": "Allow",
         "Principal": {"AWS": RESTORE_ROLE}, "Action": ["kms:GenerateDataKey"], "Resource": "*",
         "Condition": PRIMARY_KMS},
        {"Sid": "AllowReplicationDecrypt", "Effect": "Allow",
         "Principal": {"AWS": REPLICATION_ROLE},
         "Action": ["kms:Decrypt"], "Resource": "*", "Condition": PRIMARY_KMS},
    ])


def test_replica_key_policy(prod_documents):
    assert prod_documents["backup-replica/key-policy.json"] == document([
        KEY_ADMIN,
        {"Sid": "AllowDecryptForRestore", "Effect": "Allow", "Principal": {"AWS": RESTORE_ROLE},
         "Action": ["kms:Decrypt"], "Resource": "*", "Condition": REPLICA_KMS},
        {"Sid": "AllowReplicationEncrypt", "Effect": "Allow",
         "Principal": {"AWS": REPLICATION_ROLE},
         "Action": ["kms:Encrypt"], "Resource": "*", "Condition": REPLICA_KMS},
    ])


def test_key_administrators_cannot_read_disable_or_delete_the_key():
    for forbidden in ("kms:Decrypt", "kms:DisableKey", "kms:ScheduleKeyDeletion",
                      "kms:DisableKeyRotation"):
        assert forbidden not in policies.KEY_ADMIN_ACTIONS


def test_role_policies(prod_documents, keys):
    assert prod_documents["backup-primary/backup-access.json"] == document([
        {"Sid": "AllowBackupServerWrite", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                    "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
         "Resource": BACKUP_OBJECTS},
        {"Sid": "AllowBackupServerList", "Effect": "Allow", "Action": ["s3:ListBucket"],
         "Resource": PRIMARY, "Condition": PREFIX_CONDITION},
        *({k: v for k, v in item.items() if k != "Principal"} for item in KEEP_RETENTION),
        {"Sid": "AllowBackupServerRecordOutcomes", "Effect": "Allow",
         "Action": ["s3:PutObject"], "Resource": f"{PRIMARY}/evidence/*"},
        {"Sid": "AllowBackupServerKey", "Effect": "Allow",
         "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": keys["primary"],
         "Condition": PRIMARY_KMS},
    ])
    assert prod_documents["backup-primary/wal-archiver-access.json"] == document([
        {"Sid": "AllowWalArchiverWrite", "Effect": "Allow",
         "Action": ["s3:PutObject", "s3:AbortMultipartUpload"],
         "Resource": f"{PRIMARY}/postgres/*/wal_005/*"},
        {"Sid": "AllowWalArchiverKey", "Effect": "Allow",
         "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": keys["primary"],
         "Condition": PRIMARY_KMS},
    ])
    for component, bucket, key, condition in (
        ("backup-primary", PRIMARY, keys["primary"], PRIMARY_KMS),
        ("backup-replica", REPLICA, keys["replica"], REPLICA_KMS),
    ):
        # Drills append their outcomes to the primary's record only (the replica takes writes
        # from replication alone).
        # The role's policy lists its S3 statements, then its KMS statements.
        appends_s3 = [
            {"Sid": "AllowRestoreServerRecordOutcomes", "Effect": "Allow",
             "Action": ["s3:PutObject"], "Resource": f"{PRIMARY}/evidence/*"},
        ] if bucket == PRIMARY else []
        appends_kms = [
            {"Sid": "AllowRestoreServerOutcomeKey", "Effect": "Allow",
             "Action": ["kms:GenerateDataKey"], "Resource": key, "Condition": condition},
        ] if bucket == PRIMARY else []
        assert prod_documents[f"{component}/restore-access.json"] == document([
            {"Sid": "AllowReadForRestore", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": [f"{bucket}/postgres/*", f"{bucket}/restic/*", f"{bucket}/evidence/*"]},
            {"Sid": "AllowListForRestore", "Effect": "Allow",
             "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
             "Resource": bucket, "Condition": RESTORE_PREFIX_CONDITION},
            *appends_s3,
            {"Sid": "AllowDecryptForRestore", "Effect": "Allow", "Action": ["kms:Decrypt"],
             "Resource": key, "Condition": condition},
            *appends_kms,
        ])
    assert prod_documents["backup-primary/replication-access.json"] == document([
        {"Sid": "AllowReplicationSourceBucket", "Effect": "Allow",
         "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": PRIMARY},
        {"Sid": "AllowReplicationSourceObjects", "Effect": "Allow",
         "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl",
                    "s3:GetObjectVersionTagging", "s3:GetObjectRetention",
                    "s3:GetObjectLegalHold"],
         "Resource": f"{PRIMARY}/*"},
        {"Sid": "AllowReplicationDecrypt", "Effect": "Allow", "Action": ["kms:Decrypt"],
         "Resource": keys["primary"], "Condition": PRIMARY_KMS},
    ])
    assert prod_documents["backup-replica/replication-access.json"] == document([
        {"Sid": "AllowReplicationDestination", "Effect": "Allow",
         "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
         "Resource": f"{REPLICA}/*"},
        {"Sid": "AllowReplicationEncrypt", "Effect": "Allow", "Action": ["kms:Encrypt"],
         "Resource": keys["replica"], "Condition": REPLICA_KMS},
    ])


def test_role_policies_attach_to_the_declared_roles(prod):
    attached = {r.name: r.inputs["role"] for r in prod.of_type("aws:iam/rolePolicy:RolePolicy")}
    assert attached == {
        "backup-primary-backup-access": "backup-server",
        "backup-primary-wal-archiver-access": "wal-archiver",
        "backup-primary-restore-access": "restore-server",
        "backup-primary-replication-access": "biometrics-backups-replication",
        "backup-replica-restore-access": "restore-server",
        "backup-replica-replication-access": "biometrics-backups-replication",
    }


EC2_TRUST = document([{"Sid": "AllowEc2InstanceProfile", "Effect": "Allow",
                       "Principal": {"Service": "ec2.amazonaws.com"},
                       "Action": ["sts:AssumeRole"]}])


def test_trust_policies(prod_documents):
    for role in ("backup-server", "restore-server", "wal-archiver"):
        assert prod_documents[f"backup-roles/{role}-trust-policy.json"] == EC2_TRUST
    assert prod_documents[
        "backup-roles/biometrics-backups-replication-trust-policy.json"
    ] == document([
        {"Sid": "AllowS3Replication", "Effect": "Allow",
         "Principal": {"Service": "s3.amazonaws.com"}, "Action": ["sts:AssumeRole"],
         "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                       "ArnLike": {"aws:SourceArn": PRIMARY}}},
    ])


def test_instance_profiles_carry_the_host_roles(prod):
    profiles = {r.inputs["name"]: r.inputs["role"]
                for r in prod.of_type("aws:iam/instanceProfile:InstanceProfile")}
    assert profiles == {"backup-server": "backup-server", "restore-server": "restore-server",
                        "wal-archiver": "wal-archiver"}


@pytest.mark.parametrize(("component", "bucket"), [("backup-primary", "biometrics-backups"),
                                                   ("backup-replica",
                                                    "biometrics-backups-replica")])
def test_access_log_bucket_policies(prod_documents, component, bucket):
    log_arn = f"arn:aws:s3:::{bucket}-access-logs"
    assert prod_documents[f"{component}/access-logs-policy.json"] == document([
        *transport_denies(log_arn),
        {"Sid": "AllowS3ServerAccessLogs", "Effect": "Allow",
         "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": ["s3:PutObject"],
         "Resource": f"{log_arn}/s3-access/*",
         "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"},
                       "StringEquals": {"aws:SourceAccount": ACCOUNT}}},
    ])


def test_alert_topic_policy(prod_documents):
    topic = f"arn:aws:sns:eu-central-1:{ACCOUNT}:backup-alerts"
    assert prod_documents["backup-alerts/topic-policy.json"] == document([
        {"Sid": "AllowS3DeleteEvents", "Effect": "Allow",
         "Principal": {"Service": "s3.amazonaws.com"}, "Action": ["sns:Publish"],
         "Resource": topic,
         "Condition": {"ArnEquals": {"aws:SourceArn": PRIMARY},
                       "StringEquals": {"aws:SourceAccount": ACCOUNT}}},
        {"Sid": "AllowCloudWatchAlarms", "Effect": "Allow",
         "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": ["sns:Publish"],
         "Resource": topic,
         "Condition": {"ArnLike": {
             "aws:SourceArn": f"arn:aws:cloudwatch:eu-central-1:{ACCOUNT}:alarm:*"},
                       "StringEquals": {"aws:SourceAccount": ACCOUNT}}},
    ])


def test_break_glass_role_is_the_only_exception_to_the_protection_denies():
    glass = "arn:aws:iam::123456789012:role/break-glass"
    bucket = BucketRef("b", "eu-central-1", "key")
    statements = {s["Sid"]: s for s in policies.protection_statements(bucket, glass, 90)}
    exception = {"ArnNotEquals": {"aws:PrincipalArn": glass}}
    assert statements["DenyDeleteBackup"]["Condition"] == exception
    assert statements["DenyGovernanceBypass"]["Condition"] == exception
    assert statements["DenyLegalHoldRemoval"]["Condition"] == {
        "StringEquals": {"s3:object-lock-legal-hold": "OFF"}, **exception}
    assert statements["DenyRetentionTagChange"]["Condition"] == {
        "StringEquals": {"s3:ExistingObjectTag/Retention": "active"}, **exception}
    # The retention cap holds for break-glass too: a COMPLIANCE retention is irrevocable.
    assert statements["DenyRetentionBeyondMaximum"]["Condition"] == {
        "NumericGreaterThan": {"s3:object-lock-remaining-retention-days": 90}}
    replica = policies.replica_write_statements(bucket, REPLICATION_ROLE, glass)
    assert replica == [{
        "Sid": "DenyReplicaWritesExceptReplication", "Effect": "Deny", "Principal": "*",
        "NotAction": ["s3:Get*", "s3:List*"], "Resource": "arn:aws:s3:::b/*",
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [REPLICATION_ROLE, glass]}}}]


def test_no_acl_action_is_granted_anywhere(prod_documents):
    """ACLs are off (BucketOwnerEnforced): the seed's s3:PutObjectAcl must not come back."""
    for path, doc in prod_documents.items():
        for item in doc.get("Statement", []) if isinstance(doc, dict) else []:
            if item["Effect"] == "Allow":
                assert not any(a.startswith("s3:PutObjectAcl") or a == "s3:PutBucketAcl"
                               for a in item["Action"]), path


def test_allow_statements_have_no_wildcard_action_or_resource(prod_documents):
    """Key policies are the documented exception: their Resource "*" is the key itself."""
    for path, doc in prod_documents.items():
        if not (isinstance(doc, dict) and "Statement" in doc):
            continue
        for item in doc["Statement"]:
            if item["Effect"] != "Allow":
                continue
            assert all("*" not in action for action in item["Action"]), (path, item["Sid"])
            resources = item.get("Resource", [])
            resources = [resources] if isinstance(resources, str) else resources
            if path.endswith("key-policy.json"):
                assert resources == ["*"], (path, item["Sid"])
            else:
                assert "*" not in resources and "arn:aws:s3:::*" not in resources, path


def test_alert_topic_is_encrypted_with_a_key_only_its_publishers_may_use(prod, prod_documents):
    topic = f"arn:aws:sns:eu-central-1:{ACCOUNT}:backup-alerts"
    key = prod.named("backup-alerts-key")
    # The offline preview's mock key id: uuid5 of the key's region and resource name.
    key_id = uuid.uuid5(uuid.NAMESPACE_URL, "eu-central-1/backup-alerts-key")
    assert prod.named("backup-alerts-topic").inputs["kmsMasterKeyId"] == (
        f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/{key_id}")
    assert key.inputs["enableKeyRotation"] is True
    assert prod_documents["backup-alerts/key-policy.json"] == document([
        KEY_ADMIN,
        {"Sid": "AllowS3DeleteEventsKey", "Effect": "Allow",
         "Principal": {"Service": "s3.amazonaws.com"},
         "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
         "Condition": {"ArnEquals": {"aws:SourceArn": PRIMARY},
                       "StringEquals": {"aws:SourceAccount": ACCOUNT,
                                        "kms:EncryptionContext:aws:sns:topicArn": topic}}},
        {"Sid": "AllowCloudWatchAlarmsKey", "Effect": "Allow",
         "Principal": {"Service": "cloudwatch.amazonaws.com"},
         "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
         "Condition": {"ArnLike": {
             "aws:SourceArn": f"arn:aws:cloudwatch:eu-central-1:{ACCOUNT}:alarm:*"},
                       "StringEquals": {"aws:SourceAccount": ACCOUNT,
                                        "kms:EncryptionContext:aws:sns:topicArn": topic}}},
    ])


def test_every_key_carries_the_stack_tag(prod):
    keys = prod.of_type("aws:kms/key:Key")
    assert {k.name: k.inputs["tags"] for k in keys} == {
        name: {"biometrics-backup-stack": "prod"}
        for name in ("backup-primary-key", "backup-replica-key", "backup-alerts-key")}


def test_legal_hold_protection_grants_the_hold_and_no_retention(stack_run):
    documents = render_documents(stack_run("prod", {"keep": {"protection": "legal-hold",
                                                            "maxDays": 730}}))
    backup = {s["Sid"]: s for s in documents["backup-primary/backup-access.json"]["Statement"]}
    assert backup["AllowBackupServerKeep"] == {
        "Sid": "AllowBackupServerKeep", "Effect": "Allow",
        "Action": ["s3:GetObjectTagging", "s3:PutObjectTagging", "s3:PutObjectLegalHold"],
        "Resource": f"{PRIMARY}/postgres/*"}
    assert "AllowBackupServerKeepRetention" not in backup
    for side in ("primary", "replica"):
        denies = {s["Sid"]: s for s in documents[f"backup-{side}/policy.json"]["Statement"]}
        assert denies["DenyRetentionBeyondMaximum"]["Condition"] == {
            "NumericGreaterThan": {"s3:object-lock-remaining-retention-days": 730}}


def test_the_replica_exempts_break_glass_with_the_replication_role(stack_run):
    glass = f"arn:aws:iam::{ACCOUNT}:role/break-glass"
    documents = render_documents(stack_run("prod", {"roles": {
        "backup": "backup-server", "restore": "restore-server", "walArchiver": "wal-archiver",
        "replication": "biometrics-backups-replication", "breakGlassArn": glass}}))
    replica = {s["Sid"]: s for s in documents["backup-replica/policy.json"]["Statement"]}
    assert replica["DenyReplicaWritesExceptReplication"]["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": [REPLICATION_ROLE, glass]}}
    primary = {s["Sid"] for s in documents["backup-primary/policy.json"]["Statement"]}
    assert "DenyReplicaWritesExceptReplication" not in primary


def test_bucket_documents_place_each_statement_by_the_service_it_is_built_for():
    # The builder's fields decide where a statement goes, not its action's prefix: a KMS
    # statement reaches the key policy only, an S3 one the bucket policy only, both the role's.
    bucket = BucketRef("biometrics-backups", "eu-central-1",
                       f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/k")
    s3 = policies.statement("S3Part", ["s3:GetObject"], bucket.objects())
    kms = policies.statement("KmsPart", ["kms:Decrypt"], bucket.key_arn)
    grant = policies.RoleAccess("restore", RESTORE_ROLE,
                                lambda ref: policies.Access(s3=(s3,), kms=(kms,)))
    documents = policies.bucket_documents(bucket, ACCOUNT, [grant], None, max_retention_days=90)
    in_bucket_policy = [s["Sid"] for s in documents.bucket_policy["Statement"]]
    assert "S3Part" in in_bucket_policy and "KmsPart" not in in_bucket_policy
    assert documents.key_policy["Statement"][1:] == [
        {"Sid": "KmsPart", "Effect": "Allow", "Principal": {"AWS": RESTORE_ROLE},
         "Action": ["kms:Decrypt"], "Resource": "*"}]
    assert documents.role_policies == {"restore": policies.policy_document([s3, kms])}
