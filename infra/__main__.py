"""The stack program: read config once, compose the backup store, export what hosts need."""

import pulumi
import pulumi_aws as aws

from components.backup_containers import BackupContainers, read_runtime_secrets
from components.backup_store import BackupStore
from components.container_specs import container_specs
from components.ecs_runtime import EcsCluster, EcsJobs
from components.github_oidc import GitHubOidc
from components.host_outputs import host_settings
from components.organization_guard import OrganizationGuard
from components.program_config import engine_config, read_config

# The whole config, secrets included, is checked before anything is declared; a ConfigError
# is a pulumi.RunError: the engine prints its one line and stops.
config_map, secret_keys = engine_config()
stack_config = read_config(config_map, secret_keys, stack=pulumi.get_stack(),
                           dry_run=pulumi.runtime.is_dry_run())
settings = stack_config.settings
for warning in settings.warnings:
    pulumi.log.warn(warning)
runtime_secrets = read_runtime_secrets(pulumi.Config(), stack_config) if settings.runtime \
    else None

account_id = aws.get_caller_identity_output().account_id
ecs_settings = settings.runtime.ecs if settings.runtime else None
# The ECS placement's cluster, paging rule and task roles come first: the bucket, key and topic
# policies name them.
cluster = EcsCluster("ecs", settings, account_id=account_id) if ecs_settings else None
store = BackupStore("backup", settings, account_id=account_id,
                    task_roles=cluster.task_roles if cluster else None,
                    task_events_rule_arn=cluster.task_failures.arn if cluster else None)

# Buckets, as the hosts and the post-deploy smoke check (delivery/smoke_check.py) need them.
pulumi.export("buckets", {
    purpose: {"bucket": bucket.bucket_name, "region": bucket.region, "keyArn": bucket.key_arn,
              "logBucket": bucket.log_bucket.bucket}
    for purpose, bucket in (("primary", store.primary), ("replica", store.replica)) if bucket
})
pulumi.export("alertTopicArn", store.alerts.topic.arn)
pulumi.export("roleArns", {purpose: role.arn for purpose, role in store.roles.host_roles.items()})
pulumi.export("hosts", host_settings(settings))
# The store's KMS keys: the CI roles and the organization guard name them.
key_arns = [*(b.key_arn for b in (store.primary, store.replica) if b), store.alerts.key.arn]

jobs = EcsJobs("ecs-jobs", settings, account_id=account_id, cluster=cluster,
               alert_topic_arn=store.alerts.topic.arn, secrets=runtime_secrets) \
    if cluster is not None else None
if jobs is not None:
    # What an operator needs to run a job by hand (docs/runtime.md, ECS placement), and the
    # live names and ARNs the smoke check compares (delivery/smoke_check.py).
    pulumi.export("ecs", {
        "clusterArn": cluster.cluster.arn,
        "taskDefinitionArns": {kind: td.arn for kind, td in jobs.task_definitions.items()},
        "scheduleNames": jobs.schedule_names,
        "repositoryUrl": jobs.repository.repository_url,
        "taskRoleArns": {purpose: role.arn for purpose, role in cluster.task_roles.items()},
        "keyArn": jobs.key.arn,
        "secretArns": jobs.secret_arns,
        "deadLetterQueueUrl": jobs.dead_letters.url,
        "taskFailuresRule": cluster.task_failures.name,
    })

if settings.github is not None:
    # The CI roles also name the ECS placement's key and the exporter's Cloud Map service.
    github = GitHubOidc(
        "github", settings, account_id=account_id,
        key_arns=[*key_arns, *([jobs.key.arn] if jobs else [])],
        topic_arn=store.alerts.topic.arn,
        alarm_names=[alarm.name for alarm in store.alerts.alarms],
        discovery_service_arn=jobs.discovery_service.arn
        if jobs and jobs.discovery_service else None,
    )
    pulumi.export("githubRoleArns", {purpose: role.arn for purpose, role in github.roles.items()})

# Rendered for the organization's management account to attach, never deployed (docs/compliance.md).
guard = OrganizationGuard(
    "organization-guard", settings, account_id=account_id, key_arns=key_arns,
    replication_role_arn=store.roles.replication_role.arn if store.roles.replication_role else None,
)
pulumi.export("organizationGuard", guard.documents)

if settings.runtime is not None:
    runtime = BackupContainers(
        "runtime", settings.runtime, container_specs(settings),
        runtime_secrets, build_context=".",
    )
    pulumi.export("backupContainers", {key: c.name for key, c in runtime.containers.items()})
