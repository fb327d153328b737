"""The controls over every policy document: parliament (condition keys, findings) and
wildcards."""

from __future__ import annotations

from typing import Any, Final

from compliance.controls.registry import (
    POLICY_DOCUMENTS,
    Verdict,
    as_list,
    control,
    failed,
    passed,
    statements_of,
)
from compliance.inventory import (
    Inventory,
    PolicyDocument,
)

CONDITION_CODES: Final = frozenset({
    "UNKNOWN_CONDITION_FOR_ACTION", "UNKNOWN_OPERATOR", "MISMATCHED_TYPE",
    "MISMATCHED_TYPE_BUT_USABLE", "MISMATCHED_TYPE_OPERATION_TO_NULL",
})


def lint(policy: PolicyDocument, inventory: Inventory) -> Any:
    """parliament through compliance.lint (imported here: only these checks need it; it keeps
    each document's result, since two controls and the report read it)."""
    from compliance.lint import lint_policy

    return lint_policy(policy.document(), kind=policy.kind)


@control("iam-condition-keys-valid", "Every condition key is valid for its actions",
         severity="high", scope=POLICY_DOCUMENTS, frameworks=("parliament",))
def _condition_keys(policy: PolicyDocument, inventory: Inventory) -> Verdict:
    result = lint(policy, inventory)
    bad = [f for f in result.findings if f.code in CONDITION_CODES]
    if bad:
        return failed("; ".join(f"{f.code}: {f.detail}" for f in bad),
                      dict.fromkeys(f.sid or "-" for f in bad))
    accepted = sorted({a.rule for a in result.accepted})
    return passed("parliament: no condition finding"
                  + (f" (accepted by rule: {', '.join(accepted)})" if accepted else ""))


# Advisory: beyond condition keys, parliament also reports judgement calls (a deploy role that
# may rewrite bucket policies is a "privilege escalation" path by design); reviewers read them
# in the report, the preview does not fail on them.
@control("iam-policy-lint-clean", "parliament reports nothing beyond documented false "
         "positives", severity="medium", scope=POLICY_DOCUMENTS, frameworks=("parliament",),
         mandatory=False)
def _lint_clean(policy: PolicyDocument, inventory: Inventory) -> Verdict:
    result = lint(policy, inventory)
    if result.findings:
        return failed("; ".join(f"{f.severity} {f.code}: {f.detail}" for f in result.findings),
                      dict.fromkeys(f.sid or "-" for f in result.findings))
    return passed(f"parliament: no finding, {len(result.accepted)} accepted false positive(s)")


@control("iam-no-wildcard-allow", "No wildcard actions or resources in Allow statements",
         severity="high", scope=POLICY_DOCUMENTS)
def _no_wildcards(policy: PolicyDocument, inventory: Inventory) -> Verdict:
    document = policy.document()
    allows = [s for s in statements_of(document) if s.get("Effect") == "Allow"]
    unscoped: list[str] = []
    for statement in allows:
        sid = str(statement.get("Sid", "?"))
        if "NotAction" in statement or "NotResource" in statement:
            return failed(f"{sid}: Allow with NotAction/NotResource", [sid])
        actions = [str(a) for a in as_list(statement.get("Action"))]
        wildcards = [a for a in actions if "*" in a]
        if wildcards:
            return failed(f"{sid}: wildcard action(s) {', '.join(wildcards)}", [sid])
        for resource in as_list(statement.get("Resource")):
            if not _wildcard_resource(str(resource), key_policy=policy.is_key_policy):
                continue
            if resource == "*" and (all(_resource_star_only(a) for a in actions)
                                    or _condition_scoped(statement)):
                unscoped.append(sid)
                continue
            return failed(f"{sid}: wildcard resource {resource!r}", [sid])
    notes = [" (Resource \"*\" in a key policy is the key itself)"] if policy.is_key_policy else []
    if unscoped:
        notes.append(f" (Resource \"*\" in {', '.join(unscoped)}: actions AWS cannot scope to "
                     "a resource, or scoped by their condition key)")
    return passed(f"{len(allows)} Allow statement(s) name actions and resources{''.join(notes)}",
                  [str(s.get("Sid", "?")) for s in allows])


def _condition_scoped(statement: dict[str, Any]) -> bool:
    from compliance.lint import condition_scoped  # imported there with parliament

    return condition_scoped(statement)


def _resource_star_only(action: str) -> bool:
    """Actions with no resource type in AWS's Service Authorization Reference (parliament's
    copy of it) can only be granted on "*" (kms:CreateKey, kms:ListAliases)."""
    from compliance.lint import parliament  # imported there with its import warnings silenced

    service, _, name = action.partition(":")
    try:
        info = parliament.statement.get_privilege_info(service, name)
    except parliament.UnknownActionException:
        return False
    return all(not item.get("resource_type") for item in info.get("resource_types", []))


def _wildcard_resource(resource: str, *, key_policy: bool) -> bool:
    if resource == "*":
        return not key_policy
    # A wildcard after the first "/" scopes object keys (postgres/*); before it, it widens the
    # resource itself (arn:aws:s3:::*).
    parts = resource.split(":", 5)
    head = parts[5].split("/", 1)[0] if len(parts) == 6 else resource
    # The ARN form resource-type:resource-id (IAM User Guide, "Amazon Resource Names"), e.g.
    # alarm:<name>: a wildcard after a literal prefix of the name scopes names (alarm:stack-*),
    # one at its start widens it to every resource of the type (alarm:*).
    kind, colon, name = head.partition(":")
    if colon and kind and name and not any(c in kind + name[0] for c in "*?"):
        return any("*" in p for p in parts[:5])
    return "*" in head or "?" in head or any("*" in p for p in parts[:5])
