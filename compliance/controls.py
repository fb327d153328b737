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

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Any, Final, Literal

from compliance.evaluation import Decision, LabelledPolicy, PolicyKind, Request, evaluate
from compliance.inventory import (
    BUCKET_POLICY,
    ENCRYPTION,
    EVENT_TARGET,
    KMS_KEY,
    LIFECYCLE,
    LOGGING,
    NOTIFICATION,
    OBJECT_LOCK,
    OWNERSHIP,
    PUBLIC_ACCESS_BLOCK,
    REPLICATION,
    RESOURCE_CONTROL_POLICY,
    SERVICE_CONTROL_POLICY,
    TOPIC,
    TOPIC_POLICY,
    VERSIONING,
    BucketView,
    ContainerView,
    Declared,
    Inventory,
    PolicyDocument,
    RoleView,
    UnknownValue,
)
from components.layout import POSTGRES_PREFIX
from contract.layout import EVIDENCE_PREFIX

Status = Literal["pass", "fail", "n/a", "unknown", "manual"]
Severity = Literal["critical", "high", "medium", "low"]

# Labels the backup runtime puts on its containers (the contract for the runtime issue).
HOST_LABEL: Final = "biometrics-backup.host"
FULL_BACKUP_INTERVAL_LABEL: Final = "biometrics-backup.full-backup-interval-days"
RESTORE_HOST: Final = "restore"
# Classes a database restore cannot read from within minutes (facts §3: hours to days).
COLD_CLASSES: Final = ("GLACIER", "DEEP_ARCHIVE")
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


def _bucket_label(bucket: BucketView) -> str:
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
                "manages buckets, not the account, so it neither sets nor reads it (facts §5)")
BACKUP_BUCKETS = Scope("backup buckets", lambda i: i.buckets_of("backup"), _bucket_label,
                       "the stack declares no BackupBucket")
LOG_BUCKETS = Scope("log buckets", lambda i: i.buckets_of("log"), _bucket_label,
                    "the stack declares no access-log bucket")
ALL_BUCKETS = Scope("backup and log buckets", lambda i: list(i.buckets), _bucket_label,
                    "the stack declares no BackupBucket")
SOURCE_BUCKETS = Scope("backup buckets written directly (not replicas)", _sources, _bucket_label,
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


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in _as_list(document.get("Statement")) if isinstance(s, Mapping)]


def _policy_of(bucket: BucketView, inventory: Inventory) -> tuple[str, dict[str, Any]] | None:
    resource = bucket.one(BUCKET_POLICY)
    if resource is None:
        return None
    return resource.name, PolicyDocument(resource, "resource").document()


def _placeholder_principal(inventory: Inventory) -> str:
    return f"arn:aws:iam::{inventory.account_id() or '000000000000'}:role/any-role"


def _denied(bucket: BucketView, inventory: Inventory, action: str, resource: str,
            context: Mapping[str, str]) -> Verdict:
    """Is `action` explicitly denied by the bucket policy, for anyone (anonymous and a role of
    the account)? Evidence: the deciding statements."""
    policy = _policy_of(bucket, inventory)
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


# --- bucket controls -----------------------------------------------------------------------


@control("s3-account-public-access-block", "Account-level S3 public access block",
         severity="high", scope=ACCOUNT, frameworks=("SecurityHub S3.1",), mandatory=False)
def _account_public_access_block(subject: Any, inventory: Inventory) -> Verdict:
    raise AssertionError("the account scope has no subjects")  # pragma: no cover


@control("s3-ssl-only", "Requests without TLS are denied", severity="high", scope=ALL_BUCKETS,
         frameworks=("SecurityHub S3.5",))
def _ssl_only(bucket: BucketView, inventory: Inventory) -> Verdict:
    objects = _denied(bucket, inventory, "s3:GetObject", f"{bucket.arn}/any-key",
                      {"aws:SecureTransport": "false"})
    if objects.status != "pass":
        return objects
    listing = _denied(bucket, inventory, "s3:ListBucket", bucket.arn,
                      {"aws:SecureTransport": "false"})
    return listing if listing.status != "pass" else passed(
        "bucket and object requests with aws:SecureTransport=false are explicitly denied",
        dict.fromkeys(objects.sids + listing.sids))


@control("s3-tls-1-2", "Requests with TLS older than 1.2 are denied", severity="medium",
         scope=ALL_BUCKETS)
def _tls_minimum(bucket: BucketView, inventory: Inventory) -> Verdict:
    verdict = _denied(bucket, inventory, "s3:GetObject", f"{bucket.arn}/any-key",
                      {"aws:SecureTransport": "true", "s3:TlsVersion": "1.1"})
    if verdict.status != "pass":
        return verdict
    return passed("an https request with s3:TlsVersion=1.1 is explicitly denied", verdict.sids)


@control("s3-public-access-blocked", "All four public access block settings are on",
         severity="critical", scope=ALL_BUCKETS,
         frameworks=("SecurityHub S3.2", "SecurityHub S3.3", "SecurityHub S3.8", "CKV2_AWS_6"))
def _public_access_blocked(bucket: BucketView, inventory: Inventory) -> Verdict:
    block = bucket.one(PUBLIC_ACCESS_BLOCK)
    if block is None:
        return failed(f"{bucket.label} has no BucketPublicAccessBlock")
    flags = ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets")
    off = [flag for flag in flags if block.get(flag) is not True]
    if off:
        return failed(f"{block.name}: {', '.join(off)} not true")
    return passed(f"{block.name}: {', '.join(flags)} all true")


@control("s3-acls-disabled", "ACLs are disabled (BucketOwnerEnforced)", severity="medium",
         scope=ALL_BUCKETS, frameworks=("SecurityHub S3.12", "CKV2_AWS_65"))
def _acls_disabled(bucket: BucketView, inventory: Inventory) -> Verdict:
    ownership = bucket.one(OWNERSHIP)
    if ownership is None:
        return failed(f"{bucket.label} has no BucketOwnershipControls")
    value = ownership.get("rule", "objectOwnership")
    if value != "BucketOwnerEnforced":
        return failed(f"{ownership.name}: objectOwnership is {value!r}")
    return passed(f"{ownership.name}: objectOwnership BucketOwnerEnforced")


@control("s3-versioning", "Versioning is enabled", severity="high", scope=ALL_BUCKETS,
         frameworks=("SecurityHub S3.14", "CKV_AWS_21"))
def _versioning(bucket: BucketView, inventory: Inventory) -> Verdict:
    versioning = bucket.one(VERSIONING)
    if versioning is None:
        return failed(f"{bucket.label} has no BucketVersioning")
    status = versioning.get("versioningConfiguration", "status")
    if status != "Enabled":
        return failed(f"{versioning.name}: status {status!r}")
    return passed(f"{versioning.name}: status Enabled")


@control("s3-object-lock-default-retention", "Object Lock with a default retention",
         severity="critical", scope=BACKUP_BUCKETS, frameworks=("SecurityHub S3.15",))
def _object_lock(bucket: BucketView, inventory: Inventory) -> Verdict:
    if bucket.resource.get("objectLockEnabled") is not True:
        return failed(f"{bucket.resource.name}: objectLockEnabled is not true")
    lock = bucket.one(OBJECT_LOCK)
    if lock is None:
        return failed(f"{bucket.label} has no BucketObjectLockConfiguration (no default "
                      "retention)")
    mode = lock.get("rule", "defaultRetention", "mode")
    days = lock.get("rule", "defaultRetention", "days")
    years = lock.get("rule", "defaultRetention", "years")
    if mode not in ("COMPLIANCE", "GOVERNANCE") or not (days or years):
        return failed(f"{lock.name}: default retention {mode!r} {days or years!r}")
    period = f"{int(days)} days" if days else f"{int(years)} years"
    return passed(f"{lock.name}: default retention {mode} {period}")


@control("s3-kms-encryption-with-rotation", "Default encryption with a KMS key that rotates",
         severity="high", scope=BACKUP_BUCKETS,
         frameworks=("SecurityHub S3.17", "CKV_AWS_145", "CKV2_AWS_67"))
def _kms_encryption(bucket: BucketView, inventory: Inventory) -> Verdict:
    encryption = bucket.one(ENCRYPTION)
    if encryption is None:
        return failed(f"{bucket.label} has no default encryption")
    default = encryption.get("rules", 0, "applyServerSideEncryptionByDefault") or {}
    algorithm = encryption.get("rules", 0, "applyServerSideEncryptionByDefault", "sseAlgorithm")
    key_id = encryption.get("rules", 0, "applyServerSideEncryptionByDefault", "kmsMasterKeyId")
    if algorithm not in ("aws:kms", "aws:kms:dsse") or not key_id or not default:
        return failed(f"{encryption.name}: sseAlgorithm {algorithm!r}, no customer managed key")
    keys = [k for k in inventory.of_type(KMS_KEY) if k.parent == bucket.resource.parent]
    if len(keys) != 1:
        return failed(f"{bucket.label}: expected one KMS key in {bucket.component}, "
                      f"found {len(keys)}")
    if keys[0].get("enableKeyRotation") is not True:
        return failed(f"{keys[0].name}: enableKeyRotation is not true")
    return passed(f"{encryption.name}: aws:kms with {keys[0].name} (enableKeyRotation true)")


@control("s3-log-bucket-encrypted", "Log buckets are encrypted at rest", severity="medium",
         scope=LOG_BUCKETS, frameworks=("CKV_AWS_19",))
def _log_encryption(bucket: BucketView, inventory: Inventory) -> Verdict:
    encryption = bucket.one(ENCRYPTION)
    if encryption is None:
        return failed(f"{bucket.label} has no default encryption")
    algorithm = encryption.get("rules", 0, "applyServerSideEncryptionByDefault", "sseAlgorithm")
    if algorithm not in ("AES256", "aws:kms", "aws:kms:dsse"):
        return failed(f"{encryption.name}: sseAlgorithm {algorithm!r}")
    return passed(f"{encryption.name}: {algorithm} (SSE-S3 is the documented log target "
                  "encryption, facts §1)")


@control("s3-lifecycle-versioned", "Lifecycle expires noncurrent versions and aborts uploads",
         severity="medium", scope=ALL_BUCKETS,
         frameworks=("SecurityHub S3.10", "SecurityHub S3.13", "CKV2_AWS_61", "CKV_AWS_300"))
def _lifecycle(bucket: BucketView, inventory: Inventory) -> Verdict:
    lifecycle = bucket.one(LIFECYCLE)
    if lifecycle is None:
        return failed(f"{bucket.label} has no lifecycle configuration")
    enabled = [index for index, rule in enumerate(lifecycle.get("rules", default=[]) or [])
               if lifecycle.get("rules", index, "status") == "Enabled"]

    def rule_with(*path: str) -> str | None:
        for index in enabled:
            if lifecycle.get("rules", index, *path):
                return str(lifecycle.get("rules", index, "id"))
        return None

    noncurrent = rule_with("noncurrentVersionExpiration", "noncurrentDays")
    abort = rule_with("abortIncompleteMultipartUpload", "daysAfterInitiation")
    missing = [what for what, rule in (("NoncurrentVersionExpiration", noncurrent),
                                       ("AbortIncompleteMultipartUpload", abort)) if rule is None]
    if missing:
        return failed(f"{lifecycle.name}: no enabled rule with {' or '.join(missing)}")
    return passed(f"{lifecycle.name}: rules {noncurrent!r} (noncurrent versions) and "
                  f"{abort!r} (incomplete uploads)")


@control("s3-cross-region-replication", "Replicated to a bucket in another region",
         severity="high", scope=SOURCE_BUCKETS,
         frameworks=("SecurityHub S3.7", "CKV_AWS_144"))
def _replication(bucket: BucketView, inventory: Inventory) -> Verdict:
    configs = bucket.config(REPLICATION)
    if not configs:
        return failed(f"{bucket.label} has no replication configuration")
    for config in configs:
        for index, _ in enumerate(config.get("rules", default=[]) or []):
            if config.get("rules", index, "status") != "Enabled":
                continue
            arn = config.get("rules", index, "destination", "bucket") or ""
            target = inventory.bucket_named(arn.removeprefix("arn:aws:s3:::"))
            if target is None or target.role != "backup":
                continue
            if target.region == bucket.region:
                return failed(f"{config.name}: {target.label} is in the same region")
            markers = config.get("rules", index, "deleteMarkerReplication", "status")
            return passed(f"{config.name}: rule {config.get('rules', index, 'id')!r} → "
                          f"{target.label} ({target.region}), delete markers {markers}")
    return failed(f"{bucket.label}: no enabled rule replicates into a backup bucket")


@control("s3-delete-event-notifications", "Delete events are notified", severity="medium",
         scope=SOURCE_BUCKETS, frameworks=("SecurityHub S3.11", "CKV2_AWS_62"), mandatory=False)
def _delete_notifications(bucket: BucketView, inventory: Inventory) -> Verdict:
    for notification in bucket.config(NOTIFICATION):
        for kind in ("topics", "queues", "lambdaFunctions"):
            for index, _ in enumerate(notification.get(kind, default=[]) or []):
                events = notification.get(kind, index, "events") or []
                removed = [e for e in events if str(e).startswith("s3:ObjectRemoved:")]
                if removed:
                    target = notification.get(kind, index, "topicArn") or kind
                    return passed(f"{notification.name}: {', '.join(removed)} → {target}")
    return failed(f"{bucket.label}: no notification for s3:ObjectRemoved:* events")


@control("s3-access-logging", "Server access logs go to a log bucket in the same region",
         severity="medium", scope=BACKUP_BUCKETS, frameworks=("SecurityHub S3.9", "CKV_AWS_18"))
def _access_logging(bucket: BucketView, inventory: Inventory) -> Verdict:
    logging = bucket.one(LOGGING)
    if logging is None:
        return failed(f"{bucket.label} has no server access logging")
    target_name = logging.get("targetBucket")
    target = inventory.bucket_named(target_name)
    if target is None or target.role != "log":
        return failed(f"{logging.name}: target {target_name!r} is not a log bucket of the stack")
    if target.region != bucket.region:
        return failed(f"{logging.name}: target {target.label} is in {target.region}, the bucket "
                      f"in {bucket.region}: S3 delivers logs only within a region")
    if target.resource.get("objectLockEnabled") is True or target.config(OBJECT_LOCK):
        return failed(f"{logging.name}: target {target.label} has Object Lock; a bucket with "
                      "default retention cannot receive access logs")
    prefix = logging.get("targetPrefix")
    return passed(f"{logging.name}: → {target.label}/{prefix} ({target.region}, no Object Lock)")


# Actions whose grant to another account Security Hub S3.6 flags.
S3_6_ACTIONS: Final = ("s3:DeleteBucketPolicy", "s3:PutBucketAcl", "s3:PutBucketPolicy",
                       "s3:PutEncryptionConfiguration", "s3:PutObjectAcl")


@control("s3-no-policy-or-acl-changes-granted", "No principal is granted changes to the bucket "
         "policy, ACLs or encryption", severity="high", scope=ALL_BUCKETS,
         frameworks=("SecurityHub S3.6",))
def _no_policy_changes(bucket: BucketView, inventory: Inventory) -> Verdict:
    policy = _policy_of(bucket, inventory)
    if policy is None:
        return failed(f"{bucket.label} has no bucket policy")
    name, document = policy
    allows = [s for s in _statements(document) if s.get("Effect") == "Allow"]
    for statement in allows:
        sid = str(statement.get("Sid", "?"))
        if "NotAction" in statement:
            return failed(f"{name}: Allow with NotAction", [sid])
        granted = [a for a in S3_6_ACTIONS for pattern in _as_list(statement.get("Action"))
                   if fnmatchcase(a.lower(), str(pattern).lower())]
        if granted:
            return failed(f"{name}: {sid} grants {', '.join(granted)}", [sid])
    return passed(f"{name}: none of {len(allows)} Allow statements grants "
                  f"{', '.join(S3_6_ACTIONS)}; changes go through the account's own IAM",
                  [str(s.get("Sid", "?")) for s in allows])


def _administrator(inventory: Inventory) -> tuple[str, LabelledPolicy]:
    """Stands for any other principal of the account: its identity policy allows `*` on `*`."""
    arn = f"arn:aws:iam::{inventory.account_id() or '000000000000'}:role/any-administrator"
    return arn, LabelledPolicy("administrator (*:* on *)", "identity",
                               {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
                               principal_arn=arn)


def _account_principals(inventory: Inventory) -> list[str]:
    """The account root, an administrator, and every role of the stack."""
    account = inventory.account_id() or "000000000000"
    return sorted({
        f"arn:aws:iam::{account}:root",
        _administrator(inventory)[0],
        *(f"arn:aws:iam::{account}:role/{role.role_name}" for role in inventory.roles),
    })


def _https(principal: str | None, **extra: str) -> dict[str, str]:
    context = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3", **extra}
    if principal is not None:
        context["aws:PrincipalArn"] = principal
    return context


def _decide(policies: Sequence[LabelledPolicy], principal: str | None, action: str,
            resource: str, context: Mapping[str, str | list[str]]) -> Decision:
    """Raises ValueError (a policy the evaluator cannot read), which callers report as fail."""
    return evaluate(Request(principal, action, resource, context), policies)


def _denied_to_all(name: str, document: Mapping[str, Any], inventory: Inventory,
                   principals: Sequence[str], action: str, resource: str,
                   context: Mapping[str, str] = MappingProxyType({})) -> tuple[list[str], str]:
    """Is `action` explicitly denied by the resource policy to each of `principals` (the
    administrator with its *:* identity policy)? (deciding Sids, "" or the failure)."""
    admin = _administrator(inventory)[1]
    policies = [LabelledPolicy(name, "resource", document), admin]
    sids: list[str] = []
    for principal in principals:
        try:
            decision = _decide(policies, principal, action, resource,
                               _https(principal, **context))
        except ValueError as error:
            return sids, f"{name}: cannot evaluate ({error})"
        if decision.reason != "explicit-deny":
            condition = f" with {dict(context)}" if context else ""
            return sids, (f"{name}: {action} by {principal}{condition} is not explicitly "
                          f"denied ({decision.reason})")
        sids += [ref.sid for ref in decision.deciding if ref.sid not in sids]
    return sids, ""


@control("s3-version-delete-break-glass-only", "No principal but break-glass can delete a "
         "version", severity="critical", scope=BACKUP_BUCKETS)
def _version_delete(bucket: BucketView, inventory: Inventory) -> Verdict:
    policy = _policy_of(bucket, inventory)
    if policy is None:
        return failed(f"{bucket.label} has no bucket policy")
    name, document = policy
    resource = f"{bucket.arn}/{POSTGRES_PREFIX}x"
    sids, failure = _denied_to_all(name, document, inventory, _account_principals(inventory),
                                   "s3:DeleteObjectVersion", resource)
    if failure:
        return failed(failure)
    exceptions = _exceptions(name, document, sids, "s3:DeleteObjectVersion", resource)
    evidence = (f"{name}: s3:DeleteObjectVersion explicitly denied to the account root, every "
                f"role of the stack and an administrator allowed *:*")
    if exceptions:
        evidence += f"; excepted: {', '.join(exceptions)} (break-glass)"
    return passed(evidence, sids)


def _exceptions(name: str, document: Mapping[str, Any], sids: Sequence[str], action: str,
                resource: str) -> list[str]:
    """The principals the deciding Denies except (ArnNotEquals aws:PrincipalArn) that the
    policy does not deny `action` after all."""
    found: list[str] = []
    policies = [LabelledPolicy(name, "resource", document)]
    for statement in _statements(document):
        if statement.get("Sid") in sids:
            block = (statement.get("Condition") or {}).get("ArnNotEquals") or {}
            for arn in map(str, _as_list(block.get("aws:PrincipalArn"))):
                decision = _decide(policies, arn, action, resource, _https(arn))
                if decision.reason != "explicit-deny" and arn not in found:
                    found.append(arn)
    return found


def _replicas(inventory: Inventory) -> list[tuple[BucketView, str]]:
    """Backup buckets a replication rule writes into, with the rule's role."""
    found = []
    for config in inventory.of_type(REPLICATION):
        role = config.get("role")
        for index, _ in enumerate(config.get("rules", default=[]) or []):
            arn = config.get("rules", index, "destination", "bucket") or ""
            target = inventory.bucket_named(str(arn).removeprefix("arn:aws:s3:::"))
            if target is not None and target.role == "backup":
                found.append((target, str(role)))
    return found


REPLICA_BUCKETS = Scope("replica buckets (replication destinations)", _replicas,
                        lambda pair: _bucket_label(pair[0]),
                        "no replication rule writes into a backup bucket of the stack")
# Object writes a principal could make in a replica: Replicate* is how a role named in a
# replication rule of another bucket would write there.
REPLICA_WRITES: Final = (
    "s3:PutObject", "s3:DeleteObject", "s3:ReplicateObject", "s3:ReplicateDelete",
    "s3:ReplicateTags", "s3:PutObjectRetention", "s3:PutObjectLegalHold",
    "s3:PutObjectTagging", "s3:DeleteObjectTagging", "s3:PutObjectAcl", "s3:RestoreObject",
    "s3:AbortMultipartUpload",
)


@control("s3-replica-written-by-replication-only", "No principal but the replication role "
         "(and break-glass) can write objects of a replica", severity="critical",
         scope=REPLICA_BUCKETS)
def _replica_writes(pair: tuple[BucketView, str], inventory: Inventory) -> Verdict:
    bucket, writer = pair
    policy = _policy_of(bucket, inventory)
    if policy is None:
        return failed(f"{bucket.label} has no bucket policy")
    name, document = policy
    account = inventory.account_id() or "000000000000"
    # Another role holding s3:Replicate* (an administrator covers any identity policy).
    principals = [p for p in _account_principals(inventory) if p != writer]
    principals.append(f"arn:aws:iam::{account}:role/other-replicator")
    resource = f"{bucket.arn}/{POSTGRES_PREFIX}x"
    sids: list[str] = []
    for action in REPLICA_WRITES:
        found, failure = _denied_to_all(name, document, inventory, principals, action,
                                        resource)
        if failure:
            return failed(failure)
        sids += [sid for sid in found if sid not in sids]
    replicated = _decide([LabelledPolicy(name, "resource", document)], writer,
                         "s3:ReplicateObject", resource, _https(writer))
    if not replicated.allowed:
        return failed(f"{name}: the replication role {writer} cannot s3:ReplicateObject "
                      f"({replicated.reason})")
    return passed(f"{name}: {len(REPLICA_WRITES)} object writes ({', '.join(REPLICA_WRITES)}) "
                  "explicitly denied to the account root, every other role of the stack, an "
                  f"administrator allowed *:* and any other role; {writer} may replicate", sids)


# The encryption headers a PUT may carry that escape the bucket's key, and what they name.
FOREIGN_ENCRYPTION: Final = (
    ("SSE-S3", {"s3:x-amz-server-side-encryption": "AES256"}),
    ("DSSE-KMS", {"s3:x-amz-server-side-encryption": "aws:kms:dsse"}),
    ("another KMS key", {"s3:x-amz-server-side-encryption": "aws:kms",
                         "s3:x-amz-server-side-encryption-aws-kms-key-id":
                             "arn:aws:kms:eu-central-1:000000000000:key/another-key"}),
    ("SSE-C", {"s3:x-amz-server-side-encryption-customer-algorithm": "AES256"}),
)


@control("s3-writes-use-the-bucket-key", "A PUT naming other encryption than the bucket's own "
         "key is denied; a PUT without encryption headers is not", severity="high",
         scope=BACKUP_BUCKETS)
def _bucket_key_only(bucket: BucketView, inventory: Inventory) -> Verdict:
    """Asked of the bucket's writer (an administrator allowed *:*; on a replica the
    replication role, the only principal its other Denies spare). Multipart initiation is
    s3:PutObject too."""
    policy = _policy_of(bucket, inventory)
    encryption = bucket.one(ENCRYPTION)
    if policy is None or encryption is None:
        return failed(f"{bucket.label} has no bucket policy or no default encryption")
    name, document = policy
    key_arn = str(encryption.get("rules", 0, "applyServerSideEncryptionByDefault",
                                 "kmsMasterKeyId") or "")
    replicated_by = [role for replica, role in _replicas(inventory) if replica == bucket]
    writer, identity = _administrator(inventory)
    writer = replicated_by[0] if replicated_by else writer
    policies = [LabelledPolicy(name, "resource", document), identity]
    resource = f"{bucket.arn}/{POSTGRES_PREFIX}x"
    own = {"s3:x-amz-server-side-encryption": "aws:kms",
           "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}
    sids: list[str] = []
    try:
        for label, headers in (("without encryption headers", {}),
                               *([(f"naming {key_arn}", own)] if key_arn else [])):
            decision = _decide(policies, writer, "s3:PutObject", resource,
                               _https(writer, **headers))
            if decision.reason == "explicit-deny":
                return failed(f"{name}: a PUT by {writer} {label} is denied",
                              [ref.sid for ref in decision.deciding])
        for label, headers in FOREIGN_ENCRYPTION:
            decision = _decide(policies, writer, "s3:PutObject", resource,
                               _https(writer, **headers))
            if decision.reason != "explicit-deny":
                return failed(f"{name}: a PUT by {writer} naming {label} is not explicitly "
                              f"denied ({decision.reason})")
            sids += [ref.sid for ref in decision.deciding if ref.sid not in sids]
    except ValueError as error:
        return failed(f"{name}: cannot evaluate ({error})")
    return passed(f"{name}: a PUT by {writer} naming "
                  f"{', '.join(label for label, _ in FOREIGN_ENCRYPTION)} is denied; without "
                  f"encryption headers or naming {key_arn} it is not", sids)


@control("s3-retention-capped", "No principal can set a retention beyond the configured "
         "maximum; the backup role sets COMPLIANCE only", severity="high",
         scope=BACKUP_BUCKETS)
def _retention_capped(bucket: BucketView, inventory: Inventory) -> Verdict:
    """COMPLIANCE retention cannot be shortened: a 100-year retention set by a compromised
    backup host or an administrator would be irrevocable."""
    policy = _policy_of(bucket, inventory)
    if policy is None:
        return failed(f"{bucket.label} has no bucket policy")
    name, document = policy
    resource = f"{bucket.arn}/{POSTGRES_PREFIX}x"
    century = {"s3:object-lock-mode": "COMPLIANCE",
               "s3:object-lock-remaining-retention-days": "36500"}
    sids: list[str] = []
    for action in ("s3:PutObjectRetention", "s3:PutObject"):  # a PUT may set retention too
        found, failure = _denied_to_all(name, document, inventory,
                                        _account_principals(inventory), action, resource,
                                        century)
        if failure:
            return failed(failure)
        sids += [sid for sid in found if sid not in sids]
    caps = sorted({str(value) for statement in _statements(document)
                   if statement.get("Sid") in sids
                   for value in _as_list((statement.get("Condition") or {}).get(
                       "NumericGreaterThan", {}).get("s3:object-lock-remaining-retention-days"))})
    for role in inventory.roles_with("backup"):
        arn = f"arn:aws:iam::{inventory.account_id() or '000000000000'}:role/{role.role_name}"
        policies = [LabelledPolicy(name, "resource", document),
                    *(LabelledPolicy(p.name, "identity", PolicyDocument(p, "identity").document(),
                                     arn) for p in role.policies)]
        governance = _decide(policies, arn, "s3:PutObjectRetention", resource, _https(
            arn, **{"s3:object-lock-mode": "GOVERNANCE",
                    "s3:object-lock-remaining-retention-days": "1"}))
        if governance.allowed:
            return failed(f"{name}: {role.role_name} may set a GOVERNANCE retention, which "
                          "s3:BypassGovernanceRetention could shorten",
                          [ref.sid for ref in governance.deciding])
    return passed(f"{name}: a 100-year retention (PutObjectRetention, or PutObject with lock "
                  "headers) is explicitly denied to the account root, every role of the stack "
                  "and an administrator allowed *:* (cap: s3:object-lock-remaining-retention-"
                  f"days > {', '.join(caps) or '?'}); the backup role cannot set GOVERNANCE "
                  "retention", sids)


# --- policy documents ----------------------------------------------------------------------

CONDITION_CODES: Final = frozenset({
    "UNKNOWN_CONDITION_FOR_ACTION", "UNKNOWN_OPERATOR", "MISMATCHED_TYPE",
    "MISMATCHED_TYPE_BUT_USABLE", "MISMATCHED_TYPE_OPERATION_TO_NULL",
})


def lint(policy: PolicyDocument, inventory: Inventory) -> Any:
    """parliament through compliance.lint (imported here: only these checks need it). The
    result is kept on the inventory: two controls and the report read it, and parliament is
    most of the report's time."""
    from compliance.lint import lint_policy

    document = policy.document()
    key = ("lint", json.dumps(document, sort_keys=True), policy.kind)
    if key not in inventory.memo:
        inventory.memo[key] = lint_policy(document, kind=policy.kind)
    return inventory.memo[key]


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
    allows = [s for s in _statements(document) if s.get("Effect") == "Allow"]
    unscoped: list[str] = []
    for statement in allows:
        sid = str(statement.get("Sid", "?"))
        if "NotAction" in statement or "NotResource" in statement:
            return failed(f"{sid}: Allow with NotAction/NotResource", [sid])
        actions = [str(a) for a in _as_list(statement.get("Action"))]
        wildcards = [a for a in actions if "*" in a]
        if wildcards:
            return failed(f"{sid}: wildcard action(s) {', '.join(wildcards)}", [sid])
        for resource in _as_list(statement.get("Resource")):
            if not _wildcard_resource(str(resource), key_policy=policy.is_key_policy):
                continue
            if resource == "*" and all(_resource_star_only(a) for a in actions):
                unscoped.append(sid)
                continue
            return failed(f"{sid}: wildcard resource {resource!r}", [sid])
    notes = [" (Resource \"*\" in a key policy is the key itself)"] if policy.is_key_policy else []
    if unscoped:
        notes.append(f" (Resource \"*\" in {', '.join(unscoped)}: actions AWS cannot scope to "
                     "a resource)")
    return passed(f"{len(allows)} Allow statement(s) name actions and resources{''.join(notes)}",
                  [str(s.get("Sid", "?")) for s in allows])


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
    return "*" in head or "?" in head or any("*" in p for p in parts[:5])


# --- roles ---------------------------------------------------------------------------------

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
                [str(a) for a in _as_list(statement.get("Action"))],
                [str(r) for r in _as_list(statement.get("Resource"))])

    grants = []
    for policy in role.policies:
        for statement in _statements(PolicyDocument(policy, "identity").document()):
            if statement.get("Effect") == "Allow":
                grants.append(grant(policy.name, statement))
    for document in inventory.policies:
        if document.kind != "resource":
            continue
        for statement in _statements(document.document()):
            principal = statement.get("Principal")
            arns = _as_list(principal.get("AWS")) if isinstance(principal, Mapping) else []
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


# --- the alert topic -------------------------------------------------------------------------

TOPICS = Scope("SNS topics", lambda i: i.of_type(TOPIC), lambda t: t.name,
               "the stack declares no SNS topic")


def _topic_arn(topic: Declared, inventory: Inventory) -> str:
    """Known before the topic exists: its region, the account and its name."""
    account = inventory.account_id() or "000000000000"
    return f"arn:aws:sns:{topic.get('region')}:{account}:{topic.get('name')}"


def _topic_publishers(topic: Declared, inventory: Inventory) -> list[tuple[str, dict[str, str]]]:
    """(service, a request context it publishes with) for every service the topic policy lets
    publish, plus EventBridge when a rule of the stack targets the topic."""
    found: list[tuple[str, dict[str, str]]] = []
    for policy in inventory.of_type(TOPIC_POLICY):
        if policy.parent != topic.parent:
            continue
        for statement in _statements(PolicyDocument(policy, "resource").document()):
            principal = statement.get("Principal")
            services = _as_list(principal.get("Service")) if isinstance(principal, Mapping) \
                else []
            context: dict[str, str] = {}
            for block in (statement.get("Condition") or {}).values():
                for key, value in block.items():
                    context[key] = str(_as_list(value)[0]).replace("*", "any")
            found += [(str(service), context) for service in services
                      if statement.get("Effect") == "Allow"]
    account = inventory.account_id() or "000000000000"
    if any(target.get("arn") == _topic_arn(topic, inventory)
           for target in inventory.of_type(EVENT_TARGET)):
        found.append(("events.amazonaws.com", {"aws:SourceAccount": account}))
    return found


@control("sns-topic-encrypted-for-publishers-only", "The alert topic is encrypted with a key "
         "only its publishing services may use", severity="medium", scope=TOPICS,
         frameworks=("SecurityHub SNS.1", "CKV_AWS_26"))
def _topic_encrypted(topic: Declared, inventory: Inventory) -> Verdict:
    key_id = topic.get("kmsMasterKeyId")
    key = next((k for k in inventory.of_type(KMS_KEY) if k.parent == topic.parent), None)
    if not key_id or key is None:
        return failed(f"{topic.name}: no customer managed key (kmsMasterKeyId {key_id!r})")
    if str(key_id).startswith("alias/aws/"):
        return failed(f"{topic.name}: {key_id} is AWS managed: its policy admits no service")
    account = inventory.account_id() or "000000000000"
    topic_arn = _topic_arn(topic, inventory)
    policies = [LabelledPolicy(key.name, "resource", PolicyDocument(key, "resource").document())]
    publishers = _topic_publishers(topic, inventory)
    own = {"kms:EncryptionContext:aws:sns:topicArn": topic_arn}
    sids: list[str] = []

    def allowed(service: str, action: str, context: Mapping[str, str]) -> Decision:
        return _decide(policies, f"service:{service}", action, "*", context)

    # Each condition the topic policy puts on a publisher, violated one at a time.
    elsewhere = {"aws:SourceArn": "arn:aws:iam::000000000000:role/not-the-source",
                 "aws:SourceAccount": "000000000000",
                 "kms:EncryptionContext:aws:sns:topicArn": f"{topic_arn}-other"}
    labels = {"aws:SourceArn": "another source", "aws:SourceAccount": "another account's source",
              "kms:EncryptionContext:aws:sns:topicArn": "another topic"}
    services = {service for service, _ in publishers}
    try:
        for service, context in publishers:
            for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                decision = allowed(service, action, {**context, **own})
                if not decision.allowed:
                    return failed(f"{key.name}: {service} (publishes to {topic.name}) cannot "
                                  f"{action}")
                sids += [ref.sid for ref in decision.deciding if ref.sid not in sids]
            for condition in [*context, *own]:
                if condition in elsewhere and allowed(service, "kms:GenerateDataKey", {
                        **context, **own, condition: elsewhere[condition]}).allowed:
                    return failed(f"{key.name}: {service} may use the key for "
                                  f"{labels[condition]}")
            for other in ("events.amazonaws.com", "s3.amazonaws.com", "cloudwatch.amazonaws.com",
                          "sns.amazonaws.com"):
                if other not in services and allowed(other, "kms:GenerateDataKey",
                                                     {**context, **own}).allowed:
                    return failed(f"{key.name}: {other} may use the key but does not publish "
                                  f"to {topic.name}")
        for principal in (f"arn:aws:iam::{account}:root", _administrator(inventory)[0]):
            if _decide(policies, principal, "kms:Decrypt", "*", _https(principal)).allowed:
                return failed(f"{key.name}: {principal} may decrypt the alerts")
    except ValueError as error:
        return failed(f"{key.name}: cannot evaluate ({error})")
    return passed(f"{topic.name}: encrypted with {key.name}, whose policy lets exactly "
                  f"{', '.join(sorted(services))} (the topic's publishers) generate data keys "
                  "and decrypt, each for its own source and this topic only", sids)


# --- the organization guard ------------------------------------------------------------------

ORGANIZATION_GUARD = Scope("organization guard (rendered, not deployed)",
                           lambda i: i.of_type(RESOURCE_CONTROL_POLICY), lambda r: r.name,
                           "the stack renders no organization guard")
MODELLED_ORGANIZATION: Final = "o-exampleorgid"


def _guard(inventory: Inventory) -> list[LabelledPolicy]:
    kinds: dict[str, PolicyKind] = {RESOURCE_CONTROL_POLICY: "rcp", SERVICE_CONTROL_POLICY: "scp"}
    return [LabelledPolicy(p.resource.name, kinds[p.resource.type], p.document())
            for p in inventory.policies if p.resource.type in kinds]


def _guard_exempt(policies: Sequence[LabelledPolicy]) -> list[str]:
    return sorted({str(arn) for policy in policies for statement in _statements(policy.document)
                   for arn in _as_list(((statement.get("Condition") or {}).get("ArnNotLike")
                                        or {}).get("aws:PrincipalArn"))})


@control("org-guard-rendered", "The organization guard (RCP and SCP) protects the buckets, "
         "keys and exempt roles from the account's own administrators", severity="critical",
         scope=ORGANIZATION_GUARD)
def _organization_guard(rcp: Declared, inventory: Inventory) -> Verdict:
    """Checked by what it denies, under AWS's evaluation of RCPs and SCPs; whether the
    management account has attached it the stack cannot see, hence "manual"."""
    policies = _guard(inventory)
    exempt = _guard_exempt(policies)
    admin = _administrator(inventory)[0]
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
    roles = [*exempt, *(arn for _, arn in _replicas(inventory))]
    for role in dict.fromkeys(roles):
        for action in ("iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy", "iam:DeleteRole"):
            probes.append(("an administrator", admin, action, role, in_org, True))
    for provider in _trusted_providers(inventory, exempt):
        probes.append(("an administrator", admin, "iam:UpdateOpenIDConnectProviderThumbprint",
                       provider, in_org, True))
    sids: list[str] = []
    try:
        for who, principal, action, resource, context, deny in probes:
            decision = _decide(policies, principal or None, action, resource,
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
        for statement in _statements(trust):
            principal = statement.get("Principal")
            if isinstance(principal, Mapping):
                found += [str(p) for p in _as_list(principal.get("Federated")) if p not in found]
    return found


# --- key creation (CI deploy role) -----------------------------------------------------------

def _key_creators(inventory: Inventory) -> list[RoleView]:
    return [role for role in inventory.roles
            if any("kms:CreateKey" in _as_list(statement.get("Action"))
                   for policy in role.policies
                   for statement in _statements(PolicyDocument(policy, "identity").document()))]


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
            decision = _decide(policies, arn, action, resource, context)
            if decision.allowed != expected:
                return failed(f"{role.role_name} {label}: {'denied' if expected else 'allowed'}",
                              [ref.sid for ref in decision.deciding])
            sids += [ref.sid for ref in decision.deciding if ref.sid not in sids]
    except ValueError as error:
        return failed(f"{role.role_name}: cannot evaluate ({error})")
    return passed(f"{role.role_name}: creates keys only with {tags} (and no other tag key), "
                  "manages only keys carrying it", sids)


# --- containers (the backup runtime) -------------------------------------------------------

_STATIC_KEY_NAMES: Final = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_ACCESS_KEY = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIALS?)$")


def _credential_problems(container: ContainerView) -> list[str]:
    problems = []
    for name, value in container.env().items():
        if name in _STATIC_KEY_NAMES:
            problems.append(f"env {name} (static AWS credentials)")
        elif _ACCESS_KEY.search(value):
            problems.append(f"env {name} holds an AWS access key id")
        elif _SECRET_NAME.search(name) and value:
            problems.append(f"env {name} holds a plaintext secret (use a *_FILE mount)")
    for index, _ in enumerate(container.resource.get("uploads", default=[]) or []):
        content = container.resource.get("uploads", index, "content") or ""
        if _ACCESS_KEY.search(str(content)) or "aws_secret_access_key" in str(content):
            problems.append(f"upload {container.resource.get('uploads', index, 'file')} holds "
                            "AWS credentials")
    return problems


@control("container-no-static-credentials", "No static credentials or plaintext secrets in "
         "any container", severity="critical", scope=CONTAINERS)
def _no_static_credentials(container: ContainerView, inventory: Inventory) -> Verdict:
    problems = _credential_problems(container)
    if problems:
        return failed(f"{container.resource.name}: {'; '.join(problems)}")
    uploads = container.resource.get("uploads", default=[]) or []
    return passed(f"{container.resource.name}: {len(container.env())} env var(s) and "
                  f"{len(uploads)} uploaded file(s), no static AWS credentials, no secret in the "
                  "environment; AWS access comes from the host's instance profile")


@control("restore-host-no-write-credentials", "No write credentials on the restore host",
         severity="critical", scope=RESTORE_CONTAINERS)
def _restore_host_credentials(container: ContainerView, inventory: Inventory) -> Verdict:
    problems = _credential_problems(container)
    env = container.env()
    problems += [f"env {name} selects other credentials than the restore instance profile"
                 for name in ("AWS_ROLE_ARN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
                              "AWS_WEB_IDENTITY_TOKEN_FILE") if name in env]
    for kind, path in (("volumes", "containerPath"), ("mounts", "target")):
        for index, _ in enumerate(container.resource.get(kind, default=[]) or []):
            target = str(container.resource.get(kind, index, path) or "")
            source = str(container.resource.get(kind, index, "hostPath")
                         or container.resource.get(kind, index, "source") or "")
            if ".aws" in target or ".aws" in source:
                problems.append(f"{kind} {source or target} mounts AWS credentials")
    if problems:
        return failed(f"{container.resource.name}: {'; '.join(problems)}")
    return passed(f"{container.resource.name}: no AWS credentials of its own (env, mounts, "
                  "uploads); it can only use the host's instance profile")


def _first_cold_day(bucket: BucketView) -> tuple[int, str] | None:
    """The earliest day a lifecycle rule moves objects under postgres/ into a cold class."""
    lifecycle = bucket.one(LIFECYCLE)
    if lifecycle is None:
        return None
    earliest: tuple[int, str] | None = None
    for index, _ in enumerate(lifecycle.get("rules", default=[]) or []):
        if lifecycle.get("rules", index, "status") != "Enabled":
            continue
        prefix = str(lifecycle.get("rules", index, "filter", "prefix") or "")
        if not (POSTGRES_PREFIX.startswith(prefix) or prefix.startswith(POSTGRES_PREFIX)):
            continue
        for step, _ in enumerate(lifecycle.get("rules", index, "transitions", default=[]) or []):
            storage = lifecycle.get("rules", index, "transitions", step, "storageClass")
            days = lifecycle.get("rules", index, "transitions", step, "days")
            if storage in COLD_CLASSES and days is not None:
                candidate = (int(days), f"{lifecycle.name} rule "
                             f"{lifecycle.get('rules', index, 'id')!r} → {storage}")
                earliest = min(earliest, candidate) if earliest else candidate
    return earliest


@control("rto-restorable-backup-not-cold", "Nothing the newest restorable backup needs is in a "
         "class that cannot meet the database RTO", severity="critical",
         scope=SCHEDULED_CONTAINERS)
def _rto(container: ContainerView, inventory: Inventory) -> Verdict:
    interval = float(container.labels()[FULL_BACKUP_INTERVAL_LABEL])
    # The newest full base backup (and the WAL after it) can be this old before the next one.
    for bucket in inventory.buckets_of("backup"):
        cold = _first_cold_day(bucket)
        if cold is not None and cold[0] <= interval:
            return failed(f"{container.resource.name}: full base backups every {interval:g} "
                          f"day(s), but {cold[1]} after {cold[0]} days ({bucket.label}): Glacier "
                          "restores take hours")
    return passed(f"{container.resource.name}: full base backups every {interval:g} day(s); the "
                  "newest base backup and its WAL leave STANDARD only after that")

