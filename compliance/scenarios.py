"""The scenario table: the requests reviewers ask about, evaluated against the generated policies.

Each row is one request, evaluated by `compliance.evaluation` (AWS's documented logic: an explicit
Deny anywhere wins, then any Allow, else implicit deny) over the recorded bucket policy, the
requesting role's own policies and, for KMS requests, the key policy. Roles outside the stack
(a deploy role, a break-glass role when none is configured, an administrator) are modelled with
the identity policy written in their row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from compliance.evaluation import Decision, LabelledPolicy, Request, evaluate
from compliance.inventory import (
    BUCKET_POLICY,
    ENCRYPTION,
    KMS_KEY,
    OBJECT_LOCK,
    BucketView,
    Inventory,
    PolicyDocument,
)
from components.layout import POSTGRES_PREFIX, RETENTION_TAG_ACTIVE, RETENTION_TAG_KEY

NOT_MODELLED: Final = (
    "Service control policies and resource control policies (AWS Organizations)",
    "Permission boundaries and session policies",
    "Object Lock itself: retention and legal holds act after the policy decision (see the "
    "notes on the overwrite, delete and version-delete rows)",
    "ACLs (disabled here: BucketOwnerEnforced) and cross-account requests",
    "The KMS rule that identity policies count only when the key policy enables them (the key "
    "policies here name each role directly)",
    "Role sessions: a request is made by the role ARN itself",
)
# A wal-g base backup's sentinel object (layout: /work/shared/research/storage-layouts.md).
BASE_BACKUP_KEY: Final = (
    f"{POSTGRES_PREFIX}main/basebackups_005/base_000000010000000000000042_backup_stop_sentinel.json")


@dataclass(frozen=True)
class Scenario:
    question: str
    principal: str  # a label: "backup role", "anonymous"
    request: Request
    policies: tuple[LabelledPolicy, ...]
    note: str = ""


@dataclass(frozen=True)
class ScenarioResult:
    scenario: Scenario
    decision: Decision

    def deciding(self) -> str:
        return ", ".join(f"{ref.policy}: {ref.sid}" for ref in self.decision.deciding) or "—"


def _https(principal_arn: str | None, **extra: str) -> dict[str, str]:
    context = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}
    if principal_arn is not None:
        context["aws:PrincipalArn"] = principal_arn
    return {**context, **extra}


def _role_arn(inventory: Inventory, account: str, purpose: str) -> str | None:
    role = next((r for r in inventory.roles if purpose in r.purposes), None)
    return f"arn:aws:iam::{account}:role/{role.role_name}" if role else None


def _identity(inventory: Inventory, arn: str) -> list[LabelledPolicy]:
    name = arn.rsplit("/", 1)[-1]
    role = next((r for r in inventory.roles if r.role_name == name), None)
    return [LabelledPolicy(p.name, "identity", PolicyDocument(p, "identity").document(), arn)
            for p in (role.policies if role else ())]


def _bucket_policy(bucket: BucketView) -> LabelledPolicy:
    resource = bucket.one(BUCKET_POLICY)
    document = PolicyDocument(resource, "resource").document() if resource else {"Statement": []}
    return LabelledPolicy(resource.name if resource else "(no bucket policy)", "resource",
                          document)


def _key_policy(inventory: Inventory, bucket: BucketView) -> LabelledPolicy:
    key = next(k for k in inventory.of_type(KMS_KEY) if k.parent == bucket.resource.parent)
    return LabelledPolicy(key.name, "resource", PolicyDocument(key, "resource").document())


def _key_arn(bucket: BucketView) -> str:
    encryption = bucket.one(ENCRYPTION)
    arn = encryption.get("rules", 0, "applyServerSideEncryptionByDefault",
                         "kmsMasterKeyId") if encryption else None
    return str(arn or "")


def _lock(bucket: BucketView) -> tuple[str, int] | None:
    lock = bucket.one(OBJECT_LOCK)
    if lock is None:
        return None
    return (str(lock.get("rule", "defaultRetention", "mode")),
            int(lock.get("rule", "defaultRetention", "days") or 0))


def _identity_allowing(label: str, arn: str, actions: Sequence[str],
                       resource: str) -> LabelledPolicy:
    return LabelledPolicy(label, "identity", {"Statement": [
        {"Sid": "Modelled", "Effect": "Allow", "Action": list(actions), "Resource": resource}]},
        principal_arn=arn)


def configured_break_glass(document: Mapping[str, Any]) -> str | None:
    """The principal the bucket policy's Denies except (ArnNotEquals aws:PrincipalArn)."""
    for statement in document.get("Statement", []):
        block = (statement.get("Condition") or {}).get("ArnNotEquals") or {}
        if statement.get("Effect") == "Deny" and block.get("aws:PrincipalArn"):
            return str(block["aws:PrincipalArn"])
    return None


def scenarios(inventory: Inventory) -> list[Scenario]:
    """The reviewers' questions for the first backup bucket that is written directly."""
    destinations = inventory.replication_destinations()
    backups = inventory.buckets_of("backup")
    primary = next(b for b in backups if b.label not in destinations)
    replica = next((b for b in backups if b.label in destinations), None)
    account = inventory.account_id() or "111122223333"
    backup = _role_arn(inventory, account, "backup") or f"arn:aws:iam::{account}:role/backup"
    restore = _role_arn(inventory, account, "restore") or f"arn:aws:iam::{account}:role/restore"
    obj = f"{primary.arn}/{BASE_BACKUP_KEY}"
    bucket_policy = _bucket_policy(primary)
    lock = _lock(primary)
    lock_text = (f"Object Lock {lock[0]} {lock[1]} days" if lock else "no Object Lock")

    def s3(question: str, who: str, arn: str | None, action: str, resource: str = obj,
           context: Mapping[str, str] | None = None, extra: Sequence[LabelledPolicy] = (),
           bucket_policy: LabelledPolicy = bucket_policy, note: str = "") -> Scenario:
        identity = _identity(inventory, arn) if arn else []
        return Scenario(question, who,
                        Request(arn, action, resource, context if context is not None
                                else _https(arn)),
                        (bucket_policy, *identity, *extra), note)

    rows = [
        s3("A plain-HTTP request", "backup role", backup, "s3:GetObject",
           context={"aws:SecureTransport": "false", "aws:PrincipalArn": backup}),
        s3("A TLS 1.0 request", "backup role", backup, "s3:GetObject",
           context=_https(backup, **{"s3:TlsVersion": "1.0"})),
        s3("Backup role writes a backup", "backup role", backup, "s3:PutObject"),
        Scenario("…and gets the SSE-KMS data key for it", "backup role",
                 Request(backup, "kms:GenerateDataKey", _key_arn(primary), {
                     "kms:ViaService": f"s3.{primary.region}.amazonaws.com",
                     "kms:EncryptionContext:aws:s3:arn": primary.arn,
                     "aws:PrincipalArn": backup}),
                 (_key_policy(inventory, primary), *_identity(inventory, backup)),
                 "S3 Bucket Key: the encryption context is the bucket ARN (facts §4)"),
        s3("Backup role overwrites an existing backup", "backup role", backup, "s3:PutObject",
           note="Allowed: the PUT adds a new current version; versioning keeps the old one as "
                f"noncurrent and {lock_text} keeps it undeletable until its retention ends; "
                "lifecycle then expires it (NoncurrentVersionExpiration)."),
        s3("Backup role deletes an object", "backup role", backup, "s3:DeleteObject",
           note="Allowed (restic prune, wal-g delete): on a versioned bucket this writes a delete "
                "marker; every version stays, and the delete-marker event pages."),
        s3("Backup role deletes a version", "backup role", backup, "s3:DeleteObjectVersion",
           resource=obj,
           note=f"Denied by policy; {lock_text} would refuse it within retention even without "
                "the Deny."),
        s3("Restore role reads (primary region)", "restore role", restore, "s3:GetObject"),
        s3("Restore role writes", "restore role", restore, "s3:PutObject"),
        s3("Anonymous read", "anonymous", None, "s3:GetObject",
           note="No statement allows an anonymous principal; the public access block also "
                "refuses any policy that would."),
        s3(f"Anyone strips the {RETENTION_TAG_KEY} tag", "backup role", backup,
           "s3:DeleteObjectTagging",
           context=_https(backup, **{f"s3:ExistingObjectTag/{RETENTION_TAG_KEY}":
                                     RETENTION_TAG_ACTIVE})),
    ]
    if replica is not None:
        replica_obj = f"{replica.arn}/{BASE_BACKUP_KEY}"
        rows.insert(8, s3(f"Restore role reads (replica, {replica.region})", "restore role",
                          restore, "s3:GetObject", resource=replica_obj,
                          bucket_policy=_bucket_policy(replica)))
        rows.insert(10, s3("Restore role writes (replica)", "restore role", restore,
                           "s3:PutObject", resource=replica_obj,
                           bucket_policy=_bucket_policy(replica)))
    break_glass_arn = configured_break_glass(bucket_policy.document)
    glass = break_glass_arn or f"arn:aws:iam::{account}:role/break-glass"
    rows.append(s3(
        "The break-glass role deletes a version", "break-glass role" if break_glass_arn else
        "break-glass role (none configured; modelled)", glass, "s3:DeleteObjectVersion",
        extra=(_identity_allowing("break-glass identity policy (modelled)", glass,
                                  ["s3:DeleteObjectVersion"], f"{primary.arn}/*"),),
        note=("The stack names this role in the Denies' ArnNotEquals exception. "
              if break_glass_arn else "No breakGlassArn is configured: nobody is excepted. ")
        + (f"{lock_text}: " + ("no one, root included, can delete a locked version before its "
                               "retention ends." if lock and lock[0] == "COMPLIANCE" else
                               "a locked version needs s3:BypassGovernanceRetention too.")
           if lock else "")))
    deployer = _stack_deployer(inventory, account, primary)
    if deployer is not None:  # a role of the stack may rewrite it (e.g. the GitHub deploy role)
        rows.append(s3("The deploy role rewrites the bucket policy",
                       f"{deployer.rsplit('/', 1)[-1]} (declared by the stack)", deployer,
                       "s3:PutBucketPolicy", resource=primary.arn, note=_deploy_note(lock)))
        return rows
    deploy = f"arn:aws:iam::{account}:role/deploy"
    rows.append(s3(
        "The deploy role rewrites the bucket policy", "deploy role (modelled)", deploy,
        "s3:PutBucketPolicy", resource=primary.arn,
        extra=(_identity_allowing("deploy identity policy (modelled)", deploy,
                                  ["s3:PutBucketPolicy"], primary.arn),),
        note=_deploy_note(lock)))
    return rows


def _stack_deployer(inventory: Inventory, account: str, bucket: BucketView) -> str | None:
    """The first role of the stack whose own policies allow s3:PutBucketPolicy on `bucket`."""
    for role in inventory.roles:
        arn = f"arn:aws:iam::{account}:role/{role.role_name}"
        request = Request(arn, "s3:PutBucketPolicy", bucket.arn, _https(arn))
        if evaluate(request, _identity(inventory, arn)).allowed:
            return arn
    return None


def _deploy_note(lock: tuple[str, int] | None) -> str:
    exposed = ("It could then drop the Denies and grant itself reads, tag changes and writes; "
               "reading the data also needs kms:Decrypt, which only the key policy grants.")
    if lock is None:
        return "Allowed. " + exposed + " Without Object Lock it could then delete versions too."
    if lock[0] == "COMPLIANCE":
        return ("Allowed. " + exposed + f" Not exposed: under COMPLIANCE ({lock[1]} days) no one "
                "can delete or shorten the retention of a locked version, whatever the policy.")
    return ("Allowed. " + exposed + " Exposed under GOVERNANCE: after removing "
            "DenyGovernanceBypass it can delete locked versions with "
            "s3:BypassGovernanceRetention (facts §1); only COMPLIANCE or an SCP prevents that.")


def evaluate_scenarios(inventory: Inventory) -> list[ScenarioResult]:
    return [ScenarioResult(s, evaluate(s.request, s.policies)) for s in scenarios(inventory)]


def as_rows(results: Sequence[ScenarioResult]) -> list[dict[str, Any]]:
    return [{
        "question": r.scenario.question,
        "principal": r.scenario.principal,
        "action": r.scenario.request.action,
        "resource": r.scenario.request.resource,
        "decision": "allowed" if r.decision.allowed else "denied",
        "reason": r.decision.reason,
        "deciding": [{"policy": ref.policy, "sid": ref.sid} for ref in r.decision.deciding],
        "note": r.scenario.note,
    } for r in results]
