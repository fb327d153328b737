"""The ECS placement as the controls see it, built by hand from the interfaces of issue 12 (the
runtime's own documents come from its builders, components.ecs_policies): prod's resources plus
a cluster, a task definition per task kind, their roles, log groups, secrets, the image
repository, the dead-letter queue and a schedule per job, in the shapes pulumi-aws records —
and the bucket and key policies granting each task role beside the host role whose access it
has. Independent of the runtime component's resource names, unlike Pulumi.scale.yaml's run.

`ecs_stack(prod)` returns the resources; edits of them (tests.support.resources.edit) make the
failing cases.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Final

from compliance.inventory import (
    ECR_REPOSITORY,
    ECS_CLUSTER,
    KMS_KEY,
    LOG_GROUP,
    QUEUE,
    ROLE,
    ROLE_POLICY,
    SCHEDULE,
    SECRET,
    TASK_DEFINITION,
    Declared,
)
from components.ecs_policies import (
    execution_role_policy,
    execution_trust_policy,
    runtime_key_policy,
    scheduler_role_policy,
    scheduler_trust_policy,
    task_role_extras,
    task_trust_policy,
)
from components.ecs_settings import EfsVolume
from components.policies import to_json
from contract.agent_settings import SETTINGS_VARIABLE
from contract.jobs import DRILL, Job, database_job, files_job
from contract.layout import ROLE_PURPOSE_TAG
from contract.tasks import SCRATCH_DIR, task_group
from tests.support.resources import ACCOUNT

REGION: Final = "eu-central-1"
CLUSTER: Final = "biometrics-backup"
CLUSTER_ARN: Final = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"
NAMESPACE: Final = "BiometricsBackup"
RUNTIME_KEY: Final = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0d7f3c1e-5b2a-4c8e-9f10-ec5000000001"
REPOSITORY: Final = "biometrics-backup-agent"
QUEUE_NAME: Final = f"{CLUSTER}-schedules-dlq"
QUEUE_ARN: Final = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE_NAME}"
FILE_SYSTEM: Final = "fs-0123456789abcdef0"
ACCESS_POINT: Final = "fsap-0123456789abcdef0"
IMAGE: Final = (f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPOSITORY}@sha256:"
                + "0" * 64)
SECRETS: Final = {"BACKUP_AGENT_SECRET_RESTIC_PASSWORD": f"{CLUSTER}/restic-password",
                  "BACKUP_AGENT_SECRET_DB_DB01": f"{CLUSTER}/db-db01-password",
                  "BACKUP_AGENT_SECRET_WEBHOOK_URL": f"{CLUSTER}/webhook-url"}
JOBS: Final = {"postgres": database_job("db01"), "files": files_job("uploads"), "drill": DRILL}
HOST_ACCESS: Final = {"task-postgres": "backup-server", "task-files": "backup-server",
                      "task-drill": "restore-server", "task-exporter": "restore-server"}
# The exporter reads only: its access has no outcome statements.
OUTCOME_SIDS: Final = ("AllowRestoreServerRecordOutcomes", "AllowRestoreServerOutcomeKey")
HOST_POLICIES: Final = {"backup-server": ("backup-primary-backup-access",),
                        "restore-server": ("backup-primary-restore-access",
                                           "backup-replica-restore-access")}


def role_name(purpose: str) -> str:
    return f"{CLUSTER}-{purpose}"


def role_arn(purpose: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{role_name(purpose)}"


def secret_arn(name: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"


def log_group(kind: str) -> str:
    return f"/biometrics-backup/{CLUSTER}/{kind}"


def _declared(component: str, type_: str, name: str, inputs: dict[str, Any]) -> Declared:
    parent = f"urn:pulumi:prod::biometrics-backup::biometrics:backup:{component}::ecs"
    return Declared(f"urn:pulumi:prod::biometrics-backup::biometrics:backup:{component}$"
                    f"{type_}::{name}", type_, name, inputs, parent)


TASK_TRUST: Final = to_json(task_trust_policy(ACCOUNT, REGION))
SCHEDULE_GROUP_ARN: Final = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/{CLUSTER}"
EFS: Final = EfsVolume(FILE_SYSTEM, ACCESS_POINT, "/mnt/uploads")


def task_extras(kind: str) -> dict[str, Any] | None:
    return task_role_extras(kind, region=REGION, account_id=ACCOUNT, cluster_name=CLUSTER,
                            cluster_arn=CLUSTER_ARN, metrics_namespace=NAMESPACE,
                            efs_volumes=(EFS,))


METRICS: Final = task_extras("drill")["Statement"][0]  # type: ignore[index]


def _execution_policy() -> str:
    return to_json(execution_role_policy(
        region=REGION, repository_arn=f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{REPOSITORY}",
        log_group_arns=[f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_group(kind)}"
                        for kind in (*JOBS, "exporter")],
        secret_arns=[secret_arn(name) for name in SECRETS.values()], key_arn=RUNTIME_KEY))


def _scheduler_policy() -> str:
    return to_json(scheduler_role_policy(
        region=REGION, cluster_arn=CLUSTER_ARN,
        task_definition_arns=[f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{CLUSTER}-{kind}:*"
                              for kind in JOBS],
        passed_role_arns=[*(role_arn(f"task-{kind}") for kind in JOBS),
                          role_arn("task-execution")],
        queue_arn=QUEUE_ARN, key_arn=RUNTIME_KEY))


def container_definitions(kind: str) -> str:
    mounts = [{"sourceVolume": "scratch", "containerPath": SCRATCH_DIR, "readOnly": False}]
    if kind == "files":
        mounts.append({"sourceVolume": "uploads", "containerPath": "/mnt/uploads",
                       "readOnly": True})
    settings = {"jobs": [JOBS[kind].id] if kind in JOBS else [],
                "task": {"cluster": CLUSTER, "metricsNamespace": NAMESPACE}}
    return json.dumps([{
        "name": "backup-agent", "image": IMAGE, "essential": True,
        "readonlyRootFilesystem": True, "user": "10001:10001", "privileged": False,
        "linuxParameters": {"initProcessEnabled": True},
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": log_group(kind), "awslogs-region": REGION,
            "awslogs-stream-prefix": kind}},
        "environment": [{"name": SETTINGS_VARIABLE, "value": json.dumps(settings)},
                        {"name": "TMPDIR", "value": f"{SCRATCH_DIR}/tmp"}],
        "secrets": [{"name": variable, "valueFrom": secret_arn(name)}
                    for variable, name in SECRETS.items()],
        "mountPoints": mounts,
    }])


def _task_definition(kind: str) -> Declared:
    volumes: list[dict[str, Any]] = [{"name": "scratch"}]
    if kind == "files":
        volumes.append({"name": "uploads", "efsVolumeConfiguration": {
            "fileSystemId": FILE_SYSTEM, "transitEncryption": "ENABLED",
            "authorizationConfig": {"accessPointId": ACCESS_POINT, "iam": "ENABLED"}}})
    return _declared("EcsJobs", TASK_DEFINITION, f"ecs-task-{kind}", {
        "family": f"{CLUSTER}-{kind}", "cpu": "1024", "memory": "2048",
        "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "ephemeralStorage": {"sizeInGib": 21.0},
        "executionRoleArn": role_arn("task-execution"), "taskRoleArn": role_arn(f"task-{kind}"),
        "containerDefinitions": container_definitions(kind), "volumes": volumes})


def _schedule(job: Job) -> Declared:
    command = ["drill"] if job.name is None else ["run", job.kind, job.name]
    return _declared("EcsJobs", SCHEDULE, f"ecs-schedule-{job.id.replace(':', '-')}", {
        "name": f"{CLUSTER}-{job.id.replace(':', '-')}", "groupName": CLUSTER,
        "scheduleExpression": "cron(0 2 * * ? *)", "scheduleExpressionTimezone": "Europe/Berlin",
        "flexibleTimeWindow": {"mode": "OFF"},
        "target": {
            "arn": CLUSTER_ARN, "roleArn": role_arn("scheduler"),
            "deadLetterConfig": {"arn": QUEUE_ARN},
            "retryPolicy": {"maximumRetryAttempts": 3.0, "maximumEventAgeInSeconds": 3600.0},
            "ecsParameters": {
                "taskDefinitionArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/"
                                     f"{CLUSTER}-{job.kind}:1",
                "launchType": "FARGATE", "group": task_group(job),
                "networkConfiguration": {"subnets": ["subnet-0123456789abcdef0"],
                                         "securityGroups": ["sg-0123456789abcdef0"],
                                         "assignPublicIp": False}},
            "input": json.dumps({"containerOverrides": [{"name": "backup-agent",
                                                         "command": command}]})}})


def _role(purpose: str, assume: str) -> Declared:
    return _declared("EcsCluster", ROLE, f"ecs-role-{purpose}", {
        "name": role_name(purpose), "assumeRolePolicy": assume,
        "tags": {ROLE_PURPOSE_TAG: purpose}})


def _role_policy(purpose: str, suffix: str, document: str) -> Declared:
    return _declared("EcsCluster", ROLE_POLICY, f"ecs-role-{purpose}-{suffix}",
                     {"role": role_name(purpose), "policy": document})


def _task_role_policies(purpose: str, prod: dict[str, Declared]) -> list[Declared]:
    """The same statements as the host role's (its RolePolicies, copied), plus the task's
    role-policy-only extras."""
    found = []
    for policy in HOST_POLICIES[HOST_ACCESS[purpose]]:
        document = json.loads(prod[policy].inputs["policy"])
        if purpose == "task-exporter":
            document["Statement"] = [s for s in document["Statement"]
                                     if s["Sid"] not in OUTCOME_SIDS]
        found.append(_role_policy(purpose, policy.removeprefix("backup-"),
                                  json.dumps(document)))
    extras = task_extras(purpose.removeprefix("task-"))
    if extras:
        found.append(_role_policy(purpose, "task", to_json(extras)))
    return found


def _granted_beside_hosts(resource: Declared, task_sids: dict[str, set[str]]) -> Declared:
    """A bucket or key policy whose statements for a host role also name the task roles that
    have the same statement (same Sid) in their own policies."""
    document = json.loads(resource.inputs["policy"])
    changed = False
    for statement in document["Statement"]:
        principal = statement.get("Principal")
        host = principal.get("AWS") if isinstance(principal, dict) else None
        if not isinstance(host, str) or not host.startswith(f"arn:aws:iam::{ACCOUNT}:role/"):
            continue
        tasks = [role_arn(purpose) for purpose, sids in task_sids.items()
                 if host.endswith(f":role/{HOST_ACCESS[purpose]}") and statement["Sid"] in sids]
        if tasks:
            principal["AWS"] = [host, *tasks]
            changed = True
    if not changed:
        return resource
    inputs = {**copy.deepcopy(dict(resource.inputs)), "policy": json.dumps(document)}
    return Declared(resource.urn, resource.type, resource.name, inputs, resource.parent)


def _runtime_key() -> Declared:
    return _declared("EcsJobs", KMS_KEY, "ecs-runtime-key", {
        "description": "Encrypts the ECS runtime's logs, secrets and dead-letter queue",
        "enableKeyRotation": True, "region": REGION, "deletionWindowInDays": 30.0,
        "tags": {"biometrics-backup-stack": "prod"},
        "policy": to_json(runtime_key_policy(ACCOUNT, REGION, f"/biometrics-backup/{CLUSTER}/"))})


def ecs_stack(prod: list[Declared]) -> list[Declared]:
    """prod's resources with the ECS placement of every kind of work added."""
    by_name = {r.name: r for r in prod}
    task_roles = list(HOST_ACCESS)
    added: list[Declared] = [
        _declared("EcsCluster", ECS_CLUSTER, "ecs-cluster", {
            "name": CLUSTER, "settings": [{"name": "containerInsights", "value": "enabled"}]}),
        *(_role(purpose, TASK_TRUST) for purpose in task_roles),
        _role("task-execution", to_json(execution_trust_policy())),
        _role("scheduler", to_json(scheduler_trust_policy(ACCOUNT, SCHEDULE_GROUP_ARN))),
        _role_policy("task-execution", "access", _execution_policy()),
        _role_policy("scheduler", "access", _scheduler_policy()),
        _runtime_key(),
        *(_declared("EcsJobs", LOG_GROUP, f"ecs-logs-{kind}", {
            "name": log_group(kind), "retentionInDays": 365.0, "kmsKeyId": RUNTIME_KEY})
          for kind in (*JOBS, "exporter")),
        *(_declared("EcsJobs", SECRET, f"ecs-secret-{name.rsplit('/', 1)[-1]}",
                    {"name": name, "kmsKeyId": RUNTIME_KEY}) for name in SECRETS.values()),
        _declared("EcsJobs", ECR_REPOSITORY, "ecs-image-repository", {
            "name": REPOSITORY, "imageTagMutability": "IMMUTABLE",
            "imageScanningConfiguration": {"scanOnPush": True},
            "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": RUNTIME_KEY}]}),
        _declared("EcsJobs", QUEUE, "ecs-dead-letters", {
            "name": QUEUE_NAME, "kmsMasterKeyId": RUNTIME_KEY,
            "kmsDataKeyReusePeriodSeconds": 300.0}),
        *(_task_definition(kind) for kind in (*JOBS, "exporter")),
        *(_schedule(job) for job in JOBS.values()),
    ]
    policies = [p for purpose in task_roles for p in _task_role_policies(purpose, by_name)]
    task_sids = {purpose: {s["Sid"] for p in policies if p.inputs["role"] == role_name(purpose)
                           for s in json.loads(p.inputs["policy"])["Statement"]}
                 for purpose in task_roles}
    granted = [_granted_beside_hosts(r, task_sids)
               if r.type in ("aws:s3/bucketPolicy:BucketPolicy", KMS_KEY) else r for r in prod]
    return [*granted, *added, *policies]
