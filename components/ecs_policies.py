"""Pure builders for the ECS placement's IAM, queue and key policies.

The task roles' S3 and KMS statements are not here: they are the host roles' own
(`policies.backup_server_access`, `policies.restore_server_access`), granted through the bucket
and key policies beside the host role. What follows is what only a task needs (outcome
metrics, the overlap guard's task listing, the EFS mount), the execution role, the scheduler's
role, the dead-letter queue's policy and the runtime key's policy.
"""

from __future__ import annotations

from collections.abc import Sequence

from components.ecs_settings import EfsVolume
from components.policies import Document, key_administration, policy_document, statement

ECS_TASKS_SERVICE = "ecs-tasks.amazonaws.com"
SCHEDULER_SERVICE = "scheduler.amazonaws.com"
# CloudWatch Logs' documented key-policy actions for an encrypted log group (CloudWatch Logs
# User Guide, "Encrypt log data in CloudWatch Logs using AWS Key Management Service").
# AWS's example for CloudWatch Logs grants kms:Encrypt*, Decrypt*, ReEncrypt*, GenerateDataKey*
# and Describe* (CloudWatch Logs User Guide, "Encrypt log data in CloudWatch Logs using AWS
# KMS"): named here, and without DescribeKey, which carries no encryption context and so is
# never allowed under the statement's condition anyway.
LOGS_KEY_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                    "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext")


def ecs_arn(region: str, account_id: str, resource: str) -> str:
    return f"arn:aws:ecs:{region}:{account_id}:{resource}"


def efs_arn(region: str, account_id: str, resource: str) -> str:
    return f"arn:aws:elasticfilesystem:{region}:{account_id}:{resource}"


# --- trust policies --------------------------------------------------------------------------


def task_trust_policy(account_id: str, region: str) -> Document:
    """Task roles: ECS tasks of this account and region only. The ECS Developer Guide ("Amazon
    ECS task IAM role") documents aws:SourceArn as arn:aws:ecs:<region>:<account>:* and no
    narrower form, so the cluster is not in the trust policy; which task definitions a role
    can run with is fixed by iam:PassRole (only the scheduler role may pass it)."""
    return policy_document([statement(
        "AllowEcsTasks", ["sts:AssumeRole"], None,
        principal={"Service": ECS_TASKS_SERVICE},
        condition={"StringEquals": {"aws:SourceAccount": account_id},
                   "ArnLike": {"aws:SourceArn": ecs_arn(region, account_id, "*")}},
    )])


def execution_trust_policy() -> Document:
    """The task execution role, as the ECS Developer Guide ("Amazon ECS task execution IAM
    role") documents its trust: the ECS agent assumes it to pull the image, write the logs and
    read the secrets, and nothing else is granted to it."""
    return policy_document([statement("AllowEcsTaskExecution", ["sts:AssumeRole"], None,
                                      principal={"Service": ECS_TASKS_SERVICE})])


def scheduler_trust_policy(account_id: str, schedule_group_arn: str) -> Document:
    """EventBridge Scheduler's documented execution-role trust (Scheduler User Guide, "Set up
    the execution role"): this account's schedules in this schedule group only."""
    return policy_document([statement(
        "AllowEventBridgeScheduler", ["sts:AssumeRole"], None,
        principal={"Service": SCHEDULER_SERVICE},
        condition={"StringEquals": {"aws:SourceAccount": account_id},
                   "ArnEquals": {"aws:SourceArn": schedule_group_arn}},
    )])


# --- role policies -----------------------------------------------------------------------------


def task_role_extras(kind: str, *, region: str, account_id: str, cluster_name: str,
                     cluster_arn: str, metrics_namespace: str,
                     efs_volumes: Sequence[EfsVolume] = ()) -> Document | None:
    """What a job's task role needs beyond the host role's S3/KMS statements: put its outcome
    metric (only into the stack's namespace), list and describe this cluster's tasks (the
    overlap guard), and — for file sets on EFS — mount each access point (ClientMount only:
    the volumes are read-only). The exporter needs none of it (None)."""
    if kind == "exporter":
        return None
    statements = [
        statement("AllowJobOutcomeMetrics", ["cloudwatch:PutMetricData"], "*",
                  condition={"StringEquals": {"cloudwatch:namespace": metrics_namespace}}),
        statement("AllowOverlapGuardList", ["ecs:ListTasks"], "*",
                  condition={"ArnEquals": {"ecs:cluster": cluster_arn}}),
        statement("AllowOverlapGuardDescribe", ["ecs:DescribeTasks"],
                  ecs_arn(region, account_id, f"task/{cluster_name}/*")),
    ]
    if kind == "files" and efs_volumes:
        file_systems = sorted({efs_arn(region, account_id, f"file-system/{v.file_system_id}")
                               for v in efs_volumes})
        access_points = sorted({efs_arn(region, account_id, f"access-point/{v.access_point_id}")
                                for v in efs_volumes})
        statements.append(statement(
            "AllowFileSetMount", ["elasticfilesystem:ClientMount"], file_systems,
            condition={"ArnEquals": {"elasticfilesystem:AccessPointArn": access_points}}))
    return policy_document(statements)


def execution_role_policy(*, region: str, repository_arn: str, log_group_arns: Sequence[str],
                          secret_arns: Sequence[str], key_arn: str) -> Document:
    """Pull this repository's image, write to these log groups, read these secrets (and
    decrypt them with the runtime key, through Secrets Manager only)."""
    statements = [
        statement("AllowImageRegistryLogin", ["ecr:GetAuthorizationToken"], "*"),
        statement("AllowImagePull", ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                  repository_arn),
        statement("AllowTaskLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                  [resource for arn in log_group_arns
                   for resource in (arn, f"{arn}:log-stream:*")]),
    ]
    if secret_arns:
        statements += [
            statement("AllowTaskSecrets", ["secretsmanager:GetSecretValue"], list(secret_arns)),
            statement("AllowTaskSecretsKey", ["kms:Decrypt"], key_arn, condition={
                "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}),
        ]
    return policy_document(statements)


def scheduler_role_policy(*, region: str, cluster_arn: str,
                          task_definition_arns: Sequence[str], passed_role_arns: Sequence[str],
                          queue_arn: str, key_arn: str) -> Document:
    """Start exactly these task definitions in this cluster, pass exactly their task and
    execution roles to ECS, and deliver what it could not start to its dead-letter queue —
    which is encrypted, so SendMessage needs the queue key's GenerateDataKey and Decrypt."""
    return policy_document([
        statement("AllowRunBackupTasks", ["ecs:RunTask"], list(task_definition_arns),
                  condition={"ArnEquals": {"ecs:cluster": cluster_arn}}),
        statement("AllowPassTaskRoles", ["iam:PassRole"], list(passed_role_arns),
                  condition={"StringEquals": {"iam:PassedToService": ECS_TASKS_SERVICE}}),
        statement("AllowDeadLetters", ["sqs:SendMessage"], queue_arn),
        statement("AllowDeadLetterKey", ["kms:GenerateDataKey", "kms:Decrypt"], key_arn,
                  condition={"StringEquals": {"kms:ViaService": f"sqs.{region}.amazonaws.com"}}),
    ])


# --- resource policies -------------------------------------------------------------------------


def dead_letter_queue_policy(queue_arn: str, scheduler_role_arn: str) -> Document:
    """TLS only, and nobody but the scheduler role sends to the queue, so a dead letter is
    always a schedule that could not start its task."""
    return policy_document([
        statement("DenyInsecureTransport", ["sqs:*"], queue_arn, effect="Deny", principal="*",
                  condition={"Bool": {"aws:SecureTransport": "false"}}),
        statement("DenyOtherSenders", ["sqs:SendMessage"], queue_arn, effect="Deny",
                  principal="*",
                  condition={"ArnNotEquals": {"aws:PrincipalArn": scheduler_role_arn}}),
    ])


def runtime_key_policy(account_id: str, region: str, log_group_prefix: str) -> Document:
    """The runtime key (log groups, secrets, the dead-letter queue): administration as for
    every key of the stack; CloudWatch Logs for this runtime's log groups only; and this
    account's principals through Secrets Manager and SQS only — their IAM policies (the
    execution role, the scheduler role, the deployer) say who."""
    through = {"kms:CallerAccount": account_id}
    return policy_document([
        key_administration(account_id),
        statement("AllowLogGroupEncryption", LOGS_KEY_ACTIONS, "*",
                  principal={"Service": f"logs.{region}.amazonaws.com"},
                  # Encryption context values are strings (Service Authorization Reference for
                  # AWS KMS), so a string operator.
                  condition={"StringLike": {"kms:EncryptionContext:aws:logs:arn":
                                         f"arn:aws:logs:{region}:{account_id}:log-group:"
                                         f"{log_group_prefix}*"}}),
        statement("AllowSecretsManagerUse", ["kms:GenerateDataKey", "kms:Decrypt"], "*",
                  principal={"AWS": f"arn:aws:iam::{account_id}:root"},
                  condition={"StringEquals": {
                      **through, "kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}),
        statement("AllowDeadLetterQueueUse", ["kms:GenerateDataKey", "kms:Decrypt"], "*",
                  principal={"AWS": f"arn:aws:iam::{account_id}:root"},
                  condition={"StringEquals": {
                      **through, "kms:ViaService": f"sqs.{region}.amazonaws.com"}}),
    ])
