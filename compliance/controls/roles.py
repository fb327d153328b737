"""The role controls: the restore role is read-only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

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
from contract.layout import EVIDENCE_PREFIX

# Verbs of actions that change state; a restore host needs none of them.
_WRITE_VERBS: Final = ("Put", "Delete", "Replicate", "Restore", "Abort", "Create", "Update",
                       "Bypass", "Encrypt", "ReEncrypt", "GenerateDataKey", "Tag", "Untag",
                       "Schedule", "Disable", "Write", "Initiate", "Complete", "Upload")


def _is_write(action: str) -> bool:
    name = action.split(":", 1)[-1]
    return "*" in action or name.startswith(_WRITE_VERBS)


def _role_grants(role: RoleView,
                 inventory: Inventory) -> list[tuple[str, str, list[str], list[str]]]:
    """(policy resource, Sid, actions, resources) of every Allow that applies to the role: its
    role policies and the resource-policy statements naming it."""
    def grant(policy: str, statement: Mapping[str, Any]) -> tuple[str, str, list[str], list[str]]:
        return (policy, str(statement.get("Sid", "?")),
                [str(a) for a in as_list(statement.get("Action"))],
                [str(r) for r in as_list(statement.get("Resource"))])

    grants = []
    for policy in role.policies:
        for statement in statements_of(PolicyDocument(policy, "identity").document()):
            if statement.get("Effect") == "Allow":
                grants.append(grant(policy.name, statement))
    for document in inventory.policies:
        if document.kind != "resource":
            continue
        for statement in statements_of(document.document()):
            principal = statement.get("Principal")
            arns = as_list(principal.get("AWS")) if isinstance(principal, Mapping) else []
            if statement.get("Effect") == "Allow" and any(
                    str(a).endswith(role.arn_suffix) for a in arns):
                grants.append(grant(document.resource.name, statement))
    return grants


def _appends_outcomes(actions: list[str], resources: list[str]) -> bool:
    """The one write the restore role has: creating objects of the outcome record
    (evidence/), which nobody can rewrite or delete (backup_agent.evidence)."""
    return actions == ["s3:PutObject"] and bool(resources) and all(
        r.endswith(f"/{EVIDENCE_PREFIX}*") for r in resources)


@control("iam-restore-role-read-only", "The restore role cannot write or delete",
         severity="critical", scope=RESTORE_ROLES)
def _restore_read_only(role: RoleView, inventory: Inventory) -> Verdict:
    grants = _role_grants(role, inventory)
    appends = any(_appends_outcomes(actions, resources) for _, _, actions, resources in grants)
    for policy, sid, actions, resources in grants:
        if _appends_outcomes(actions, resources):
            continue
        # S3 needs a data key to encrypt the outcome it writes (SSE-KMS).
        writes = [a for a in actions if _is_write(a)
                  and not (appends and a == "kms:GenerateDataKey")]
        if writes:
            return failed(f"{policy}: {sid} grants {', '.join(writes)}", [sid])
    actions = sorted({a for _, _, acts, _ in grants for a in acts})
    return passed(f"{len(grants)} Allow statement(s) grant only {', '.join(actions)}"
                  + ("; its only write creates outcome records under evidence/" if appends
                     else ""),
                  dict.fromkeys(sid for _, sid, _, _ in grants))
