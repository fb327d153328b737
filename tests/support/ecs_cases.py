"""The ECS placement's compliance cases (tests/compliance/test_ecs_controls.py and
test_policy_pack.py run them): what every control reports for the hand-built ECS stack
(tests.support.ecs_resources), and one failing edit per case."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from compliance.inventory import Declared
from tests.support.control_cases import PROD_STATUSES, change_statement, drop_condition
from tests.support.ecs_resources import (
    ACCOUNT,
    CLUSTER,
    CLUSTER_ARN,
    METRICS,
    QUEUE_ARN,
    REGION,
    role_arn,
)
from tests.support.resources import edit, edit_policy

ECS_STATUSES = {control: ("pass" if status == "n/a" else status)
                for control, status in PROD_STATUSES.items()} | {
    "s3-account-public-access-block": "n/a", "iam-key-management-tag-scoped": "n/a"}

Edit = Callable[[list[Declared]], list[Declared]]


def container(task: str, change: Callable[[dict[str, Any]], None]) -> Edit:
    """An edit of the (one) container definition of the task definition `task`."""
    def apply(inputs: dict[str, Any]) -> None:
        definitions = json.loads(inputs["containerDefinitions"])
        change(definitions[0])
        inputs["containerDefinitions"] = json.dumps(definitions)
    return lambda resources: edit(resources, task, apply)


def efs(change: Callable[[dict[str, Any]], None]) -> Edit:
    return lambda resources: edit(resources, "ecs-task-files",
                                  lambda inputs: change(inputs["volumes"][1]))


def marked_secret(name: str, field: str) -> Edit:
    """As the engine records an input built from a secret (Pulumi marks the whole value)."""
    return lambda resources: [dataclasses.replace(r, secret_inputs=frozenset({field}))
                              if r.name == name else r for r in resources]


def statement_added(policy: str, statement: dict[str, Any]) -> Edit:
    return lambda resources: edit_policy(resources, policy,
                                         lambda document: document["Statement"].append(statement))


def trust_changed(role: str, change: Callable[[dict[str, Any]], None]) -> Edit:
    """An edit of the role's (one) trust statement."""
    return lambda resources: edit_policy(resources, role, lambda document: change(
        document["Statement"][0]), field="assumeRolePolicy")


def target(schedule: str, change: Callable[[dict[str, Any]], None]) -> Edit:
    return lambda resources: edit(resources, schedule, lambda inputs: change(inputs["target"]))


def _set(mapping: dict[str, Any], **values: Any) -> None:
    mapping.update(values)


def _drop(mapping: dict[str, Any], *keys: str) -> None:
    for key in keys:
        del mapping[key]


DRILL_TASK = "ecs-role-task-drill-task"
DRILL_PRIMARY = "ecs-role-task-drill-primary-restore-access"
EXECUTION = "ecs-role-task-execution-access"
SCHEDULER = "ecs-role-scheduler-access"
NIGHTLY = "ecs-schedule-postgres-db01"
DRILL_ROLE = f"{CLUSTER}-task-drill"
PRIMARY_POLICY = "backup-primary-policy"
KEY = "arn:aws:kms:eu-central-1:111122223333:key/0d7f3c1e-5b2a-4c8e-9f10-ec5000000001"

ECS_FAILING_EDITS: list[tuple[str, Edit, list[tuple[str, str]]]] = [
    ("ecs-cluster-container-insights",
     lambda r: edit(r, "ecs-cluster", lambda i: i["settings"][0].update(value="disabled")),
     [("ecs-cluster", "ecs-cluster: containerInsights is disabled (allowed: enabled, "
                      "enhanced)")]),
    ("ecs-task-read-only-root",
     container("ecs-task-drill", lambda c: c.update(readonlyRootFilesystem=False)),
     [("ecs-task-drill", "ecs-task-drill/backup-agent: readonlyRootFilesystem is False")]),
    ("ecs-task-read-only-root",  # absent: ECS's default is a writable root
     container("ecs-task-drill", lambda c: c.pop("readonlyRootFilesystem")),
     [("ecs-task-drill", "ecs-task-drill/backup-agent: readonlyRootFilesystem is None")]),
    ("ecs-task-not-privileged", container("ecs-task-files", lambda c: c.update(privileged=True)),
     [("ecs-task-files", "ecs-task-files/backup-agent: privileged is true")]),
    ("ecs-task-non-root-user", container("ecs-task-postgres", lambda c: c.update(user="0:0")),
     [("ecs-task-postgres", "ecs-task-postgres/backup-agent: user '0:0' is root")]),
    ("ecs-task-non-root-user", container("ecs-task-postgres", lambda c: c.pop("user")),
     [("ecs-task-postgres", "ecs-task-postgres/backup-agent: no user: it runs as the image's "
                            "user, root unless the image says otherwise")]),
    ("ecs-task-no-added-capabilities",
     container("ecs-task-drill", lambda c: c["linuxParameters"].update(
         capabilities={"add": ["SYS_PTRACE"]})),
     [("ecs-task-drill", "ecs-task-drill/backup-agent: linuxParameters.capabilities.add "
                         "['SYS_PTRACE']")]),
    ("ecs-task-logs-to-cloudwatch",
     container("ecs-task-exporter", lambda c: c["logConfiguration"].update(logDriver="splunk")),
     [("ecs-task-exporter", "ecs-task-exporter/backup-agent: logDriver 'splunk', not awslogs")]),
    ("ecs-task-logs-to-cloudwatch",  # a group nobody declared: no retention, no key
     container("ecs-task-exporter", lambda c: c["logConfiguration"]["options"].update(
         {"awslogs-group": "/ecs/default"})),
     [("ecs-task-exporter", "ecs-task-exporter/backup-agent: awslogs-group '/ecs/default' is "
                            "not a log group of the stack")]),
    ("ecs-task-logs-to-cloudwatch",
     container("ecs-task-exporter", lambda c: c.pop("logConfiguration")),
     [("ecs-task-exporter", "ecs-task-exporter/backup-agent: no logConfiguration")]),
    ("ecs-task-execution-role-separate",
     lambda r: edit(r, "ecs-task-drill", lambda i: i.update(
         executionRoleArn=role_arn("task-drill"))),
     [("ecs-task-drill", f"ecs-task-drill: the execution role is the task role "
                         f"({role_arn('task-drill')})")]),
    ("ecs-task-execution-role-separate",
     lambda r: edit(r, "ecs-task-drill", lambda i: i.pop("executionRoleArn")),
     [("ecs-task-drill", f"ecs-task-drill: executionRoleArn None, taskRoleArn "
                         f"'{role_arn('task-drill')}': both are needed")]),
    ("ecs-task-execution-role-separate",  # two task roles: neither is the execution role
     lambda r: edit(r, "ecs-task-drill", lambda i: i.update(
         executionRoleArn=role_arn("task-exporter"))),
     [("ecs-task-drill", f"ecs-task-drill: executionRoleArn {role_arn('task-exporter')} is no "
                         "role of the stack tagged task-execution")]),
    ("ecs-task-efs-encrypted-in-transit",
     efs(lambda v: v["efsVolumeConfiguration"].update(transitEncryption="DISABLED")),
     [("ecs-task-files", "ecs-task-files: volume 'uploads': transitEncryption 'DISABLED'")]),
    ("ecs-task-efs-encrypted-in-transit",
     efs(lambda v: v["efsVolumeConfiguration"].pop("authorizationConfig")),
     [("ecs-task-files", "ecs-task-files: volume 'uploads': authorizationConfig.iam None; "
                         "volume 'uploads': no authorizationConfig.accessPointId")]),
    ("ecs-task-efs-encrypted-in-transit",
     container("ecs-task-files", lambda c: c["mountPoints"][1].update(readOnly=False)),
     [("ecs-task-files", "ecs-task-files: volume 'uploads': mounted writable at /mnt/uploads "
                         "in ecs-task-files/backup-agent")]),
    ("ecs-task-no-plaintext-secret",
     container("ecs-task-postgres", lambda c: c["environment"].append(
         {"name": "PGPASSWORD", "value": "s3cr3t"})),
     [("ecs-task-postgres", "ecs-task-postgres/backup-agent: environment PGPASSWORD holds a "
                            "plaintext secret (use secrets, valueFrom)")]),
    ("ecs-task-no-plaintext-secret",
     container("ecs-task-postgres", lambda c: c["environment"].append(
         {"name": "AWS_SECRET_ACCESS_KEY", "value": "x"})),
     [("ecs-task-postgres", "ecs-task-postgres/backup-agent: environment AWS_SECRET_ACCESS_KEY "
                            "(static credentials)")]),
    ("ecs-task-no-plaintext-secret",  # a secret config value inside the settings document
     marked_secret("ecs-task-postgres", "containerDefinitions"),
     [("ecs-task-postgres", "ecs-task-postgres: containerDefinitions is built from a secret "
                            "value (a secret config key): ECS would keep it in plaintext")]),
    ("ecs-task-no-plaintext-secret",
     container("ecs-task-postgres", lambda c: c["secrets"][0].update(valueFrom="hunter2")),
     [("ecs-task-postgres", "ecs-task-postgres/backup-agent: secrets "
                            "BACKUP_AGENT_SECRET_RESTIC_PASSWORD: valueFrom 'hunter2' is no "
                            "secret of the stack (a Secrets Manager or Parameter Store ARN)")]),
    ("ecs-role-trust-scoped",
     trust_changed("ecs-role-task-drill", lambda s: s["Condition"].pop("ArnLike")),
     [(DRILL_ROLE, f"{DRILL_ROLE}: sts:AssumeRole by ecs-tasks.amazonaws.com without "
                   "aws:SourceArn is admitted")]),
    ("ecs-role-trust-scoped",
     trust_changed("ecs-role-task-drill", lambda s: s.pop("Condition")),
     [(DRILL_ROLE, f"{DRILL_ROLE}: sts:AssumeRole by ecs-tasks.amazonaws.com for another "
                   "account is admitted")]),
    ("ecs-role-trust-scoped",  # the source scoped to every service of the account
     trust_changed("ecs-role-task-drill", lambda s: s["Condition"]["ArnLike"].update(
         {"aws:SourceArn": f"arn:aws:*:{REGION}:{ACCOUNT}:*"})),
     [(DRILL_ROLE, f"{DRILL_ROLE}: sts:AssumeRole by ecs-tasks.amazonaws.com for a source of "
                   "another service is admitted")]),
    ("ecs-role-trust-scoped",  # a schedule group the stack's schedules are not in
     trust_changed("ecs-role-scheduler", lambda s: s["Condition"].update(ArnEquals={
         "aws:SourceArn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/other"})),
     [(f"{CLUSTER}-scheduler", f"{CLUSTER}-scheduler: sts:AssumeRole by scheduler.amazonaws.com "
                               f"from arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/"
                               f"{CLUSTER} is refused")]),
    ("ecs-role-trust-scoped",
     trust_changed("ecs-role-scheduler", lambda s: s.pop("Condition")),
     [(f"{CLUSTER}-scheduler", f"{CLUSTER}-scheduler: sts:AssumeRole by "
                               "scheduler.amazonaws.com for another account is admitted")]),
    ("ecs-role-trust-scoped",
     trust_changed("ecs-role-task-postgres", lambda s: s["Principal"].update(
         Service=["ecs-tasks.amazonaws.com", "lambda.amazonaws.com"])),
     [(f"{CLUSTER}-task-postgres", f"{CLUSTER}-task-postgres: sts:AssumeRole by another "
                                   "service is admitted")]),
    ("ecs-execution-role-least-privilege",
     statement_added(EXECUTION, {"Sid": "AllowReadBackups", "Effect": "Allow",
                                 "Action": ["s3:GetObject"],
                                 "Resource": "arn:aws:s3:::biometrics-backups/*"}),
     [(f"{CLUSTER}-task-execution", f"{EXECUTION}: AllowReadBackups grants s3:GetObject, which "
                                    "this role does not need")]),
    ("ecs-execution-role-least-privilege",
     lambda r: edit_policy(r, EXECUTION, change_statement("AllowTaskSecrets", lambda s: s.update(
         Resource=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:*"))),
     [(f"{CLUSTER}-task-execution", f"{EXECUTION}: AllowTaskSecrets grants "
                                    "secretsmanager:GetSecretValue on arn:aws:secretsmanager:"
                                    f"{REGION}:{ACCOUNT}:secret:*, not the stack's secrets")]),
    ("ecs-execution-role-least-privilege",
     lambda r: edit_policy(r, EXECUTION, drop_condition("AllowTaskSecretsKey", "StringEquals")),
     [(f"{CLUSTER}-task-execution", f"{EXECUTION}: AllowTaskSecretsKey grants kms:Decrypt "
                                    "without StringEquals kms:ViaService = "
                                    f"secretsmanager.{REGION}.amazonaws.com")]),
    ("ecs-scheduler-role-least-privilege",
     lambda r: edit_policy(r, SCHEDULER, drop_condition("AllowRunBackupTasks", "ArnEquals")),
     [(f"{CLUSTER}-scheduler", f"{SCHEDULER}: AllowRunBackupTasks grants ecs:RunTask without "
                               "ArnEquals ecs:cluster = the stack's cluster")]),
    ("ecs-scheduler-role-least-privilege",  # the host role, with its write access
     lambda r: edit_policy(r, SCHEDULER, change_statement("AllowPassTaskRoles", lambda s: s[
         "Resource"].append(f"arn:aws:iam::{ACCOUNT}:role/backup-server"))),
     [(f"{CLUSTER}-scheduler", f"{SCHEDULER}: AllowPassTaskRoles grants iam:PassRole on "
                               f"arn:aws:iam::{ACCOUNT}:role/backup-server, not roles tagged "
                               "task-postgres, task-files, task-drill, task-exporter, "
                               "task-execution")]),
    ("ecs-scheduler-role-least-privilege",
     lambda r: edit_policy(r, SCHEDULER, drop_condition("AllowPassTaskRoles", "StringEquals")),
     [(f"{CLUSTER}-scheduler", f"{SCHEDULER}: AllowPassTaskRoles grants iam:PassRole without "
                               "StringEquals iam:PassedToService = ecs-tasks.amazonaws.com")]),
    ("ecs-scheduler-role-least-privilege",
     lambda r: edit_policy(r, SCHEDULER, change_statement("AllowDeadLetters", lambda s: s.update(
         Resource=QUEUE_ARN.replace("schedules-dlq", "other")))),
     [(f"{CLUSTER}-scheduler", f"{SCHEDULER}: AllowDeadLetters grants sqs:SendMessage on "
                               f"{QUEUE_ARN.replace('schedules-dlq', 'other')}, not the stack's "
                               "queue")]),
    ("ecs-scheduler-role-least-privilege",
     statement_added(SCHEDULER, {"Sid": "AllowStopTasks", "Effect": "Allow",
                                 "Action": ["ecs:StopTask"],
                                 "Resource": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/*"}),
     [(f"{CLUSTER}-scheduler", f"{SCHEDULER}: AllowStopTasks grants ecs:StopTask, which this "
                               "role does not need")]),
    ("scheduler-failed-deliveries-dead-lettered",
     target(NIGHTLY, lambda t: t.pop("deadLetterConfig")),
     [(NIGHTLY, f"{NIGHTLY}: deadLetterConfig.arn None is no queue of the stack")]),
    ("scheduler-failed-deliveries-dead-lettered",
     target(NIGHTLY, lambda t: t.pop("retryPolicy")),
     [(NIGHTLY, f"{NIGHTLY}: no retryPolicy (maximumRetryAttempts None, "
                "maximumEventAgeInSeconds None)")]),
    ("scheduler-runs-in-job-task-group",
     target(NIGHTLY, lambda t: t["ecsParameters"].pop("group")),
     [(NIGHTLY, f"{NIGHTLY}: ecsParameters.group None is no job's task group "
                "(backup-job:<job id>)")]),
    ("scheduler-runs-in-job-task-group",  # two schedules, one job: both may run at once
     target(NIGHTLY, lambda t: t["ecsParameters"].update(group="backup-job:drill")),
     [("ecs-schedule-drill", f"ecs-schedule-drill: {NIGHTLY} start(s) the same task group "
                             "backup-job:drill"),
      (NIGHTLY, f"{NIGHTLY}: ecs-schedule-drill start(s) the same task group "
                "backup-job:drill")]),
    ("scheduler-runs-in-job-task-group",
     target(NIGHTLY, lambda t: t["ecsParameters"]["networkConfiguration"].update(
         assignPublicIp=True)),
     [(NIGHTLY, f"{NIGHTLY}: assignPublicIp is True, not false")]),
    ("scheduler-runs-in-job-task-group",
     target(NIGHTLY, lambda t: t.update(roleArn=role_arn("task-postgres"))),
     [(NIGHTLY, f"{NIGHTLY}: roleArn '{role_arn('task-postgres')}' is no role of the stack "
                "tagged scheduler")]),
    ("scheduler-runs-in-job-task-group",
     target(NIGHTLY, lambda t: t.update(arn=CLUSTER_ARN.replace(CLUSTER, "default"))),
     [(NIGHTLY, f"{NIGHTLY}: target '{CLUSTER_ARN.replace(CLUSTER, 'default')}' is not the "
                "stack's ECS cluster")]),
    ("logs-log-group-kms-encrypted", lambda r: edit(r, "ecs-logs-drill",
                                                    lambda i: i.pop("kmsKeyId")),
     [("ecs-logs-drill", "ecs-logs-drill: no KMS key (kmsKeyId not set)")]),
    ("logs-log-group-retained", lambda r: edit(r, "ecs-logs-drill",
                                               lambda i: i.update(retentionInDays=30.0)),
     [("ecs-logs-drill", "ecs-logs-drill: retentionInDays 30 is below 365 (CloudWatch.16's "
                         "default minimum)")]),
    ("logs-log-group-retained", lambda r: edit(r, "ecs-logs-drill",
                                               lambda i: i.pop("retentionInDays")),
     [("ecs-logs-drill", "ecs-logs-drill: no retentionInDays: the events never expire (and are "
                         "billed forever)")]),
    ("sqs-queue-kms-encrypted",
     lambda r: edit(r, "ecs-dead-letters", lambda i: i.update(kmsMasterKeyId="alias/aws/sqs")),
     [("ecs-dead-letters", "ecs-dead-letters: alias/aws/sqs is AWS managed: its key policy "
                           "cannot be scoped")]),
    ("secrets-kms-encrypted",
     lambda r: edit(r, "ecs-secret-webhook-url", lambda i: i.pop("kmsKeyId")),
     [("ecs-secret-webhook-url", "ecs-secret-webhook-url: no KMS key (kmsKeyId not set)")]),
    ("ecr-tags-immutable",
     lambda r: edit(r, "ecs-image-repository", lambda i: i.update(imageTagMutability="MUTABLE")),
     [("ecs-image-repository", "ecs-image-repository: imageTagMutability 'MUTABLE': a pushed "
                               "tag could be replaced by another image")]),
    ("ecr-scan-on-push",
     lambda r: edit(r, "ecs-image-repository", lambda i: i.pop("imageScanningConfiguration")),
     [("ecs-image-repository", "ecs-image-repository: imageScanningConfiguration.scanOnPush "
                               "is not true")]),
    ("ecr-kms-encrypted",
     lambda r: edit(r, "ecs-image-repository", lambda i: i.update(
         encryptionConfigurations=[{"encryptionType": "AES256"}])),
     [("ecs-image-repository", "ecs-image-repository: encryptionType 'AES256', not KMS")]),
    ("ecr-customer-managed-key",  # KMS without a key: ECR's AWS managed aws/ecr
     lambda r: edit(r, "ecs-image-repository", lambda i: i["encryptionConfigurations"][0].pop(
         "kmsKey")),
     [("ecs-image-repository", "ecs-image-repository: no KMS key "
                               "(encryptionConfigurations.0.kmsKey not set)")]),
    # The drill's task role: the ECS extras, and still no write to backups or keys.
    ("iam-restore-role-read-only",
     lambda r: edit_policy(r, DRILL_PRIMARY, change_statement(
         "AllowReadForRestore", lambda s: s.update(Action=["s3:GetObject", "s3:PutObject"]))),
     [(DRILL_ROLE, f"{DRILL_PRIMARY}: AllowReadForRestore grants s3:PutObject")]),
    ("iam-restore-role-read-only",  # metrics in any namespace
     lambda r: edit_policy(r, DRILL_TASK, change_statement("AllowJobOutcomeMetrics",
                                                           lambda s: s.pop("Condition"))),
     [(DRILL_ROLE, f"{DRILL_TASK}: AllowJobOutcomeMetrics grants cloudwatch:PutMetricData")]),
    ("iam-restore-role-read-only",
     lambda r: edit_policy(r, DRILL_TASK, change_statement("AllowJobOutcomeMetrics", lambda s: s[
         "Condition"].update(StringEquals={"cloudwatch:namespace": "*"}))),
     [(DRILL_ROLE, f"{DRILL_TASK}: AllowJobOutcomeMetrics grants cloudwatch:PutMetricData")]),
    ("iam-restore-role-read-only",  # a write riding on the metrics statement
     lambda r: edit_policy(r, DRILL_TASK, change_statement("AllowJobOutcomeMetrics", lambda s: s[
         "Action"].append("ecs:StopTask"))),
     [(DRILL_ROLE, f"{DRILL_TASK}: AllowJobOutcomeMetrics grants cloudwatch:PutMetricData, "
                   "ecs:StopTask")]),
    ("iam-restore-role-read-only",  # the host restore role has no ECS task's metrics
     statement_added("backup-primary-restore-access", METRICS),
     [("restore-server", "backup-primary-restore-access: AllowJobOutcomeMetrics grants "
                         "cloudwatch:PutMetricData")]),
    ("iam-restore-role-read-only",  # a bucket policy granting the task role a write
     lambda r: edit_policy(r, PRIMARY_POLICY, change_statement(
         "AllowRestoreServerRecordOutcomes", lambda s: s.update(
             Resource="arn:aws:s3:::biometrics-backups/postgres/*"))),
     [("restore-server", f"{PRIMARY_POLICY}: AllowRestoreServerRecordOutcomes grants "
                         "s3:PutObject"),
      (DRILL_ROLE, f"{PRIMARY_POLICY}: AllowRestoreServerRecordOutcomes grants s3:PutObject")]),
    ("iam-restore-role-read-only",  # the exporter's key grant widened to data keys
     lambda r: edit_policy(r, "ecs-role-task-exporter-primary-restore-access", change_statement(
         "AllowDecryptForRestore", lambda s: s.update(
             Action=["kms:Decrypt", "kms:GenerateDataKey"]))),
     [(f"{CLUSTER}-task-exporter", "ecs-role-task-exporter-primary-restore-access: "
                                   "AllowDecryptForRestore grants kms:GenerateDataKey")]),
]
