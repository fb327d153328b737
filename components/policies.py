"""Pure builders for every IAM, bucket, key and topic policy of the backup store.

Each role's access is defined once, as statements without a Principal (`*_statements`); the same
statements become the role's own policy, and — with the role as Principal — the S3 part goes
into the bucket policy and the KMS part into the key policy. No second copy can drift.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from components.layout import (
    BACKUP_PREFIXES,
    POSTGRES_PREFIX,
    RETENTION_TAG_ACTIVE,
    RETENTION_TAG_KEY,
    WAL_KEY_PATTERN,
)

POLICY_VERSION: Final = "2012-10-17"
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
# s3:ExistingObjectTag/<key> for that can remove the marker (facts §1).
TAGGING_ACTIONS: Final = (
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersionTagging",
)


@dataclass(frozen=True)
class BucketRef:
    """A bucket as the policies see it: its name, region and the ARN of its KMS key."""

    name: str
    region: str
    key_arn: str

    @property
    def arn(self) -> str:
        return f"arn:aws:s3:::{self.name}"

    def objects(self, pattern: str = "*") -> str:
        return f"{self.arn}/{pattern}"


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


def backup_server_statements(bucket: BucketRef) -> list[Statement]:
    """wal-g and restic on the backup hosts: read, write and delete current objects in their
    prefixes (restic locks and prune, `wal-g delete retain`); never a version."""
    return [
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
        statement(
            # `backup-agent keep`: a base backup kept past the lock window gets Retention=active
            # and a legal hold on every object its restore needs (lifting either is denied).
            "AllowBackupServerKeep",
            ["s3:GetObjectTagging", "s3:PutObjectTagging", "s3:PutObjectLegalHold"],
            bucket.objects(f"{POSTGRES_PREFIX}*"),
        ),
        statement(
            "AllowBackupServerKey",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            bucket.key_arn,
            condition=kms_via_s3(bucket),
        ),
    ]


def wal_archiver_statements(bucket: BucketRef) -> list[Statement]:
    """`wal-g wal-push` from archive_command on a database host: write WAL, nothing else.
    kms:Decrypt is what S3 needs to complete a multipart (SSE-KMS) upload of a 16 MB segment."""
    return [
        statement(
            "AllowWalArchiverWrite",
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            bucket.objects(WAL_KEY_PATTERN),
        ),
        statement(
            "AllowWalArchiverKey",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            bucket.key_arn,
            condition=kms_via_s3(bucket),
        ),
    ]


def restore_server_statements(bucket: BucketRef) -> list[Statement]:
    """Restores, drills and monitoring: read-only (restic runs with --no-lock there)."""
    return [
        statement(
            "AllowReadForRestore",
            ["s3:GetObject"],
            [bucket.objects(pattern) for pattern in _prefix_patterns(BACKUP_PREFIXES)],
        ),
        statement(
            # ListBucketVersions: the exporter counts delete markers (an unusual number pages).
            "AllowListForRestore",
            ["s3:ListBucket", "s3:ListBucketVersions"],
            bucket.arn,
            condition={"StringLike": {"s3:prefix": _prefix_patterns(BACKUP_PREFIXES)}},
        ),
        statement(
            "AllowDecryptForRestore",
            ["kms:Decrypt"],
            bucket.key_arn,
            condition=kms_via_s3(bucket),
        ),
    ]


def replication_source_statements(source: BucketRef) -> list[Statement]:
    """The replication role on the source: exactly the documented permissions for a bucket
    with Object Lock and SSE-KMS (facts §4)."""
    return [
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
        statement(
            "AllowReplicationDecrypt",
            ["kms:Decrypt"],
            source.key_arn,
            condition=kms_via_s3(source),
        ),
    ]


def replication_destination_statements(replica: BucketRef) -> list[Statement]:
    """The replication role on the replica: write replicas and delete markers, re-encrypt."""
    return [
        statement(
            "AllowReplicationDestination",
            ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
            replica.objects(),
        ),
        statement(
            "AllowReplicationEncrypt",
            ["kms:Encrypt"],
            replica.key_arn,
            condition=kms_via_s3(replica),
        ),
    ]


def role_policy(statements: Iterable[Statement]) -> Document:
    return policy_document(statements)


def _with_principal(statements: Iterable[Statement], service: str, principal_arn: str,
                    resource: str | None = None) -> list[Statement]:
    """The statements of one service with the role as Principal (and a fixed Resource, for key
    policies, where the Resource is always the key itself: "*")."""
    result = []
    for item in statements:
        if not item["Action"][0].startswith(f"{service}:"):
            continue
        attached = statement(
            item["Sid"],
            item["Action"],
            resource if resource is not None else item["Resource"],
            principal={"AWS": principal_arn},
            condition=item.get("Condition"),
        )
        result.append(attached)
    return result


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


def protection_statements(bucket: BucketRef, break_glass_arn: str | None) -> list[Statement]:
    """The enforceable form of the user's tag-based delete-deny (facts §1).

    S3 never evaluates tag keys for DeleteObject, so the seed's statement matched nothing.
    Object Lock keeps every version; these Denies close the ways around it for everyone (the
    account root included) except an optional break-glass role.
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
    ]


@dataclass(frozen=True)
class RoleAccess:
    """One role's statements on one bucket, with the role's ARN."""

    role_arn: str
    statements: tuple[Statement, ...]


def bucket_policy(
    bucket: BucketRef,
    grants: Sequence[RoleAccess],
    break_glass_arn: str | None,
    *,
    replica: bool,
) -> Document:
    statements = transport_deny_statements(bucket.arn)
    for grant in grants:
        statements += _with_principal(grant.statements, "s3", grant.role_arn)
    statements += protection_statements(bucket, break_glass_arn)
    if replica:
        # Only replication writes here (s3:ReplicateObject/ReplicateDelete are other actions).
        statements.append(
            statement(
                "DenyDirectWrites",
                ["s3:PutObject", "s3:DeleteObject"],
                bucket.objects(),
                effect="Deny",
                principal="*",
            )
        )
    return policy_document(statements)


def key_policy(account_id: str, grants: Sequence[RoleAccess]) -> Document:
    statements = [
        statement(
            "EnableKeyAdministration",
            KEY_ADMIN_ACTIONS,
            "*",
            principal={"AWS": f"arn:aws:iam::{account_id}:root"},
        )
    ]
    for grant in grants:
        statements += _with_principal(grant.statements, "kms", grant.role_arn, resource="*")
    return policy_document(statements)


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


def alert_topic_policy(topic_arn: str, bucket_arn: str, account_id: str, region: str) -> Document:
    """Who may publish to the alert topic: the primary bucket's delete events and this account's
    CloudWatch alarms."""
    return policy_document(
        [
            statement(
                "AllowS3DeleteEvents",
                ["sns:Publish"],
                topic_arn,
                principal={"Service": "s3.amazonaws.com"},
                condition={
                    "ArnEquals": {"aws:SourceArn": bucket_arn},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            ),
            statement(
                "AllowCloudWatchAlarms",
                ["sns:Publish"],
                topic_arn,
                principal={"Service": "cloudwatch.amazonaws.com"},
                condition={
                    "ArnLike": {
                        "aws:SourceArn": f"arn:aws:cloudwatch:{region}:{account_id}:alarm:*"},
                    "StringEquals": {"aws:SourceAccount": account_id},
                },
            ),
        ]
    )
