"""The control registry: one small, pure rule per control (in the style of checkov / cdk-nag).

Each control has an id, a title, a severity, a scope (which declared things it judges), the
framework ids it maps to, whether it is mandatory, and a check over one subject of its scope
returning pass / fail with evidence (resource, statement Sid) — or manual, for a document the
stack renders for someone else to apply (the organization guard): its properties are checked,
but whether it is in force is not the stack's to see. A control whose scope is empty is not
applicable, with the reason. Checks read only `compliance.inventory` views of the
declared resources (type + inputs) — what CrossGuard sees too — and never import components.

Packs select controls by id (`compliance.report`, `policy/__main__.py`); none copies a rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from compliance.evaluation import LabelledPolicy, Request, evaluate
from compliance.inventory import (
    BUCKET_POLICY,
    BucketView,
    ContainerView,
    Inventory,
    PolicyDocument,
    UnknownValue,
)
from contract.layout import (
    FULL_BACKUP_INTERVAL_LABEL,
    HOST_LABEL,
)

Status = Literal["pass", "fail", "n/a", "unknown", "manual"]
Severity = Literal["critical", "high", "medium", "low"]

RESTORE_HOST: Final = "restore"
NO_CONTAINERS: Final = (
    "the stack declares no docker:index/container:Container (no backup runtime configured)"
)


@dataclass(frozen=True)
class Verdict:
    status: Status
    evidence: str
    sids: tuple[str, ...] = ()


def passed(evidence: str, sids: Iterable[str] = ()) -> Verdict:
    return Verdict("pass", evidence, tuple(sids))


def failed(evidence: str, sids: Iterable[str] = ()) -> Verdict:
    return Verdict("fail", evidence, tuple(sids))


def manual(evidence: str, sids: Iterable[str] = ()) -> Verdict:
    """The document is right; applying it is someone else's step."""
    return Verdict("manual", evidence, tuple(sids))


@dataclass(frozen=True)
class Finding:
    subject: str  # the bucket, role, document or container judged
    status: Status
    evidence: str
    sids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scope:
    name: str
    subjects: Callable[[Inventory], list[Any]]
    label: Callable[[Any], str]
    empty_reason: str


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    severity: Severity
    scope: Scope
    frameworks: tuple[str, ...]
    mandatory: bool
    check: Callable[[Any, Inventory], Verdict]


@dataclass(frozen=True)
class ControlResult:
    control: Control
    status: Status
    findings: tuple[Finding, ...]
    reason: str = ""  # why it is not applicable

    @property
    def id(self) -> str:
        return self.control.id


# --- scopes --------------------------------------------------------------------------------


def bucket_label(bucket: BucketView) -> str:
    return f"{bucket.label} ({bucket.resource.name})"


def _sources(inventory: Inventory) -> list[BucketView]:
    """Backup buckets that receive writes: all but replication destinations."""
    destinations = inventory.replication_destinations()
    return [b for b in inventory.buckets_of("backup") if b.label not in destinations]


def _restore_containers(inventory: Inventory) -> list[ContainerView]:
    return [c for c in inventory.containers if _label_or_none(c, HOST_LABEL) == RESTORE_HOST]


def _scheduled_containers(inventory: Inventory) -> list[ContainerView]:
    return [c for c in inventory.containers
            if _label_or_none(c, FULL_BACKUP_INTERVAL_LABEL) is not None]


def _label_or_none(container: ContainerView, name: str) -> str | None:
    try:
        return container.labels().get(name)
    except UnknownValue:
        return None


ACCOUNT = Scope("account", lambda _: [], str,
                "account-level setting (the account's S3 public access block); this package "
                "manages buckets, not the account, so it neither sets nor reads it")
BACKUP_BUCKETS = Scope("backup buckets", lambda i: i.buckets_of("backup"), bucket_label,
                       "the stack declares no BackupBucket")
LOG_BUCKETS = Scope("log buckets", lambda i: i.buckets_of("log"), bucket_label,
                    "the stack declares no access-log bucket")
ALL_BUCKETS = Scope("backup and log buckets", lambda i: list(i.buckets), bucket_label,
                    "the stack declares no BackupBucket")
SOURCE_BUCKETS = Scope("backup buckets written directly (not replicas)", _sources, bucket_label,
                       "the stack declares no BackupBucket")
POLICY_DOCUMENTS = Scope("policy documents", lambda i: list(i.policies),
                         lambda p: f"{p.resource.name} ({p.kind})",
                         "the stack declares no policy document")
RESTORE_ROLES = Scope("roles (restore)",
                      lambda i: i.roles_with("restore"),
                      lambda r: r.role_name, "the stack grants no role restore access")
CONTAINERS = Scope("containers", lambda i: list(i.containers), lambda c: c.resource.name,
                   NO_CONTAINERS)
RESTORE_CONTAINERS = Scope(f"containers (label {HOST_LABEL}={RESTORE_HOST})",
                           _restore_containers, lambda c: c.resource.name,
                           f"no container carries the label {HOST_LABEL}={RESTORE_HOST}")
SCHEDULED_CONTAINERS = Scope(f"containers declaring {FULL_BACKUP_INTERVAL_LABEL}",
                             _scheduled_containers, lambda c: c.resource.name,
                             "no container declares its full base-backup interval (label "
                             f"{FULL_BACKUP_INTERVAL_LABEL}): " + NO_CONTAINERS)


# --- the registry --------------------------------------------------------------------------

REGISTRY: list[Control] = []


def control(id: str, title: str, *, severity: Severity, scope: Scope,
            frameworks: Sequence[str] = (), mandatory: bool = True,
            ) -> Callable[[Callable[[Any, Inventory], Verdict]],
                          Callable[[Any, Inventory], Verdict]]:
    def register(check: Callable[[Any, Inventory], Verdict]) -> Callable[[Any, Inventory],
                                                                         Verdict]:
        if any(c.id == id for c in REGISTRY):
            raise ValueError(f"duplicate control id {id!r}")
        REGISTRY.append(Control(id, title, severity, scope, tuple(frameworks), mandatory, check))
        return check

    return register


def controls_by_id() -> dict[str, Control]:
    return {c.id: c for c in REGISTRY}


def run_control(item: Control, inventory: Inventory) -> ControlResult:
    try:
        subjects = item.scope.subjects(inventory)
    except UnknownValue as unknown:  # which things are in scope is not known yet
        return ControlResult(item, "unknown", (Finding(
            item.scope.name, "unknown", f"{unknown.path} is unknown during preview"),))
    if not subjects:
        return ControlResult(item, "n/a", (), item.scope.empty_reason)
    findings = []
    for subject in subjects:
        label = item.scope.label(subject)
        try:
            verdict = item.check(subject, inventory)
        except UnknownValue as unknown:
            verdict = Verdict("unknown", f"{unknown.path} is unknown during preview")
        findings.append(Finding(label, verdict.status, verdict.evidence, verdict.sids))
    statuses = {f.status for f in findings}
    status: Status = next((s for s in ("fail", "unknown", "manual") if s in statuses), "pass")
    return ControlResult(item, status, tuple(findings))


def run_controls(inventory: Inventory, ids: Iterable[str] | None = None) -> list[ControlResult]:
    selected = REGISTRY if ids is None else [controls_by_id()[i] for i in ids]
    return [run_control(item, inventory) for item in selected]


# --- helpers -------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def statements_of(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def policy_of(bucket: BucketView, inventory: Inventory) -> tuple[str, dict[str, Any]] | None:
    resource = bucket.one(BUCKET_POLICY)
    if resource is None:
        return None
    return resource.name, PolicyDocument(resource, "resource").document()


def _placeholder_principal(inventory: Inventory) -> str:
    return f"arn:aws:iam::{inventory.account_id() or '000000000000'}:role/any-role"


def explicitly_denied(bucket: BucketView, inventory: Inventory, action: str, resource: str,
            context: Mapping[str, str]) -> Verdict:
    """Is `action` explicitly denied by the bucket policy, for anyone (anonymous and a role of
    the account)? Evidence: the deciding statements."""
    policy = policy_of(bucket, inventory)
    if policy is None:
        return failed(f"{bucket.label} has no bucket policy")
    name, document = policy
    sids: list[str] = []
    for principal in (None, _placeholder_principal(inventory)):
        request = Request(principal, action, resource, context)
        try:
            decision = evaluate(request, [LabelledPolicy(name, "resource", document)])
        except ValueError as error:
            return failed(f"{name}: cannot evaluate ({error})")
        if decision.reason != "explicit-deny":
            who = principal or "anonymous"
            return failed(f"{name}: {action} by {who} with {dict(context)} is not explicitly "
                          f"denied ({decision.reason})")
        sids += [ref.sid for ref in decision.deciding if ref.sid not in sids]
    return passed(f"{name} denies {action} with {dict(context)}", sids)
