"""The role controls: the restore role is read-only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from compliance.controls.registry import (
    RESTORE_ROLES,
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
    RoleView,
)

# Verbs of actions that change state; a restore host needs none of them.
_WRITE_VERBS: Final = ("Put", "Delete", "Replicate", "Restore", "Abort", "Create", "Update",
                       "Bypass", "Encrypt", "ReEncrypt", "GenerateDataKey", "Tag", "Untag",
                       "Schedule", "Disable", "Write", "Initiate", "Complete", "Upload")


def _is_write(action: str) -> bool:
    name = action.split(":", 1)[-1]
    return "*" in action or name.startswith(_WRITE_VERBS)


def _role_grants(role: RoleView, inventory: Inventory) -> list[tuple[str, str, list[str]]]:
    """(policy resource, Sid, actions) of every Allow that applies to the role: its role
    policies and the resource-policy statements naming it."""
    grants = []
    for policy in role.policies:
        for statement in statements_of(PolicyDocument(policy, "identity").document()):
            if statement.get("Effect") == "Allow":
                grants.append((policy.name, str(statement.get("Sid", "?")),
                               [str(a) for a in as_list(statement.get("Action"))]))
    for document in inventory.policies:
        if document.kind != "resource":
            continue
        for statement in statements_of(document.document()):
            principal = statement.get("Principal")
            arns = as_list(principal.get("AWS")) if isinstance(principal, Mapping) else []
            if statement.get("Effect") == "Allow" and any(
                    str(a).endswith(role.arn_suffix) for a in arns):
                grants.append((document.resource.name, str(statement.get("Sid", "?")),
                               [str(a) for a in as_list(statement.get("Action"))]))
    return grants


@control("iam-restore-role-read-only", "The restore role cannot write or delete",
         severity="critical", scope=RESTORE_ROLES)
def _restore_read_only(role: RoleView, inventory: Inventory) -> Verdict:
    grants = _role_grants(role, inventory)
    for policy, sid, actions in grants:
        writes = [a for a in actions if _is_write(a)]
        if writes:
            return failed(f"{policy}: {sid} grants {', '.join(writes)}", [sid])
    actions = sorted({a for _, _, acts in grants for a in acts})
    return passed(f"{len(grants)} Allow statement(s) grant only {', '.join(actions)}",
                  dict.fromkeys(sid for _, sid, _ in grants))
