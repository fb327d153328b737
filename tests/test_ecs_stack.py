"""The ECS placement as the stack program declares it (Pulumi mocks): which resources, under
which component, with which inputs — and every policy document it renders, asserted whole:
the task, execution and scheduler roles, the queue and key policies, and the bucket, key and
topic policies that grant the task roles beside the host roles."""

from __future__ import annotations

import copy
import json
from collections import Counter

import pytest

from review.render import render_documents
from tests.support.ecs import ecs_settings, run_with

ACCOUNT = "111122223333"
REGION = "eu-central-1"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/biometrics-backup"
RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/biometrics-backup-task-failures"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:biometrics-backup-schedule-dead-letters"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:backup-alerts"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def role(name):
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def task_definition(kind):
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/biometrics-backup-{kind}:1"


def secret(key):
    return (f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:biometrics-backup/"
            f"{key.replace('.', '/')}-AbCdEf")


@pytest.fixture(scope="module")
def run():
    return run_with(ecs_settings)


@pytest.fixture(scope="module")
def documents(run):
    return render_documents(run)


def runtime_key(run):
    [key] = [r for r in run.resources if r.name == "ecs-jobs-key"]
    alias = next(r for r in run.resources if r.name == "ecs-jobs-key-alias")
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{alias.inputs['targetKeyId']}", key


def test_components_and_resource_types(run, prod):
    ecs = [r for r in run.resources if r.parent_name in ("ecs", "ecs-jobs")]
    assert {r.name: r.type for r in run.resources if r.name in ("ecs", "ecs-jobs")} == {
        "ecs": "biometrics:backup:EcsCluster", "ecs-jobs": "biometrics:backup:EcsJobs"}
    for resource in ecs:
        assert resource.name.startswith(f"{resource.parent_name}-"), resource.name
    assert Counter(r.type for r in ecs) == {
        "aws:ecs/cluster:Cluster": 1,
        "aws:cloudwatch/eventRule:EventRule": 1,
        "aws:cloudwatch/eventTarget:EventTarget": 1,
        "aws:iam/role:Role": 6,  # four task roles, the execution role, the scheduler's
        "aws:iam/rolePolicy:RolePolicy": 5,  # three task extras, execution, scheduler
        "aws:kms/key:Key": 1, "aws:kms/alias:Alias": 1,
        "aws:cloudwatch/logGroup:LogGroup": 4,
        "aws:ecr/repository:Repository": 1,
        "aws:secretsmanager/secret:Secret": 4,
        "aws:secretsmanager/secretVersion:SecretVersion": 4,
        "aws:ecs/taskDefinition:TaskDefinition": 4,
        "aws:scheduler/scheduleGroup:ScheduleGroup": 1,
        "aws:scheduler/schedule:Schedule": 4,
        "aws:sqs/queue:Queue": 1, "aws:sqs/queuePolicy:QueuePolicy": 1,
        "aws:cloudwatch/metricAlarm:MetricAlarm": 5,  # dead letters + one per job
        "aws:servicediscovery/service:Service": 1,
        "aws:ecs/service:Service": 1,
    }
    # The task roles' S3/KMS grants come with the buckets: one role policy per bucket each.
    store_policies = {r.name for r in run.of_type("aws:iam/rolePolicy:RolePolicy")} - \
        {r.name for r in prod.of_type("aws:iam/rolePolicy:RolePolicy")} - {r.name for r in ecs}
    assert store_policies == {
        "backup-primary-task-postgres-access", "backup-primary-task-files-access",
        "backup-primary-task-drill-access", "backup-primary-task-exporter-access",
        "backup-replica-task-drill-access", "backup-replica-task-exporter-access"}
    assert not any(r.type.startswith(("aws:ecs", "aws:scheduler")) for r in prod.resources)


def test_role_purpose_tags(run):
    tags = {r.inputs["name"]: r.inputs["tags"]["biometrics-backup:purpose"]
            for r in run.of_type("aws:iam/role:Role") if r.parent_name in ("ecs", "ecs-jobs")}
    assert tags == {
        "biometrics-backup-task-postgres": "task-postgres",
        "biometrics-backup-task-files": "task-files",
        "biometrics-backup-task-drill": "task-drill",
        "biometrics-backup-task-exporter": "task-exporter",
        "biometrics-backup-task-execution": "task-execution",
        "biometrics-backup-scheduler": "scheduler",
    }


def test_cluster_log_groups_repository(run, documents):
    cluster = run.named("ecs-cluster").inputs
    assert cluster == {"name": "biometrics-backup", "region": REGION,
                       "settings": [{"name": "containerInsights", "value": "enabled"}]}
    assert documents["ecs/cluster.json"] == {
        "clusterName": "biometrics-backup",
        "settings": [{"name": "containerInsights", "value": "enabled"}]}
    key, _ = runtime_key(run)
    for kind in ("postgres", "files", "drill", "exporter"):
        assert run.named(f"ecs-jobs-{kind}-logs").inputs == {
            "name": f"/biometrics-backup/biometrics-backup/{kind}", "retentionInDays": 365,
            "kmsKeyId": key, "region": REGION}
    assert run.named("ecs-jobs-image").inputs == {
        "name": "biometrics-backup-agent", "imageTagMutability": "IMMUTABLE",
        "imageScanningConfiguration": {"scanOnPush": True},
        "encryptionConfigurations": [{"encryptionType": "KMS"}], "region": REGION}
    queue = run.named("ecs-jobs-dead-letters").inputs
    assert queue == {"name": "biometrics-backup-schedule-dead-letters", "kmsMasterKeyId": key,
                     "kmsDataKeyReusePeriodSeconds": 300, "messageRetentionSeconds": 1209600,
                     "region": REGION}
    # As get-queue-attributes answers: SQS's attribute names, every value a string.
    assert documents["ecs-jobs/dead-letters-attributes.json"] == {
        "KmsMasterKeyId": key, "KmsDataKeyReusePeriodSeconds": "300",
        "MessageRetentionPeriod": "1209600"}


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how Pulumi marks a secret value


def plain_texts(value):
    """Every string of recorded inputs that is not inside a secret value."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return
        for item in value.values():
            yield from plain_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from plain_texts(item)
    elif isinstance(value, str):
        yield value


def test_secrets_only_as_secret_outputs(run):
    """Each secret's value is a secret Output (encrypted in state); no input of the stack
    holds it in plain text, and the task definitions name the secrets by ARN."""
    key, _ = runtime_key(run)
    keys = ["databasePasswords.db-1", "databasePasswords.db-2", "webhookUrl", "resticPassword"]
    for config_key in keys:
        child = f"ecs-jobs-secret-{config_key.replace('.', '-')}"
        assert run.named(child).inputs == {
            "name": f"biometrics-backup/{config_key.replace('.', '/')}",
            "description": f"{config_key} for the ECS backup tasks of biometrics-backup",
            "kmsKeyId": key, "recoveryWindowInDays": 7, "region": REGION}
        value = run.named(f"{child}-value").inputs["secretString"]
        assert set(value) == {SECRET_SIG, "value"}
        for resource in run.resources:
            assert not any(value["value"] in text for text in plain_texts(resource.inputs)), \
                resource.name


def test_task_definitions(run, documents):
    execution = role("biometrics-backup-task-execution")
    for kind, cpu, memory, storage in (("postgres", "1024", "2048", 21),
                                       ("files", "512", "1024", 21),
                                       ("drill", "2048", "8192", 200),
                                       ("exporter", "256", "512", 21)):
        document = documents[f"ecs-jobs/{kind}-task-definition.json"]
        [container] = document.pop("containerDefinitions")
        assert container["image"] == (f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/"
                                      "biometrics-backup-agent@sha256:" + "0123456789abcdef" * 4)
        assert document == {
            "family": f"biometrics-backup-{kind}", "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc", "cpu": cpu, "memory": memory,
            "ephemeralStorage": {"sizeInGiB": storage},
            "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
            "volumes": document["volumes"],  # asserted whole in tests/test_ecs_specs.py
            "taskRoleArn": role(f"biometrics-backup-task-{kind}"),
            "executionRoleArn": execution,
        }
        assert document["volumes"][0] == {"name": "scratch"}
    [container] = json.loads(run.named("ecs-jobs-postgres-task-definition")
                             .inputs["containerDefinitions"])
    assert container["secrets"] == [
        {"name": "BACKUP_AGENT_SECRET_DB_DB_1", "valueFrom": secret("databasePasswords.db-1")},
        {"name": "BACKUP_AGENT_SECRET_DB_DB_2", "valueFrom": secret("databasePasswords.db-2")},
        {"name": "BACKUP_AGENT_SECRET_WEBHOOK_URL", "valueFrom": secret("webhookUrl")}]


def test_schedules(documents):
    for slug, kind, command, cron in (
            ("postgres-db-1", "postgres", ["run", "postgres", "db-1"], "cron(0 1 * * ? *)"),
            ("postgres-db-2", "postgres", ["run", "postgres", "db-2"], "cron(1 1 * * ? *)"),
            ("files-uploads", "files", ["run", "files", "uploads"], "cron(30 3 * * ? *)"),
            ("drill", "drill", ["drill", "--target", "all"], "cron(0 6 * * ? *)")):
        job = slug.replace("-", ":", 1) if kind != "drill" else "drill"
        # As `aws scheduler get-schedule` prints it.
        assert documents[f"ecs-jobs/{slug}-schedule.json"] == {
            "Name": f"biometrics-backup-{slug}",
            "GroupName": "biometrics-backup",
            "Description": f"Starts {job} (backup-agent {' '.join(command)})",
            "ScheduleExpression": cron,
            "ScheduleExpressionTimezone": "Europe/Berlin",
            "FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
            "State": "ENABLED",
            "Target": {
                "Arn": CLUSTER_ARN,
                "RoleArn": role("biometrics-backup-scheduler"),
                "Input": json.dumps({"containerOverrides": [
                    {"command": command, "name": "backup-agent"}]}),
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
                "DeadLetterConfig": {"Arn": QUEUE_ARN},
                "EcsParameters": {
                    "TaskDefinitionArn": task_definition(kind),
                    "LaunchType": "FARGATE", "PlatformVersion": "LATEST", "TaskCount": 1,
                    "Group": f"backup-job:{job}",
                    "NetworkConfiguration": {"awsvpcConfiguration": {
                        "Subnets": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
                        "SecurityGroups": ["sg-0123456789abcdef0"],
                        "AssignPublicIp": "DISABLED"}}},
            },
        }


def test_paging(run, documents):
    assert documents["ecs/task-failures-event-pattern.json"]["detail"]["clusterArn"] == [
        CLUSTER_ARN]
    assert run.named("ecs-jobs-task-failures-alert").inputs == {
        "rule": "biometrics-backup-task-failures", "targetId": "backup-alerts",
        "arn": TOPIC_ARN, "region": REGION}
    assert documents["ecs-jobs/task-failures-alert.json"] == {"Id": "backup-alerts",
                                                              "Arn": TOPIC_ARN}
    alarms = {r.name: r.inputs for r in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
              if r.parent_name == "ecs-jobs"}
    assert set(alarms) == {"ecs-jobs-dead-letters-alarm", "ecs-jobs-postgres-db-1-no-success",
                           "ecs-jobs-postgres-db-2-no-success",
                           "ecs-jobs-files-uploads-no-success", "ecs-jobs-drill-no-success"}
    for inputs in alarms.values():
        assert inputs["alarmActions"] == [TOPIC_ARN] and inputs["okActions"] == [TOPIC_ARN]
    assert alarms["ecs-jobs-drill-no-success"]["dimensions"] == {"Job": "drill"}
    assert alarms["ecs-jobs-drill-no-success"]["treatMissingData"] == "breaching"


def test_a_weekly_drill_gets_a_warning_not_an_alarm(prod_settings):
    run = run_with(lambda parsed: ecs_settings(parsed, weekly_drill=True))
    names = {r.name for r in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert "ecs-jobs-drill-no-success" not in names
    assert "ecs-jobs-postgres-db-1-no-success" in names
    assert [w for w in run.warnings if w.startswith("drill: no CloudWatch alarm")] == [
        "drill: no CloudWatch alarm for a missed run: its window of 169 h exceeds "
        "CloudWatch's 7 days (period x evaluation periods); the exporter's Prometheus alerts "
        "on backup age still cover it"]


def test_exporter_service(run):
    assert run.named("ecs-jobs-exporter-discovery").inputs == {
        "name": "backup-exporter",
        "description": "The backup exporter's tasks, for Prometheus dns_sd_configs",
        "dnsConfig": {"namespaceId": "ns-0123456789abcdef0", "routingPolicy": "MULTIVALUE",
                      "dnsRecords": [{"type": "A", "ttl": 60}]},
        "region": REGION}
    assert run.named("ecs-jobs-exporter-service").inputs == {
        "name": "biometrics-backup-exporter", "cluster": CLUSTER_ARN,
        "taskDefinition": task_definition("exporter"), "desiredCount": 1,
        "launchType": "FARGATE", "platformVersion": "LATEST",
        "networkConfiguration": {
            "subnets": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
            "securityGroups": ["sg-0123456789abcdef0"], "assignPublicIp": False},
        "serviceRegistries": {"registryArn": f"arn:aws:servicediscovery:{REGION}:{ACCOUNT}:"
                                             "service/srv-backup-exporter"},
        "deploymentMinimumHealthyPercent": 100, "deploymentMaximumPercent": 200,
        "region": REGION}


def test_stack_outputs(run):
    key, _ = runtime_key(run)
    assert run.outputs["ecs"] == {
        "clusterArn": CLUSTER_ARN,
        "taskDefinitionArns": {k: task_definition(k)
                               for k in ("postgres", "files", "drill", "exporter")},
        "scheduleNames": ["biometrics-backup-postgres-db-1", "biometrics-backup-postgres-db-2",
                          "biometrics-backup-files-uploads", "biometrics-backup-drill"],
        "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/biometrics-backup-agent",
        "taskRoleArns": {f"task-{k}": role(f"biometrics-backup-task-{k}")
                         for k in ("postgres", "files", "drill", "exporter")},
        "keyArn": key,
        "secretArns": {k: secret(k) for k in ("databasePasswords.db-1", "databasePasswords.db-2",
                                              "webhookUrl", "resticPassword")},
        "deadLetterQueueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/"
                              "biometrics-backup-schedule-dead-letters",
        "taskFailuresRule": "biometrics-backup-task-failures",
    }


# --- policy documents ---------------------------------------------------------------------


def test_task_trust_policies(documents):
    for kind in ("postgres", "files", "drill", "exporter"):
        assert documents[f"ecs/task-{kind}-trust-policy.json"] == {
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "AllowEcsTasks", "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": ["sts:AssumeRole"],
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                              "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:*"}},
            }]}
    assert documents["ecs-jobs/task-execution-trust-policy.json"] == {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "AllowEcsTaskExecution", "Effect": "Allow",
                       "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                       "Action": ["sts:AssumeRole"]}]}
    assert documents["ecs-jobs/scheduler-trust-policy.json"] == {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowEventBridgeScheduler", "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": ["sts:AssumeRole"],
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                          "ArnEquals": {"aws:SourceArn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:"
                                                         "schedule-group/biometrics-backup"}},
        }]}


def _job_extras():
    return [
        {"Sid": "AllowJobOutcomeMetrics", "Effect": "Allow",
         "Action": ["cloudwatch:PutMetricData"], "Resource": "*",
         "Condition": {"StringEquals": {"cloudwatch:namespace": "BiometricsBackup"}}},
        {"Sid": "AllowOverlapGuardList", "Effect": "Allow", "Action": ["ecs:ListTasks"],
         "Resource": "*", "Condition": {"ArnEquals": {"ecs:cluster": CLUSTER_ARN}}},
        {"Sid": "AllowOverlapGuardDescribe", "Effect": "Allow", "Action": ["ecs:DescribeTasks"],
         "Resource": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/biometrics-backup/*"},
    ]


def test_task_role_extras(documents):
    for kind in ("postgres", "drill"):
        assert documents[f"ecs/task-{kind}-task.json"] == {
            "Version": "2012-10-17", "Statement": _job_extras()}
    assert documents["ecs/task-files-task.json"] == {"Version": "2012-10-17", "Statement": [
        *_job_extras(),
        {"Sid": "AllowFileSetMount", "Effect": "Allow",
         "Action": ["elasticfilesystem:ClientMount"],
         "Resource": [f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:"
                      "file-system/fs-0123456789abcdef0"],
         "Condition": {"ArnEquals": {"elasticfilesystem:AccessPointArn": [
             f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:access-point/"
             "fsap-0123456789abcdef0"]}}},
    ]}
    assert "ecs/task-exporter-task.json" not in documents


def test_execution_role_policy(run, documents):
    key, _ = runtime_key(run)
    logs = [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/biometrics-backup/biometrics-backup/"
            f"{kind}" for kind in ("postgres", "files", "drill", "exporter")]
    assert documents["ecs-jobs/task-execution-access.json"] == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AllowImageRegistryLogin", "Effect": "Allow",
             "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
            {"Sid": "AllowImagePull", "Effect": "Allow",
             "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
             "Resource": f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/biometrics-backup-agent"},
            {"Sid": "AllowTaskLogs", "Effect": "Allow",
             "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": [r for arn in logs for r in (arn, f"{arn}:log-stream:*")]},
            {"Sid": "AllowTaskSecrets", "Effect": "Allow",
             "Action": ["secretsmanager:GetSecretValue"],
             "Resource": [secret("databasePasswords.db-1"), secret("databasePasswords.db-2"),
                          secret("webhookUrl"), secret("resticPassword")]},
            {"Sid": "AllowTaskSecretsKey", "Effect": "Allow", "Action": ["kms:Decrypt"],
             "Resource": key, "Condition": {"StringEquals": {
                 "kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}}},
        ]}


def test_scheduler_role_policy(run, documents):
    key, _ = runtime_key(run)
    assert documents["ecs-jobs/scheduler-access.json"] == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AllowRunBackupTasks", "Effect": "Allow", "Action": ["ecs:RunTask"],
             "Resource": [task_definition(k) for k in ("postgres", "files", "drill")],
             "Condition": {"ArnEquals": {"ecs:cluster": CLUSTER_ARN}}},
            {"Sid": "AllowPassTaskRoles", "Effect": "Allow", "Action": ["iam:PassRole"],
             "Resource": [role(f"biometrics-backup-task-{k}")
                          for k in ("postgres", "files", "drill")]
             + [role("biometrics-backup-task-execution")],
             "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
            {"Sid": "AllowDeadLetters", "Effect": "Allow", "Action": ["sqs:SendMessage"],
             "Resource": QUEUE_ARN},
            {"Sid": "AllowDeadLetterKey", "Effect": "Allow",
             "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key,
             "Condition": {"StringEquals": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}}},
        ]}


def test_dead_letter_queue_policy(run, documents):
    assert run.named("ecs-jobs-dead-letters-policy").inputs["queueUrl"] == \
        f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/biometrics-backup-schedule-dead-letters"
    assert documents["ecs-jobs/dead-letters-policy.json"] == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*",
             "Action": ["sqs:*"], "Resource": QUEUE_ARN,
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
            {"Sid": "DenyOtherSenders", "Effect": "Deny", "Principal": "*",
             "Action": ["sqs:SendMessage"], "Resource": QUEUE_ARN,
             "Condition": {"ArnNotEquals": {
                 "aws:PrincipalArn": role("biometrics-backup-scheduler")}}},
        ]}


def test_runtime_key_policy(run, documents, prod_documents):
    _, key = runtime_key(run)
    assert key.inputs["enableKeyRotation"] is True
    administration = prod_documents["backup-alerts/key-policy.json"]["Statement"][0]
    assert administration["Sid"] == "EnableKeyAdministration"
    assert documents["ecs-jobs/key-policy.json"] == {
        "Version": "2012-10-17",
        "Statement": [
            administration,
            {"Sid": "AllowLogGroupEncryption", "Effect": "Allow",
             "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                        "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"],
             "Resource": "*",
             "Condition": {"StringLike": {"kms:EncryptionContext:aws:logs:arn":
                                       f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
                                       "/biometrics-backup/biometrics-backup/*"}}},
            {"Sid": "AllowSecretsManagerUse", "Effect": "Allow", "Principal": {"AWS": ROOT},
             "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
             "Condition": {"StringEquals": {
                 "kms:CallerAccount": ACCOUNT,
                 "kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}}},
            {"Sid": "AllowDeadLetterQueueUse", "Effect": "Allow", "Principal": {"AWS": ROOT},
             "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
             "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT,
                                            "kms:ViaService": f"sqs.{REGION}.amazonaws.com"}}},
        ]}


# --- the store's documents with the task roles beside the host roles ------------------------

TASK = {kind: role(f"biometrics-backup-task-{kind}")
        for kind in ("postgres", "files", "drill", "exporter")}
# By Sid: the roles the ECS stack lists after prod's one role (the same statement, whole).
BACKUP_SIDS = ("AllowBackupServerWrite", "AllowBackupServerList", "AllowBackupServerKeep",
               "AllowBackupServerKeepRetention", "AllowBackupServerRecordOutcomes",
               "AllowBackupServerKey")
READ_SIDS = ("AllowReadForRestore", "AllowListForRestore", "AllowDecryptForRestore")
OUTCOME_SIDS = ("AllowRestoreServerRecordOutcomes", "AllowRestoreServerOutcomeKey")
BESIDE = {
    "backup-primary": {
        **{sid: (TASK["postgres"], TASK["files"]) for sid in BACKUP_SIDS},
        **{sid: (TASK["drill"], TASK["exporter"]) for sid in READ_SIDS},
        **{sid: (TASK["drill"],) for sid in OUTCOME_SIDS},
    },
    "backup-replica": {sid: (TASK["drill"], TASK["exporter"]) for sid in READ_SIDS},
}


def _beside(document, sids):
    expected = copy.deepcopy(document)
    for statement in expected["Statement"]:
        if statement["Sid"] in sids:
            statement["Principal"] = {"AWS": [statement["Principal"]["AWS"],
                                              *sids[statement["Sid"]]]}
    return expected


@pytest.mark.parametrize("bucket", ["backup-primary", "backup-replica"])
def test_bucket_and_key_policies_list_task_roles_beside_host_roles(documents, prod_documents,
                                                                   bucket):
    """prod's documents with the task roles added to the Principal of exactly the statements
    of the host role doing the same work: nothing else differs."""
    for document in ("policy", "key-policy"):
        assert documents[f"{bucket}/{document}.json"] == _beside(
            prod_documents[f"{bucket}/{document}.json"], BESIDE[bucket]), document


def test_task_role_policies_are_the_host_roles(documents, prod_documents):
    def same(task, host, bucket, without=()):
        expected = copy.deepcopy(prod_documents[f"{bucket}/{host}-access.json"])
        expected["Statement"] = [s for s in expected["Statement"] if s["Sid"] not in without]
        assert documents[f"{bucket}/task-{task}-access.json"] == expected, (task, bucket)

    same("postgres", "backup", "backup-primary")
    same("files", "backup", "backup-primary")
    same("drill", "restore", "backup-primary")
    same("exporter", "restore", "backup-primary", without=OUTCOME_SIDS)
    same("drill", "restore", "backup-replica")
    same("exporter", "restore", "backup-replica")
    assert "backup-replica/task-postgres-access.json" not in documents


def test_alert_topic_admits_exactly_the_rule(documents, prod_documents):
    topic = copy.deepcopy(prod_documents["backup-alerts/topic-policy.json"])
    topic["Statement"].append({
        "Sid": "AllowEcsTaskEvents", "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"}, "Action": ["sns:Publish"],
        "Resource": TOPIC_ARN, "Condition": {"ArnEquals": {"aws:SourceArn": RULE_ARN},
                                             "StringEquals": {"aws:SourceAccount": ACCOUNT}}})
    assert documents["backup-alerts/topic-policy.json"] == topic
    key = copy.deepcopy(prod_documents["backup-alerts/key-policy.json"])
    key["Statement"].append({
        "Sid": "AllowEcsTaskEventsKey", "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
        "Condition": {"ArnEquals": {"aws:SourceArn": RULE_ARN},
                      "StringEquals": {"aws:SourceAccount": ACCOUNT,
                                       "kms:EncryptionContext:aws:sns:topicArn": TOPIC_ARN}}})
    assert documents["backup-alerts/key-policy.json"] == key
