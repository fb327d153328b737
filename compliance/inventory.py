"""What the controls see: declared resources (type + inputs), grouped by the role they play.

The same view is built from the offline preview's recorded resources (review.inventory) and
from the resources CrossGuard hands a policy pack, so one rule serves both. Inputs are
camelCase, as recorded.

How a resource's role is recognised: by what the components declare and CrossGuard sees too
(types, inputs, tags, property dependencies), never by resource names:

* a **backup bucket** or **log bucket** is an `aws:s3/bucket:Bucket` tagged
  `biometrics-backup:bucket = backup | log` (contract.layout.BUCKET_ROLE_TAG); its component is
  its parent (a `biometrics:backup:BackupBucket`);
* a bucket's configuration (versioning, policy, lifecycle, ...) is the resource whose `bucket`
  input names it; when that input is unknown (a real first preview), the bucket its `bucket`
  input depends on (the engine's property dependencies). Otherwise an unknown `bucket` stays
  unresolved, and the controls that need it report "unknown" instead of guessing;
* a role's **purpose** is its tag `biometrics-backup:purpose` (contract.layout.ROLE_PURPOSE_TAG:
  backup, wal-archiver, restore, replication, and the ECS placement's ECS_ROLE_PURPOSES); an ECS
  task role is granted the access of a host role (ACCESS_OF_TASK_ROLE: the backup jobs' task
  roles backup, the drill's and the exporter's restore), so the controls of that access judge it;
* **containers** are `docker:index/container:Container` resources; **task definitions** are
  `aws:ecs/taskDefinition:TaskDefinition` resources, their containers the JSON of their
  `containerDefinitions` input;
* the **organization guard**'s documents are the components of type
  `biometrics:backup:ResourceControlPolicy` and `...:ServiceControlPolicy` (rendered for the
  management account, not deployed), their policy in the `content` input.

Values Pulumi cannot know during a preview are `Unknown` here; reading one through `Declared.get`
raises `UnknownValue`, which the control runner turns into an "unknown" finding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Literal

from components.layout import TYPE_PREFIX
from contract.layout import (
    BUCKET_ROLE_TAG,
    BUCKET_ROLES,
    ECS_ROLE_PURPOSES,
    ROLE_PURPOSE_TAG,
    ROLE_PURPOSES,
)

BACKUP_BUCKET_COMPONENT: Final = f"{TYPE_PREFIX}:BackupBucket"
RESOURCE_CONTROL_POLICY: Final = f"{TYPE_PREFIX}:ResourceControlPolicy"
SERVICE_CONTROL_POLICY: Final = f"{TYPE_PREFIX}:ServiceControlPolicy"

BUCKET: Final = "aws:s3/bucket:Bucket"
BUCKET_POLICY: Final = "aws:s3/bucketPolicy:BucketPolicy"
VERSIONING: Final = "aws:s3/bucketVersioning:BucketVersioning"
ENCRYPTION: Final = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
PUBLIC_ACCESS_BLOCK: Final = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP: Final = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
OBJECT_LOCK: Final = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
LIFECYCLE: Final = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
REPLICATION: Final = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
LOGGING: Final = "aws:s3/bucketLogging:BucketLogging"
NOTIFICATION: Final = "aws:s3/bucketNotification:BucketNotification"
KMS_KEY: Final = "aws:kms/key:Key"
ROLE: Final = "aws:iam/role:Role"
ROLE_POLICY: Final = "aws:iam/rolePolicy:RolePolicy"
TOPIC: Final = "aws:sns/topic:Topic"
TOPIC_POLICY: Final = "aws:sns/topicPolicy:TopicPolicy"
EVENT_TARGET: Final = "aws:cloudwatch/eventTarget:EventTarget"
CONTAINER: Final = "docker:index/container:Container"
ECS_CLUSTER: Final = "aws:ecs/cluster:Cluster"
TASK_DEFINITION: Final = "aws:ecs/taskDefinition:TaskDefinition"
LOG_GROUP: Final = "aws:cloudwatch/logGroup:LogGroup"
QUEUE: Final = "aws:sqs/queue:Queue"
ECR_REPOSITORY: Final = "aws:ecr/repository:Repository"
SCHEDULE: Final = "aws:scheduler/schedule:Schedule"
SECRET: Final = "aws:secretsmanager/secret:Secret"

# The host role whose access each ECS task role is granted (the same statements, by the same
# builders): the controls of that access judge the task role too.
ACCESS_OF_TASK_ROLE: Final = {"task-postgres": "backup", "task-files": "backup",
                              "task-drill": "restore", "task-exporter": "restore"}

# Where each kind of resource keeps its policy document, and how IAM reads it (an RCP is
# written like a resource policy, an SCP like an identity policy).
PolicyKind = Literal["identity", "resource", "trust"]
POLICY_FIELDS: Final[dict[str, tuple[str, PolicyKind]]] = {
    BUCKET_POLICY: ("policy", "resource"),
    KMS_KEY: ("policy", "resource"),
    ROLE: ("assumeRolePolicy", "trust"),
    ROLE_POLICY: ("policy", "identity"),
    TOPIC_POLICY: ("policy", "resource"),
    RESOURCE_CONTROL_POLICY: ("content", "resource"),
    SERVICE_CONTROL_POLICY: ("content", "identity"),
}
_ACCOUNT_IN_ARN = re.compile(r"^arn:aws[a-z-]*:(?:iam|kms|sns)::?(?:[a-z0-9-]+:)?(\d{12}):")


@dataclass(frozen=True)
class Unknown:
    """A value Pulumi cannot know during a preview (e.g. an ARN of a resource not yet created)."""

    path: str


class UnknownValue(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(f"{path} is unknown during preview")
        self.path = path


@dataclass(frozen=True)
class Declared:
    """One declared resource: what `pulumi up` would send the provider."""

    urn: str
    type: str
    name: str
    inputs: Mapping[str, Any]
    parent: str = ""  # URN of the parent resource, "" for none
    # The URNs each input depends on (the engine's property dependencies; offline, none).
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Paths (`containerDefinitions`, `target.input`) of the inputs Pulumi marks secret: a value
    # built from a secret (a `pulumi config set --secret` key) is secret as a whole.
    secret_inputs: frozenset[str] = frozenset()

    @property
    def parent_type(self) -> str:
        """The parent's type token, read from the URN (`...::Parent$Child::name`)."""
        qualified = self.urn.split("::")[2] if self.urn.count("::") >= 3 else ""
        chain = qualified.split("$")
        return chain[-2] if len(chain) > 1 else ""

    def get(self, *path: str | int, default: Any = None) -> Any:
        """The input at `path`; `default` when absent; raises UnknownValue when unknown."""
        value: Any = self.inputs
        for step in path:
            if isinstance(value, Unknown):
                break
            if isinstance(step, int):
                if not isinstance(value, Sequence) or isinstance(value, str) or step >= len(value):
                    return default
                value = value[step]
            else:
                if not isinstance(value, Mapping) or step not in value:
                    return default
                value = value[step]
        if isinstance(value, Unknown):
            raise UnknownValue(f"{self.name}.{value.path}")
        return value


@dataclass(frozen=True)
class PolicyDocument:
    resource: Declared
    kind: PolicyKind

    @property
    def field(self) -> str:
        return POLICY_FIELDS[self.resource.type][0]

    def document(self) -> dict[str, Any]:
        """The parsed JSON document (raises UnknownValue while it is unknown)."""
        text = self.resource.get(self.field)
        return json.loads(text) if isinstance(text, str) else dict(text)

    @property
    def is_key_policy(self) -> bool:
        return self.resource.type == KMS_KEY


@dataclass(frozen=True)
class BucketView:
    role: Literal["backup", "log"]
    resource: Declared
    component: str  # the BackupBucket component's name
    attached: tuple[Declared, ...]
    unresolved: tuple[Declared, ...]  # resources whose unknown `bucket` may mean this bucket

    @property
    def label(self) -> str:
        """The bucket name when known (it comes from config), else the resource name."""
        name = self.resource.inputs.get("bucket")
        return name if isinstance(name, str) else self.resource.name

    @property
    def arn(self) -> str:
        return f"arn:aws:s3:::{self.label}"

    @property
    def region(self) -> str:
        return self.resource.get("region", default="")

    def config(self, type_: str) -> list[Declared]:
        """Resources of `type_` applied to this bucket; UnknownValue if one might be but its
        `bucket` input is unknown."""
        for resource in self.unresolved:
            if resource.type == type_:
                raise UnknownValue(f"{resource.name}.bucket")
        return [r for r in self.attached if r.type == type_]

    def one(self, type_: str) -> Declared | None:
        found = self.config(type_)
        return found[0] if found else None


@dataclass(frozen=True)
class RoleView:
    resource: Declared
    role_name: str
    purposes: tuple[str, ...]  # its purpose tag
    policies: tuple[Declared, ...]  # RolePolicy resources attached to it

    @property
    def arn_suffix(self) -> str:
        return f":role/{self.role_name}"

    def has_access(self, purpose: str) -> bool:
        """Tagged `purpose`, or an ECS task role granted that host role's access."""
        return any(p == purpose or ACCESS_OF_TASK_ROLE.get(p) == purpose for p in self.purposes)

    def named_by(self, arn: object) -> bool:
        """Is `arn` this role's ARN (any account: the stack's is the one its ARNs name)?"""
        return isinstance(arn, str) and arn.startswith("arn:aws") and arn.endswith(self.arn_suffix)


@dataclass(frozen=True)
class ContainerView:
    resource: Declared

    def env(self) -> dict[str, str]:
        """`envs` ("NAME=value" strings) as a mapping; UnknownValue if any is unknown."""
        result = {}
        for index in range(len(self.resource.get("envs", default=[]) or [])):
            text = self.resource.get("envs", index)
            name, _, value = str(text).partition("=")
            result[name] = value
        return result

    def labels(self) -> dict[str, str]:
        result = {}
        for index, _ in enumerate(self.resource.get("labels", default=[]) or []):
            item = self.resource.get("labels", index)
            result[str(item.get("label"))] = str(item.get("value"))
        return result


@dataclass(frozen=True)
class ContainerDefinition:
    """One container of an ECS task definition, as its `containerDefinitions` JSON holds it
    (the ECS API's camelCase names)."""

    task: Declared
    definition: Mapping[str, Any]

    @property
    def label(self) -> str:
        return f"{self.task.name}/{self.definition.get('name', '?')}"

    def items(self, name: str) -> list[Mapping[str, Any]]:
        """A list field (`environment`, `secrets`, `mountPoints`), its non-mapping entries
        dropped."""
        value = self.definition.get(name)
        return [item for item in value if isinstance(item, Mapping)] \
            if isinstance(value, list) else []


@dataclass(frozen=True)
class TaskDefinitionView:
    resource: Declared

    def containers(self) -> list[ContainerDefinition]:
        """The parsed `containerDefinitions` (UnknownValue while unknown); text that is not a
        JSON list of objects is no container ECS would run, and counts as none."""
        text = self.resource.get("containerDefinitions")
        try:
            parsed = json.loads(text) if isinstance(text, str) else text
        except ValueError:
            return []
        if not isinstance(parsed, list):
            return []
        return [ContainerDefinition(self.resource, item) for item in parsed
                if isinstance(item, Mapping)]

    def efs_volumes(self) -> list[Mapping[str, Any]]:
        """The task's `volumes` with an `efsVolumeConfiguration`."""
        volumes = self.resource.get("volumes", default=[]) or []
        return [volume for index, volume in enumerate(volumes)
                if isinstance(volume, Mapping)
                and self.resource.get("volumes", index, "efsVolumeConfiguration") is not None]


@dataclass(frozen=True)
class Inventory:
    resources: tuple[Declared, ...]
    buckets: tuple[BucketView, ...]
    roles: tuple[RoleView, ...]
    containers: tuple[ContainerView, ...]
    policies: tuple[PolicyDocument, ...]
    unclassified_buckets: tuple[Declared, ...] = field(default=())
    task_definitions: tuple[TaskDefinitionView, ...] = field(default=())

    def buckets_of(self, role: str) -> list[BucketView]:
        return [b for b in self.buckets if b.role == role]

    def bucket_named(self, name: str) -> BucketView | None:
        """The bucket called `name`; UnknownValue when none is but some name is unknown."""
        found = next((b for b in self.buckets if b.label == name), None)
        if found is None:
            for bucket in self.buckets:
                bucket.resource.get("bucket")
        return found

    def of_type(self, type_: str) -> list[Declared]:
        return [r for r in self.resources if r.type == type_]

    def children(self, parent: Declared) -> list[Declared]:
        return [r for r in self.resources if r.parent == parent.urn]

    @cached_property
    def _account_id(self) -> str | None:
        for policy in self.policies:
            try:
                text = json.dumps(policy.document())
            except UnknownValue:
                continue
            for arn in re.findall(r'"(arn:aws[^"]+)"', text):
                found = _ACCOUNT_IN_ARN.match(arn)
                if found:
                    return found.group(1)
        return None

    def account_id(self) -> str | None:
        """The stack's account, from the first known ARN in a policy document."""
        return self._account_id

    def replication_destinations(self) -> set[str]:
        """Names of buckets that some replication rule writes into; UnknownValue while a
        destination is unknown (a replica would otherwise look like a source)."""
        names = set()
        for config in self.of_type(REPLICATION):
            for index, _ in enumerate(config.get("rules", default=[]) or []):
                arn = config.get("rules", index, "destination", "bucket")
                if isinstance(arn, str):
                    names.add(arn.removeprefix("arn:aws:s3:::"))
        return names

    def roles_with(self, purpose: str) -> list[RoleView]:
        """Roles granted `purpose` (the host role and the ECS task roles granted its access);
        UnknownValue while a role policy's role is unknown."""
        self.role_policies_known()
        return [r for r in self.roles if r.has_access(purpose)]

    def role_policies_known(self) -> None:
        """Raises UnknownValue while a role policy's role is unknown: which role it belongs to,
        and so every role's policies, are not known yet."""
        for policy in self.of_type(ROLE_POLICY):
            policy.get("role")

    def roles_tagged(self, purposes: Iterable[str]) -> list[RoleView]:
        """Roles whose purpose tag is one of `purposes` (their policies may be incomplete
        while a role policy's role is unknown: `role_policies_known`)."""
        wanted = set(purposes)
        return [r for r in self.roles if wanted & set(r.purposes)]

    def role_of_arn(self, arn: object) -> RoleView | None:
        """The stack's role `arn` names; UnknownValue while a role name is unknown."""
        return next((r for r in self.roles if r.named_by(arn)), None)


def build_inventory(resources: Iterable[Declared]) -> Inventory:
    resources = tuple(resources)
    buckets = _buckets(resources)
    classified = {b.resource.urn for b in buckets}
    # Sorted by name: the order resources register in is not part of what they declare.
    return Inventory(
        resources=resources,
        buckets=tuple(sorted(buckets, key=lambda b: (b.label, b.resource.name))),
        roles=tuple(sorted(_roles(resources), key=lambda r: r.resource.name)),
        containers=tuple(sorted((ContainerView(r) for r in resources if r.type == CONTAINER),
                                key=lambda c: c.resource.name)),
        policies=tuple(sorted((PolicyDocument(r, POLICY_FIELDS[r.type][1])
                               for r in resources if r.type in POLICY_FIELDS),
                              key=lambda p: p.resource.name)),
        unclassified_buckets=tuple(r for r in resources
                                   if r.type == BUCKET and r.urn not in classified),
        task_definitions=tuple(sorted((TaskDefinitionView(r) for r in resources
                                       if r.type == TASK_DEFINITION),
                                      key=lambda t: t.resource.name)),
    )


def _tag(resource: Declared, key: str, allowed: tuple[str, ...]) -> str | None:
    tags = resource.inputs.get("tags")
    value = tags.get(key) if isinstance(tags, Mapping) else None
    return value if value in allowed else None


def _buckets(resources: tuple[Declared, ...]) -> tuple[BucketView, ...]:
    components = {r.urn: r.name for r in resources if r.type == BACKUP_BUCKET_COMPONENT}
    found = [(role, r) for r in resources
             if r.type == BUCKET and (role := _tag(r, BUCKET_ROLE_TAG, BUCKET_ROLES))]
    by_name = {b.inputs.get("bucket"): b.urn for _, b in found
               if isinstance(b.inputs.get("bucket"), str)}
    attached: dict[str, list[Declared]] = {b.urn: [] for _, b in found}
    unresolved: dict[str, list[Declared]] = {b.urn: [] for _, b in found}
    for resource in resources:
        if resource.type == BUCKET or "bucket" not in resource.inputs:
            continue
        if not resource.type.startswith("aws:s3/"):
            continue
        target = resource.inputs["bucket"]
        if isinstance(target, str):
            if target in by_name:
                attached[by_name[target]].append(resource)
            continue
        depends_on = [b for _, b in found
                      if b.urn in resource.property_dependencies.get("bucket", ())]
        for bucket in depends_on or [b for _, b in found]:
            (attached if depends_on else unresolved)[bucket.urn].append(resource)
    return tuple(
        BucketView(role=role, resource=bucket,  # type: ignore[arg-type]
                   component=components.get(bucket.parent, ""),
                   attached=tuple(attached[bucket.urn]),
                   unresolved=tuple(unresolved[bucket.urn]))
        for role, bucket in found
    )


def _roles(resources: tuple[Declared, ...]) -> tuple[RoleView, ...]:
    policies: dict[str, list[Declared]] = {}
    for policy in resources:
        if policy.type == ROLE_POLICY and isinstance(policy.inputs.get("role"), str):
            policies.setdefault(policy.inputs["role"], []).append(policy)
    views = []
    for role in resources:
        if role.type != ROLE:
            continue
        name = role.inputs.get("name")
        role_name = name if isinstance(name, str) else role.name
        purpose = _tag(role, ROLE_PURPOSE_TAG, (*ROLE_PURPOSES, *ECS_ROLE_PURPOSES))
        # By content: registration order varies from run to run, names may change.
        views.append(RoleView(role, role_name, (purpose,) if purpose else (),
                              tuple(sorted(policies.get(role_name, ()),
                                           key=lambda p: str(p.inputs.get("policy"))))))
    return tuple(views)
