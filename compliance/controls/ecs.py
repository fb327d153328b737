"""The ECS placement's controls: the task definitions (read-only root, no privileges, non-root,
logs, EFS, secrets), the roles around them (trust, execution role, scheduler role), and what
they write to: log groups, the dead-letter queue, the image repository, the secrets.

Each reads the recorded pulumi-aws inputs of its resource type (camelCase, as recorded); the
task definitions' containers are the JSON of their `containerDefinitions` input, in the ECS
API's own names. Roles are recognised by their purpose tag (contract.layout.ECS_ROLE_PURPOSES),
the resources they may touch by type token and the names their inputs give them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from compliance.controls.buckets import account_administrator, decide
from compliance.controls.containers import ACCESS_KEY, SECRET_NAME, STATIC_KEY_NAMES
from compliance.controls.registry import (
    Scope,
    Verdict,
    as_list,
    control,
    failed,
    passed,
)
from compliance.controls.roles import role_grants
from compliance.evaluation import LabelledPolicy
from compliance.inventory import (
    ECR_REPOSITORY,
    ECS_CLUSTER,
    LOG_GROUP,
    QUEUE,
    SCHEDULE,
    SECRET,
    ContainerDefinition,
    Declared,
    Inventory,
    PolicyDocument,
    RoleView,
    TaskDefinitionView,
)
from contract.jobs import Job
from contract.layout import TASK_ROLE_PURPOSES
from contract.tasks import TASK_GROUP_PREFIX

NO_TASKS: Final = ("the stack declares no aws:ecs/taskDefinition:TaskDefinition (nothing is "
                   "placed on ECS)")
ECS_TASKS_SERVICE: Final = "ecs-tasks.amazonaws.com"
SCHEDULER_SERVICE: Final = "scheduler.amazonaws.com"
ROOT_USERS: Final = ("root", "0")  # ECS.20: the default root users of a Linux container
# CloudWatch.16's default minimum (Security Hub's parameter), CKV_AWS_338's one year.
MIN_LOG_RETENTION_DAYS: Final = 365
OTHER_ACCOUNT: Final = "444455556666"
# What ECS.8 looks for in a task's environment: AWS keys and ECS's registry credentials.
ECS8_NAMES: Final = (*STATIC_KEY_NAMES, "ECS_ENGINE_AUTH_DATA")


def _of_type(type_: str) -> Callable[[Inventory], list[Declared]]:
    """The resources of `type_` by name: the order they register in varies between runs."""
    return lambda inventory: sorted(inventory.of_type(type_), key=lambda r: r.name)


def _name(resource: Declared) -> str:
    return resource.name


TASK_DEFINITIONS = Scope("ECS task definitions", lambda i: list(i.task_definitions),
                         lambda t: t.resource.name, NO_TASKS)
EFS_TASK_DEFINITIONS = Scope("ECS task definitions with EFS volumes",
                             lambda i: [t for t in i.task_definitions if t.efs_volumes()],
                             lambda t: t.resource.name,
                             "no ECS task definition mounts an EFS volume")
CLUSTERS = Scope("ECS clusters", _of_type(ECS_CLUSTER), _name,
                 "the stack declares no aws:ecs/cluster:Cluster")
LOG_GROUPS = Scope("CloudWatch log groups", _of_type(LOG_GROUP), _name,
                   "the stack declares no aws:cloudwatch/logGroup:LogGroup")
QUEUES = Scope("SQS queues (the schedules' dead-letter queue)", _of_type(QUEUE), _name,
               "the stack declares no aws:sqs/queue:Queue")
REPOSITORIES = Scope("ECR repositories", _of_type(ECR_REPOSITORY), _name,
                     "the stack declares no aws:ecr/repository:Repository")
SECRETS = Scope("Secrets Manager secrets", _of_type(SECRET), _name,
                "the stack declares no aws:secretsmanager/secret:Secret")
SCHEDULES = Scope("EventBridge Scheduler schedules", _of_type(SCHEDULE), _name,
                  "the stack declares no aws:scheduler/schedule:Schedule")
SERVICE_ROLES = Scope(f"roles ({', '.join(TASK_ROLE_PURPOSES)}, scheduler)",
                      lambda i: i.roles_tagged((*TASK_ROLE_PURPOSES, "scheduler")),
                      lambda r: r.role_name, "no role is tagged as an ECS task or scheduler role")
EXECUTION_ROLES = Scope("roles (task-execution)", lambda i: i.roles_tagged(("task-execution",)),
                        lambda r: r.role_name, "no role is tagged task-execution")
SCHEDULER_ROLES = Scope("roles (scheduler)", lambda i: i.roles_tagged(("scheduler",)),
                        lambda r: r.role_name, "no role is tagged scheduler")


# --- ARNs of the stack's resources ---------------------------------------------------------


@dataclass(frozen=True)
class Arn:
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, text: object) -> Arn | None:
        parts = str(text).split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or not parts[1].startswith("aws"):
            return None
        return cls(parts[2], parts[3], parts[4], parts[5])


def _names(inventory: Inventory, type_: str, field: str = "name") -> set[str]:
    return {str(r.get(field)) for r in inventory.of_type(type_) if r.get(field)}


def _stack_region(inventory: Inventory) -> str:
    """The ECS cluster's region, else the backup bucket's (the provider's region)."""
    for cluster in inventory.of_type(ECS_CLUSTER):
        if cluster.get("region"):
            return str(cluster.get("region"))
    regions = [b.region for b in inventory.buckets_of("backup") if b.region]
    return regions[0] if regions else "us-east-1"


def _account(inventory: Inventory) -> str:
    return inventory.account_id() or "000000000000"


def _own(arn: Arn | None, inventory: Inventory, service: str) -> bool:
    return arn is not None and arn.service == service and arn.account == _account(inventory)


def _cluster_arns(inventory: Inventory) -> Callable[[str], bool]:
    names = _names(inventory, ECS_CLUSTER)

    def matches(text: str) -> bool:
        arn = Arn.parse(text)
        return _own(arn, inventory, "ecs") and arn.resource.removeprefix("cluster/") in names \
            and arn.resource.startswith("cluster/")
    return matches


def _task_definition_arns(inventory: Inventory) -> Callable[[str], bool]:
    families = {str(t.resource.get("family")) for t in inventory.task_definitions}

    def matches(text: str) -> bool:
        arn = Arn.parse(text)
        if not _own(arn, inventory, "ecs") or not arn.resource.startswith("task-definition/"):
            return False
        family, _, revision = arn.resource.removeprefix("task-definition/").partition(":")
        return family in families and (revision in ("", "*") or revision.isdigit())
    return matches


def _role_arns(inventory: Inventory, purposes: Iterable[str]) -> Callable[[str], bool]:
    roles = inventory.roles_tagged(purposes)
    return lambda text: _own(Arn.parse(text), inventory, "iam") and \
        any(role.named_by(text) for role in roles)


def _queue_arns(inventory: Inventory) -> Callable[[str], bool]:
    names = _names(inventory, QUEUE)
    return lambda text: _own(Arn.parse(text), inventory, "sqs") and \
        Arn.parse(text).resource in names


def _repository_arns(inventory: Inventory) -> Callable[[str], bool]:
    names = _names(inventory, ECR_REPOSITORY)
    return lambda text: _own(Arn.parse(text), inventory, "ecr") and \
        Arn.parse(text).resource.removeprefix("repository/") in names and \
        Arn.parse(text).resource.startswith("repository/")


def _log_group_arns(inventory: Inventory) -> Callable[[str], bool]:
    """A log group of the stack, or its streams (`log-group:<name>:*`,
    `log-group:<name>:log-stream:*`)."""
    names = _names(inventory, LOG_GROUP)

    def matches(text: str) -> bool:
        arn = Arn.parse(text)
        if not _own(arn, inventory, "logs") or not arn.resource.startswith("log-group:"):
            return False
        rest = arn.resource.removeprefix("log-group:")
        return any(rest == name or rest in (f"{name}:*", f"{name}:log-stream:*")
                   for name in names)
    return matches


def _secret_arns(inventory: Inventory) -> Callable[[str], bool]:
    """A secret of the stack: `secret:<name>-` and Secrets Manager's six random characters
    (or `??????` standing for them), or the partial ARN `secret:<name>`."""
    names = _names(inventory, SECRET)

    def matches(text: str) -> bool:
        arn = Arn.parse(text)
        if not _own(arn, inventory, "secretsmanager") or not arn.resource.startswith("secret:"):
            return False
        rest = arn.resource.removeprefix("secret:")
        return any(rest == name or (rest.startswith(f"{name}-") and len(rest) == len(name) + 7)
                   for name in names)
    return matches


def _key_arns(arns: Iterable[object]) -> Callable[[str], bool]:
    keys = {str(arn) for arn in arns if arn}
    return lambda text: text in keys


# --- the cluster and its task definitions -----------------------------------------------


@control("ecs-cluster-container-insights", "The ECS cluster has Container Insights on",
         severity="medium", scope=CLUSTERS, frameworks=("SecurityHub ECS.12", "CKV_AWS_65"))
def _container_insights(cluster: Declared, inventory: Inventory) -> Verdict:
    settings = cluster.get("settings", default=[]) or []
    values = [cluster.get("settings", index, "value") for index, setting in enumerate(settings)
              if isinstance(setting, Mapping) and setting.get("name") == "containerInsights"]
    if not values or values[-1] not in ("enabled", "enhanced"):
        return failed(f"{cluster.name}: containerInsights is {values[-1] if values else 'unset'}"
                      " (allowed: enabled, enhanced)")
    return passed(f"{cluster.name}: containerInsights {values[-1]}")


def _containers_verdict(task: TaskDefinitionView,
                        problem: Callable[[ContainerDefinition], str | None],
                        holds: str) -> Verdict:
    """Fail with every container's problem; pass when none has one."""
    containers = task.containers()
    if not containers:
        return failed(f"{task.resource.name}: containerDefinitions holds no container")
    found = [f"{c.label}: {text}" for c in containers if (text := problem(c))]
    if found:
        return failed("; ".join(found))
    return passed(f"{task.resource.name}: {len(containers)} container(s), {holds}")


@control("ecs-task-read-only-root", "Every container of an ECS task has a read-only root file "
         "system", severity="high", scope=TASK_DEFINITIONS,
         frameworks=("SecurityHub ECS.5", "CKV_AWS_336"))
def _read_only_root(task: TaskDefinitionView, inventory: Inventory) -> Verdict:
    def problem(c: ContainerDefinition) -> str | None:
        value = c.definition.get("readonlyRootFilesystem")
        return None if value is True else f"readonlyRootFilesystem is {value!r}"
    return _containers_verdict(task, problem, "each with readonlyRootFilesystem true")


@control("ecs-task-not-privileged", "No container of an ECS task is privileged",
         severity="high", scope=TASK_DEFINITIONS,
         frameworks=("SecurityHub ECS.4", "CKV_AWS_334"))
def _not_privileged(task: TaskDefinitionView, inventory: Inventory) -> Verdict:
    def problem(c: ContainerDefinition) -> str | None:
        return "privileged is true" if c.definition.get("privileged") is True else None
    return _containers_verdict(task, problem, "none privileged")


def _user(c: ContainerDefinition) -> str:
    return str(c.definition.get("user") or "")


@control("ecs-task-non-root-user", "Every container of an ECS task runs as a non-root user",
         severity="medium", scope=TASK_DEFINITIONS, frameworks=("SecurityHub ECS.20",))
def _non_root(task: TaskDefinitionView, inventory: Inventory) -> Verdict:
    def problem(c: ContainerDefinition) -> str | None:
        user = _user(c)
        if not user:
            return "no user: it runs as the image's user, root unless the image says otherwise"
        if user.partition(":")[0] in ROOT_USERS:
            return f"user {user!r} is root"
        return None
    users = sorted({_user(c) for c in task.containers()})
    return _containers_verdict(task, problem, f"user {', '.join(users)}")


@control("ecs-task-no-added-capabilities", "No container of an ECS task adds Linux "
         "capabilities", severity="medium", scope=TASK_DEFINITIONS)
def _no_added_capabilities(task: TaskDefinitionView, inventory: Inventory) -> Verdict:
    def problem(c: ContainerDefinition) -> str | None:
        parameters = c.definition.get("linuxParameters") or {}
        capabilities = parameters.get("capabilities") if isinstance(parameters, Mapping) else {}
        added = as_list((capabilities or {}).get("add"))
        return f"linuxParameters.capabilities.add {added}" if added else None
    return _containers_verdict(task, problem, "none adds a capability")


@control("ecs-task-logs-to-cloudwatch", "Every container of an ECS task logs with awslogs to a "
         "log group of the stack", severity="high", scope=TASK_DEFINITIONS,
         frameworks=("SecurityHub ECS.9",))
def _logs_to_cloudwatch(task: TaskDefinitionView, inventory: Inventory) -> Verdict:
    """A log group of the stack is one the log-group controls judge (encrypted, retained)."""
    groups = _names(inventory, LOG_GROUP)

    def problem(c: ContainerDefinition) -> str | None:
        configuration = c.definition.get("logConfiguration")
        if not isinstance(configuration, Mapping):
            return "no logConfiguration"
        if configuration.get("logDriver") != "awslogs":
            return f"logDriver {configuration.get('logDriver')!r}, not awslogs"
        group = (configuration.get("options") or {}).get("awslogs-group")
        if group not in groups:
            return f"awslogs-group {group!r} is not a log group of the stack"
        return None
    used = sorted({str(((c.definition.get("logConfiguration") or {}).get("options") or {})
                       .get("awslogs-group")) for c in task.containers()})
    return _containers_verdict(task, problem, f"awslogs to {', '.join(used)}")


@control("ecs-task-execution-role-separate", "Each ECS task has an execution role separate "
         "from its task role", severity="high", scope=TASK_DEFINITIONS,
         frameworks=("CKV_AWS_249",))
def _execution_role_separate(task: TaskDefinitionView, inventory: Inventory) -> Verdict:
    """The execution role (image pull, logs, secrets: ECS's own needs) and the task role (what
    the job may do in AWS) are different roles with their own purpose tags."""
    name = task.resource.name
    execution = task.resource.get("executionRoleArn")
    task_role = task.resource.get("taskRoleArn")
    if not execution or not task_role:
        return failed(f"{name}: executionRoleArn {execution!r}, taskRoleArn {task_role!r}: "
                      "both are needed")
    if execution == task_role:
        return failed(f"{name}: the execution role is the task role ({execution})")
    runs_as = inventory.role_of_arn(execution)
    acts_as = inventory.role_of_arn(task_role)
    if runs_as is None or "task-execution" not in runs_as.purposes:
        return failed(f"{name}: executionRoleArn {execution} is no role of the stack tagged "
                      "task-execution")
    if acts_as is None or not set(acts_as.purposes) & set(TASK_ROLE_PURPOSES):
        return failed(f"{name}: taskRoleArn {task_role} is no role of the stack tagged "
                      f"{' / '.join(TASK_ROLE_PURPOSES)}")
    return passed(f"{name}: execution role {runs_as.role_name}, task role {acts_as.role_name} "
                  f"({acts_as.purposes[0]})")


@control("ecs-task-efs-encrypted-in-transit", "Every EFS volume of an ECS task is encrypted in "
         "transit, IAM-authorised through an access point and mounted read-only",
         severity="high", scope=EFS_TASK_DEFINITIONS,
         frameworks=("SecurityHub ECS.18", "CKV_AWS_97"))
def _efs_in_transit(task: TaskDefinitionView, inventory: Inventory) -> Verdict:
    problems: list[str] = []
    volumes = task.efs_volumes()
    for volume in volumes:
        label = f"volume {volume.get('name')!r}"
        efs = volume.get("efsVolumeConfiguration") or {}
        authorization = efs.get("authorizationConfig") or {}
        if efs.get("transitEncryption") != "ENABLED":
            problems.append(f"{label}: transitEncryption {efs.get('transitEncryption')!r}")
        if authorization.get("iam") != "ENABLED":
            problems.append(f"{label}: authorizationConfig.iam {authorization.get('iam')!r}")
        if not authorization.get("accessPointId"):
            problems.append(f"{label}: no authorizationConfig.accessPointId")
        for container in task.containers():
            problems += [f"{label}: mounted writable at {mount.get('containerPath')} in "
                         f"{container.label}"
                         for mount in container.items("mountPoints")
                         if mount.get("sourceVolume") == volume.get("name")
                         and mount.get("readOnly") is not True]
    if problems:
        return failed(f"{task.resource.name}: {'; '.join(problems)}")
    return passed(f"{task.resource.name}: {len(volumes)} EFS volume(s), each with TLS, IAM "
                  "authorisation through its access point, mounted read-only")


def _plaintext_secrets(c: ContainerDefinition, inventory: Inventory) -> list[str]:
    problems = []
    for variable in c.items("environment"):
        name, value = str(variable.get("name")), str(variable.get("value") or "")
        if name in ECS8_NAMES:
            problems.append(f"environment {name} (static credentials)")
        elif ACCESS_KEY.search(value):
            problems.append(f"environment {name} holds an AWS access key id")
        elif SECRET_NAME.search(name) and value:
            problems.append(f"environment {name} holds a plaintext secret (use secrets, "
                            "valueFrom)")
    stack_secret = _secret_arns(inventory)
    for secret in c.items("secrets"):
        source = str(secret.get("valueFrom") or "")
        if not (stack_secret(source) or _own(Arn.parse(source), inventory, "ssm")):
            problems.append(f"secrets {secret.get('name')}: valueFrom {source!r} is no secret of "
                            "the stack (a Secrets Manager or Parameter Store ARN)")
    return problems


@control("ecs-task-no-plaintext-secret", "No ECS task definition holds a secret: secrets reach "
         "the containers only by reference (secrets, valueFrom)", severity="critical",
         scope=TASK_DEFINITIONS, frameworks=("SecurityHub ECS.8",))
def _no_plaintext_secret(task: TaskDefinitionView, inventory: Inventory) -> Verdict:
    """A task definition is no secret store: DescribeTaskDefinition shows it to anyone allowed
    to describe it. A value built from a secret config key is marked secret by Pulumi, so a
    secret input means a secret inside."""
    if "containerDefinitions" in task.resource.secret_inputs:
        return failed(f"{task.resource.name}: containerDefinitions is built from a secret value "
                      "(a secret config key): ECS would keep it in plaintext")
    references = sum(len(c.items("secrets")) for c in task.containers())
    return _containers_verdict(task, lambda c: "; ".join(_plaintext_secrets(c, inventory))
                               or None,
                               f"no secret in the environment, {references} secret(s) by "
                               "valueFrom from the stack's secrets")


# --- roles ---------------------------------------------------------------------------------


def _as_resource_policy(document: Mapping[str, Any], role_arn: str) -> dict[str, Any]:
    """A trust policy judged as the resource policy of its role (the resource it guards)."""
    return {**document, "Statement": [{**statement, "Resource": role_arn}
                                      for statement in as_list(document.get("Statement"))
                                      if isinstance(statement, Mapping)]}


def _trust_probes(role: RoleView, inventory: Inventory) -> tuple[str, list[tuple[
        str, str, dict[str, str], bool]]]:
    """(service, [(what, principal, context, admitted)]): the role's service from each source
    of the stack (a task of its cluster; for the scheduler, its schedules' group) is admitted;
    another account, another source, another principal not."""
    account, region = _account(inventory), _stack_region(inventory)
    if "scheduler" in role.purposes:
        service = SCHEDULER_SERVICE
        groups = sorted({str(s.get("groupName") or "default")
                         for s in inventory.of_type(SCHEDULE)}) or ["default"]
        sources = [f"scheduler:{region}:{{}}:schedule-group/{group}" for group in groups]
    else:
        service = ECS_TASKS_SERVICE
        sources = [f"ecs:{region}:{{}}:task/{cluster}/0123456789abcdef"
                   for cluster in sorted(_names(inventory, ECS_CLUSTER)) or ["cluster"]]

    def source_of(owner: str, source: str) -> str:
        return f"arn:aws:{source.format(owner)}"

    own = {"aws:SourceAccount": account, "aws:SourceArn": source_of(account, sources[0])}
    probes = [(f"{service} from {source_of(account, source)}", f"service:{service}",
               {"aws:SourceAccount": account, "aws:SourceArn": source_of(account, source)}, True)
              for source in sources]
    probes += [
        (f"{service} for another account", f"service:{service}",
         {"aws:SourceAccount": OTHER_ACCOUNT,
          "aws:SourceArn": source_of(OTHER_ACCOUNT, sources[0])}, False),
        (f"{service} without aws:SourceAccount", f"service:{service}",
         {"aws:SourceArn": own["aws:SourceArn"]}, False),
        ("another service", "service:lambda.amazonaws.com", own, False),
        ("the account's administrator", account_administrator(inventory)[0], own, False),
    ]
    if service == ECS_TASKS_SERVICE:  # a task role's trust names its source, ECS
        probes += [
            (f"{service} without aws:SourceArn", f"service:{service}",
             {"aws:SourceAccount": account}, False),
            (f"{service} for a source of another service", f"service:{service}",
             {"aws:SourceAccount": account,
              "aws:SourceArn": f"arn:aws:lambda:{region}:{account}:function:other"}, False),
        ]
    return service, probes


@control("ecs-role-trust-scoped", "The ECS task roles and the scheduler role trust only their "
         "service, for this account (task roles: with an ECS source)", severity="high",
         scope=SERVICE_ROLES)
def _trust_scoped(role: RoleView, inventory: Inventory) -> Verdict:
    """aws:SourceAccount and aws:SourceArn keep another account's task or schedule from
    assuming the role through the service (the confused deputy)."""
    arn = f"arn:aws:iam::{_account(inventory)}:role/{role.role_name}"
    trust = PolicyDocument(role.resource, "trust").document()
    policies = [LabelledPolicy(role.resource.name, "resource", _as_resource_policy(trust, arn))]
    service, probes = _trust_probes(role, inventory)
    sids: list[str] = []
    try:
        for what, principal, context, admitted in probes:
            decision = decide(policies, principal, "sts:AssumeRole", arn, context)
            if decision.allowed != admitted:
                return failed(f"{role.role_name}: sts:AssumeRole by {what} is "
                              f"{'refused' if admitted else 'admitted'}",
                              [ref.sid for ref in decision.deciding])
            sids += [ref.sid for ref in decision.deciding if ref.sid not in sids]
    except ValueError as error:
        return failed(f"{role.role_name}: cannot evaluate its trust policy ({error})")
    refused = sum(1 for *_, admitted in probes if not admitted)
    return passed(f"{role.role_name}: assumable by {service} for account "
                  f"{_account(inventory)} only ({refused} other requests refused)", sids)


@dataclass(frozen=True)
class Permitted:
    """Actions a role may be granted, on which resources, under which conditions."""

    actions: tuple[str, ...]
    resources: Callable[[str], bool]
    where: str  # what the resources are, for the evidence
    # (operator, key, does a condition value list hold): the statement must carry each.
    conditions: tuple[tuple[str, str, Callable[[list[Any]], bool], str], ...] = ()


def _outside(policy: str, sid: str, statement: Mapping[str, Any],
             permitted: Sequence[Permitted], key_policy: bool) -> str | None:
    """Why the Allow statement grants more than `permitted`, or None."""
    for action in (str(a) for a in as_list(statement.get("Action"))):
        rule = next((p for p in permitted
                     if action.lower() in (a.lower() for a in p.actions)), None)
        if rule is None:
            return f"{policy}: {sid} grants {action}, which this role does not need"
        # In a key policy, Resource "*" is the key itself.
        for resource in ([] if key_policy else as_list(statement.get("Resource"))):
            if not rule.resources(str(resource)):
                return f"{policy}: {sid} grants {action} on {resource}, not {rule.where}"
        condition = statement.get("Condition") or {}
        for operator, key, holds, wanted in rule.conditions:
            values = as_list((condition.get(operator) or {}).get(key))
            if not values or not holds(values):
                return f"{policy}: {sid} grants {action} without {operator} {key} = {wanted}"
    if "NotAction" in statement or "NotResource" in statement:
        return f"{policy}: {sid} is an Allow with NotAction/NotResource"
    return None


def _grants_only(role: RoleView, inventory: Inventory, permitted: Sequence[Permitted],
                 needs: str) -> Verdict:
    grants = role_grants(role, inventory)
    key_policies = {p.resource.name for p in inventory.policies if p.is_key_policy}
    for policy, statement in grants:
        problem = _outside(policy, str(statement.get("Sid", "?")), statement, permitted,
                           key_policy=policy in key_policies)
        if problem:
            return failed(problem, [str(statement.get("Sid", "?"))])
    actions = sorted({str(a) for _, s in grants for a in as_list(s.get("Action"))})
    if not actions:
        return failed(f"{role.role_name}: no Allow statement grants it anything ({needs})")
    return passed(f"{role.role_name}: {len(grants)} Allow statement(s) grant only "
                  f"{', '.join(actions)}, each on {needs}",
                  dict.fromkeys(str(s.get("Sid", "?")) for _, s in grants))


def _all(check: Callable[[str], bool]) -> Callable[[list[Any]], bool]:
    return lambda values: all(check(str(value)) for value in values)


@control("ecs-execution-role-least-privilege", "The task execution role may only pull the "
         "image, write the task logs and read the stack's secrets", severity="high",
         scope=EXECUTION_ROLES)
def _execution_role(role: RoleView, inventory: Inventory) -> Verdict:
    secret_keys = [s.get("kmsKeyId") for s in inventory.of_type(SECRET)]
    via_secrets = f"secretsmanager.{_stack_region(inventory)}.amazonaws.com"
    permitted = (
        # GetAuthorizationToken has no resource type: "*" only.
        Permitted(("ecr:GetAuthorizationToken",), lambda r: r == "*", "*"),
        Permitted(("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                   "ecr:BatchCheckLayerAvailability"), _repository_arns(inventory),
                  "the stack's ECR repository"),
        Permitted(("logs:CreateLogStream", "logs:PutLogEvents"), _log_group_arns(inventory),
                  "the stack's log groups"),
        Permitted(("secretsmanager:GetSecretValue",), _secret_arns(inventory),
                  "the stack's secrets"),
        Permitted(("kms:Decrypt",), _key_arns(secret_keys), "the secrets' key",
                  (("StringEquals", "kms:ViaService", _all(lambda v: v == via_secrets),
                    via_secrets),)),
    )
    return _grants_only(role, inventory, permitted, "the image, its log groups and the stack's "
                        "secrets")


@control("ecs-scheduler-role-least-privilege", "The scheduler role may only run the stack's "
         "task definitions on its cluster, pass their roles to ECS and dead-letter into its "
         "queue", severity="high", scope=SCHEDULER_ROLES)
def _scheduler_role(role: RoleView, inventory: Inventory) -> Verdict:
    """Without sqs:SendMessage and the queue key's GenerateDataKey/Decrypt the dead-letter
    queue never receives a failed delivery."""
    passable = (*TASK_ROLE_PURPOSES, "task-execution")
    permitted = (
        Permitted(("ecs:RunTask",), _task_definition_arns(inventory),
                  "the stack's task definitions",
                  (("ArnEquals", "ecs:cluster", _all(_cluster_arns(inventory)),
                    "the stack's cluster"),)),
        Permitted(("iam:PassRole",), _role_arns(inventory, passable),
                  f"roles tagged {', '.join(passable)}",
                  (("StringEquals", "iam:PassedToService",
                    _all(lambda v: v == ECS_TASKS_SERVICE), ECS_TASKS_SERVICE),)),
        Permitted(("sqs:SendMessage",), _queue_arns(inventory), "the stack's queue"),
        Permitted(("kms:GenerateDataKey", "kms:Decrypt"),
                  _key_arns(q.get("kmsMasterKeyId") for q in inventory.of_type(QUEUE)),
                  "the queue's key"),
    )
    return _grants_only(role, inventory, permitted, "the stack's task definitions, task roles "
                        "and dead-letter queue")


# --- schedules -----------------------------------------------------------------------------


@control("scheduler-failed-deliveries-dead-lettered", "Every schedule retries a failed "
         "delivery and then dead-letters it into the stack's queue", severity="high",
         scope=SCHEDULES)
def _dead_lettered(schedule: Declared, inventory: Inventory) -> Verdict:
    """Scheduler retries only deliveries (RunTask failing), never a task that exits non-zero;
    a delivery that still fails is lost unless a dead-letter queue keeps it (and pages)."""
    queue = schedule.get("target", "deadLetterConfig", "arn")
    attempts = schedule.get("target", "retryPolicy", "maximumRetryAttempts")
    age = schedule.get("target", "retryPolicy", "maximumEventAgeInSeconds")
    if not queue or not _queue_arns(inventory)(str(queue)):
        return failed(f"{schedule.name}: deadLetterConfig.arn {queue!r} is no queue of the stack")
    if attempts is None or age is None:
        return failed(f"{schedule.name}: no retryPolicy (maximumRetryAttempts "
                      f"{attempts!r}, maximumEventAgeInSeconds {age!r})")
    return passed(f"{schedule.name}: {int(attempts)} retries within {int(age)} s, then "
                  f"{Arn.parse(queue).resource}")


@control("scheduler-runs-in-job-task-group", "Every schedule starts its job's task on the "
         "stack's cluster, as the scheduler role, in the job's task group, without a public IP",
         severity="high", scope=SCHEDULES)
def _runs_in_task_group(schedule: Declared, inventory: Inventory) -> Verdict:
    """The overlap guard finds a running twin of a job by its task group
    (contract.tasks.task_group): a schedule outside it could run a job twice at once."""
    name = schedule.name
    cluster = schedule.get("target", "arn")
    role = schedule.get("target", "roleArn")
    group = schedule.get("target", "ecsParameters", "group")
    public = schedule.get("target", "ecsParameters", "networkConfiguration", "assignPublicIp")
    if not cluster or not _cluster_arns(inventory)(str(cluster)):
        return failed(f"{name}: target {cluster!r} is not the stack's ECS cluster")
    if not role or not _role_arns(inventory, ("scheduler",))(str(role)):
        return failed(f"{name}: roleArn {role!r} is no role of the stack tagged scheduler")
    try:
        job = Job.parse(str(group).removeprefix(TASK_GROUP_PREFIX))
    except ValueError:
        job = None
    if job is None or not str(group).startswith(TASK_GROUP_PREFIX):
        return failed(f"{name}: ecsParameters.group {group!r} is no job's task group "
                      f"({TASK_GROUP_PREFIX}<job id>)")
    twins = [other.name for other in inventory.of_type(SCHEDULE) if other.name != name
             and other.get("target", "ecsParameters", "group") == group]
    if twins:
        return failed(f"{name}: {', '.join(twins)} start(s) the same task group {group}")
    if public is not False:
        return failed(f"{name}: assignPublicIp is {public!r}, not false")
    return passed(f"{name}: {job.id} on {Arn.parse(cluster).resource} in group {group}, no "
                  "public IP")


# --- encryption and retention --------------------------------------------------------------


def _customer_key(resource: Declared, *path: str | int) -> str | None:
    """Why the KMS key at `path` is no customer managed key, or None."""
    key = resource.get(*path)
    field = ".".join(str(step) for step in path)
    if not key:
        return f"{resource.name}: no KMS key ({field} not set)"
    if str(key).startswith("alias/aws/"):
        return f"{resource.name}: {key} is AWS managed: its key policy cannot be scoped"
    return None


def _encrypted(resource: Declared, *path: str | int) -> Verdict:
    problem = _customer_key(resource, *path)
    if problem:
        return failed(problem)
    return passed(f"{resource.name}: encrypted with the customer managed key "
                  f"{resource.get(*path)}")


@control("logs-log-group-kms-encrypted", "Every CloudWatch log group is encrypted with a "
         "customer managed KMS key", severity="medium", scope=LOG_GROUPS,
         frameworks=("CKV_AWS_158",))
def _log_group_encrypted(group: Declared, inventory: Inventory) -> Verdict:
    return _encrypted(group, "kmsKeyId")


@control("logs-log-group-retained", "Every CloudWatch log group keeps its events for a set "
         f"period of at least {MIN_LOG_RETENTION_DAYS} days", severity="medium",
         scope=LOG_GROUPS, frameworks=("SecurityHub CloudWatch.16", "CKV_AWS_66", "CKV_AWS_338"))
def _log_group_retained(group: Declared, inventory: Inventory) -> Verdict:
    days = group.get("retentionInDays")
    if not days:
        return failed(f"{group.name}: no retentionInDays: the events never expire (and are "
                      "billed forever)")
    if int(days) < MIN_LOG_RETENTION_DAYS:
        return failed(f"{group.name}: retentionInDays {int(days)} is below "
                      f"{MIN_LOG_RETENTION_DAYS} (CloudWatch.16's default minimum)")
    return passed(f"{group.name}: events kept {int(days)} days, then expired")


@control("sqs-queue-kms-encrypted", "The dead-letter queue is encrypted with a customer "
         "managed KMS key", severity="medium", scope=QUEUES,
         frameworks=("SecurityHub SQS.1", "CKV_AWS_27"))
def _queue_encrypted(queue: Declared, inventory: Inventory) -> Verdict:
    return _encrypted(queue, "kmsMasterKeyId")


@control("secrets-kms-encrypted", "Every Secrets Manager secret is encrypted with a customer "
         "managed KMS key", severity="medium", scope=SECRETS, frameworks=("CKV_AWS_149",))
def _secret_encrypted(secret: Declared, inventory: Inventory) -> Verdict:
    return _encrypted(secret, "kmsKeyId")


@control("ecr-tags-immutable", "The image repository's tags are immutable", severity="medium",
         scope=REPOSITORIES, frameworks=("SecurityHub ECR.2", "CKV_AWS_51"))
def _tags_immutable(repository: Declared, inventory: Inventory) -> Verdict:
    mutability = repository.get("imageTagMutability")
    if mutability != "IMMUTABLE":
        return failed(f"{repository.name}: imageTagMutability {mutability!r}: a pushed tag "
                      "could be replaced by another image")
    return passed(f"{repository.name}: imageTagMutability IMMUTABLE")


@control("ecr-scan-on-push", "The image repository scans every image on push",
         severity="high", scope=REPOSITORIES, frameworks=("SecurityHub ECR.1", "CKV_AWS_163"))
def _scan_on_push(repository: Declared, inventory: Inventory) -> Verdict:
    if repository.get("imageScanningConfiguration", "scanOnPush") is not True:
        return failed(f"{repository.name}: imageScanningConfiguration.scanOnPush is not true")
    return passed(f"{repository.name}: scans each image on push")


@control("ecr-kms-encrypted", "The image repository is encrypted with KMS", severity="medium",
         scope=REPOSITORIES, frameworks=("CKV_AWS_136",))
def _repository_kms(repository: Declared, inventory: Inventory) -> Verdict:
    kind = repository.get("encryptionConfigurations", 0, "encryptionType")
    if kind != "KMS":
        return failed(f"{repository.name}: encryptionType {kind!r}, not KMS")
    key = repository.get("encryptionConfigurations", 0, "kmsKey")
    return passed(f"{repository.name}: encrypted with KMS, "
                  + (f"key {key}" if key else "ECR's AWS managed key (aws/ecr)"))


# Advisory: with ECR's AWS managed key, task execution roles pull without a grant in a key
# policy of the stack; a customer managed key (ECR.5) needs one, and no policy can scope aws/ecr.
@control("ecr-customer-managed-key", "The image repository is encrypted with a customer managed "
         "KMS key", severity="low", scope=REPOSITORIES, frameworks=("SecurityHub ECR.5",),
         mandatory=False)
def _repository_customer_key(repository: Declared, inventory: Inventory) -> Verdict:
    return _encrypted(repository, "encryptionConfigurations", 0, "kmsKey")
