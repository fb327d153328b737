"""The CI deploy role's control: it may create and manage only keys carrying the stack's tag."""

from __future__ import annotations

from compliance.controls.buckets import (
    decide,
)
from compliance.controls.registry import (
    Scope,
    Verdict,
    as_list,
    control,
    failed,
    passed,
    statements_of,
)
from compliance.evaluation import LabelledPolicy
from compliance.inventory import (
    KMS_KEY,
    Inventory,
    PolicyDocument,
    RoleView,
)


def _key_creators(inventory: Inventory) -> list[RoleView]:
    return [role for role in inventory.roles
            if any("kms:CreateKey" in as_list(statement.get("Action"))
                   for policy in role.policies
                   for statement in statements_of(PolicyDocument(policy, "identity").document()))]


KEY_CREATING_ROLES = Scope("roles allowed kms:CreateKey", _key_creators,
                           lambda r: r.role_name,
                           "no role of the stack may create KMS keys (no github config)")


@control("iam-key-management-tag-scoped", "A role that creates keys can create and manage only "
         "keys carrying the stack's tag", severity="high", scope=KEY_CREATING_ROLES)
def _key_management_scoped(role: RoleView, inventory: Inventory) -> Verdict:
    """A key's ARN exists only after it is created, so the scope is the tag the stack sets on
    every key it creates."""
    tags = next((dict(k.get("tags") or {}) for k in inventory.of_type(KMS_KEY)), {})
    if not tags:
        return failed("the stack's KMS keys carry no tags to scope key management by")
    account = inventory.account_id() or "000000000000"
    arn = f"arn:aws:iam::{account}:role/{role.role_name}"
    policies = [LabelledPolicy(p.name, "identity", PolicyDocument(p, "identity").document(), arn)
                for p in role.policies]
    region = next(str(k.get("region")) for k in inventory.of_type(KMS_KEY))
    key = f"arn:aws:kms:{region}:{account}:key/any-key"
    requested = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    on_key = {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
    other = {f"aws:RequestTag/{k}": f"{v}-other" for k, v in tags.items()}
    probes = [
        ("creates a key with the stack's tag", "kms:CreateKey", "*",
         {**requested, "aws:TagKeys": list(tags), "aws:RequestedRegion": region}, True),
        ("creates an untagged key", "kms:CreateKey", "*", {"aws:RequestedRegion": region},
         False),
        ("creates a key with another tag key too", "kms:CreateKey", "*",
         {**requested, "aws:TagKeys": [*tags, "other"], "aws:RequestedRegion": region}, False),
        ("tags a key with another value", "kms:TagResource", key,
         {**other, "aws:TagKeys": list(tags)}, False),
        ("changes the policy of a key with the stack's tag", "kms:PutKeyPolicy", key, on_key,
         True),
        ("changes the policy of a key without it", "kms:PutKeyPolicy", key, {}, False),
    ]
    sids: list[str] = []
    try:
        for label, action, resource, context, expected in probes:
            decision = decide(policies, arn, action, resource, context)
            if decision.allowed != expected:
                return failed(f"{role.role_name} {label}: {'denied' if expected else 'allowed'}",
                              [ref.sid for ref in decision.deciding])
            sids += [ref.sid for ref in decision.deciding if ref.sid not in sids]
    except ValueError as error:
        return failed(f"{role.role_name}: cannot evaluate ({error})")
    return passed(f"{role.role_name}: creates keys only with {tags} (and no other tag key), "
                  "manages only keys carrying it", sids)
