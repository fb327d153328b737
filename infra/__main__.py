"""The stack program: read config once, compose the backup store, export what hosts need."""

import pulumi
import pulumi_aws as aws

from components.backup_store import BackupStore
from components.host_outputs import host_settings
from components.settings import CONFIG_KEYS, parse_settings

config = pulumi.Config()
settings = parse_settings(
    {key: config.get(key) for key in CONFIG_KEYS if config.get(key) is not None},
    stack=pulumi.get_stack(),
)
for warning in settings.warnings:
    pulumi.log.warn(warning)

store = BackupStore(
    "backup", settings, account_id=aws.get_caller_identity_output().account_id
)

pulumi.export("primaryBucket", store.primary.bucket_name)
pulumi.export("primaryKeyArn", store.primary.key_arn)
pulumi.export("replicaBucket", store.replica.bucket_name if store.replica else None)
pulumi.export("replicaKeyArn", store.replica.key_arn if store.replica else None)
pulumi.export("alertTopicArn", store.alerts.topic.arn)
pulumi.export("roleArns", {purpose: role.arn for purpose, role in store.roles.host_roles.items()})
pulumi.export("hosts", host_settings(settings))
