"""Pure builders for the organization guard: a resource control policy (RCP) and a service
control policy (SCP) for the AWS Organizations management account to attach to the account that
holds this stack.

Whoever may `s3:PutBucketPolicy` or `kms:PutKeyPolicy` in the account can lift every Deny that
is not Object Lock; no stack can stop an administrator of its own account, an organization can.
The stack renders these documents (the preview writes them, `pulumi up` exports them with the
real key ARNs) and never deploys them: only the management account attaches organization
policies, and RCPs do not apply to resources in the management account itself (AWS
Organizations User Guide, "Resource control policies"), so the stack belongs in a member account.

- The RCP binds every principal that touches the buckets and keys, the account's
  administrators and root included: no one but the exempt principals (the GitHub deploy role,
  break-glass) may change the buckets' policy, Object Lock, replication, lifecycle, default
  encryption or versioning, or the keys' policies; and no principal outside the organization
  may make any S3 request on them. AWS services acting for the account are exempt
  (`aws:PrincipalIsAWSService`), as AWS's data-perimeter RCP examples write it: replication,
  log delivery and lifecycle keep working.
- The SCP closes the way round the exemption: nobody but the exempt principals may change the
  exempt roles and the replication role (the only writer of the replica) — their trust and
  permission policies, attached policies, boundaries, or delete and recreate them under the
  same ARN — nor the GitHub OIDC provider the deploy role trusts. Otherwise an administrator
  would simply make one of them assumable and act as it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from components.policies import Document, Statement, policy_document, statement

RCP_TYPE: Final = "RESOURCE_CONTROL_POLICY"
SCP_TYPE: Final = "SERVICE_CONTROL_POLICY"
# The configuration whose change would lift a protection of the backups.
BUCKET_CONFIGURATION_ACTIONS: Final = (
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutReplicationConfiguration",  # DeleteBucketReplication is authorized as this too
    "s3:PutLifecycleConfiguration",  # and DeleteBucketLifecycle
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketVersioning",
)
KEY_POLICY_ACTIONS: Final = ("kms:PutKeyPolicy",)
ROLE_CHANGE_ACTIONS: Final = (
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:UpdateRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "iam:TagRole",
    "iam:UntagRole",
)
OIDC_PROVIDER_CHANGE_ACTIONS: Final = (
    "iam:CreateOpenIDConnectProvider",
    "iam:DeleteOpenIDConnectProvider",
    "iam:UpdateOpenIDConnectProviderThumbprint",
    "iam:AddClientIDToOpenIDConnectProvider",
    "iam:RemoveClientIDFromOpenIDConnectProvider",
    "iam:TagOpenIDConnectProvider",
    "iam:UntagOpenIDConnectProvider",
)
# The organization of the account that owns the resource: no organization id to configure.
RESOURCE_ORGANIZATION: Final = "${aws:ResourceOrgID}"


@dataclass(frozen=True)
class GuardedStack:
    """What the guard protects, and who stays able to change it."""

    bucket_arns: tuple[str, ...]
    key_arns: tuple[str, ...]
    exempt_principals: tuple[str, ...]  # the deploy role, break-glass (each if configured)
    protected_roles: tuple[str, ...]  # the exempt roles and the replication role
    oidc_provider_arn: str | None = None  # the provider the deploy role trusts


def _except_exempt(stack: GuardedStack) -> dict[str, Any] | None:
    if not stack.exempt_principals:
        return None
    return {"ArnNotLike": {"aws:PrincipalArn": list(stack.exempt_principals)}}


def resource_control_policy(stack: GuardedStack) -> Document:
    objects = [f"{arn}/*" for arn in stack.bucket_arns]
    return policy_document([
        statement("DenyProtectedBucketChanges", BUCKET_CONFIGURATION_ACTIONS,
                  list(stack.bucket_arns), effect="Deny", principal="*",
                  condition=_except_exempt(stack)),
        statement("DenyKeyPolicyChanges", KEY_POLICY_ACTIONS, list(stack.key_arns),
                  effect="Deny", principal="*", condition=_except_exempt(stack)),
        statement("DenyAccessFromOutsideOrganization", ["s3:*"],
                  [*stack.bucket_arns, *objects], effect="Deny", principal="*",
                  condition={
                      # IfExists: an anonymous request has no PrincipalOrgID and is denied.
                      "StringNotEqualsIfExists": {"aws:PrincipalOrgID": RESOURCE_ORGANIZATION},
                      "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
                  }),
    ])


def service_control_policy(stack: GuardedStack) -> Document | None:
    """None when there is nothing to protect (no replica, no deploy role, no break-glass)."""
    statements: list[Statement] = []
    if stack.protected_roles:
        statements.append(statement(
            "DenyExemptRoleChanges", ROLE_CHANGE_ACTIONS, list(stack.protected_roles),
            effect="Deny", condition=_except_exempt(stack)))
    if stack.oidc_provider_arn is not None:
        statements.append(statement(
            "DenyOidcProviderChanges", OIDC_PROVIDER_CHANGE_ACTIONS, stack.oidc_provider_arn,
            effect="Deny", condition=_except_exempt(stack)))
    return policy_document(statements) if statements else None


def guard_stack(bucket_names: Sequence[str], key_arns: Sequence[str],
                exempt_principals: Sequence[str], replication_role_arn: str | None,
                oidc_provider_arn: str | None) -> GuardedStack:
    roles = [*exempt_principals, *([replication_role_arn] if replication_role_arn else [])]
    return GuardedStack(
        bucket_arns=tuple(f"arn:aws:s3:::{name}" for name in bucket_names),
        key_arns=tuple(key_arns),
        exempt_principals=tuple(exempt_principals),
        protected_roles=tuple(dict.fromkeys(roles)),
        oidc_provider_arn=oidc_provider_arn,
    )
