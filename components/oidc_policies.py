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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

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
# The self-managed (DIY) backend: checkpoints under .pulumi/, lock files under .pulumi/locks/.
STATE_PREFIX: Final = ".pulumi/"
STATE_LOCK_PREFIX: Final = ".pulumi/locks/"


@dataclass(frozen=True)
class DeployedStack:
    """The stack's settings plus the ARNs AWS assigns (keys, topic) and the OIDC side's names."""

    settings: StackSettings
    account_id: str
    key_arns: tuple[str, ...]
    topic_arn: str
    oidc_provider_arn: str
    github_role_names: tuple[str, ...]
    alarm_names: tuple[str, ...] = ()

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
        """Each bucket key's alias, and the alert topic key's (in the primary region)."""
        topic = self.topic_arn.rsplit(":", 1)[-1]
        return [*(f"arn:aws:kms:{bucket.region}:{self.account_id}:alias/{bucket.bucket_name}"
                  for bucket in self.buckets),
                f"arn:aws:kms:{self.settings.primary.region}:{self.account_id}:alias/{topic}"]

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
        replication = [self.settings.roles.replication] if self.settings.replica else []
        return [*self.host_role_names, *replication]

    def role_arns(self, names: Sequence[str]) -> list[str]:
        return [f"arn:aws:iam::{self.account_id}:role/{name}" for name in names]

    def instance_profile_arns(self) -> list[str]:
        # Each host role's instance profile carries the role's name.
        return [f"arn:aws:iam::{self.account_id}:instance-profile/{name}"
                for name in self.host_role_names]

    def alarm_arns(self) -> list[str]:
        # The replication alarms live in the primary region.
        region = self.settings.primary.region
        return [f"arn:aws:cloudwatch:{region}:{self.account_id}:alarm:{name}"
                for name in self.alarm_names]


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


def _read_statements(stack: DeployedStack) -> list[Statement]:
    statements = [
        statement("ReadBuckets", BUCKET_READ_ACTIONS, stack.bucket_arns()),
        statement("ReadKeys", KEY_READ_ACTIONS, list(stack.key_arns)),
        statement("ReadKeyAliases", ["kms:ListAliases"], "*"),
        statement("ReadRoles", ROLE_READ_ACTIONS,
                  stack.role_arns([*stack.store_role_names, *stack.github_role_names])),
        statement("ReadInstanceProfiles", INSTANCE_PROFILE_READ_ACTIONS,
                  stack.instance_profile_arns()),
        statement("ReadOidcProvider", ["iam:GetOpenIDConnectProvider"], stack.oidc_provider_arn),
        statement("ReadTopic", TOPIC_READ_ACTIONS, stack.topic_arn),
        statement("ReadSubscriptions", ["sns:GetSubscriptionAttributes"], "*"),
    ]
    if stack.alarm_arns():
        statements.append(statement("ReadAlarms", ALARM_READ_ACTIONS, stack.alarm_arns()))
    return statements


def preview_role_policy(stack: DeployedStack) -> Document:
    return policy_document([*_read_statements(stack), *_state_statements(stack, write=False)])


def deploy_role_policy(stack: DeployedStack) -> Document:
    """`pulumi up` of the backup store. No s3:GetObject or DeleteBucket, no kms:Decrypt or key
    deletion; IAM writes only on the store's own roles and instance profiles."""
    tags = stack.requested_key_tags()
    statements = [
        *_read_statements(stack),
        statement("ManageBuckets", BUCKET_WRITE_ACTIONS, stack.bucket_arns()),
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
        statement("ManageRoles", ROLE_WRITE_ACTIONS, stack.role_arns(stack.store_role_names)),
        statement("ManageInstanceProfiles", INSTANCE_PROFILE_WRITE_ACTIONS,
                  stack.instance_profile_arns()),
        statement("ManageTopic", TOPIC_WRITE_ACTIONS, stack.topic_arn),
        statement("ManageSubscriptions",
                  ["sns:SetSubscriptionAttributes", "sns:Unsubscribe"], "*"),
    ]
    if stack.alarm_arns():
        statements.append(statement("ManageAlarms", ALARM_WRITE_ACTIONS, stack.alarm_arns()))
    if stack.settings.replica is not None:
        # S3 checks iam:PassRole when a replication configuration names its role.
        statements.append(statement(
            "PassReplicationRole", ["iam:PassRole"],
            stack.role_arns([stack.settings.roles.replication]),
            condition={"StringEquals": {"iam:PassedToService": "s3.amazonaws.com"}},
        ))
    return policy_document([*statements, *_state_statements(stack, write=True)])
