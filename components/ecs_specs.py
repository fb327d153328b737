"""Pure builders for the ECS placement: what runs where, each task kind's agent settings and
container definition, the schedules, the paging rule's event pattern and the alarms.

Plain data from typed settings; `EcsCluster` and `EcsJobs` only wire it to pulumi-aws. A task
definition per task kind (`TASK_KINDS`) runs every job of that kind placed on ECS; each
schedule names its job in the command override. Secrets appear here only as config keys,
environment variable names and the paths the agent writes them to.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from components.container_specs import (
    AGENT_UID,
    SecretFile,
    agent_database,
    agent_file_set,
    database_secret,
    restic_secret,
    storage,
    webhook_secret,
)
from components.ecs_settings import TASK_KINDS, EcsSettings, job_slug, schedule_name
from components.runtime_settings import RuntimeDatabase, RuntimeFileSet, RuntimeSettings
from components.scheduler_cron import scheduler_cron
from components.settings import StackSettings
from contract import agent_settings, schedule
from contract.agent_settings import SETTINGS_VARIABLE, AgentSettings, SecretVariable, TaskRuntime
from contract.jobs import DRILL, Job, database_job, files_job
from contract.tasks import JOB_DIMENSION, OUTCOME_METRIC, SCRATCH_DIR, SKIPPED_EXIT, task_group

CONTAINER_NAME: Final = "backup-agent"
# The image's entry point without its --settings file: a task reads BACKUP_AGENT_SETTINGS. With
# an entry point set, Docker ignores the image's CMD, so a task started without a command
# override prints the usage and exits non-zero (and pages) instead of starting a scheduler.
ENTRY_POINT: Final = ("backup-agent",)
SCRATCH_VOLUME: Final = "scratch"
TASK_SECRETS_DIR: Final = f"{SCRATCH_DIR}/secrets"
TASK_STATE_DIR: Final = f"{SCRATCH_DIR}/state"
TASK_TMP_DIR: Final = f"{SCRATCH_DIR}/tmp"
SECRET_VARIABLE_PREFIX: Final = "BACKUP_AGENT_SECRET_"
LOG_GROUP_ROOT: Final = "/biometrics-backup"
# PutMetricAlarm: Period x EvaluationPeriods may not exceed seven days (604,800 s).
ALARM_PERIOD_SECONDS: Final = 3600
MAX_ALARM_PERIODS: Final = 7 * 24 * 3600 // ALARM_PERIOD_SECONDS
# A deleted secret (a database removed from the runtime) can be restored for this long.
SECRET_RECOVERY_DAYS: Final = 7
# SQS keeps a message at most 14 days: what the schedules could not deliver, kept that long.
DEAD_LETTER_RETENTION_SECONDS: Final = 14 * 24 * 3600


# --- what is placed on ECS -----------------------------------------------------------------


def ecs_databases(runtime: RuntimeSettings) -> tuple[RuntimeDatabase, ...]:
    return tuple(d for d in runtime.databases if d.host is None)


def ecs_file_sets(runtime: RuntimeSettings) -> tuple[RuntimeFileSet, ...]:
    return tuple(f for f in runtime.file_sets if f.host is None)


def ecs_jobs(runtime: RuntimeSettings) -> tuple[Job, ...]:
    """Every job placed on ECS: a schedule, an outcome alarm and a task group each."""
    jobs = [database_job(d.name) for d in ecs_databases(runtime)]
    jobs += [files_job(f.name) for f in ecs_file_sets(runtime)]
    return (*jobs, DRILL) if runtime.drill_host is None else tuple(jobs)


def task_kinds(runtime: RuntimeSettings) -> tuple[str, ...]:
    """The task kinds with anything on ECS, in `TASK_KINDS` order: one task definition and one
    task role each."""
    placed = {job.kind for job in ecs_jobs(runtime)}
    if runtime.exporter_host is None:
        placed.add("exporter")
    return tuple(kind for kind in TASK_KINDS if kind in placed)


def job_schedule(runtime: RuntimeSettings, job: Job) -> str:
    if job.kind == "postgres":
        return next(d.schedule for d in runtime.databases if d.name == job.name)
    if job.kind == "files":
        return next(f.schedule for f in runtime.file_sets if f.name == job.name)
    return runtime.drill_schedule


def job_command(job: Job) -> tuple[str, ...]:
    """The agent's one-shot command for a job (the schedule's container override). The drill
    restores from every bucket: the replica's restore is the failover drill."""
    return ("drill", "--target", "all") if job.kind == "drill" \
        else ("run", job.kind, str(job.name))


# --- secrets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskSecret:
    """A runtime secret as a task gets it: ECS puts the Secrets Manager secret into `variable`,
    the agent writes it to `file.path` and drops the variable."""

    variable: str
    file: SecretFile


def secret_variable(config_key: str) -> str:
    """resticPassword → BACKUP_AGENT_SECRET_RESTIC_PASSWORD, databasePasswords.db-1 →
    BACKUP_AGENT_SECRET_DB_DB_1, webhookUrl → BACKUP_AGENT_SECRET_WEBHOOK_URL."""
    name, _, database = config_key.partition(".")
    suffix = {"resticPassword": "RESTIC_PASSWORD", "webhookUrl": "WEBHOOK_URL"}.get(name) \
        or "DB_" + database.upper().replace("-", "_")
    return SECRET_VARIABLE_PREFIX + suffix


def task_secrets(runtime: RuntimeSettings, kind: str) -> tuple[TaskSecret, ...]:
    """What each kind reads: the backups their databases' passwords or the restic password,
    the drill the restic password (it restores every file set); all but the exporter the
    webhook URL. The exporter reads object listings only."""
    files: list[SecretFile] = []
    if kind == "postgres":
        files += [database_secret(d.name, TASK_SECRETS_DIR) for d in ecs_databases(runtime)]
    if kind == "files" or (kind == "drill" and runtime.file_sets):
        files.append(restic_secret(TASK_SECRETS_DIR))
    if kind != "exporter" and runtime.webhook:
        files.append(webhook_secret(TASK_SECRETS_DIR))
    return tuple(TaskSecret(secret_variable(f.secret), f) for f in files)


def ecs_secret_keys(runtime: RuntimeSettings) -> tuple[str, ...]:
    """Every config key a task reads, once: one Secrets Manager secret each."""
    keys = [s.file.secret for kind in task_kinds(runtime) for s in task_secrets(runtime, kind)]
    return tuple(dict.fromkeys(keys))


def secret_name(cluster_name: str, config_key: str) -> str:
    """<cluster>/resticPassword, <cluster>/databasePasswords/<db>, <cluster>/webhookUrl."""
    return f"{cluster_name}/{config_key.replace('.', '/')}"


# --- the agent's settings and the container --------------------------------------------------


def task_agent_settings(stack: StackSettings, kind: str) -> AgentSettings:
    """What `backup-agent` runs with in a task of `kind`: the backups every job of their kind
    placed on ECS, the drill and the exporter every database and file set (as on the restore
    host); state on the task's scratch space."""
    runtime, ecs = stack.runtime, _ecs(stack)
    secrets = task_secrets(runtime, kind)
    paths = {s.file.secret: s.file.path for s in secrets}
    backup = kind in ("postgres", "files")
    databases = ecs_databases(runtime) if kind == "postgres" else \
        () if kind == "files" else runtime.databases
    file_sets = ecs_file_sets(runtime) if kind == "files" else \
        () if kind == "postgres" else runtime.file_sets
    jobs = {"postgres": [database_job(d.name).id for d in databases],
            "files": [files_job(f.name).id for f in file_sets],
            "drill": [DRILL.id], "exporter": []}[kind]
    return AgentSettings(
        role="backup" if backup else "restore",
        primary=storage(stack.primary),
        replica=storage(stack.replica) if stack.replica is not None and not backup else None,
        databases=tuple(agent_database(d, paths.get(database_secret(d.name).secret))
                        for d in databases),
        file_sets=tuple(agent_file_set(f) for f in file_sets),
        jobs=tuple(jobs),
        drill_schedule=runtime.drill_schedule if kind in ("drill", "exporter") else None,
        restic_password_file=paths.get(restic_secret().secret),
        webhook_url_file=paths.get(webhook_secret().secret),
        state_dir=TASK_STATE_DIR,
        retry=agent_settings.Retry(attempts=runtime.retry_attempts,
                                   delay_seconds=runtime.retry_delay_seconds),
        kept_backups=agent_settings.KeptBackups(protection=stack.keep.protection,
                                                max_days=stack.keep.max_days)
        if backup else None,
        metrics_port=runtime.metrics_port,
        task=TaskRuntime(cluster=ecs.cluster_name, metrics_namespace=ecs.metrics_namespace,
                         secrets=tuple(SecretVariable(s.variable, s.file.path)
                                       for s in secrets)),
    )


def _ecs(stack: StackSettings) -> EcsSettings:
    assert stack.runtime is not None and stack.runtime.ecs is not None
    return stack.runtime.ecs


# --- names (the components create these; the CI roles' policies name them too) -------------


def log_group_name(cluster_name: str, kind: str) -> str:
    return f"{LOG_GROUP_ROOT}/{cluster_name}/{kind}"


def role_name(cluster_name: str, purpose: str) -> str:
    """An ECS role (`contract.layout.ECS_ROLE_PURPOSES`): `<cluster>-task-postgres`, ...,
    `<cluster>-task-execution`, `<cluster>-scheduler`."""
    return f"{cluster_name}-{purpose}"


def task_family(cluster_name: str, kind: str) -> str:
    return f"{cluster_name}-{kind}"


def task_failures_rule_name(cluster_name: str) -> str:
    return f"{cluster_name}-task-failures"


def runtime_key_alias(cluster_name: str) -> str:
    return f"alias/{cluster_name}-runtime"


def alarm_name(cluster_name: str, what: str) -> str:
    """Every alarm of the ECS placement is named `<cluster>.<what>`: a cluster name has no dot
    (ECS allows letters, digits, - and _), so `<cluster>.*` names this cluster's alarms and no
    other's (not those of a cluster `<cluster>-staging`)."""
    return f"{cluster_name}.{what}"


def image_reference(repository_url: str, runtime: RuntimeSettings) -> str:
    """`<repository>@<digest>` where the digest is configured (required in prod), else the tag
    of `runtime.image` in the stack's repository."""
    ecs = runtime.ecs
    assert ecs is not None
    if ecs.image_digest is not None:
        return f"{repository_url}@{ecs.image_digest}"
    _, colon, tag = runtime.image.rpartition(":")
    return f"{repository_url}:{tag if colon and '/' not in tag else 'latest'}"


def efs_volume_name(file_set: RuntimeFileSet) -> str:
    return f"efs-{file_set.name}"


def task_volumes(runtime: RuntimeSettings, kind: str) -> list[dict[str, Any]]:
    """pulumi-aws `volumes`: the scratch space (no host path: on Fargate a bind mount on the
    task's ephemeral storage) and, for the files kind, each file set's EFS access point with
    transit encryption and IAM authorisation."""
    volumes: list[dict[str, Any]] = [{"name": SCRATCH_VOLUME}]
    if kind == "files":
        volumes += [{
            "name": efs_volume_name(f),
            "efs_volume_configuration": {
                "file_system_id": f.efs.file_system_id,
                "transit_encryption": "ENABLED",
                "authorization_config": {"access_point_id": f.efs.access_point_id,
                                         "iam": "ENABLED"},
            },
        } for f in ecs_file_sets(runtime) if f.efs is not None]
    return volumes


def container_definitions(stack: StackSettings, kind: str, *, image: str,
                          secret_arns: Mapping[str, str], region: str) -> list[dict[str, Any]]:
    """The task definition's one container, in the ECS API's shape (`containerDefinitions`):
    read-only root, the image's non-root user, no privileges and every capability dropped;
    the settings document and TMPDIR in its environment, the secrets by `valueFrom`, logs to
    the kind's log group. Only the exporter has a command (a service takes no override)."""
    runtime, ecs = stack.runtime, _ecs(stack)
    settings_json = json.dumps(agent_settings.document(task_agent_settings(stack, kind)),
                               sort_keys=True, separators=(",", ":"))
    mounts = [{"sourceVolume": SCRATCH_VOLUME, "containerPath": SCRATCH_DIR, "readOnly": False}]
    if kind == "files":
        mounts += [{"sourceVolume": efs_volume_name(f), "containerPath": f.efs.mount_path,
                    "readOnly": True} for f in ecs_file_sets(runtime) if f.efs is not None]
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        "essential": True,
        "entryPoint": list(ENTRY_POINT),
        "user": f"{AGENT_UID}:{AGENT_UID}",
        "readonlyRootFilesystem": True,
        "privileged": False,
        "linuxParameters": {"capabilities": {"drop": ["ALL"]}, "initProcessEnabled": True},
        "environment": [{"name": SETTINGS_VARIABLE, "value": settings_json},
                        {"name": "TMPDIR", "value": TASK_TMP_DIR}],
        "secrets": [{"name": s.variable, "valueFrom": secret_arns[s.file.secret]}
                    for s in task_secrets(runtime, kind)],
        "mountPoints": mounts,
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": log_group_name(ecs.cluster_name, kind),
            "awslogs-region": region,
            "awslogs-stream-prefix": kind,
        }},
    }
    if kind == "exporter":
        container["command"] = ["exporter"]
        container["portMappings"] = [{"containerPort": runtime.metrics_port, "protocol": "tcp"}]
    return [container]


def task_definition_args(stack: StackSettings, kind: str) -> dict[str, Any]:
    """The task definition's arguments that depend on settings alone (pulumi-aws names)."""
    ecs = _ecs(stack)
    size = ecs.task_sizes[kind]
    return {
        "family": task_family(ecs.cluster_name, kind),
        "requires_compatibilities": ["FARGATE"],
        "network_mode": "awsvpc",
        "cpu": str(size.cpu),
        "memory": str(size.memory_mib),
        "ephemeral_storage": {"size_in_gib": size.ephemeral_storage_gib},
        "runtime_platform": {"operating_system_family": "LINUX", "cpu_architecture": "X86_64"},
        "volumes": task_volumes(stack.runtime, kind),
    }


# --- schedules -----------------------------------------------------------------------------


def network_configuration(ecs: EcsSettings) -> dict[str, Any]:
    return {"subnets": list(ecs.subnets), "security_groups": list(ecs.security_groups),
            "assign_public_ip": False}


def container_overrides(job: Job) -> dict[str, Any]:
    """What Scheduler passes to RunTask as `overrides` (the target's input): the job's command."""
    return {"containerOverrides": [{"name": CONTAINER_NAME, "command": list(job_command(job))}]}


def schedule_args(runtime: RuntimeSettings, job: Job, *, group_name: str) -> dict[str, Any]:
    """One job's `aws.scheduler.Schedule` arguments but its target: its cron in Scheduler's
    syntax, in the configured timezone, and the flexible window."""
    ecs = runtime.ecs
    assert ecs is not None
    window = ({"mode": "OFF"} if ecs.flexible_window_minutes is None else
              {"mode": "FLEXIBLE", "maximum_window_in_minutes": ecs.flexible_window_minutes})
    return {
        "name": schedule_name(ecs.cluster_name, job),
        "group_name": group_name,
        "description": f"Starts {job.id} (backup-agent {' '.join(job_command(job))})",
        "schedule_expression": scheduler_cron(job_schedule(runtime, job)),
        "schedule_expression_timezone": ecs.timezone,
        "flexible_time_window": window,
        "state": "ENABLED",
    }


def schedule_target(runtime: RuntimeSettings, job: Job, *, cluster_arn: str, role_arn: str,
                    dead_letter_arn: str, task_definition_arn: str) -> dict[str, Any]:
    """The schedule's target: RunTask of its kind's task definition in the job's task group
    (the overlap guard finds a running twin by it), the job's command as the input (Scheduler
    passes it to RunTask as `overrides`), delivery retries and the dead-letter queue."""
    ecs = runtime.ecs
    assert ecs is not None
    return {
        "arn": cluster_arn,
        "role_arn": role_arn,
        "input": json.dumps(container_overrides(job), sort_keys=True),
        "retry_policy": {"maximum_retry_attempts": ecs.retry_attempts,
                         "maximum_event_age_in_seconds": ecs.max_event_age_seconds},
        "dead_letter_config": {"arn": dead_letter_arn},
        "ecs_parameters": {
            "task_definition_arn": task_definition_arn,
            "launch_type": "FARGATE",
            "platform_version": "LATEST",
            "task_count": 1,
            "group": task_group(job),
            "network_configuration": network_configuration(ecs),
        },
    }


# --- paging --------------------------------------------------------------------------------


def task_failure_pattern(cluster_arn: str) -> dict[str, Any]:
    """ECS task state changes of this cluster that page: a task that stopped with a container
    exit code other than 0 (success) and SKIPPED_EXIT (its job was already running), or that
    never started (stopCode TaskFailedToStart: image pull, secrets, network)."""
    return {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "clusterArn": [cluster_arn],
            "lastStatus": ["STOPPED"],
            "$or": [
                {"containers": {"exitCode": [{"anything-but": [0, SKIPPED_EXIT]}]}},
                {"stopCode": ["TaskFailedToStart"]},
            ],
        },
    }


def dead_letter_queue_name(cluster_name: str) -> str:
    return f"{cluster_name}-schedule-dead-letters"


def dead_letter_alarm_args(cluster_name: str) -> dict[str, Any]:
    """Any message in the dead-letter queue: a schedule that could not start its task after
    every delivery retry (RunTask refused: capacity, a missing permission, a bad subnet)."""
    return {
        "name": alarm_name(cluster_name, "schedule-dead-letters"),
        "alarm_description": "EventBridge Scheduler could not start an ECS backup task after "
                             "its retries; the event is in the dead-letter queue",
        "namespace": "AWS/SQS",
        "metric_name": "ApproximateNumberOfMessagesVisible",
        "dimensions": {"QueueName": dead_letter_queue_name(cluster_name)},
        "statistic": "Maximum",
        "period": 300,
        "evaluation_periods": 1,
        "comparison_operator": "GreaterThanThreshold",
        "threshold": 0,
        "treat_missing_data": "notBreaching",
    }


@dataclass(frozen=True)
class OutcomeWindow:
    """How long a job may go without a successful run before it pages: its longest schedule
    gap plus the run's expected duration, in whole hours."""

    job: Job
    hours: int

    @property
    def alarmed(self) -> bool:
        return self.hours <= MAX_ALARM_PERIODS


def outcome_windows(runtime: RuntimeSettings) -> tuple[OutcomeWindow, ...]:
    ecs = runtime.ecs
    assert ecs is not None
    windows = []
    for job in ecs_jobs(runtime):
        longest = schedule.gaps(job_schedule(runtime, job)).longest.total_seconds()
        expected = ecs.task_sizes[job.kind].expected_minutes * 60
        windows.append(OutcomeWindow(job, math.ceil((longest + expected)
                                                    / ALARM_PERIOD_SECONDS)))
    return tuple(windows)


def outcome_alarm_args(ecs: EcsSettings, window: OutcomeWindow) -> dict[str, Any]:
    """"No successful run within the window": the hourly Sum of the job's outcome metric (1 per
    success, 0 per failure) below 1 in every hour of the window, hours without data counting
    as breaching — so a schedule that silently stops firing pages too."""
    return {
        "name": alarm_name(ecs.cluster_name, f"{job_slug(window.job)}-no-success"),
        "alarm_description": f"No successful run of {window.job.id} within {window.hours} h "
                             "(its longest schedule gap plus its expected duration)",
        "namespace": ecs.metrics_namespace,
        "metric_name": OUTCOME_METRIC,
        "dimensions": {JOB_DIMENSION: window.job.id},
        "statistic": "Sum",
        "period": ALARM_PERIOD_SECONDS,
        "evaluation_periods": window.hours,
        "datapoints_to_alarm": window.hours,
        "comparison_operator": "LessThanThreshold",
        "threshold": 1,
        "treat_missing_data": "breaching",
    }


def unalarmed_warning(window: OutcomeWindow) -> str:
    return (f"{window.job.id}: no CloudWatch alarm for a missed run: its window of "
            f"{window.hours} h exceeds CloudWatch's 7 days (period x evaluation periods); the "
            "exporter's Prometheus alerts on backup age still cover it")


def exporter_service_names(ecs: EcsSettings) -> tuple[str, str]:
    """The exporter's ECS service name and the DNS name Prometheus resolves (Cloud Map)."""
    assert ecs.service_discovery is not None
    discovery = ecs.service_discovery
    return (f"{ecs.cluster_name}-exporter",
            f"{discovery.service_name}.{discovery.namespace_name}")

