"""The ECS placement's pure builders, asserted whole: task definitions (container JSON and
volumes), the agent settings each task kind gets, schedules, the paging rule's pattern, the
alarms, and the five-to-six field cron conversion."""

from __future__ import annotations

import dataclasses
import json

import pytest

from components import ecs_specs
from components.ecs_specs import (
    container_definitions,
    outcome_alarm_args,
    outcome_windows,
    schedule_args,
    schedule_target,
    task_definition_args,
    task_failure_pattern,
    task_kinds,
)
from components.scheduler_cron import scheduler_cron
from contract import agent_settings
from contract.jobs import DRILL, database_job, files_job
from contract.schedule import NotASchedule
from tests.support.ecs import DIGEST, ECS, ecs_settings

REGION = "eu-central-1"
IMAGE = f"111122223333.dkr.ecr.{REGION}.amazonaws.com/biometrics-backup-agent@{DIGEST}"
SECRET_ARNS = {key: f"arn:aws:secretsmanager:{REGION}:111122223333:secret:{key}"
               for key in ("resticPassword", "webhookUrl", "databasePasswords.db-1",
                           "databasePasswords.db-2")}


@pytest.fixture(scope="module")
def stack(prod_settings):
    return ecs_settings(prod_settings)


@pytest.mark.parametrize(("five", "six"), [
    ("0 2 * * *", "cron(0 2 * * ? *)"),
    ("*/15 3-4 * * *", "cron(0,15,30,45 3,4 * * ? *)"),
    ("30 1 1,15 * *", "cron(30 1 1,15 * ? *)"),
    ("0 6 * * 1-5", "cron(0 6 ? * MON,TUE,WED,THU,FRI *)"),
    ("0 6 * * 0", "cron(0 6 ? * SUN *)"),
    ("0 6 * * 7", "cron(0 6 ? * SUN *)"),
    ("0 0 * jan,jul sat", "cron(0 0 ? 1,7 SAT *)"),
])
def test_scheduler_cron(five, six):
    assert scheduler_cron(five) == six


@pytest.mark.parametrize(("expression", "problem"), [
    ("0 3 1 * 1", "restricts both day-of-month and day-of-week"),
    ("0 4 L * *", "uses L, W or #"),
    ("0 4 * * 5#2", "is not a five-field cron expression"),
    ("0 4 * * * 30", "is not a five-field cron expression"),
    ("0 4 31 2 *", "never fires"),
])
def test_scheduler_cron_refuses_what_scheduler_cannot_say(expression, problem):
    with pytest.raises(NotASchedule, match=problem):
        scheduler_cron(expression)


def test_placement(stack, prod_settings):
    runtime = stack.runtime
    assert ecs_specs.ecs_jobs(runtime) == (database_job("db-1"), database_job("db-2"),
                                           files_job("uploads"), DRILL)
    assert task_kinds(runtime) == ("postgres", "files", "drill", "exporter")
    assert ecs_specs.ecs_secret_keys(runtime) == (
        "databasePasswords.db-1", "databasePasswords.db-2", "webhookUrl", "resticPassword")
    # prod's own database and file set stay on their Docker host.
    assert [d.name for d in ecs_specs.ecs_databases(runtime)] == ["db-1", "db-2"]
    only_postgres = dataclasses.replace(prod_settings.runtime, databases=runtime.databases,
                                        ecs=ECS)
    assert task_kinds(only_postgres) == ("postgres",)


def test_task_secrets(stack):
    def secrets(kind):
        return [(s.variable, s.file.path, s.file.secret)
                for s in ecs_specs.task_secrets(stack.runtime, kind)]

    webhook = ("BACKUP_AGENT_SECRET_WEBHOOK_URL", "/scratch/secrets/webhook-url", "webhookUrl")
    restic = ("BACKUP_AGENT_SECRET_RESTIC_PASSWORD", "/scratch/secrets/restic-password",
              "resticPassword")
    assert secrets("postgres") == [
        ("BACKUP_AGENT_SECRET_DB_DB_1", "/scratch/secrets/db-db-1-password",
         "databasePasswords.db-1"),
        ("BACKUP_AGENT_SECRET_DB_DB_2", "/scratch/secrets/db-db-2-password",
         "databasePasswords.db-2"),
        webhook]
    assert secrets("files") == [restic, webhook]
    assert secrets("drill") == [restic, webhook]
    assert secrets("exporter") == []


def test_task_agent_settings_parse_as_the_agent_reads_them(stack):
    for kind in task_kinds(stack.runtime):
        settings = ecs_specs.task_agent_settings(stack, kind)
        assert agent_settings.from_json(agent_settings.to_json(settings)) == settings


def test_postgres_task_agent_settings(stack):
    document = agent_settings.document(ecs_specs.task_agent_settings(stack, "postgres"))
    database = {"compression": "lz4", "port": 5432, "retainFull": 7, "rpoSeconds": 300,
                "tables": ["users"], "user": "backup"}
    assert document == {
        "role": "backup",
        "primary": {"bucket": "biometrics-backups", "region": "eu-central-1"},
        "databases": [
            {**database, "name": "db-1", "dbname": "db_1", "host": "db-1.internal",
             "passwordFile": "/scratch/secrets/db-db-1-password", "schedule": "0 1 * * *"},
            {**database, "name": "db-2", "dbname": "db_2", "host": "db-2.internal",
             "passwordFile": "/scratch/secrets/db-db-2-password", "schedule": "1 1 * * *"},
        ],
        "fileSets": [],
        "jobs": ["postgres:db-1", "postgres:db-2"],
        "webhookUrlFile": "/scratch/secrets/webhook-url",
        "stateDir": "/scratch/state",
        "retry": {"attempts": 3, "delaySeconds": 300},
        "keep": {"protection": "compliance-retention", "maxDays": 365},
        "listenAddress": "0.0.0.0", "metricsPort": 8080, "refreshSeconds": 60.0,
        "walRelistMargin": 64, "fullRelistEvery": 60, "deleteMarkerScanSeconds": 3600.0,
        "postgresBin": "/usr/lib/postgresql/15/bin", "walgBinary": "wal-g",
        "resticBinary": "restic", "drillSuperuser": "postgres", "drillTimeoutSeconds": 1800.0,
        "task": {"cluster": "biometrics-backup", "metricsNamespace": "BiometricsBackup",
                 "secrets": [
                     {"variable": "BACKUP_AGENT_SECRET_DB_DB_1",
                      "path": "/scratch/secrets/db-db-1-password"},
                     {"variable": "BACKUP_AGENT_SECRET_DB_DB_2",
                      "path": "/scratch/secrets/db-db-2-password"},
                     {"variable": "BACKUP_AGENT_SECRET_WEBHOOK_URL",
                      "path": "/scratch/secrets/webhook-url"}]},
    }


def test_restore_kinds_agent_settings(stack):
    """The drill and the exporter read every database and file set from both buckets, as
    the restore host does; only the drill runs a job, and neither has a database password."""
    drill = ecs_specs.task_agent_settings(stack, "drill")
    exporter = ecs_specs.task_agent_settings(stack, "exporter")
    every = [d.name for d in stack.runtime.databases]
    for settings in (drill, exporter):
        assert settings.role == "restore"
        assert settings.replica == agent_settings.Storage("biometrics-backups-replica",
                                                          "eu-west-1")
        assert [d.name for d in settings.databases] == every
        assert {d.password_file for d in settings.databases} == {None}
        assert [f.name for f in settings.file_sets] == ["app", "uploads"]
        assert settings.kept_backups is None
        assert settings.drill_schedule == "0 6 * * *"
    assert drill.jobs == ("drill",)
    assert drill.restic_password_file == "/scratch/secrets/restic-password"
    assert exporter.jobs == ()
    assert exporter.restic_password_file is None and exporter.webhook_url_file is None
    assert exporter.task == agent_settings.TaskRuntime("biometrics-backup", "BiometricsBackup")


def _container(stack, kind):
    [container] = container_definitions(stack, kind, image=IMAGE, secret_arns=SECRET_ARNS,
                                        region=REGION)
    settings = json.dumps(agent_settings.document(ecs_specs.task_agent_settings(stack, kind)),
                          sort_keys=True, separators=(",", ":"))
    return container, settings


def _expected_container(kind, settings, secrets, mounts=(), **extra):
    return {
        "name": "backup-agent",
        "image": IMAGE,
        "essential": True,
        "entryPoint": ["backup-agent"],
        "user": "10001:10001",
        "readonlyRootFilesystem": True,
        "privileged": False,
        "linuxParameters": {"capabilities": {"drop": ["ALL"]}, "initProcessEnabled": True},
        "environment": [{"name": "BACKUP_AGENT_SETTINGS", "value": settings},
                        {"name": "TMPDIR", "value": "/scratch/tmp"}],
        "secrets": [{"name": name, "valueFrom": SECRET_ARNS[key]} for name, key in secrets],
        "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch",
                         "readOnly": False}, *mounts],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": f"/biometrics-backup/biometrics-backup/{kind}",
            "awslogs-region": REGION, "awslogs-stream-prefix": kind}},
        **extra,
    }


def test_container_definitions(stack):
    webhook = ("BACKUP_AGENT_SECRET_WEBHOOK_URL", "webhookUrl")
    restic = ("BACKUP_AGENT_SECRET_RESTIC_PASSWORD", "resticPassword")
    container, settings = _container(stack, "postgres")
    assert container == _expected_container("postgres", settings, [
        ("BACKUP_AGENT_SECRET_DB_DB_1", "databasePasswords.db-1"),
        ("BACKUP_AGENT_SECRET_DB_DB_2", "databasePasswords.db-2"), webhook])
    container, settings = _container(stack, "files")
    assert container == _expected_container("files", settings, [restic, webhook], [
        {"sourceVolume": "efs-uploads", "containerPath": "/mnt/uploads", "readOnly": True}])
    container, settings = _container(stack, "drill")
    assert container == _expected_container("drill", settings, [restic, webhook])
    container, settings = _container(stack, "exporter")
    assert container == _expected_container(
        "exporter", settings, [], command=["exporter"],
        portMappings=[{"containerPort": 8080, "protocol": "tcp"}])


def test_no_secret_value_in_a_container_definition(stack):
    """Only ARNs: the values never reach a task definition (they are not even an input)."""
    for kind in task_kinds(stack.runtime):
        text = json.dumps(_container(stack, kind)[0])
        assert "placeholder" not in text and "set with pulumi" not in text
        assert {s["valueFrom"] for s in _container(stack, kind)[0]["secrets"]} <= set(
            SECRET_ARNS.values())


def test_task_definition_args(stack):
    base = {"requires_compatibilities": ["FARGATE"], "network_mode": "awsvpc",
            "runtime_platform": {"operating_system_family": "LINUX",
                                 "cpu_architecture": "X86_64"}}
    scratch = {"name": "scratch"}
    assert task_definition_args(stack, "postgres") == {
        **base, "family": "biometrics-backup-postgres", "cpu": "1024", "memory": "2048",
        "ephemeral_storage": {"size_in_gib": 21}, "volumes": [scratch]}
    assert task_definition_args(stack, "files") == {
        **base, "family": "biometrics-backup-files", "cpu": "512", "memory": "1024",
        "ephemeral_storage": {"size_in_gib": 21}, "volumes": [scratch, {
            "name": "efs-uploads",
            "efs_volume_configuration": {
                "file_system_id": "fs-0123456789abcdef0",
                "transit_encryption": "ENABLED",
                "authorization_config": {"access_point_id": "fsap-0123456789abcdef0",
                                         "iam": "ENABLED"}}}]}
    assert task_definition_args(stack, "drill") == {
        **base, "family": "biometrics-backup-drill", "cpu": "2048", "memory": "8192",
        "ephemeral_storage": {"size_in_gib": 200}, "volumes": [scratch]}
    assert task_definition_args(stack, "exporter") == {
        **base, "family": "biometrics-backup-exporter", "cpu": "256", "memory": "512",
        "ephemeral_storage": {"size_in_gib": 21}, "volumes": [scratch]}


def test_image_reference(stack):
    url = "111122223333.dkr.ecr.eu-central-1.amazonaws.com/biometrics-backup-agent"
    assert ecs_specs.image_reference(url, stack.runtime) == f"{url}@{DIGEST}"
    untagged = dataclasses.replace(stack.runtime, ecs=dataclasses.replace(ECS,
                                                                          image_digest=None))
    assert ecs_specs.image_reference(url, untagged) == f"{url}:0.1.0"


def test_schedule_args(stack):
    runtime = stack.runtime
    assert schedule_args(runtime, database_job("db-2"), group_name="biometrics-backup") == {
        "name": "biometrics-backup-postgres-db-2",
        "group_name": "biometrics-backup",
        "description": "Starts postgres:db-2 (backup-agent run postgres db-2)",
        "schedule_expression": "cron(1 1 * * ? *)",
        "schedule_expression_timezone": "Europe/Berlin",
        "flexible_time_window": {"mode": "FLEXIBLE", "maximum_window_in_minutes": 15},
        "state": "ENABLED",
    }
    off = dataclasses.replace(runtime, ecs=dataclasses.replace(ECS,
                                                               flexible_window_minutes=None))
    assert schedule_args(off, DRILL, group_name="g")["flexible_time_window"] == {"mode": "OFF"}
    assert schedule_args(off, DRILL, group_name="g")["description"] == \
        "Starts drill (backup-agent drill --target all)"


def test_schedule_target(stack):
    target = schedule_target(stack.runtime, files_job("uploads"), cluster_arn="CLUSTER",
                             role_arn="ROLE", dead_letter_arn="QUEUE",
                             task_definition_arn="TASKDEF")
    assert target == {
        "arn": "CLUSTER",
        "role_arn": "ROLE",
        "input": '{"containerOverrides": [{"command": ["run", "files", "uploads"], '
                 '"name": "backup-agent"}]}',
        "retry_policy": {"maximum_retry_attempts": 3, "maximum_event_age_in_seconds": 3600},
        "dead_letter_config": {"arn": "QUEUE"},
        "ecs_parameters": {
            "task_definition_arn": "TASKDEF",
            "launch_type": "FARGATE",
            "platform_version": "LATEST",
            "task_count": 1,
            "group": "backup-job:files:uploads",
            "network_configuration": {
                "subnets": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
                "security_groups": ["sg-0123456789abcdef0"],
                "assign_public_ip": False},
        },
    }
    drill = schedule_target(stack.runtime, DRILL, cluster_arn="C", role_arn="R",
                            dead_letter_arn="Q", task_definition_arn="T")
    assert json.loads(drill["input"]) == {"containerOverrides": [
        {"name": "backup-agent", "command": ["drill", "--target", "all"]}]}


def test_task_failure_pattern():
    assert task_failure_pattern("arn:aws:ecs:eu-central-1:111122223333:cluster/c") == {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "clusterArn": ["arn:aws:ecs:eu-central-1:111122223333:cluster/c"],
            "lastStatus": ["STOPPED"],
            "$or": [
                {"containers": {"exitCode": [{"anything-but": [0, 75]}]}},
                {"stopCode": ["TaskFailedToStart"]},
            ],
        },
    }


def test_dead_letter_alarm():
    assert ecs_specs.dead_letter_alarm_args("biometrics-backup") == {
        "name": "biometrics-backup.schedule-dead-letters",
        "alarm_description": "EventBridge Scheduler could not start an ECS backup task after "
                             "its retries; the event is in the dead-letter queue",
        "namespace": "AWS/SQS",
        "metric_name": "ApproximateNumberOfMessagesVisible",
        "dimensions": {"QueueName": "biometrics-backup-schedule-dead-letters"},
        "statistic": "Maximum",
        "period": 300,
        "evaluation_periods": 1,
        "comparison_operator": "GreaterThanThreshold",
        "threshold": 0,
        "treat_missing_data": "notBreaching",
    }


def test_outcome_windows(stack, prod_settings):
    """A day's gap plus the expected minutes, rounded up to hours; a weekly drill's window
    (7 days + 1 h) is past CloudWatch's 7 days and gets none."""
    windows = {w.job.id: (w.hours, w.alarmed) for w in outcome_windows(stack.runtime)}
    assert windows == {"postgres:db-1": (25, True), "postgres:db-2": (25, True),
                       "files:uploads": (25, True), "drill": (25, True)}
    weekly = ecs_settings(prod_settings, weekly_drill=True).runtime
    [drill] = [w for w in outcome_windows(weekly) if w.job == DRILL]
    assert (drill.hours, drill.alarmed) == (169, False)
    assert ecs_specs.unalarmed_warning(drill) == (
        "drill: no CloudWatch alarm for a missed run: its window of 169 h exceeds "
        "CloudWatch's 7 days (period x evaluation periods); the exporter's Prometheus alerts "
        "on backup age still cover it")


def test_outcome_alarm(stack):
    [window] = [w for w in outcome_windows(stack.runtime) if w.job == database_job("db-1")]
    assert outcome_alarm_args(ECS, window) == {
        "name": "biometrics-backup.postgres-db-1-no-success",
        "alarm_description": "No successful run of postgres:db-1 within 25 h (its longest "
                             "schedule gap plus its expected duration)",
        "namespace": "BiometricsBackup",
        "metric_name": "JobSucceeded",
        "dimensions": {"Job": "postgres:db-1"},
        "statistic": "Sum",
        "period": 3600,
        "evaluation_periods": 25,
        "datapoints_to_alarm": 25,
        "comparison_operator": "LessThanThreshold",
        "threshold": 1,
        "treat_missing_data": "breaching",
    }
