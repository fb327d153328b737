"""BackupRoles: the IAM roles around the backup store, with trust policies only.

Their permissions are declared per bucket (BackupBucket's role policies), after the buckets and
keys exist; the roles come first because bucket and key policies name them.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components import policies
from components.layout import TYPE_PREFIX
from components.policies import to_json
from components.settings import RoleSettings
from contract.layout import ROLE_PURPOSE_TAG

# Role purposes, as a platform engineer reads them in the IAM console.
ROLE_DESCRIPTIONS = {
    "backup": "Backup hosts: wal-g base and restic backups; write and prune current objects",
    "restore": "Restore host: restores, drills and monitoring; read-only on both backup buckets",
    "wal_archiver": "Database hosts: wal-g wal-push from archive_command; write-only on WAL",
}
# The purpose each role is tagged with (contract.layout.ROLE_PURPOSES), by its settings field.
ROLE_PURPOSES = {"backup": "backup", "restore": "restore", "wal_archiver": "wal-archiver",
                 "replication": "replication"}


class BackupRoles(pulumi.ComponentResource):
    """Instance-profile roles for backup, restore and WAL archiving, and the replication role."""

    def __init__(self, name: str, roles: RoleSettings, *, account_id: pulumi.Input[str],
                 replication_source_arn: str | None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:BackupRoles", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.host_roles: dict[str, aws.iam.Role] = {}
        self.instance_profiles: dict[str, aws.iam.InstanceProfile] = {}
        for purpose, description in ROLE_DESCRIPTIONS.items():
            role_name = getattr(roles, purpose)
            role = aws.iam.Role(
                f"{name}-{role_name}",
                name=role_name,
                description=description,
                assume_role_policy=to_json(policies.ec2_trust_policy()),
                tags={ROLE_PURPOSE_TAG: ROLE_PURPOSES[purpose]},
                opts=child,
            )
            self.host_roles[purpose] = role
            self.instance_profiles[purpose] = aws.iam.InstanceProfile(
                f"{name}-{role_name}-profile", name=role_name, role=role.name, opts=child
            )
        self.replication_role = None
        if replication_source_arn is not None:
            self.replication_role = aws.iam.Role(
                f"{name}-{roles.replication}",
                name=roles.replication,
                description=f"S3 replication of {replication_source_arn}",
                assume_role_policy=pulumi.Output.from_input(account_id).apply(
                    lambda account: to_json(policies.replication_trust_policy(
                        account, replication_source_arn))
                ),
                tags={ROLE_PURPOSE_TAG: ROLE_PURPOSES["replication"]},
                opts=child,
            )
        self.register_outputs({
            "roleArns": {purpose: role.arn for purpose, role in self.host_roles.items()},
            "instanceProfileArns": {
                purpose: profile.arn for purpose, profile in self.instance_profiles.items()
            },
        })
