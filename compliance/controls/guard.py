"""The organization guard's control: the RCP and SCP protect the buckets (rendered for the
management account)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from compliance.controls.buckets import (
    account_administrator,
    decide,
    replica_buckets,
)
from compliance.controls.registry import (
    Scope,
    Verdict,
    as_list,
    control,
    failed,
    manual,
    statements_of,
)
from compliance.evaluation import LabelledPolicy, PolicyKind
from compliance.inventory import (
    ENCRYPTION,
    RESOURCE_CONTROL_POLICY,
    SERVICE_CONTROL_POLICY,
    TOPIC,
    Declared,
    Inventory,
    PolicyDocument,
)

ORGANIZATION_GUARD = Scope("organization guard (rendered, not deployed)",
                           lambda i: i.of_type(RESOURCE_CONTROL_POLICY), lambda r: r.name,
                           "the stack renders no organization guard")
MODELLED_ORGANIZATION: Final = "o-exampleorgid"


def _guard(inventory: Inventory) -> list[LabelledPolicy]:
    kinds: dict[str, PolicyKind] = {RESOURCE_CONTROL_POLICY: "rcp", SERVICE_CONTROL_POLICY: "scp"}
    return [LabelledPolicy(p.resource.name, kinds[p.resource.type], p.document())
            for p in inventory.policies if p.resource.type in kinds]


def _guard_exempt(policies: Sequence[LabelledPolicy]) -> list[str]:
    return sorted({str(arn) for policy in policies for statement in statements_of(policy.document)
                   for arn in as_list(((statement.get("Condition") or {}).get("ArnNotLike")
                                        or {}).get("aws:PrincipalArn"))})


@control("org-guard-rendered", "The organization guard (RCP and SCP) protects the buckets, "
         "keys and exempt roles from the account's own administrators", severity="critical",
         scope=ORGANIZATION_GUARD)
def _organization_guard(rcp: Declared, inventory: Inventory) -> Verdict:
    """Checked by what it denies, under AWS's evaluation of RCPs and SCPs; whether the
    management account has attached it the stack cannot see, hence "manual"."""
    policies = _guard(inventory)
    exempt = _guard_exempt(policies)
    admin = account_administrator(inventory)[0]
    in_org = {"aws:PrincipalOrgID": MODELLED_ORGANIZATION,
              "aws:ResourceOrgID": MODELLED_ORGANIZATION, "aws:PrincipalIsAWSService": "false"}
    probes: list[tuple[str, str, str, str, dict[str, str], bool]] = []  # who, action, on, ...
    for bucket in inventory.buckets_of("backup"):
        probes += [("an administrator", admin, "s3:PutBucketPolicy", bucket.arn, in_org, True),
                   ("an administrator", admin, "s3:PutBucketObjectLockConfiguration",
                    bucket.arn, in_org, True),
                   ("an administrator", admin, "s3:PutReplicationConfiguration", bucket.arn,
                    in_org, True),
                   ("an administrator", admin, "s3:PutLifecycleConfiguration", bucket.arn,
                    in_org, True),
                   ("another organization's principal", "arn:aws:iam::444455556666:role/x",
                    "s3:GetObject", f"{bucket.arn}/x",
                    {**in_org, "aws:PrincipalOrgID": "o-otherorgid"}, True),
                   ("an anonymous principal", "", "s3:GetObject", f"{bucket.arn}/x",
                    {"aws:ResourceOrgID": MODELLED_ORGANIZATION}, True),
                   ("an AWS service", "service:s3.amazonaws.com", "s3:GetObject",
                    f"{bucket.arn}/x", {"aws:ResourceOrgID": MODELLED_ORGANIZATION,
                                        "aws:PrincipalIsAWSService": "true"}, False),
                   ("a principal of the organization", admin, "s3:GetObject", f"{bucket.arn}/x",
                    in_org, False)]
        probes += [("the exempt principal " + arn, arn, "s3:PutBucketPolicy", bucket.arn,
                    in_org, False) for arn in exempt]
    for key in _stack_key_arns(inventory):
        probes.append(("an administrator", admin, "kms:PutKeyPolicy", key, in_org, True))
    roles = [*exempt, *(arn for _, arn in replica_buckets(inventory))]
    for role in dict.fromkeys(roles):
        for action in ("iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy", "iam:DeleteRole"):
            probes.append(("an administrator", admin, action, role, in_org, True))
    for provider in _trusted_providers(inventory, exempt):
        probes.append(("an administrator", admin, "iam:UpdateOpenIDConnectProviderThumbprint",
                       provider, in_org, True))
    sids: list[str] = []
    try:
        for who, principal, action, resource, context, deny in probes:
            decision = decide(policies, principal or None, action, resource,
                               {**context, **({"aws:PrincipalArn": principal}
                                              if principal.startswith("arn:") else {})})
            if (decision.reason == "explicit-deny") != deny:
                return failed(f"{action} on {resource} by {who} is "
                              f"{'not ' if deny else ''}denied by the guard")
            sids += [ref.sid for ref in decision.deciding
                     if decision.reason == "explicit-deny" and ref.sid not in sids]
    except ValueError as error:
        return failed(f"{rcp.name}: cannot evaluate ({error})")
    return manual(
        "rendered, apply in the management account: " + ", ".join(p.label for p in policies)
        + f" deny {len(probes)} probed requests as documented (bucket and key policy changes "
        + (f"by anyone but {', '.join(exempt)}" if exempt else "by anyone: no principal is exempt")
        + "; S3 from outside the organization; changes to the exempt and replication roles"
        + (" and the OIDC provider" if _trusted_providers(inventory, exempt) else "")
        + "); AWS services and the organization's principals pass", sids)


def _stack_key_arns(inventory: Inventory) -> list[str]:
    """The keys that encrypt the backup buckets and the topics (their ARNs, as the buckets'
    default encryption and the topics name them)."""
    arns = [bucket.one(ENCRYPTION).get("rules", 0, "applyServerSideEncryptionByDefault",
                                       "kmsMasterKeyId")
            for bucket in inventory.buckets_of("backup") if bucket.one(ENCRYPTION)]
    arns += [topic.get("kmsMasterKeyId") for topic in inventory.of_type(TOPIC)]
    return [str(arn) for arn in arns if arn]


def _trusted_providers(inventory: Inventory, roles: Sequence[str]) -> list[str]:
    """The federated (OIDC) providers the exempt roles of the stack trust."""
    found: list[str] = []
    for role in inventory.roles:
        if not any(arn.endswith(role.arn_suffix) for arn in roles):
            continue
        trust = PolicyDocument(role.resource, "trust").document()
        for statement in statements_of(trust):
            principal = statement.get("Principal")
            if isinstance(principal, Mapping):
                found += [str(p) for p in as_list(principal.get("Federated")) if p not in found]
    return found
