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
from contract.layout import EVIDENCE_PREFIX, TASK_ROLE_PURPOSES

# Verbs of actions that change state; a restore host needs none of them.
_WRITE_VERBS: Final = ("Put", "Delete", "Replicate", "Restore", "Abort", "Create", "Update",
                       "Bypass", "Encrypt", "ReEncrypt", "GenerateDataKey", "Tag", "Untag",
                       "Schedule", "Disable", "Write", "Initiate", "Complete", "Upload",
                       # and what an ECS task role could be given besides
                       "Run", "Start", "Stop", "Send", "Publish", "Pass", "Set", "Attach",
                       "Detach", "Modify", "Register", "Deregister", "Enable", "Add", "Remove",
                       "Cancel", "Invoke", "Execute", "Submit", "Terminate", "Change", "Reset")


# The evidence for what a restore role writes: (appends outcomes, puts outcome metrics).
_OWN_WRITES: Final = {
    (False, False): "",
    (True, False): "; its only write creates outcome records under evidence/",
    (False, True): "; its only write puts job-outcome metrics in the namespace {namespace}",
    (True, True): "; its only writes create outcome records under evidence/ and put "
                  "job-outcome metrics in the namespace {namespace}",
}


def _is_write(action: str) -> bool:
    name = action.split(":", 1)[-1]
    return "*" in action or name.startswith(_WRITE_VERBS)


def role_grants(role: RoleView, inventory: Inventory) -> list[tuple[str, Mapping[str, Any]]]:
    """(policy resource, statement) of every Allow that applies to the role: its role policies
    and the resource-policy statements naming it; UnknownValue while they are not known."""
    inventory.role_policies_known()
    grants = []
    for policy in role.policies:
        grants += [(policy.name, statement)
                   for statement in statements_of(PolicyDocument(policy, "identity").document())
                   if statement.get("Effect") == "Allow"]
    for document in inventory.policies:
        if document.kind != "resource":
            continue
        for statement in statements_of(document.document()):
            principal = statement.get("Principal")
            arns = as_list(principal.get("AWS")) if isinstance(principal, Mapping) else []
            if statement.get("Effect") == "Allow" and any(role.named_by(a) for a in arns):
                grants.append((document.resource.name, statement))
    return grants


def _fields(statement: Mapping[str, Any]) -> tuple[str, list[str], list[str]]:
    """Sid, actions and resources of a statement."""
    return (str(statement.get("Sid", "?")), [str(a) for a in as_list(statement.get("Action"))],
            [str(r) for r in as_list(statement.get("Resource"))])


def _appends_outcomes(actions: list[str], resources: list[str]) -> bool:
    """The one write the restore role has: creating objects of the outcome record
    (evidence/), which nobody can rewrite or delete (backup_agent.evidence)."""
    return actions == ["s3:PutObject"] and bool(resources) and all(
        r.endswith(f"/{EVIDENCE_PREFIX}*") for r in resources)


def _outcome_metric_namespace(statement: Mapping[str, Any]) -> str | None:
    """The namespace an ECS task may put its job-outcome metrics in: a statement granting only
    cloudwatch:PutMetricData, limited by StringEquals cloudwatch:namespace to one concrete
    namespace (PutMetricData has no resource to scope it by); else None."""
    _, actions, _ = _fields(statement)
    condition = statement.get("Condition") or {}
    values = as_list((condition.get("StringEquals") or {}).get("cloudwatch:namespace"))
    if [a.lower() for a in actions] != ["cloudwatch:putmetricdata"] or len(values) != 1:
        return None
    namespace = str(values[0])
    return namespace if namespace and not any(c in namespace for c in "*?$") else None


@control("iam-restore-role-read-only", "The restore role cannot write or delete",
         severity="critical", scope=RESTORE_ROLES)
def _restore_read_only(role: RoleView, inventory: Inventory) -> Verdict:
    """The drill's and the exporter's ECS task roles are restore roles too; an ECS task may
    also put its job-outcome metric, in one namespace (the overlap guard's ecs:ListTasks and
    ecs:DescribeTasks only read). Every other write fails, to backups, keys or elsewhere."""
    grants = role_grants(role, inventory)
    appends = any(_appends_outcomes(*_fields(statement)[1:]) for _, statement in grants)
    task_role = bool(set(role.purposes) & set(TASK_ROLE_PURPOSES))
    namespaces: list[str] = []
    for policy, statement in grants:
        sid, actions, resources = _fields(statement)
        if _appends_outcomes(actions, resources):
            continue
        namespace = _outcome_metric_namespace(statement) if task_role else None
        if namespace is not None:
            namespaces.append(namespace)
            continue
        # S3 needs a data key to encrypt the outcome it writes (SSE-KMS).
        writes = [a for a in actions if _is_write(a)
                  and not (appends and a == "kms:GenerateDataKey")]
        if writes:
            return failed(f"{policy}: {sid} grants {', '.join(writes)}", [sid])
    actions = sorted({a for _, statement in grants for a in _fields(statement)[1]})
    own_writes = _OWN_WRITES[(appends, bool(namespaces))].format(
        namespace=", ".join(dict.fromkeys(namespaces)))
    return passed(f"{len(grants)} Allow statement(s) grant only {', '.join(actions)}{own_writes}",
                  dict.fromkeys(_fields(statement)[0] for _, statement in grants))
