"""The ECS placement: `EcsCluster` (declared before `BackupStore`, whose bucket, key and topic
policies name its task roles and its paging rule) and `EcsJobs` (after it: the runtime key,
logs, image repository, secrets, task definitions, schedules, dead-letter queue, alarms and
the exporter's service).

Every document comes from `components.ecs_specs` and `components.ecs_policies`; these
components only wire them to pulumi-aws 7 resources, in the primary region.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from components.backup_containers import RuntimeSecrets
from components.ecs_policies import (
    dead_letter_queue_policy,
    execution_role_policy,
    execution_trust_policy,
    runtime_key_policy,
    scheduler_role_policy,
    scheduler_trust_policy,
    task_role_extras,
    task_trust_policy,
)
from components.ecs_settings import EcsSettings, job_slug
from components.ecs_specs import (
    DEAD_LETTER_RETENTION_SECONDS,
    LOG_GROUP_ROOT,
    SECRET_RECOVERY_DAYS,
    container_definitions,
    dead_letter_alarm_args,
    dead_letter_queue_name,
    ecs_file_sets,
    ecs_jobs,
    ecs_secret_keys,
    exporter_service_names,
    image_reference,
    log_group_name,
    network_configuration,
    outcome_alarm_args,
    outcome_windows,
    role_name,
    runtime_key_alias,
    schedule_args,
    schedule_target,
    secret_name,
    task_definition_args,
    task_failure_pattern,
    task_failures_rule_name,
    task_kinds,
    task_secrets,
    unalarmed_warning,
)
from components.layout import TYPE_PREFIX
from components.policies import to_json
from components.runtime_settings import RuntimeSettings
from components.settings import StackSettings
from contract.layout import ROLE_PURPOSE_TAG

TASK_ROLE_DESCRIPTIONS = {
    "postgres": "ECS tasks: wal-g base backups (the backup host role's S3 and KMS statements)",
    "files": "ECS tasks: restic file-set backups (the backup host role's S3 and KMS statements)",
    "drill": "ECS tasks: restore drills; read-only on the backups, appends drill outcomes",
    "exporter": "ECS service: the Prometheus exporter; read-only on both backup buckets",
}


def _placement(stack: StackSettings) -> tuple[RuntimeSettings, EcsSettings, str]:
    """The runtime, its ECS settings and the region every ECS resource lives in (the
    primary's)."""
    runtime = stack.runtime
    assert runtime is not None and runtime.ecs is not None
    return runtime, runtime.ecs, stack.primary.region


class EcsCluster(pulumi.ComponentResource):
    """The cluster (Container Insights on), the rule that pages on its failed tasks, and a task
    role per task kind placed on ECS with what only a task needs beyond the host roles' S3/KMS
    statements (those come with the buckets, granted beside the host roles)."""

    def __init__(self, name: str, stack: StackSettings, *, account_id: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:EcsCluster", name, None, opts)
        runtime, ecs, region = _placement(stack)
        child = pulumi.ResourceOptions(parent=self)
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster", name=ecs.cluster_name,
            settings=[{"name": "containerInsights", "value": "enabled"}],
            region=region, opts=child)
        self.task_failures = aws.cloudwatch.EventRule(
            f"{name}-task-failures", name=task_failures_rule_name(ecs.cluster_name),
            description=f"Backup tasks of {ecs.cluster_name} that failed or never started",
            event_pattern=self.cluster.arn.apply(
                lambda arn: json.dumps(task_failure_pattern(arn))),
            region=region, opts=child)
        efs_volumes = [f.efs for f in ecs_file_sets(runtime) if f.efs is not None]
        self.task_roles: dict[str, aws.iam.Role] = {}
        for kind in task_kinds(runtime):
            purpose = f"task-{kind}"
            role = aws.iam.Role(
                f"{name}-{purpose}", name=role_name(ecs.cluster_name, purpose),
                description=TASK_ROLE_DESCRIPTIONS[kind],
                assume_role_policy=pulumi.Output.from_input(account_id).apply(
                    lambda account: to_json(task_trust_policy(account, region))),
                tags={ROLE_PURPOSE_TAG: purpose}, opts=child)
            self.task_roles[purpose] = role
            if kind == "exporter":
                continue
            aws.iam.RolePolicy(
                f"{name}-{purpose}-task", role=role.name,
                policy=pulumi.Output.all(account_id, self.cluster.arn).apply(
                    lambda values, kind=kind: to_json(task_role_extras(
                        kind, region=region, account_id=values[0],
                        cluster_name=ecs.cluster_name, cluster_arn=values[1],
                        metrics_namespace=ecs.metrics_namespace, efs_volumes=efs_volumes))),
                opts=child)
        self.register_outputs({
            "clusterArn": self.cluster.arn,
            "taskFailuresRuleArn": self.task_failures.arn,
            "taskRoleArns": {purpose: role.arn for purpose, role in self.task_roles.items()},
        })


class EcsJobs(pulumi.ComponentResource):
    """Everything that runs on the cluster: one task definition per task kind, a schedule and
    an outcome alarm per job, the exporter's service, and what they need."""

    def __init__(self, name: str, stack: StackSettings, *, account_id: pulumi.Input[str],
                 cluster: EcsCluster, alert_topic_arn: pulumi.Input[str],
                 secrets: RuntimeSecrets,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:EcsJobs", name, None, opts)
        runtime, ecs, region = _placement(stack)
        child = pulumi.ResourceOptions(parent=self)
        kinds = task_kinds(runtime)
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"Encrypts the logs, secrets and dead letters of {ecs.cluster_name}",
            enable_key_rotation=True, deletion_window_in_days=30,
            policy=pulumi.Output.from_input(account_id).apply(lambda account: to_json(
                runtime_key_policy(account, region, f"{LOG_GROUP_ROOT}/{ecs.cluster_name}/"))),
            tags=dict(stack.key_tags), region=region, opts=child)
        aws.kms.Alias(f"{name}-key-alias", name=runtime_key_alias(ecs.cluster_name),
                      target_key_id=self.key.key_id, region=region, opts=child)
        log_groups = {kind: aws.cloudwatch.LogGroup(
            f"{name}-{kind}-logs", name=log_group_name(ecs.cluster_name, kind),
            retention_in_days=ecs.log_retention_days, kms_key_id=self.key.arn,
            region=region, opts=child) for kind in kinds}
        # KMS with the account's AWS managed key for ECR: pulls need no key grant of ours.
        self.repository = aws.ecr.Repository(
            f"{name}-image", name=ecs.image_repository, image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS"}],
            region=region, opts=child)
        self.secret_arns = secret_arns = self._secrets(name, stack, secrets, child)
        self.execution_role = aws.iam.Role(
            f"{name}-task-execution", name=role_name(ecs.cluster_name, "task-execution"),
            description="ECS agent: pull the backup image, write its logs, read its secrets",
            assume_role_policy=to_json(execution_trust_policy()),
            tags={ROLE_PURPOSE_TAG: "task-execution"}, opts=child)
        execution_access = aws.iam.RolePolicy(
            f"{name}-task-execution-access", role=self.execution_role.name,
            policy=pulumi.Output.all(self.repository.arn, self.key.arn,
                                     [log_groups[k].arn for k in kinds],
                                     list(secret_arns.values())).apply(
                lambda values: to_json(execution_role_policy(
                    region=region, repository_arn=values[0], key_arn=values[1],
                    log_group_arns=values[2], secret_arns=values[3]))),
            opts=child)
        self.task_definitions = {kind: self._task_definition(
            name, stack, kind, secret_arns, cluster, region,
            pulumi.ResourceOptions(parent=self, depends_on=[execution_access, log_groups[kind]]))
            for kind in kinds}
        self.schedule_names = self._schedules(name, stack, account_id, cluster, region, child)
        aws.cloudwatch.EventTarget(
            f"{name}-task-failures-alert", rule=cluster.task_failures.name,
            target_id="backup-alerts", arn=alert_topic_arn, region=region, opts=child)
        self._alarms(name, stack, alert_topic_arn, region, child)
        self.discovery_service = (self._exporter(name, stack, cluster, region, child)
                                  if "exporter" in kinds else None)
        self.register_outputs({
            "taskDefinitionArns": {k: td.arn for k, td in self.task_definitions.items()},
            "scheduleNames": self.schedule_names,
            "repositoryUrl": self.repository.repository_url,
        })

    def _secrets(self, name: str, stack: StackSettings, secrets: RuntimeSecrets,
                 opts: pulumi.ResourceOptions) -> dict[str, pulumi.Output[str]]:
        """A Secrets Manager secret per runtime secret a task reads, its value the secret
        Output of the stack's config (encrypted in state, never in a task definition)."""
        ecs, region = stack.runtime.ecs, stack.primary.region
        arns = {}
        for key in ecs_secret_keys(stack.runtime):
            child_name = f"{name}-secret-{key.replace('.', '-')}"
            secret = aws.secretsmanager.Secret(
                child_name, name=secret_name(ecs.cluster_name, key),
                description=f"{key} for the ECS backup tasks of {ecs.cluster_name}",
                kms_key_id=self.key.arn, recovery_window_in_days=SECRET_RECOVERY_DAYS,
                region=region, opts=opts)
            aws.secretsmanager.SecretVersion(
                f"{child_name}-value", secret_id=secret.id, secret_string=secrets.values[key],
                region=region, opts=opts)
            arns[key] = secret.arn
        return arns

    def _task_definition(self, name: str, stack: StackSettings, kind: str,
                         secret_arns: dict[str, pulumi.Output[str]], cluster: EcsCluster,
                         region: str, opts: pulumi.ResourceOptions) -> aws.ecs.TaskDefinition:
        keys = [s.file.secret for s in task_secrets(stack.runtime, kind)]

        def containers(values: list[Any]) -> str:
            url, *arns = values
            return json.dumps(container_definitions(
                stack, kind, image=image_reference(url, stack.runtime),
                secret_arns=dict(zip(keys, arns, strict=True)), region=region))

        return aws.ecs.TaskDefinition(
            f"{name}-{kind}-task-definition", **task_definition_args(stack, kind),
            container_definitions=pulumi.Output.all(
                self.repository.repository_url, *(secret_arns[k] for k in keys)).apply(
                    containers),
            task_role_arn=cluster.task_roles[f"task-{kind}"].arn,
            execution_role_arn=self.execution_role.arn, region=region, opts=opts)

    def _schedules(self, name: str, stack: StackSettings, account_id: pulumi.Input[str],
                   cluster: EcsCluster, region: str,
                   opts: pulumi.ResourceOptions) -> list[str]:
        """The schedule group, the dead-letter queue, the scheduler's role and a schedule per
        job placed on ECS."""
        runtime, ecs = stack.runtime, stack.runtime.ecs
        group = aws.scheduler.ScheduleGroup(f"{name}-schedules", name=ecs.cluster_name,
                                            region=region, opts=opts)
        self.dead_letters = aws.sqs.Queue(
            f"{name}-dead-letters", name=dead_letter_queue_name(ecs.cluster_name),
            kms_master_key_id=self.key.arn, kms_data_key_reuse_period_seconds=300,
            message_retention_seconds=DEAD_LETTER_RETENTION_SECONDS, region=region, opts=opts)
        role = aws.iam.Role(
            f"{name}-scheduler", name=role_name(ecs.cluster_name, "scheduler"),
            description="EventBridge Scheduler: start the backup tasks of "
                        f"{ecs.cluster_name}",
            assume_role_policy=pulumi.Output.all(account_id, group.arn).apply(
                lambda values: to_json(scheduler_trust_policy(*values))),
            tags={ROLE_PURPOSE_TAG: "scheduler"}, opts=opts)
        aws.sqs.QueuePolicy(
            f"{name}-dead-letters-policy", queue_url=self.dead_letters.url,
            policy=pulumi.Output.all(self.dead_letters.arn, role.arn).apply(
                lambda values: to_json(dead_letter_queue_policy(*values))),
            region=region, opts=opts)
        jobs = ecs_jobs(runtime)
        job_kinds = list(dict.fromkeys(job.kind for job in jobs))
        passed = [cluster.task_roles[f"task-{kind}"].arn for kind in job_kinds]
        access = aws.iam.RolePolicy(
            f"{name}-scheduler-access", role=role.name,
            policy=pulumi.Output.all(
                cluster.cluster.arn, self.dead_letters.arn, self.key.arn,
                [self.task_definitions[k].arn for k in job_kinds],
                [*passed, self.execution_role.arn]).apply(
                lambda values: to_json(scheduler_role_policy(
                    region=region, cluster_arn=values[0], queue_arn=values[1],
                    key_arn=values[2], task_definition_arns=values[3],
                    passed_role_arns=values[4]))),
            opts=opts)
        scheduled = pulumi.ResourceOptions(parent=self, depends_on=[access])
        names = []
        for job in jobs:
            args = schedule_args(runtime, job, group_name=ecs.cluster_name)
            aws.scheduler.Schedule(
                f"{name}-{job_slug(job)}-schedule", **args,
                target=pulumi.Output.all(cluster.cluster.arn, role.arn, self.dead_letters.arn,
                                         self.task_definitions[job.kind].arn).apply(
                    lambda values, job=job: schedule_target(
                        runtime, job, cluster_arn=values[0], role_arn=values[1],
                        dead_letter_arn=values[2], task_definition_arn=values[3])),
                region=region,
                opts=pulumi.ResourceOptions.merge(scheduled, pulumi.ResourceOptions(
                    depends_on=[group])))
            names.append(args["name"])
        return names

    def _alarms(self, name: str, stack: StackSettings, topic_arn: pulumi.Input[str],
                region: str, opts: pulumi.ResourceOptions) -> None:
        ecs = stack.runtime.ecs
        actions = {"alarm_actions": [topic_arn], "ok_actions": [topic_arn]}
        aws.cloudwatch.MetricAlarm(f"{name}-dead-letters-alarm",
                                   **dead_letter_alarm_args(ecs.cluster_name), **actions,
                                   region=region, opts=opts)
        for window in outcome_windows(stack.runtime):
            if not window.alarmed:
                pulumi.log.warn(unalarmed_warning(window))
                continue
            aws.cloudwatch.MetricAlarm(f"{name}-{job_slug(window.job)}-no-success",
                                       **outcome_alarm_args(ecs, window), **actions,
                                       region=region, opts=opts)

    def _exporter(self, name: str, stack: StackSettings, cluster: EcsCluster, region: str,
                  opts: pulumi.ResourceOptions) -> aws.servicediscovery.Service:
        """One exporter task, registered as an A record in the Cloud Map namespace, which
        Prometheus resolves (`dns_sd_configs`, components/scrape_config.py)."""
        ecs = stack.runtime.ecs
        discovery = ecs.service_discovery
        assert discovery is not None
        registry = aws.servicediscovery.Service(
            f"{name}-exporter-discovery", name=discovery.service_name,
            description="The backup exporter's tasks, for Prometheus dns_sd_configs",
            dns_config={"namespace_id": discovery.namespace_id, "routing_policy": "MULTIVALUE",
                        "dns_records": [{"type": "A", "ttl": 60}]},
            region=region, opts=opts)
        service_name, _ = exporter_service_names(ecs)
        aws.ecs.Service(
            f"{name}-exporter-service", name=service_name, cluster=cluster.cluster.arn,
            task_definition=self.task_definitions["exporter"].arn, desired_count=1,
            launch_type="FARGATE", platform_version="LATEST",
            network_configuration=network_configuration(ecs),
            service_registries={"registry_arn": registry.arn},
            deployment_minimum_healthy_percent=100, deployment_maximum_percent=200,
            region=region, opts=opts)
        return registry
