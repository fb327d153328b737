"""Pure builders for the GitHub Actions OIDC roles: their trust and permission policies.

Two roles, one per kind of job (GitHub Actions: configuring OpenID Connect in Amazon Web Services):
- preview (`repo:OWNER/REPO:pull_request`): control-plane reads of exactly this stack's
  resources, so `pulumi preview --refresh` can read them. It never gets `s3:GetObject` on a backup
  bucket nor `kms:Decrypt` with a backup key: anyone who can push a branch can run it.
- deploy (`repo:OWNER/REPO:environment:ENV`): what `pulumi up` of the backup store needs, scoped
  to the stack's buckets, roles, topic and alarms by ARN, and to its keys by the tag the stack
  sets on them (a key's ARN does not exist before it is created). It cannot change the GitHub
  roles or the OIDC provider: widening CI's own rights stays an administrator's `pulumi up`.

Actions are listed one by one (no `Get*`); the few statements with Resource "*" are actions AWS
does not scope to a resource (see `UNSCOPED_ACTIONS`).

With the ECS placement (`components.ecs_runtime`) both roles also cover its resources, named as
the components name them (`components.ecs_specs`). What exists once per job (a schedule, an
alarm, a secret) is named by a pattern of the cluster's names, so adding a database changes
neither role's policy: the deploy role cannot change its own policy, and would otherwise wait
for an administrator's `pulumi up` with every new database (and 50 databases' ARNs would not
fit IAM's 10,240 characters for a role's inline policies, IAM User Guide, "IAM and AWS STS
quotas"; the deploy role's reads and writes of a resource share a statement for that reason).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from components.ecs_policies import ECS_TASKS_SERVICE, SCHEDULER_SERVICE
from components.ecs_settings import EcsSettings
from components.ecs_specs import (
    SECRET_RECOVERY_DAYS,
    alarm_name,
    dead_letter_queue_name,
    exporter_service_names,
    log_group_name,
    role_name,
    runtime_key_alias,
    secret_name,
    task_failures_rule_name,
    task_family,
    task_kinds,
)
from components.policies import Document, Statement, policy_document, statement
from components.settings import BucketSettings, StackSettings

GITHUB_OIDC_HOST: Final = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL: Final = f"https://{GITHUB_OIDC_HOST}"
STS_AUDIENCE: Final = "sts.amazonaws.com"

# Actions the IAM Service Authorization Reference lists without a resource type: they can only
# be granted on "*". Kept as small as `pulumi up`/`refresh` of this stack allows.
UNSCOPED_ACTIONS: Final = {
    "kms:ListAliases": "the KMS alias read lists all aliases of the region",
    "kms:CreateKey": "a key's ARN does not exist before it is created (scoped by the stack's "
                     "regions and the tag the stack sets on its keys)",
    "sns:GetSubscriptionAttributes": "subscriptions have no resource type in IAM",
    "sns:SetSubscriptionAttributes": "subscriptions have no resource type in IAM",
    "sns:Unsubscribe": "subscriptions have no resource type in IAM",
    # The ECS placement's (only in its region: aws:RequestedRegion).
    "ecs:DescribeTaskDefinition": "task definitions have no resource type for this action",
    "ecs:DeregisterTaskDefinition": "task definitions have no resource type for this action",
    "logs:DescribeLogGroups": "lists the region's log groups: no resource type",
    "servicediscovery:ListTagsForResource": "Cloud Map's tag listing has no resource type",
}

# What the provider reads to refresh each declared resource type (a bucket's read also walks
# its sub-configurations, and HeadBucket needs s3:ListBucket). ListBucket reveals key names
# and sizes, never contents.
BUCKET_READ_ACTIONS: Final = (
    "s3:ListBucket",
    "s3:GetBucketLocation",
    "s3:GetBucketPolicy",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketWebsite",
    "s3:GetBucketVersioning",
    "s3:GetAccelerateConfiguration",
    "s3:GetBucketRequestPayment",
    "s3:GetBucketLogging",
    "s3:GetLifecycleConfiguration",
    "s3:GetReplicationConfiguration",
    "s3:GetEncryptionConfiguration",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketTagging",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketNotification",
)
BUCKET_WRITE_ACTIONS: Final = (
    "s3:CreateBucket",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketLogging",
    "s3:PutReplicationConfiguration",
    "s3:PutBucketNotification",
    "s3:PutBucketTagging",
)
KEY_READ_ACTIONS: Final = (
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListResourceTags",
)
# Never kms:Decrypt/Encrypt/GenerateDataKey (backup data), ScheduleKeyDeletion or DisableKey.
# kms:TagResource is granted apart (KEY_TAGGING_ACTION): tagging at creation happens before the
# key carries the stack's tag.
KEY_WRITE_ACTIONS: Final = (
    "kms:PutKeyPolicy",
    "kms:EnableKeyRotation",
    "kms:UpdateKeyDescription",
    "kms:UntagResource",
)
KEY_TAGGING_ACTION: Final = "kms:TagResource"
ALIAS_WRITE_ACTIONS: Final = ("kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias")
ROLE_READ_ACTIONS: Final = (
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
)
ROLE_WRITE_ACTIONS: Final = (
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:UpdateAssumeRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
)
INSTANCE_PROFILE_READ_ACTIONS: Final = ("iam:GetInstanceProfile",)
INSTANCE_PROFILE_WRITE_ACTIONS: Final = (
    "iam:CreateInstanceProfile",
    "iam:DeleteInstanceProfile",
    "iam:AddRoleToInstanceProfile",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:TagInstanceProfile",
)
TOPIC_READ_ACTIONS: Final = (
    "sns:GetTopicAttributes",
    "sns:ListTagsForResource",
    "sns:ListSubscriptionsByTopic",
)
TOPIC_WRITE_ACTIONS: Final = (
    "sns:CreateTopic",
    "sns:SetTopicAttributes",
    "sns:TagResource",
    "sns:Subscribe",
)
ALARM_READ_ACTIONS: Final = ("cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource")
ALARM_WRITE_ACTIONS: Final = (
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:DeleteAlarms",
    "cloudwatch:TagResource",
    "cloudwatch:UntagResource",
)
# The ECS placement: the reads a refresh makes and the writes `pulumi up` makes, on its
# resources (`EcsPlacement.resources`); the deploy role gets both in one statement. Never
# ecs:RunTask or logs:GetLogEvents, never a secret's value for the preview role, never a delete
# of what keeps data or pages (the log groups, repository, queue, cluster, rule, key).
ECS_READ_ACTIONS: Final = (
    "ecs:DescribeClusters", "ecs:DescribeServices", "ecs:ListTagsForResource",
    "ecr:DescribeRepositories", "ecr:ListTagsForResource", "logs:ListTagsForResource",
    "secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy",
    "scheduler:GetScheduleGroup", "scheduler:ListTagsForResource", "scheduler:GetSchedule",
    "sqs:GetQueueAttributes", "sqs:ListQueueTags",
    "events:DescribeRule", "events:ListTagsForResource", "events:ListTargetsByRule",
    "servicediscovery:GetService",
)
ECS_WRITE_ACTIONS: Final = (
    "ecs:CreateCluster", "ecs:UpdateCluster", "ecs:CreateService", "ecs:UpdateService",
    "ecs:RegisterTaskDefinition",
    "ecr:CreateRepository", "ecr:PutImageTagMutability", "ecr:PutImageScanningConfiguration",
    "logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:AssociateKmsKey",
    "secretsmanager:CreateSecret", "secretsmanager:UpdateSecret",
    "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage",
    # The provider reads every secret version back after PutSecretValue, and on each refresh,
    # with GetSecretValue: the deploy role needs it (the values are this stack's config, which
    # the deploy job decrypts anyway to put them); the preview role never gets it.
    "secretsmanager:GetSecretValue",
    "scheduler:CreateScheduleGroup", "scheduler:CreateSchedule", "scheduler:UpdateSchedule",
    "scheduler:DeleteSchedule",
    "sqs:CreateQueue", "sqs:SetQueueAttributes",
    "events:PutRule", "events:PutTargets", "events:RemoveTargets",
    "servicediscovery:UpdateService",
)
# Actions without a resource type (UNSCOPED_ACTIONS), in the placement's region only. A changed
# task definition is a new revision: the old one is deregistered.
ECS_REGION_READ_ACTIONS: Final = ("ecs:DescribeTaskDefinition", "logs:DescribeLogGroups",
                                  "servicediscovery:ListTagsForResource")
ECS_REGION_WRITE_ACTIONS: Final = ("ecs:DeregisterTaskDefinition",)
# Only with the exporter on ECS: its ECS service and its Cloud Map service.
EXPORTER_ACTIONS: Final = frozenset({
    "ecs:DescribeServices", "ecs:CreateService", "ecs:UpdateService",
    "servicediscovery:GetService", "servicediscovery:UpdateService",
    "servicediscovery:ListTagsForResource"})
# The self-managed (DIY) backend: checkpoints under .pulumi/, lock files under .pulumi/locks/.
STATE_PREFIX: Final = ".pulumi/"
STATE_LOCK_PREFIX: Final = ".pulumi/locks/"


@dataclass(frozen=True)
class EcsPlacement:
    """The ECS placement's resources as the CI roles name them: by the names its components give
    them, by name pattern what exists per job or kind (schedules, alarms, secrets, log groups,
    task definitions), the exporter's Cloud Map service by the ARN AWS assigned it."""

    ecs: EcsSettings
    kinds: tuple[str, ...]  # the task kinds on ECS (a task definition and a task role each)
    region: str
    account_id: str
    discovery_service_arn: str | None  # the exporter's, when it runs on ECS

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"

    def resources(self) -> list[str]:
        """Everything of the placement's that a CI role names by ARN (the roles and alarms are
        in the store's statements): an action applies to those of its service and type."""
        cluster = self.ecs.cluster_name
        ecs = [f"cluster/{cluster}",
               *(f"task-definition/{task_family(cluster, kind)}:*" for kind in self.kinds)]
        if self.discovery_service_arn is not None:
            ecs.insert(1, f"service/{cluster}/{exporter_service_names(self.ecs)[0]}")
        return [
            *(self.arn("ecs", resource) for resource in ecs),
            self.arn("ecr", f"repository/{self.ecs.image_repository}"),
            # The pattern covers each group's streams (`<group>:*`) too.
            self.arn("logs", f"log-group:{log_group_name(cluster, '*')}"),
            self.secret_pattern(),
            self.arn("scheduler", f"schedule-group/{cluster}"),
            self.arn("scheduler", f"schedule/{cluster}/*"),
            self.arn("sqs", dead_letter_queue_name(cluster)),
            self.arn("events", f"rule/{task_failures_rule_name(cluster)}"),
            *([self.discovery_service_arn] if self.discovery_service_arn else []),
        ]

    def secret_pattern(self) -> str:
        return self.arn("secretsmanager", f"secret:{secret_name(self.ecs.cluster_name, '*')}")

    def alarm_pattern(self) -> str:
        return self.arn("cloudwatch", f"alarm:{alarm_name(self.ecs.cluster_name, '*')}")

    def namespace_arn(self) -> str:
        assert self.ecs.service_discovery is not None
        return self.arn("servicediscovery",
                        f"namespace/{self.ecs.service_discovery.namespace_id}")

    def passed_role_names(self) -> list[str]:
        """What a task definition names: the task roles and the execution role."""
        return [role_name(self.ecs.cluster_name, purpose)
                for purpose in (*(f"task-{kind}" for kind in self.kinds), "task-execution")]

    @property
    def scheduler_role_name(self) -> str:
        return role_name(self.ecs.cluster_name, "scheduler")


@dataclass(frozen=True)
class DeployedStack:
    """The stack's settings plus the ARNs AWS assigns (keys, topic, the exporter's Cloud Map
    service) and the OIDC side's names."""

    settings: StackSettings
    account_id: str
    key_arns: tuple[str, ...]
    topic_arn: str
    oidc_provider_arn: str
    github_role_names: tuple[str, ...]
    alarm_names: tuple[str, ...] = ()
    discovery_service_arn: str | None = None

    @property
    def ecs(self) -> EcsPlacement | None:
        runtime = self.settings.runtime
        if runtime is None or runtime.ecs is None:
            return None
        return EcsPlacement(runtime.ecs, task_kinds(runtime), self.settings.primary.region,
                            self.account_id, self.discovery_service_arn)

    @property
    def buckets(self) -> list[BucketSettings]:
        return [self.settings.primary, *([self.settings.replica] if self.settings.replica else [])]

    @property
    def regions(self) -> list[str]:
        return [bucket.region for bucket in self.buckets]

    def bucket_arns(self) -> list[str]:
        return [f"arn:aws:s3:::{name}" for bucket in self.buckets
                for name in (bucket.bucket_name, bucket.log_bucket_name)]

    def key_patterns(self) -> list[str]:
        # Keys get random ids: pulumi up must manage a key it has only just created (the
        # statements using these patterns are conditioned on the stack's key tag).
        return [f"arn:aws:kms:{region}:{self.account_id}:key/*" for region in self.regions]

    def alias_arns(self) -> list[str]:
        """Each bucket key's alias, the alert topic key's and the ECS runtime key's (both in
        the primary region)."""
        topic = self.topic_arn.rsplit(":", 1)[-1]
        primary = f"arn:aws:kms:{self.settings.primary.region}:{self.account_id}"
        runtime = [f"{primary}:{runtime_key_alias(self.ecs.ecs.cluster_name)}"] if self.ecs \
            else []
        return [*(f"arn:aws:kms:{bucket.region}:{self.account_id}:alias/{bucket.bucket_name}"
                  for bucket in self.buckets),
                f"{primary}:alias/{topic}", *runtime]

    def key_tag_condition(self, tag_context: str,
                          operator: str = "StringEquals") -> dict[str, dict[str, str]]:
        """The stack's key tag, in the request (`aws:RequestTag`) or on the key
        (`aws:ResourceTag`)."""
        return {operator: {f"{tag_context}/{key}": value
                           for key, value in self.settings.key_tags.items()}}

    def requested_key_tags(self) -> dict[str, Any]:
        """A create or tag request carries the stack's tag, and no other tag key."""
        return {**self.key_tag_condition("aws:RequestTag"),
                "ForAllValues:StringEquals": {"aws:TagKeys": list(self.settings.key_tags)}}

    @property
    def host_role_names(self) -> list[str]:
        roles = self.settings.roles
        return [roles.backup, roles.restore, roles.wal_archiver]

    @property
    def store_role_names(self) -> list[str]:
        """The roles a `pulumi up` manages: the store's and the ECS placement's."""
        replication = [self.settings.roles.replication] if self.settings.replica else []
        ecs = [*self.ecs.passed_role_names(), self.ecs.scheduler_role_name] if self.ecs else []
        return [*self.host_role_names, *replication, *ecs]

    def role_arns(self, names: Sequence[str]) -> list[str]:
        return [f"arn:aws:iam::{self.account_id}:role/{name}" for name in names]

    def instance_profile_arns(self) -> list[str]:
        # Each host role's instance profile carries the role's name.
        return [f"arn:aws:iam::{self.account_id}:instance-profile/{name}"
                for name in self.host_role_names]

    def alarm_arns(self) -> list[str]:
        """The replication alarms and the ECS placement's (all in the primary region)."""
        region = self.settings.primary.region
        return [*(f"arn:aws:cloudwatch:{region}:{self.account_id}:alarm:{name}"
                  for name in self.alarm_names),
                *([self.ecs.alarm_pattern()] if self.ecs else [])]


def oidc_provider_arn(account_id: str) -> str:
    """IAM names a provider after its URL's host, so its ARN is known before it exists."""
    return f"arn:aws:iam::{account_id}:oidc-provider/{GITHUB_OIDC_HOST}"


def github_subject(repository: str, suffix: str) -> str:
    return f"repo:{repository}:{suffix}"


def pull_request_subject(repository: str) -> str:
    return github_subject(repository, "pull_request")


def environment_subject(repository: str, environment: str) -> str:
    return github_subject(repository, f"environment:{environment}")


def github_trust_policy(provider_arn: str, subject: str, sid: str) -> Document:
    """StringEquals on both claims: `aud` so only tokens minted for STS work, `sub` so only
    this repository's pull-request jobs (or its environment's jobs) can assume the role."""
    return policy_document(
        [
            statement(
                sid,
                ["sts:AssumeRoleWithWebIdentity"],
                None,
                principal={"Federated": provider_arn},
                condition={
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                        f"{GITHUB_OIDC_HOST}:sub": subject,
                    }
                },
            )
        ]
    )


def _state_statements(stack: DeployedStack, *, write: bool) -> list[Statement]:
    """The self-managed backend, if configured: checkpoints and locks in S3, the secrets
    provider's KMS key. (With Pulumi Cloud the roles need nothing for state.)"""
    github = stack.settings.github
    result = []
    if github is not None and github.state_bucket is not None:
        bucket = f"arn:aws:s3:::{github.state_bucket}"
        writable = f"{bucket}/{STATE_PREFIX if write else STATE_LOCK_PREFIX}*"
        result += [
            statement("ListState", ["s3:ListBucket"], bucket),
            statement("ReadState", ["s3:GetObject"], f"{bucket}/{STATE_PREFIX}*"),
            statement("WriteState" if write else "WriteStateLocks",
                      ["s3:PutObject", "s3:DeleteObject"], writable),
        ]
    if github is not None and github.secrets_key_arn is not None:
        if github.secrets_key_arn in stack.key_arns:
            raise ValueError("github.secretsKeyArn must not be a backup key: the preview role "
                             "would decrypt backups with it")
        actions = ["kms:Decrypt", "kms:Encrypt"] if write else ["kms:Decrypt"]
        result.append(statement("UseStateSecretsKey", actions, github.secrets_key_arn))
    return result


def _resource_statements(stack: DeployedStack, *, write: bool) -> list[Statement]:
    """A statement per group of the store's resources: the reads a refresh makes (the preview
    role), or those and the writes `pulumi up` makes in one statement (the deploy role: its
    policy must fit IAM's 10,240 characters for a role's inline policies)."""
    alarms = stack.alarm_arns()
    # (preview Sid, deploy Sid or None: not the deploy role's, reads, writes, resources)
    groups = [
        ("ReadBuckets", "ManageBuckets", BUCKET_READ_ACTIONS, BUCKET_WRITE_ACTIONS,
         stack.bucket_arns()),
        # By the ARNs AWS gave the keys; the deploy role's are scoped by the stack's tag.
        ("ReadKeys", None, KEY_READ_ACTIONS, (), list(stack.key_arns)),
        ("ReadKeyAliases", "ReadKeyAliases", ["kms:ListAliases"], (), "*"),
        ("ReadRoles", "ManageRoles", ROLE_READ_ACTIONS, ROLE_WRITE_ACTIONS,
         stack.role_arns(stack.store_role_names)),
        # The deploy role never changes the CI side (an administrator's `pulumi up` does), so
        # it never reads it either: `pulumi up` reads only what it creates or updates.
        ("ReadGitHubRoles", None, ROLE_READ_ACTIONS, (),
         stack.role_arns(stack.github_role_names)),
        ("ReadInstanceProfiles", "ManageInstanceProfiles", INSTANCE_PROFILE_READ_ACTIONS,
         INSTANCE_PROFILE_WRITE_ACTIONS, stack.instance_profile_arns()),
        ("ReadOidcProvider", None, ["iam:GetOpenIDConnectProvider"], (),
         stack.oidc_provider_arn),
        ("ReadTopic", "ManageTopic", TOPIC_READ_ACTIONS, TOPIC_WRITE_ACTIONS, stack.topic_arn),
        ("ReadSubscriptions", "ManageSubscriptions", ["sns:GetSubscriptionAttributes"],
         ["sns:SetSubscriptionAttributes", "sns:Unsubscribe"], "*"),
        *([("ReadAlarms", "ManageAlarms", ALARM_READ_ACTIONS, ALARM_WRITE_ACTIONS, alarms)]
          if alarms else []),
    ]
    if not write:
        return [statement(sid, reads, resources) for sid, _, reads, _, resources in groups]
    return [statement(sid, [*reads, *writes], resources)
            for _, sid, reads, writes, resources in groups if sid is not None]


def _ecs_statements(stack: DeployedStack, ecs: EcsPlacement, *, write: bool) -> list[Statement]:
    """The ECS placement's statements: reads for the preview role (never a secret's value or a
    log event), reads and writes for the deploy role, which passes each role to its one
    service. (The preview role's refresh of a secret version fails: the provider reads it back
    with GetSecretValue; docs/delivery.md.)"""
    def actions(reads: Sequence[str], writes: Sequence[str]) -> list[str]:
        return [action for action in (*reads, *(writes if write else ()))
                if ecs.discovery_service_arn is not None or action not in EXPORTER_ACTIONS]

    statements = [
        statement("EcsRuntime", actions(ECS_READ_ACTIONS, ECS_WRITE_ACTIONS), ecs.resources()),
        statement("EcsRegionWide", actions(ECS_REGION_READ_ACTIONS, ECS_REGION_WRITE_ACTIONS),
                  "*", condition={"StringEquals": {"aws:RequestedRegion": ecs.region}}),
    ]
    if not write:
        return statements
    tagged = stack.key_tag_condition("aws:ResourceTag")["StringEquals"]
    statements += [
        # A removed database's secret stays recoverable for the stack's recovery window.
        statement("EcsDeleteSecrets", ["secretsmanager:DeleteSecret"], ecs.secret_pattern(),
                  condition={"NumericGreaterThanEquals": {
                      "secretsmanager:RecoveryWindowInDays": str(SECRET_RECOVERY_DAYS)}}),
        # Putting and reading back a secret value: Secrets Manager uses the runtime key on the
        # caller's behalf (Secrets Manager User Guide, "Secret encryption and decryption").
        statement("EcsSecretsKey", ["kms:GenerateDataKey", "kms:Decrypt"],
                  ecs.arn("kms", "key/*"), condition={"StringEquals": {
                      **tagged, "kms:ViaService": f"secretsmanager.{ecs.region}.amazonaws.com"}}),
        statement("EcsPassTaskRoles", ["iam:PassRole"],
                  stack.role_arns(ecs.passed_role_names()),
                  condition={"StringEquals": {"iam:PassedToService": ECS_TASKS_SERVICE}}),
        statement("EcsPassSchedulerRole", ["iam:PassRole"],
                  stack.role_arns([ecs.scheduler_role_name]),
                  condition={"StringEquals": {"iam:PassedToService": SCHEDULER_SERVICE}}),
    ]
    if ecs.discovery_service_arn is not None:
        # A new Cloud Map service's id (in its ARN) is AWS's; CreateService is authorized on
        # the namespace too, so only in this one.
        statements.append(statement(
            "EcsCreateDiscovery", ["servicediscovery:CreateService"],
            [ecs.namespace_arn(), ecs.arn("servicediscovery", "service/*")]))
    return statements


def preview_role_policy(stack: DeployedStack) -> Document:
    ecs = _ecs_statements(stack, stack.ecs, write=False) if stack.ecs else []
    return policy_document([*_resource_statements(stack, write=False), *ecs,
                            *_state_statements(stack, write=False)])


def deploy_role_policy(stack: DeployedStack) -> Document:
    """`pulumi up` of the backup store: the preview role's reads of what it deploys, and the
    writes (the keys by the stack's tag). No s3:GetObject or DeleteBucket, no kms:Decrypt of a
    backup key or key deletion; IAM writes only on the store's own roles and instance profiles
    (and the ECS placement's)."""
    tags = stack.requested_key_tags()
    statements = [
        *_resource_statements(stack, write=True),
        statement("CreateKeys", ["kms:CreateKey"], "*", condition={
            **tags, "StringEquals": {"aws:RequestedRegion": stack.regions,
                                     **tags["StringEquals"]}}),
        # Tags given to CreateKey need kms:TagResource on every key of the region (AWS KMS
        # Developer Guide, "Controlling access to tags"): only the stack's tag may be written.
        statement("TagKeys", [KEY_TAGGING_ACTION], stack.key_patterns(), condition=tags),
        statement("ManageKeys", [*KEY_READ_ACTIONS, *KEY_WRITE_ACTIONS], stack.key_patterns(),
                  condition=stack.key_tag_condition("aws:ResourceTag")),
        # CreateAlias/UpdateAlias/DeleteAlias are authorized on the alias and on the key. An
        # alias has no tags, hence IfExists: a target key must carry the stack's tag, or none.
        statement("ManageKeyAliases", ALIAS_WRITE_ACTIONS,
                  [*stack.alias_arns(), *stack.key_patterns()],
                  condition=stack.key_tag_condition("aws:ResourceTag",
                                                    "StringEqualsIfExists")),
    ]
    if stack.settings.replica is not None:
        # S3 checks iam:PassRole when a replication configuration names its role.
        statements.append(statement(
            "PassReplicationRole", ["iam:PassRole"],
            stack.role_arns([stack.settings.roles.replication]),
            condition={"StringEquals": {"iam:PassedToService": "s3.amazonaws.com"}},
        ))
    if stack.ecs:
        statements += _ecs_statements(stack, stack.ecs, write=True)
    return policy_document([*statements, *_state_statements(stack, write=True)])
