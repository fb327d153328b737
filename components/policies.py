"""Pure builders for every IAM, bucket, key and topic policy of the backup store.

Each role's access is defined once, as statements without a Principal (`*_statements`); the same
statements become the role's own policy, and — with the role as Principal — the S3 part goes
into the bucket policy and the KMS part into the key policy. No second copy can drift.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from components.layout import BACKUP_PREFIXES
from components.settings import KeepSettings
from contract.layout import (
    EVIDENCE_PREFIX,
    POSTGRES_PREFIX,
    RETENTION_TAG_ACTIVE,
    RETENTION_TAG_KEY,
    WAL_KEY_PATTERN,
)

POLICY_VERSION: Final = "2012-10-17"
KEY_POLICY_SELF: Final = "*"  # in a key policy the Resource is always the key itself
Statement = dict[str, Any]
Document = dict[str, Any]

# Key administration without the actions that would make backups unreadable: no Decrypt
# (admins cannot read backups through IAM), no DisableKey, no ScheduleKeyDeletion (a deleted
# key destroys every locked backup; the key is also retained when the stack is destroyed).
KEY_ADMIN_ACTIONS: Final = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
# Actions that can change an object's tags; the only ones S3 evaluates
# s3:ExistingObjectTag/<key> for that can remove the marker (S3 User Guide, "Tagging and access
# control policies").
TAGGING_ACTIONS: Final = (
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersionTagging",
)
# Object actions that only read: on a replica everything else is a write that only replication
# may make (NotAction, so a write action AWS adds later is denied too).
OBJECT_READ_ACTIONS: Final = ("s3:Get*", "s3:List*")


@dataclass(frozen=True)
class BucketRef:
    """A bucket as the policies see it: its name, region and the ARN of its KMS key."""

    name: str
    region: str
    key_arn: str

    @property
    def arn(self) -> str:
        return bucket_arn(self.name)

    def objects(self, pattern: str = "*") -> str:
        return f"{self.arn}/{pattern}"


def bucket_arn(name: str) -> str:
    return f"arn:aws:s3:::{name}"


@dataclass(frozen=True)
class Access:
    """One role's access to one bucket, by service: the S3 statements go into the bucket
    policy, the KMS statements into the key policy, both (S3 first) into the role's policy."""

    s3: tuple[Statement, ...]
    kms: tuple[Statement, ...]


def policy_document(statements: Iterable[Statement]) -> Document:
    return {"Version": POLICY_VERSION, "Statement": list(statements)}


def to_json(document: Any) -> str:
    """The text Pulumi sends to AWS, and the preview writes for review."""
    return json.dumps(document, indent=2)


def statement(
    sid: str,
    actions: Sequence[str],
    resources: str | Sequence[str] | None,
    *,
    effect: str = "Allow",
    principal: Any = None,
    condition: dict[str, Any] | None = None,
) -> Statement:
    result: Statement = {"Sid": sid, "Effect": effect}
    if principal is not None:
        result["Principal"] = principal
    result["Action"] = list(actions)
    if resources is not None:  # trust policies have no Resource
        result["Resource"] = resources if isinstance(resources, str) else list(resources)
    if condition:
        result["Condition"] = condition
    return result


def kms_via_s3(bucket: BucketRef) -> dict[str, Any]:
    # With S3 Bucket Key on, S3 uses the bucket ARN (not the object ARN) as encryption context.
    return {
        "StringEquals": {
            "kms:ViaService": f"s3.{bucket.region}.amazonaws.com",
            "kms:EncryptionContext:aws:s3:arn": bucket.arn,
        }
    }


def _prefix_patterns(prefixes: Sequence[str]) -> list[str]:
    return [f"{prefix}*" for prefix in prefixes]


# --- what each role may do -----------------------------------------------------------------


def backup_server_access(bucket: BucketRef, keep: KeepSettings) -> Access:
    """wal-g and restic on the backup hosts: read, write and delete current objects in their
    prefixes (restic locks and prune, `wal-g delete retain`); never a version. Plus what
    `backup-agent keep` needs for the configured protection, and nothing that shortens it."""
    return Access(s3=(
        statement(
            "AllowBackupServerWrite",
            [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            [bucket.objects(pattern) for pattern in _prefix_patterns(BACKUP_PREFIXES)],
        ),
        statement(
            "AllowBackupServerList",
            ["s3:ListBucket"],
            bucket.arn,
            condition={"StringLike": {"s3:prefix": _prefix_patterns(BACKUP_PREFIXES)}},
        ),
        *_keep_statements(bucket, keep),
        evidence_statement("AllowBackupServerRecordOutcomes", bucket),
    ), kms=(
        statement(
            "AllowBackupServerKey",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            bucket.key_arn,
            condition=kms_via_s3(bucket),
        ),
    ))


def _keep_statements(bucket: BucketRef, keep: KeepSettings) -> list[Statement]:
    """`backup-agent keep`: every object a restore of the kept base backup needs is tagged
    Retention=active (stripping the tag is denied) and either its COMPLIANCE retention is
    extended (mode COMPLIANCE only: a GOVERNANCE date could be bypassed; nobody can shorten a
    COMPLIANCE one) or it gets a legal hold (lifting it is denied)."""
    objects = bucket.objects(f"{POSTGRES_PREFIX}*")
    if keep.protection == "legal-hold":
        return [statement("AllowBackupServerKeep",
                          ["s3:GetObjectTagging", "s3:PutObjectTagging", "s3:PutObjectLegalHold"],
                          objects)]
    return [
        statement("AllowBackupServerKeep",
                  ["s3:GetObjectTagging", "s3:PutObjectTagging", "s3:GetObjectRetention"],
                  objects),
        statement("AllowBackupServerKeepRetention", ["s3:PutObjectRetention"], objects,
                  condition={"StringEquals": {"s3:object-lock-mode": "COMPLIANCE"}}),
    ]


def wal_archiver_access(bucket: BucketRef) -> Access:
    """`wal-g wal-push` from archive_command on a database host: write WAL, nothing else.
    kms:Decrypt is what S3 needs to complete a multipart (SSE-KMS) upload of a 16 MB segment."""
    return Access(s3=(
        statement(
            "AllowWalArchiverWrite",
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            bucket.objects(WAL_KEY_PATTERN),
        ),
    ), kms=(
        statement(
            "AllowWalArchiverKey",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            bucket.key_arn,
            condition=kms_via_s3(bucket),
        ),
    ))


def evidence_statement(sid: str, bucket: BucketRef) -> Statement:
    """The outcome record (`backup-agent report`): create objects under evidence/, nothing
    else there — no delete, no retention or tag change; Object Lock keeps every version."""
    return statement(sid, ["s3:PutObject"], bucket.objects(f"{EVIDENCE_PREFIX}*"))


def restore_server_access(bucket: BucketRef, *, records_outcomes: bool = False) -> Access:
    """Restores, drills and monitoring: read-only on the backups (restic runs with --no-lock
    there). In the bucket that holds the outcome record (`records_outcomes`), the drills
    append their outcomes: PutObject under evidence/ and the data key S3 encrypts it with."""
    prefixes = _prefix_patterns((*BACKUP_PREFIXES, EVIDENCE_PREFIX))
    outcomes_s3 = (evidence_statement("AllowRestoreServerRecordOutcomes", bucket),)
    outcomes_kms = (statement("AllowRestoreServerOutcomeKey", ["kms:GenerateDataKey"],
                              bucket.key_arn, condition=kms_via_s3(bucket)),)
    return Access(s3=(
        statement(
            "AllowReadForRestore",
            ["s3:GetObject"],
            [bucket.objects(pattern) for pattern in prefixes],
        ),
        statement(
            # ListBucketVersions: the exporter counts delete markers (an unusual number pages),
            # the report finds outcomes written twice.
            "AllowListForRestore",
            ["s3:ListBucket", "s3:ListBucketVersions"],
            bucket.arn,
            condition={"StringLike": {"s3:prefix": prefixes}},
        ),
        *(outcomes_s3 if records_outcomes else ()),
    ), kms=(
        statement(
            "AllowDecryptForRestore",
            ["kms:Decrypt"],
            bucket.key_arn,
            condition=kms_via_s3(bucket),
        ),
        *(outcomes_kms if records_outcomes else ()),
    ))


def replication_source_access(source: BucketRef) -> Access:
    """The replication role on the source: exactly the documented permissions for a bucket
    with Object Lock and SSE-KMS (S3 User Guide, "Setting up permissions for live
    replication")."""
    return Access(s3=(
        statement(
            "AllowReplicationSourceBucket",
            ["s3:GetReplicationConfiguration", "s3:ListBucket"],
            source.arn,
        ),
        statement(
            "AllowReplicationSourceObjects",
            [
                "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl",
                "s3:GetObjectVersionTagging",
                "s3:GetObjectRetention",
                "s3:GetObjectLegalHold",
            ],
            source.objects(),
        ),
    ), kms=(
        statement(
            "AllowReplicationDecrypt",
            ["kms:Decrypt"],
            source.key_arn,
            condition=kms_via_s3(source),
        ),
    ))


def replication_destination_access(replica: BucketRef) -> Access:
    """The replication role on the replica: write replicas and delete markers, re-encrypt."""
    return Access(s3=(
        statement(
            "AllowReplicationDestination",
            ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
            replica.objects(),
        ),
    ), kms=(
        statement(
            "AllowReplicationEncrypt",
            ["kms:Encrypt"],
            replica.key_arn,
            condition=kms_via_s3(replica),
        ),
    ))


def _granted(accesses: Iterable[tuple[RoleAccess, Access]], field: str,
             resource: str | None = None) -> list[Statement]:
    """Each statement of the roles' `field` (s3 or kms) once, with every role that has it as
    Principal (a string for one role, a list for several: the ECS task roles stand beside the
    host role doing the same work, in the same statement, so the grants cannot drift), and a
    fixed Resource for key policies, where the Resource is always the key itself ("*")."""
    merged: dict[str, tuple[Statement, list[str]]] = {}
    for grant, access in accesses:
        for item in getattr(access, field):
            known, arns = merged.setdefault(item["Sid"], (item, []))
            if known != item:
                raise ValueError(f"{item['Sid']}: two roles have different statements of that "
                                 "Sid; a shared Sid must be the same statement")
            arns.append(grant.role_arn)
    return [
        statement(
            item["Sid"],
            item["Action"],
            resource if resource is not None else item["Resource"],
            principal={"AWS": arns[0] if len(arns) == 1 else arns},
            condition=item.get("Condition"),
        )
        for item, arns in merged.values()
    ]


# --- trust policies --------------------------------------------------------------------------


def ec2_trust_policy() -> Document:
    """Instance-profile roles: hosts get short-lived credentials from IMDS, never static keys."""
    return policy_document(
        [
            statement(
                "AllowEc2InstanceProfile",
                ["sts:AssumeRole"],
                None,
                principal={"Service": "ec2.amazonaws.com"},
            )
        ]
    )


def replication_trust_policy(account_id: str, source_bucket_arn: str) -> Document:
    # SourceAccount/SourceArn stop another account's bucket from using this role (confused deputy).
    return policy_document(
        [
            statement(
                "AllowS3Replication",
                ["sts:AssumeRole"],
                None,
                principal={"Service": "s3.amazonaws.com"},
                condition={
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": source_bucket_arn},
                },
            )
        ]
    )


# --- resource policies -----------------------------------------------------------------------


def transport_deny_statements(bucket_arn: str) -> list[Statement]:
    """Security Hub S3.5 and a TLS floor, as two statements: conditions in one statement are
    ANDed, so a merged statement would deny only plain-HTTP requests that are also TLS < 1.2."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return [
        statement(
            "EnforceSSL",
            ["s3:*"],
            resources,
            effect="Deny",
            principal="*",
            condition={"Bool": {"aws:SecureTransport": "false"}},
        ),
        statement(
            "DenyOutdatedTLS",
            ["s3:*"],
            resources,
            effect="Deny",
            principal="*",
            condition={"NumericLessThan": {"s3:TlsVersion": 1.2}},
        ),
    ]


def _except_break_glass(break_glass_arn: str | None) -> dict[str, Any]:
    if break_glass_arn is None:
        return {}
    return {"ArnNotEquals": {"aws:PrincipalArn": break_glass_arn}}


def protection_statements(bucket: BucketRef, break_glass_arn: str | None,
                          max_retention_days: int) -> list[Statement]:
    """The enforceable form of the user's tag-based delete-deny.

    S3 never evaluates tag keys for DeleteObject (Service Authorization Reference for S3), so
    the seed's statement matched nothing. Object Lock keeps every version; these Denies close
    the ways around it for everyone (the account root included) except an optional
    break-glass role — and cap the retention anyone, break-glass included, may set.
    """
    exception = _except_break_glass(break_glass_arn)
    return [
        statement(
            "DenyDeleteBackup",
            ["s3:DeleteObjectVersion"],
            bucket.objects(),
            effect="Deny",
            principal="*",
            condition=exception or None,
        ),
        statement(
            "DenyGovernanceBypass",
            ["s3:BypassGovernanceRetention"],
            bucket.objects(),
            effect="Deny",
            principal="*",
            condition=exception or None,
        ),
        statement(
            "DenyLegalHoldRemoval",
            ["s3:PutObjectLegalHold"],
            bucket.objects(),
            effect="Deny",
            principal="*",
            condition={"StringEquals": {"s3:object-lock-legal-hold": "OFF"}, **exception},
        ),
        statement(
            "DenyRetentionTagChange",
            list(TAGGING_ACTIONS),
            bucket.objects(),
            effect="Deny",
            principal="*",
            condition={
                "StringEquals": {f"s3:ExistingObjectTag/{RETENTION_TAG_KEY}": RETENTION_TAG_ACTIVE},
                **exception,
            },
        ),
        statement(
            # COMPLIANCE retention cannot be shortened, so a retention set too far is
            # irrevocable: the cap holds for break-glass too (S3 User Guide, "Setting limits on
            # retention periods with a bucket policy").
            "DenyRetentionBeyondMaximum",
            ["s3:PutObject", "s3:PutObjectRetention"],
            bucket.objects(),
            effect="Deny",
            principal="*",
            condition={"NumericGreaterThan": {
                "s3:object-lock-remaining-retention-days": max_retention_days}},
        ),
    ]


def encryption_statements(bucket: BucketRef) -> list[Statement]:
    """Objects are encrypted with the bucket's own key, or not written: a PUT (or multipart
    initiation, also s3:PutObject) naming SSE-S3, DSSE or another KMS key would escape the key
    policy, the key's rotation and the replica's re-encryption rule. A negated operator is true
    when its key is absent, so each Deny also requires the header (Null false): a PUT without
    encryption headers gets the default encryption and stays allowed. SSE-C uploads carry
    neither header and have their own Deny."""
    return [
        statement(
            "DenyNonKmsEncryption",
            ["s3:PutObject"],
            bucket.objects(),
            effect="Deny",
            principal="*",
            condition={"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"},
                       "Null": {"s3:x-amz-server-side-encryption": "false"}},
        ),
        statement(
            "DenyOtherKmsKey",
            ["s3:PutObject"],
            bucket.objects(),
            effect="Deny",
            principal="*",
            condition={
                "ArnNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id":
                                 bucket.key_arn},
                "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
            },
        ),
        statement(
            "DenyCustomerProvidedKeys",
            ["s3:PutObject"],
            bucket.objects(),
            effect="Deny",
            principal="*",
            condition={"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}},
        ),
    ]


def replica_write_statements(bucket: BucketRef, replication_role_arn: str,
                             break_glass_arn: str | None) -> list[Statement]:
    """Only replication writes into a replica: every object action but reads is denied to
    everyone else — Replicate* too (a role holding it could be named in a replication rule of
    another bucket), retention, legal holds and tags. Break-glass stays excepted."""
    exempt = [replication_role_arn, *([break_glass_arn] if break_glass_arn else [])]
    return [
        {
            "Sid": "DenyReplicaWritesExceptReplication",
            "Effect": "Deny",
            "Principal": "*",
            "NotAction": list(OBJECT_READ_ACTIONS),
            "Resource": bucket.objects(),
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": exempt}},
        }
    ]


@dataclass(frozen=True)
class RoleAccess:
    """One role's access to a bucket: its purpose (backup, restore, ...), its ARN, and the
    builder of its statements for a given bucket."""

    purpose: str
    role_arn: str
    access: Callable[[BucketRef], Access]


@dataclass(frozen=True)
class BucketDocuments:
    """Every policy document of one bucket: its bucket policy, its key's policy and, by purpose,
    the policy of each role with access to it."""

    bucket_policy: Document
    key_policy: Document
    role_policies: dict[str, Document]


def bucket_documents(
    bucket: BucketRef,
    account_id: str,
    grants: Sequence[RoleAccess],
    break_glass_arn: str | None,
    *,
    max_retention_days: int,
    replicated_by: str | None = None,
) -> BucketDocuments:
    """`replicated_by`: for a replica, the replication role, the only writer. The key policy
    does not depend on `bucket.key_arn` (its Resource is the key itself), so it can be built
    before the key exists."""
    accesses = [(grant, grant.access(bucket)) for grant in grants]
    statements = transport_deny_statements(bucket.arn)
    statements += _granted(accesses, "s3")
    statements += protection_statements(bucket, break_glass_arn, max_retention_days)
    statements += encryption_statements(bucket)
    if replicated_by is not None:
        statements += replica_write_statements(bucket, replicated_by, break_glass_arn)
    key_statements = [key_administration(account_id), *_granted(accesses, "kms",
                                                                 resource=KEY_POLICY_SELF)]
    return BucketDocuments(
        bucket_policy=policy_document(statements),
        key_policy=policy_document(key_statements),
        role_policies={grant.purpose: policy_document([*access.s3, *access.kms])
                       for grant, access in accesses},
    )


def key_administration(account_id: str) -> Statement:
    return statement(
        "EnableKeyAdministration",
        KEY_ADMIN_ACTIONS,
        "*",
        principal={"AWS": f"arn:aws:iam::{account_id}:root"},
    )


def log_bucket_policy(log_bucket_arn: str, source_bucket_arn: str, account_id: str,
                      prefix: str) -> Document:
    """Server access log delivery (S3.9) into a bucket of the source's own region and account."""
    return policy_document(
        [
            *transport_deny_statements(log_bucket_arn),
            statement(
                "AllowS3ServerAccessLogs",
                ["s3:PutObject"],
                f"{log_bucket_arn}/{prefix}*",
                principal={"Service": "logging.s3.amazonaws.com"},
                condition={
                    "ArnLike": {"aws:SourceArn": source_bucket_arn},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            ),
        ]
    )


@dataclass(frozen=True)
class TopicPublisher:
    """An AWS service that publishes to the alert topic, and the source it may publish for."""

    name: str
    service: str
    source: dict[str, Any]  # the aws:SourceArn / aws:SourceAccount conditions


def alert_publishers(bucket_arn: str, account_id: str, region: str,
                     events_rule_arn: str | None = None) -> list[TopicPublisher]:
    """The primary bucket's delete events, this account's CloudWatch alarms and, with the ECS
    placement, exactly the EventBridge rule on its task state changes (`events_rule_arn`; the
    rule's ARN names the account, the condition AWS documents for EventBridge publishing to a
    topic: EventBridge User Guide, "Permissions for Amazon SNS")."""
    publishers = [
        TopicPublisher("S3DeleteEvents", "s3.amazonaws.com", {
            "ArnEquals": {"aws:SourceArn": bucket_arn},
            "StringEquals": {"aws:SourceAccount": account_id},
        }),
        TopicPublisher("CloudWatchAlarms", "cloudwatch.amazonaws.com", {
            "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{region}:{account_id}:alarm:*"},
            "StringEquals": {"aws:SourceAccount": account_id},
        }),
    ]
    if events_rule_arn is not None:
        publishers.append(TopicPublisher("EcsTaskEvents", "events.amazonaws.com", {
            "ArnEquals": {"aws:SourceArn": events_rule_arn},
            "StringEquals": {"aws:SourceAccount": account_id},
        }))
    return publishers


def alert_topic_policy(topic_arn: str, bucket_arn: str, account_id: str, region: str,
                       events_rule_arn: str | None = None) -> Document:
    """Who may publish to the alert topic."""
    return policy_document(
        statement(f"Allow{publisher.name}", ["sns:Publish"], topic_arn,
                  principal={"Service": publisher.service}, condition=publisher.source)
        for publisher in alert_publishers(bucket_arn, account_id, region, events_rule_arn)
    )


def alert_topic_key_policy(topic_arn: str, bucket_arn: str, account_id: str,
                           region: str, events_rule_arn: str | None = None) -> Document:
    """The topic's own key: exactly the publishing services may use it, each for its own
    source and only for this topic (SNS puts the topic ARN into the encryption context) —
    what AWS documents for event sources publishing to an encrypted topic (Amazon SNS
    Developer Guide, "Enable compatibility between event sources from AWS services and
    encrypted topics"). AWS's example grants kms:GenerateDataKey*; a publisher calls
    GenerateDataKey and Decrypt ("Allow a user to send messages to a topic with SSE"), so the
    data-key-pair operations the wildcard adds are left out."""
    statements = [key_administration(account_id)]
    for publisher in alert_publishers(bucket_arn, account_id, region, events_rule_arn):
        condition = {**publisher.source, "StringEquals": {
            **publisher.source.get("StringEquals", {}),
            "kms:EncryptionContext:aws:sns:topicArn": topic_arn}}
        statements.append(statement(f"Allow{publisher.name}Key",
                                    ["kms:GenerateDataKey", "kms:Decrypt"], "*",
                                    principal={"Service": publisher.service},
                                    condition=condition))
    return policy_document(statements)
