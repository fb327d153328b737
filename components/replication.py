"""BucketReplication: cross-region replication of the primary bucket into its replica."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components import bucket_config
from components.backup_bucket import BackupBucket
from components.layout import TYPE_PREFIX


class BucketReplication(pulumi.ComponentResource):
    def __init__(self, name: str, *, source: BackupBucket, replica: BackupBucket,
                 role_arn: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:BucketReplication", name, None, opts)
        document = pulumi.Output.all(role_arn, replica.bucket_arn, replica.key_arn).apply(
            lambda values: bucket_config.replication(*values)["ReplicationConfiguration"]
        )
        self.rule_id = bucket_config.REPLICATION_RULE_ID
        self.configuration = aws.s3.BucketReplicationConfig(
            f"{name}-configuration",
            bucket=source.bucket.id,
            role=document["Role"],
            rules=document["Rules"].apply(bucket_config.to_pulumi_args),
            region=source.region,
            # Both sides must be versioned before S3 accepts the configuration.
            opts=pulumi.ResourceOptions(parent=self,
                                        depends_on=[source.versioning, replica.versioning]),
        )
        self.register_outputs({"ruleId": self.rule_id})
