"""BackupBucket: a KMS key, a locked and versioned bucket, its policy, lifecycle and access logs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import bucket_config, policies
from components.layout import TYPE_PREFIX
from components.policies import Access, BucketDocuments, BucketRef, RoleAccess, to_json
from components.settings import (
    BucketSettings,
    KeepSettings,
    LifecycleSettings,
    ObjectLockSettings,
)
from contract.layout import BUCKET_ROLE_TAG


@dataclass(frozen=True)
class RoleGrant:
    """A role's access to a bucket, by purpose: the role's name and ARN (BackupRoles' outputs)
    and the builder of its statements."""

    purpose: str
    role_name: pulumi.Input[str]
    role_arn: pulumi.Input[str]
    access: Callable[[BucketRef], Access]


@dataclass(frozen=True)
class BackupBucketArgs:
    bucket: BucketSettings
    object_lock: ObjectLockSettings
    lifecycle: LifecycleSettings
    access_log_days: int
    account_id: pulumi.Input[str]
    grants: Sequence[RoleGrant]
    break_glass_arn: str | None
    keep: KeepSettings
    key_tags: Mapping[str, str]
    protect: bool
    # A replica: the replication role, the only principal that may write its objects.
    replicated_by: pulumi.Input[str] | None = None


class BackupBucket(pulumi.ComponentResource):
    """One region's backup bucket. Declared twice: the primary and its replica."""

    def __init__(self, name: str, args: BackupBucketArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:BackupBucket", name, None, opts)
        region = args.bucket.region
        child = pulumi.ResourceOptions(parent=self)
        guarded = pulumi.ResourceOptions(parent=self, protect=args.protect)
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"Encrypts the backups in s3://{args.bucket.bucket_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            # Built before the key exists: the key policy names the key as "*".
            policy=self._documents(args, policies.KEY_POLICY_SELF).apply(
                lambda documents: to_json(documents.key_policy)),
            tags=dict(args.key_tags),
            region=region,
            # Destroying the stack must not crypto-shred backups Object Lock still keeps.
            opts=pulumi.ResourceOptions.merge(guarded, pulumi.ResourceOptions(
                retain_on_delete=True)),
        )
        aws.kms.Alias(f"{name}-key-alias", name=f"alias/{args.bucket.bucket_name}",
                      target_key_id=self.key.key_id, region=region, opts=child)

        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket.bucket_name,
            object_lock_enabled=args.object_lock.enabled,
            region=region,
            tags={BUCKET_ROLE_TAG: "backup"},
            opts=guarded,
        )
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration=bucket_config.to_pulumi_args(bucket_config.versioning()),
            region=region,
            opts=child,
        )
        public_access_block = self._harden(
            name, self.bucket, region, child,
            encryption=self.key.arn.apply(bucket_config.encryption))
        if args.object_lock.enabled:
            lock = bucket_config.object_lock(args.object_lock)["ObjectLockConfiguration"]
            aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock",
                bucket=self.bucket.id,
                object_lock_enabled=lock["ObjectLockEnabled"],
                rule=bucket_config.to_pulumi_args(lock["Rule"]),
                region=region,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]),
            )
        self._lifecycle(f"{name}-lifecycle", self.bucket, self.versioning,
                        bucket_config.lifecycle(args.lifecycle), region)

        documents = self._documents(args, self.key.arn)
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=self.bucket.id,
            policy=documents.apply(lambda d: to_json(d.bucket_policy)),
            region=region,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access_block]),
        )
        for grant in args.grants:
            aws.iam.RolePolicy(
                f"{name}-{grant.purpose}-access",
                role=grant.role_name,
                policy=documents.apply(
                    lambda d, purpose=grant.purpose: to_json(d.role_policies[purpose])),
                opts=child,
            )
        self.log_bucket = self._access_logs(name, args, region, guarded, child)

        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.arn
        self.key_arn = self.key.arn
        self.region = region
        self.register_outputs({
            "bucketName": self.bucket_name,
            "bucketArn": self.bucket_arn,
            "keyArn": self.key_arn,
            "region": region,
            "logBucketName": self.log_bucket.bucket,
        })

    @staticmethod
    def _documents(args: BackupBucketArgs,
                   key_arn: pulumi.Input[str]) -> pulumi.Output[BucketDocuments]:
        """The bucket's policy documents once the key ARN and the role ARNs are known."""
        def build(values: list[Any]) -> BucketDocuments:
            key, account_id, replicated_by, *role_arns = values
            return policies.bucket_documents(
                BucketRef(args.bucket.bucket_name, args.bucket.region, key),
                account_id,
                [RoleAccess(grant.purpose, arn, grant.access)
                 for grant, arn in zip(args.grants, role_arns, strict=True)],
                args.break_glass_arn,
                max_retention_days=args.keep.max_days,
                replicated_by=replicated_by,
            )

        return pulumi.Output.all(key_arn, args.account_id, args.replicated_by,
                                 *(grant.role_arn for grant in args.grants)).apply(build)

    def _harden(self, name: str, bucket: aws.s3.Bucket, region: str,
                opts: pulumi.ResourceOptions, *,
                encryption: pulumi.Input[dict[str, Any]]) -> aws.s3.BucketPublicAccessBlock:
        """Encryption, all four public-access-block flags, and ACLs off (BucketOwnerEnforced)."""
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=pulumi.Output.from_input(encryption).apply(
                lambda doc: bucket_config.to_pulumi_args(
                    doc["ServerSideEncryptionConfiguration"]["Rules"])
            ),
            region=region,
            opts=opts,
        )
        block = bucket_config.public_access_block()["PublicAccessBlockConfiguration"]
        public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block", bucket=bucket.id,
            **bucket_config.to_pulumi_args(block), region=region, opts=opts,
        )
        ownership = bucket_config.ownership_controls()["OwnershipControls"]["Rules"][0]
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket.id, rule=bucket_config.to_pulumi_args(ownership),
            region=region, opts=opts,
        )
        return public_access_block

    def _lifecycle(self, resource_name: str, bucket: aws.s3.Bucket,
                   versioning: aws.s3.BucketVersioning, document: dict[str, Any],
                   region: str) -> None:
        aws.s3.BucketLifecycleConfiguration(
            resource_name,
            bucket=bucket.id,
            rules=bucket_config.to_pulumi_args(document["Rules"]),
            transition_default_minimum_object_size=document["TransitionDefaultMinimumObjectSize"],
            region=region,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )

    def _access_logs(self, name: str, args: BackupBucketArgs, region: str,
                     guarded: pulumi.ResourceOptions,
                     child: pulumi.ResourceOptions) -> aws.s3.Bucket:
        """Server access logs go to a bucket of their own in the same region (S3.9): a bucket
        with Object Lock default retention cannot be a log target."""
        log_name = f"{name}-access-logs"
        log_bucket = aws.s3.Bucket(log_name, bucket=args.bucket.log_bucket_name, region=region,
                                   tags={BUCKET_ROLE_TAG: "log"}, opts=guarded)
        versioning = aws.s3.BucketVersioning(
            f"{log_name}-versioning", bucket=log_bucket.id,
            versioning_configuration=bucket_config.to_pulumi_args(bucket_config.versioning()),
            region=region, opts=child,
        )
        public_access_block = self._harden(log_name, log_bucket, region, child,
                                           encryption=bucket_config.access_log_encryption())
        self._lifecycle(f"{log_name}-lifecycle", log_bucket, versioning,
                        bucket_config.access_log_lifecycle(args.access_log_days), region)
        log_bucket_arn = policies.bucket_arn(args.bucket.log_bucket_name)
        source_arn = policies.bucket_arn(args.bucket.bucket_name)
        aws.s3.BucketPolicy(
            f"{log_name}-policy",
            bucket=log_bucket.id,
            policy=pulumi.Output.from_input(args.account_id).apply(
                lambda account_id: to_json(policies.log_bucket_policy(
                    log_bucket_arn, source_arn, account_id, bucket_config.LOG_PREFIX))
            ),
            region=region,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access_block]),
        )
        target = bucket_config.logging(args.bucket.log_bucket_name)["LoggingEnabled"]
        aws.s3.BucketLogging(
            f"{name}-logging",
            bucket=self.bucket.id,
            target_bucket=log_bucket.bucket,
            target_prefix=target["TargetPrefix"],
            region=region,
            opts=child,
        )
        return log_bucket
