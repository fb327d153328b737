"""Bucket configuration of both prod buckets, in the S3 API shape the preview renders."""

from __future__ import annotations

import pytest

from components import bucket_config
from components.settings import LifecycleSettings

ACCOUNT = "111122223333"
BUCKETS = [("backup-primary", "biometrics-backups"),
           ("backup-replica", "biometrics-backups-replica")]
WHOLE_BUCKET = {"Prefix": ""}

PROD_LIFECYCLE = {
    "TransitionDefaultMinimumObjectSize": "all_storage_classes_128K",
    "Rules": [
        {"ID": "tier-postgres", "Status": "Enabled", "Filter": {"Prefix": "postgres/"},
         "Transitions": [{"Days": 30, "StorageClass": "GLACIER"},
                         {"Days": 90, "StorageClass": "DEEP_ARCHIVE"}],
         "Expiration": {"Days": 365}},
        {"ID": "tier-temp", "Status": "Enabled", "Filter": {"Prefix": "temp/"},
         "Expiration": {"Days": 90}},
        {"ID": "expire-noncurrent-versions", "Status": "Enabled", "Filter": WHOLE_BUCKET,
         "NoncurrentVersionExpiration": {"NoncurrentDays": 30}},
        {"ID": "remove-expired-delete-markers", "Status": "Enabled", "Filter": WHOLE_BUCKET,
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
        {"ID": "abort-incomplete-uploads", "Status": "Enabled", "Filter": WHOLE_BUCKET,
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
    ],
}


@pytest.mark.parametrize(("component", "bucket"), BUCKETS)
def test_both_buckets_are_hardened_alike(prod, prod_documents, component, bucket):
    key = prod.outputs["buckets"][component.removeprefix("backup-")]["keyArn"]
    assert prod.named(f"{component}-bucket").inputs["bucket"] == bucket
    assert prod.named(f"{component}-bucket").inputs["objectLockEnabled"] is True
    assert prod_documents[f"{component}/versioning.json"] == {"Status": "Enabled"}
    assert prod_documents[f"{component}/encryption.json"] == {
        "ServerSideEncryptionConfiguration": {"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                    "KMSMasterKeyID": key},
             "BucketKeyEnabled": True}]}}
    assert prod_documents[f"{component}/public-access-block.json"] == {
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                           "BlockPublicPolicy": True,
                                           "RestrictPublicBuckets": True}}
    assert prod_documents[f"{component}/ownership.json"] == {
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}}
    assert prod_documents[f"{component}/object-lock.json"] == {
        "ObjectLockConfiguration": {"ObjectLockEnabled": "Enabled",
                                    "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE",
                                                                  "Days": 30}}}}
    # Lifecycle is not replicated: the replica carries its own copy of the rules.
    assert prod_documents[f"{component}/lifecycle.json"] == PROD_LIFECYCLE
    assert prod_documents[f"{component}/logging.json"] == {
        "LoggingEnabled": {"TargetBucket": f"{bucket}-access-logs", "TargetPrefix": "s3-access/"}}


@pytest.mark.parametrize(("component", "bucket"), BUCKETS)
def test_keys_rotate_and_are_regional(prod, component, bucket):
    key = prod.named(f"{component}-key")
    region = "eu-central-1" if component == "backup-primary" else "eu-west-1"
    assert {k: key.inputs[k] for k in ("enableKeyRotation", "deletionWindowInDays", "region")} \
        == {"enableKeyRotation": True, "deletionWindowInDays": 30, "region": region}
    assert prod.named(f"{component}-key-alias").inputs["name"] == f"alias/{bucket}"


@pytest.mark.parametrize(("component", "bucket"), BUCKETS)
def test_access_log_buckets_have_no_object_lock(prod, prod_documents, component, bucket):
    assert prod.named(f"{component}-access-logs").inputs == {
        "bucket": f"{bucket}-access-logs",
        "region": "eu-central-1" if component == "backup-primary" else "eu-west-1",
        "tags": {"biometrics-backup:bucket": "log"},
    }
    assert prod_documents[f"{component}/access-logs-encryption.json"] == {
        "ServerSideEncryptionConfiguration": {"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
             "BucketKeyEnabled": False}]}}
    assert prod_documents[f"{component}/access-logs-public-access-block.json"] == \
        prod_documents[f"{component}/public-access-block.json"]
    assert prod_documents[f"{component}/access-logs-ownership.json"] == \
        prod_documents[f"{component}/ownership.json"]
    assert prod_documents[f"{component}/access-logs-lifecycle.json"] == {
        "TransitionDefaultMinimumObjectSize": "all_storage_classes_128K",
        "Rules": [
            {"ID": "expire-access-logs", "Status": "Enabled", "Filter": WHOLE_BUCKET,
             "Expiration": {"Days": 365}, "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
            {"ID": "abort-incomplete-uploads", "Status": "Enabled", "Filter": WHOLE_BUCKET,
             "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
        ]}
    assert f"{component}/access-logs-object-lock.json" not in prod_documents


def test_replication_configuration(prod, prod_documents):
    assert prod_documents["backup-replication/configuration.json"] == {
        "ReplicationConfiguration": {
            "Role": f"arn:aws:iam::{ACCOUNT}:role/biometrics-backups-replication",
            "Rules": [{
                "ID": "replicate-everything", "Priority": 1, "Status": "Enabled",
                "Filter": WHOLE_BUCKET,
                "DeleteMarkerReplication": {"Status": "Enabled"},
                "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
                "Destination": {
                    "Bucket": "arn:aws:s3:::biometrics-backups-replica",
                    "EncryptionConfiguration": {
                        "ReplicaKmsKeyID": prod.outputs["buckets"]["replica"]["keyArn"]},
                    "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": 15}},
                    "Metrics": {"Status": "Enabled", "EventThreshold": {"Minutes": 15}},
                },
            }],
        }}
    config = prod.named("backup-replication-configuration")
    assert config.inputs["bucket"] == "biometrics-backups"
    assert config.inputs["region"] == "eu-central-1"
    # S3 refuses a replication configuration until both buckets are versioned.
    assert set(config.dependencies) >= {prod.named("backup-primary-versioning").urn,
                                         prod.named("backup-replica-versioning").urn}


def test_lifecycle_waits_for_versioning(prod):
    for component in ("backup-primary", "backup-replica"):
        lifecycle = prod.named(f"{component}-lifecycle")
        assert prod.named(f"{component}-versioning").urn in lifecycle.dependencies


def test_alarms_page_on_failed_or_late_replication(prod_documents):
    topic = f"arn:aws:sns:eu-central-1:{ACCOUNT}:backup-alerts"
    common = {
        "Namespace": "AWS/S3", "Period": 300, "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching",
        "AlarmActions": [topic], "OKActions": [topic],
        "Dimensions": {"SourceBucket": "biometrics-backups",
                       "DestinationBucket": "biometrics-backups-replica",
                       "RuleId": "replicate-everything"},
    }
    assert prod_documents["backup-alerts/OperationsFailedReplication.json"] == {
        **common, "AlarmName": "biometrics-backups-OperationsFailedReplication",
        "AlarmDescription": "Objects failed to replicate to the replica bucket",
        "MetricName": "OperationsFailedReplication", "Statistic": "Sum", "Threshold": 0}
    assert prod_documents["backup-alerts/ReplicationLatency.json"] == {
        **common, "AlarmName": "biometrics-backups-ReplicationLatency",
        "AlarmDescription": "Replication is slower than the 15-minute Replication Time Control "
                            "target",
        "MetricName": "ReplicationLatency", "Statistic": "Maximum", "Threshold": 900}


def test_delete_markers_notify_the_alert_topic(prod, prod_documents):
    assert prod_documents["backup-alerts/delete-events.json"] == {
        "TopicConfigurations": [{
            "Id": "delete-markers",
            "TopicArn": f"arn:aws:sns:eu-central-1:{ACCOUNT}:backup-alerts",
            "Events": ["s3:ObjectRemoved:DeleteMarkerCreated"]}]}
    notification = prod.named("backup-alerts-delete-events")
    assert notification.inputs["bucket"] == "biometrics-backups"
    assert prod.named("backup-alerts-topic-policy").urn in notification.dependencies
    subscriptions = [(r.inputs["protocol"], r.inputs["endpoint"])
                     for r in prod.of_type("aws:sns/topicSubscription:TopicSubscription")]
    assert subscriptions == [("email", "oncall@biometrics.example")]


def test_shape_conversion_round_trips_every_builder():
    lifecycle = bucket_config.lifecycle(LifecycleSettings())
    replication = bucket_config.replication("role", "arn:aws:s3:::r", "key")
    for document in (lifecycle["Rules"], replication["ReplicationConfiguration"]["Rules"],
                     bucket_config.encryption("key")["ServerSideEncryptionConfiguration"]):
        as_recorded = _camel(bucket_config.to_pulumi_args(document))
        assert bucket_config.from_pulumi_inputs(as_recorded) == document


def _camel(value):
    """What the Pulumi engine records for snake_case Python args: camelCase, floats."""
    if isinstance(value, dict):
        return {k.split("_")[0] + "".join(p.title() for p in k.split("_")[1:]): _camel(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
