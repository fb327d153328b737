"""BackupStore: the whole storage-and-access side of the backup system, from typed settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

import pulumi
import pulumi_aws as aws

from components import policies
from components.alerts import BackupAlerts, ReplicationWatch
from components.backup_bucket import BackupBucket, BackupBucketArgs, RoleGrant
from components.backup_roles import BackupRoles
from components.layout import TYPE_PREFIX
from components.policies import Access, BucketRef
from components.replication import BucketReplication
from components.settings import BucketSettings, StackSettings


class BackupStore(pulumi.ComponentResource):
    """Roles first (bucket and key policies name them), then the primary and replica buckets
    with each role's access, then replication and the alerts that watch it.

    With the ECS placement (`EcsCluster`, declared before), `task_roles` by purpose
    (task-postgres, ...) get the statements of the host role doing the same work, as
    Principals beside it, and `task_events_rule_arn` may publish to the alert topic."""

    def __init__(self, name: str, settings: StackSettings, *, account_id: pulumi.Input[str],
                 task_roles: Mapping[str, aws.iam.Role] | None = None,
                 task_events_rule_arn: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:BackupStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The roles come before the buckets (bucket and key policies name them): the trust
        # policy names the primary by its configured name.
        primary_arn = policies.bucket_arn(settings.primary.bucket_name)
        self.roles = BackupRoles(
            f"{name}-roles", settings.roles, account_id=account_id,
            replication_source_arn=primary_arn if settings.replica else None, opts=child,
        )
        host = self.roles.host_roles

        def grant(purpose: str, role: aws.iam.Role,
                  access: Callable[[BucketRef], Access]) -> RoleGrant:
            return RoleGrant(purpose, role.name, role.arn, access)

        backup_access = partial(policies.backup_server_access, keep=settings.keep)
        drill_access = partial(policies.restore_server_access, records_outcomes=True)
        primary_grants = [
            grant("backup", host["backup"], backup_access),
            grant("wal-archiver", host["wal_archiver"], policies.wal_archiver_access),
            grant("restore", host["restore"], drill_access),
        ]
        replica_grants = [grant("restore", host["restore"], policies.restore_server_access)]
        if self.roles.replication_role is not None:
            replication = self.roles.replication_role
            primary_grants.append(
                grant("replication", replication, policies.replication_source_access))
            replica_grants.append(
                grant("replication", replication, policies.replication_destination_access))
        # The backup jobs write as the backup host does, the drill records its outcome as the
        # restore host does; the exporter only reads (both buckets, like the restore host).
        tasks = task_roles or {}
        primary_grants += [grant(purpose, tasks[purpose], access) for purpose, access in (
            ("task-postgres", backup_access), ("task-files", backup_access),
            ("task-drill", drill_access), ("task-exporter", policies.restore_server_access),
        ) if purpose in tasks]
        replica_grants += [grant(purpose, tasks[purpose], policies.restore_server_access)
                           for purpose in ("task-drill", "task-exporter") if purpose in tasks]

        def bucket(component: str, bucket_settings: BucketSettings, grants: list[RoleGrant],
                   replicated_by: pulumi.Input[str] | None = None) -> BackupBucket:
            return BackupBucket(
                f"{name}-{component}",
                BackupBucketArgs(
                    bucket=bucket_settings,
                    object_lock=settings.object_lock,
                    lifecycle=settings.lifecycle,
                    access_log_days=settings.access_log_days,
                    account_id=account_id,
                    grants=grants,
                    break_glass_arn=settings.roles.break_glass_arn,
                    keep=settings.keep,
                    key_tags=settings.key_tags,
                    protect=settings.protect,
                    replicated_by=replicated_by,
                ),
                opts=child,
            )

        self.primary = bucket("primary", settings.primary, primary_grants)
        self.replica = None
        watch = None
        if settings.replica is not None:
            self.replica = bucket("replica", settings.replica, replica_grants,
                                  replicated_by=self.roles.replication_role.arn)
            replication_config = BucketReplication(
                f"{name}-replication", source=self.primary, replica=self.replica,
                role_arn=self.roles.replication_role.arn, opts=child,
            )
            watch = ReplicationWatch(settings.primary.bucket_name,
                                     settings.replica.bucket_name, replication_config.rule_id)
        self.alerts = BackupAlerts(
            f"{name}-alerts", settings.alerts, account_id=account_id,
            region=settings.primary.region, bucket_name=self.primary.bucket_name,
            bucket_arn=self.primary.bucket_arn, replication=watch, key_tags=settings.key_tags,
            events_rule_arn=task_events_rule_arn, opts=child,
        )
        self.register_outputs({
            "primaryBucket": self.primary.bucket_name,
            "replicaBucket": self.replica.bucket_name if self.replica else None,
            "alertTopicArn": self.alerts.topic.arn,
        })
