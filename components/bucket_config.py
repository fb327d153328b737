"""Pure builders for bucket configuration, in the S3 API's own shape.

Each function returns what `aws s3api get-bucket-<thing>` prints for a correctly deployed
bucket, so a reviewer or the smoke check can diff it against a live bucket. Components convert
these documents to pulumi-aws arguments with `to_pulumi_args`; the offline preview converts the
recorded arguments back with `from_pulumi_inputs` — one key mapping serves both directions.
"""

from __future__ import annotations

import re
from typing import Any, Final

from components.layout import ALL_OBJECTS_PREFIX
from components.settings import LifecycleSettings, ObjectLockSettings

# S3 API member names whose snake_case form in pulumi-aws is not the mechanical conversion.
_IRREGULAR: Final = {
    "ID": "id",
    "SSEAlgorithm": "sse_algorithm",
    "KMSMasterKeyID": "kms_master_key_id",
    "ReplicaKmsKeyID": "replica_kms_key_id",
}
# The same names as the engine records them (camelCase of the snake_case form), back to S3's.
_IRREGULAR_CAMEL: Final = {
    re.sub(r"_(.)", lambda m: m.group(1).upper(), snake): pascal
    for pascal, snake in _IRREGULAR.items()
}
_WORD_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")
REPLICATION_TIME_MINUTES: Final = 15  # the only value S3 Replication Time Control accepts
LOG_PREFIX: Final = "s3-access/"
REPLICATION_RULE_ID: Final = "replicate-everything"


def to_pulumi_args(value: Any) -> Any:
    """S3 API shape (PascalCase) → pulumi-aws Python input dicts (snake_case)."""
    if isinstance(value, dict):
        return {
            _IRREGULAR.get(key) or _WORD_BOUNDARY.sub("_", key).lower(): to_pulumi_args(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [to_pulumi_args(item) for item in value]
    return value


def from_pulumi_inputs(value: Any) -> Any:
    """Recorded pulumi-aws inputs (camelCase, numbers as floats) → S3 API shape."""
    if isinstance(value, dict):
        return {
            _IRREGULAR_CAMEL.get(key) or key[:1].upper() + key[1:]: from_pulumi_inputs(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [from_pulumi_inputs(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def versioning() -> dict[str, Any]:
    return {"Status": "Enabled"}


def encryption(key_arn: str) -> dict[str, Any]:
    return {
        "ServerSideEncryptionConfiguration": {
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key_arn,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        }
    }


def access_log_encryption() -> dict[str, Any]:
    # Log delivery is documented for SSE-S3; SSE-KMS on a log target is unconfirmed (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html).
    return {
        "ServerSideEncryptionConfiguration": {
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                 "BucketKeyEnabled": False}
            ]
        }
    }


def public_access_block() -> dict[str, Any]:
    return {
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        }
    }


def ownership_controls() -> dict[str, Any]:
    return {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}}


def object_lock(settings: ObjectLockSettings) -> dict[str, Any]:
    return {
        "ObjectLockConfiguration": {
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": settings.mode, "Days": settings.days}},
        }
    }


def _whole_bucket() -> dict[str, str]:
    return {"Prefix": ALL_OBJECTS_PREFIX}


def lifecycle(settings: LifecycleSettings) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for tier in settings.tiers:
        rule: dict[str, Any] = {
            "ID": f"tier-{tier.prefix.strip('/').replace('/', '-')}",
            "Status": "Enabled",
            "Filter": {"Prefix": tier.prefix},
        }
        if tier.transitions:
            rule["Transitions"] = [
                {"Days": t.days, "StorageClass": t.storage_class} for t in tier.transitions
            ]
        if tier.expiration_days is not None:
            rule["Expiration"] = {"Days": tier.expiration_days}
        rules.append(rule)
    rules += [
        {
            # On a versioned bucket Expiration only adds a delete marker: without this the
            # old versions stay billed forever. Locked versions wait for their lock to end.
            "ID": "expire-noncurrent-versions",
            "Status": "Enabled",
            "Filter": _whole_bucket(),
            "NoncurrentVersionExpiration": {"NoncurrentDays": settings.noncurrent_version_days},
        },
        {
            # A rule of its own: ExpiredObjectDeleteMarker cannot share an Expiration with Days.
            "ID": "remove-expired-delete-markers",
            "Status": "Enabled",
            "Filter": _whole_bucket(),
            "Expiration": {"ExpiredObjectDeleteMarker": True},
        },
        {
            "ID": "abort-incomplete-uploads",
            "Status": "Enabled",
            "Filter": _whole_bucket(),
            "AbortIncompleteMultipartUpload": {
                "DaysAfterInitiation": settings.abort_incomplete_upload_days
            },
        },
    ]
    return {"TransitionDefaultMinimumObjectSize": "all_storage_classes_128K", "Rules": rules}


def access_log_lifecycle(days: int) -> dict[str, Any]:
    return {
        "TransitionDefaultMinimumObjectSize": "all_storage_classes_128K",
        "Rules": [
            {
                "ID": "expire-access-logs",
                "Status": "Enabled",
                "Filter": _whole_bucket(),
                "Expiration": {"Days": days},
                "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
            },
            {
                "ID": "abort-incomplete-uploads",
                "Status": "Enabled",
                "Filter": _whole_bucket(),
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            },
        ],
    }


def logging(target_bucket: str) -> dict[str, Any]:
    return {"LoggingEnabled": {"TargetBucket": target_bucket, "TargetPrefix": LOG_PREFIX}}


def replication(role_arn: str, replica_bucket_arn: str, replica_key_arn: str) -> dict[str, Any]:
    """Whole bucket, RTC 15 minutes with metrics, SSE-KMS objects re-encrypted with the replica
    key, and delete markers replicated — otherwise everything pruned stays current in the
    replica forever (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-what-is-isnot-replicated.html)."""
    return {
        "ReplicationConfiguration": {
            "Role": role_arn,
            "Rules": [
                {
                    "ID": REPLICATION_RULE_ID,
                    "Priority": 1,
                    "Status": "Enabled",
                    "Filter": _whole_bucket(),
                    "DeleteMarkerReplication": {"Status": "Enabled"},
                    "SourceSelectionCriteria": {
                        "SseKmsEncryptedObjects": {"Status": "Enabled"}
                    },
                    "Destination": {
                        "Bucket": replica_bucket_arn,
                        "EncryptionConfiguration": {"ReplicaKmsKeyID": replica_key_arn},
                        "ReplicationTime": {
                            "Status": "Enabled",
                            "Time": {"Minutes": REPLICATION_TIME_MINUTES},
                        },
                        "Metrics": {
                            "Status": "Enabled",
                            "EventThreshold": {"Minutes": REPLICATION_TIME_MINUTES},
                        },
                    },
                }
            ],
        }
    }


DELETE_MARKER_EVENTS: Final = ("s3:ObjectRemoved:DeleteMarkerCreated",)


def delete_notifications(topic_arn: str) -> dict[str, Any]:
    return {
        "TopicConfigurations": [
            {"Id": "delete-markers", "TopicArn": topic_arn, "Events": list(DELETE_MARKER_EVENTS)}
        ]
    }
