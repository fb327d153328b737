"""How the stack is composed: components, parents, names, protection, variants."""

from __future__ import annotations

from collections import Counter

from review.recording import PLACEHOLDER_ACCOUNT_ID

COMPONENTS = {
    "backup": ("biometrics:backup:BackupStore", ""),
    "backup-roles": ("biometrics:backup:BackupRoles", "backup"),
    "backup-primary": ("biometrics:backup:BackupBucket", "backup"),
    "backup-replica": ("biometrics:backup:BackupBucket", "backup"),
    "backup-replication": ("biometrics:backup:BucketReplication", "backup"),
    "backup-alerts": ("biometrics:backup:BackupAlerts", "backup"),
    "runtime": ("biometrics:backup:BackupContainers", ""),
    # Rendered for the management account, never deployed: components holding documents.
    "organization-guard": ("biometrics:backup:OrganizationGuard", ""),
    "organization-guard-resource-control-policy": ("biometrics:backup:ResourceControlPolicy",
                                                   "organization-guard"),
    "organization-guard-service-control-policy": ("biometrics:backup:ServiceControlPolicy",
                                                  "organization-guard"),
}


def test_components_and_their_parents(prod):
    components = {r.name: (r.type, r.parent_name if r.parent_name in COMPONENTS else "")
                  for r in prod.resources if not r.custom}
    assert components == COMPONENTS


def test_every_resource_is_a_named_child_of_a_component(prod):
    for resource in prod.resources:
        if resource.custom:
            assert resource.parent_name in COMPONENTS, resource.name
            assert resource.name.startswith(f"{resource.parent_name}-"), resource.name


def test_declared_resource_types(prod):
    counts = Counter(r.type for r in prod.resources if r.custom)
    assert counts == {
        # The two buckets' keys and the alert topic's.
        "aws:kms/key:Key": 3, "aws:kms/alias:Alias": 3,
        "aws:s3/bucket:Bucket": 4,
        "aws:s3/bucketVersioning:BucketVersioning": 4,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 4,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 4,
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 4,
        "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": 2,
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 4,
        "aws:s3/bucketPolicy:BucketPolicy": 4,
        "aws:s3/bucketLogging:BucketLogging": 2,
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig": 1,
        "aws:s3/bucketNotification:BucketNotification": 1,
        "aws:iam/role:Role": 4, "aws:iam/instanceProfile:InstanceProfile": 3,
        "aws:iam/rolePolicy:RolePolicy": 6,
        "aws:sns/topic:Topic": 1, "aws:sns/topicPolicy:TopicPolicy": 1,
        "aws:sns/topicSubscription:TopicSubscription": 1,
        "aws:cloudwatch/metricAlarm:MetricAlarm": 2,
        # The runtime (components/backup_containers.py): two Docker hosts, three containers.
        "pulumi:providers:docker": 2, "docker:index/image:Image": 2,
        "docker:index/volume:Volume": 2, "docker:index/container:Container": 3,
    }


def test_no_deprecated_or_inline_forms(prod):
    deprecated = {"aws:s3/bucketV2:BucketV2", "aws:s3/bucketVersioningV2:BucketVersioningV2",
                  "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2"}
    assert not deprecated & {r.type for r in prod.resources}
    inline = {"versioning", "serverSideEncryptionConfiguration", "lifecycleRules", "policy",
              "replicationConfiguration", "logging", "acl", "grants"}
    for bucket in prod.of_type("aws:s3/bucket:Bucket"):
        assert not inline & set(bucket.inputs), bucket.name
    for role in prod.of_type("aws:iam/role:Role"):
        assert "inlinePolicies" not in role.inputs


def test_prod_protects_buckets_and_keys_and_retains_keys(prod):
    protected = sorted(r.name for r in prod.resources if r.protect)
    assert protected == ["backup-primary-access-logs", "backup-primary-bucket",
                         "backup-primary-key", "backup-replica-access-logs",
                         "backup-replica-bucket", "backup-replica-key"]
    retained = sorted(r.name for r in prod.resources if r.retain_on_delete)
    assert retained == ["backup-primary-key", "backup-replica-key"]


def test_every_regional_resource_names_its_region(prod):
    replica_side = ("backup-replica",)
    for resource in prod.resources:
        if not resource.custom or not resource.type.startswith("aws:") \
                or resource.type.startswith("aws:iam/"):
            continue
        expected = "eu-west-1" if resource.parent_name in replica_side else "eu-central-1"
        assert resource.inputs.get("region") == expected, resource.name


def test_stack_outputs_tell_hosts_what_they_need(prod):
    assert prod.outputs["buckets"] == {
        "primary": {"bucket": "biometrics-backups", "region": "eu-central-1",
                    "logBucket": "biometrics-backups-access-logs",
                    "keyArn": prod.outputs["buckets"]["primary"]["keyArn"]},
        "replica": {"bucket": "biometrics-backups-replica", "region": "eu-west-1",
                    "logBucket": "biometrics-backups-replica-access-logs",
                    "keyArn": prod.outputs["buckets"]["replica"]["keyArn"]},
    }
    assert prod.outputs["buckets"]["primary"]["keyArn"].startswith(
        f"arn:aws:kms:eu-central-1:{PLACEHOLDER_ACCOUNT_ID}:key/")
    assert prod.outputs["buckets"]["replica"]["keyArn"].startswith(
        f"arn:aws:kms:eu-west-1:{PLACEHOLDER_ACCOUNT_ID}:key/")
    assert prod.outputs["roleArns"] == {
        purpose: f"arn:aws:iam::{PLACEHOLDER_ACCOUNT_ID}:role/{name}"
        for purpose, name in (("backup", "backup-server"), ("restore", "restore-server"),
                              ("wal_archiver", "wal-archiver"))}
    assert prod.outputs["hosts"] == {
        "databaseHosts": {
            "instanceProfile": "wal-archiver",
            "environment": {"WALG_S3_PREFIX": "s3://biometrics-backups/postgres/<database>",
                            "AWS_REGION": "eu-central-1"},
            "postgresql.conf": {"archive_mode": "on", "archive_command": "wal-g wal-push %p",
                                "archive_timeout": "60s"},
        },
        "backupHosts": {
            "instanceProfile": "backup-server",
            "environment": {
                "WALG_S3_PREFIX": "s3://biometrics-backups/postgres/<database>",
                "AWS_REGION": "eu-central-1",
                "RESTIC_REPOSITORY":
                    "s3:https://s3.eu-central-1.amazonaws.com/biometrics-backups/restic",
                "AWS_DEFAULT_REGION": "eu-central-1",
            },
        },
        "restoreHost": {"instanceProfile": "restore-server",
                        "replica": {"bucket": "biometrics-backups-replica",
                                    "region": "eu-west-1"}},
        "imds": {"httpTokens": "required", "httpPutResponseHopLimit": 2},
    }


def test_replication_off_declares_no_replica_and_no_replication_role(stack_run):
    run = stack_run("prod", {"replica": {"enabled": False}})
    names = {r.name for r in run.resources}
    assert not {n for n in names if "replica" in n or "replication" in n}
    assert run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") == []
    assert list(run.outputs["buckets"]) == ["primary"]


def test_object_lock_off_declares_no_lock_configuration(stack_run):
    run = stack_run("prod", {"objectLock": {"enabled": False},
                             "lifecycle": {"tiers": [{"prefix": "temp/", "expirationDays": 9}]}})
    assert run.of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration") == []
    assert run.named("backup-primary-bucket").inputs["objectLockEnabled"] is False


def test_governance_mode_and_protect_off_for_other_stacks(stack_run):
    run = stack_run("prod", {"objectLock": {"mode": "GOVERNANCE", "days": 7}, "protect": False})
    lock = run.named("backup-primary-object-lock").inputs["rule"]["defaultRetention"]
    assert (lock["mode"], lock["days"]) == ("GOVERNANCE", 7)
    assert [r.name for r in run.resources if r.protect] == []


def test_every_nested_argument_is_one_pulumi_aws_knows(prod):
    """The SDK camel-cases only the property names in its schema; an unknown (misspelled)
    snake_case key would reach the recorded inputs unchanged."""

    def keys(value):
        if isinstance(value, dict):
            for key, item in value.items():
                yield key
                yield from keys(item)
        elif isinstance(value, list):
            for item in value:
                yield from keys(item)

    for resource in prod.resources:
        if resource.custom:
            unknown = [k for k in keys(resource.inputs) if "_" in k]
            assert unknown == [], resource.name
