"""The scenario table: the requests reviewers ask about, evaluated against the generated policies.

Each row is one request, evaluated by `compliance.evaluation` (AWS's documented logic: an explicit
Deny anywhere wins, then any Allow, else implicit deny) over the recorded bucket policy, the
requesting role's own policies and, for KMS requests, the key policy; the organization guard's
RCP and SCP where the row says it is attached. Principals outside the stack (a deploy role, a
break-glass role when none is configured, an administrator whose identity policy allows `*` on
`*`, another role holding `s3:Replicate*`, another organization's role) are modelled with the
identity policy written in their row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from compliance.evaluation import Decision, LabelledPolicy, PolicyKind, Request, evaluate
from compliance.inventory import (
    BUCKET_POLICY,
    ENCRYPTION,
    KMS_KEY,
    OBJECT_LOCK,
    RESOURCE_CONTROL_POLICY,
    SERVICE_CONTROL_POLICY,
    TOPIC,
    BucketView,
    Inventory,
    PolicyDocument,
)
from contract.layout import (
    EVIDENCE_PREFIX,
    POSTGRES_PREFIX,
    RETENTION_TAG_ACTIVE,
    RETENTION_TAG_KEY,
)

NOT_MODELLED: Final = (
    "Service control policies and resource control policies (AWS Organizations) except in the "
    "rows that say the organization guard is attached; which accounts the management account "
    "attaches them to is its decision",
    "Permission boundaries and session policies",
    "Object Lock itself: retention and legal holds act after the policy decision (see the "
    "notes on the overwrite, delete and version-delete rows)",
    "ACLs (disabled here: BucketOwnerEnforced) and cross-account requests",
    "The KMS rule that identity policies count only when the key policy enables them (the key "
    "policies here name each role directly)",
    "Role sessions: a request is made by the role ARN itself",
)
# A wal-g base backup's sentinel object (wal-g writes it beside the backup's folder, last).
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


# Modelled principals and organization for the rows that ask about them.
ADMIN_LABEL: Final = "an admin with *:* in the account (modelled)"
ORGANIZATION: Final = "o-exampleorgid"
OUTSIDE_ORGANIZATION: Final = "o-otherorgid"
CENTURY_DAYS: Final = 36500  # S3's longest retention: 100 years
KEPT_DAYS: Final = 180  # a backup kept for half a year: within the default keep.maxDays (365)


def scenarios(inventory: Inventory) -> list[Scenario]:
    """The reviewers' questions for the first backup bucket written directly, its replica, the
    organization guard and the alert topic's key."""
    table = _Table(inventory)
    rows = table.primary_rows()
    rows += table.task_role_rows()
    if table.replica is not None:
        rows += table.replica_rows(table.replica)
    rows += table.guard_rows()
    rows += table.topic_key_rows()
    return rows


class _Table:
    """What the rows share: the buckets, the roles, the modelled principals."""

    def __init__(self, inventory: Inventory) -> None:
        destinations = inventory.replication_destinations()
        backups = inventory.buckets_of("backup")
        self.inventory = inventory
        self.primary = next(b for b in backups if b.label not in destinations)
        self.replica = next((b for b in backups if b.label in destinations), None)
        self.account = account = inventory.account_id() or "111122223333"
        self.backup = (_role_arn(inventory, account, "backup")
                       or f"arn:aws:iam::{account}:role/backup")
        self.restore = (_role_arn(inventory, account, "restore")
                        or f"arn:aws:iam::{account}:role/restore")
        self.replication = _role_arn(inventory, account, "replication")
        self.admin = f"arn:aws:iam::{account}:role/any-administrator"
        self.admin_policy = _identity_allowing("administrator identity policy (modelled)",
                                               self.admin, ["*"], "*")
        self.lock = _lock(self.primary)
        self.lock_text = (f"Object Lock {self.lock[0]} {self.lock[1]} days" if self.lock
                          else "no Object Lock")

    def s3(self, question: str, who: str, arn: str | None, action: str,
           bucket: BucketView | None = None, resource: str | None = None,
           context: Mapping[str, str] | None = None, extra: Sequence[LabelledPolicy] = (),
           note: str = "") -> Scenario:
        """A request on `bucket` (default: the primary), on its base backup unless
        `resource` says otherwise."""
        bucket = bucket or self.primary
        identity = _identity(self.inventory, arn) if arn else []
        return Scenario(question, who,
                        Request(arn, action, resource or f"{bucket.arn}/{BASE_BACKUP_KEY}",
                                context if context is not None else _https(arn)),
                        (_bucket_policy(bucket), *identity, *extra), note)

    def by_admin(self, question: str, action: str, bucket: BucketView | None = None,
                 resource: str | None = None, context: Mapping[str, str] | None = None,
                 extra: Sequence[LabelledPolicy] = (), note: str = "") -> Scenario:
        return self.s3(question, ADMIN_LABEL, self.admin, action, bucket, resource,
                       context, (self.admin_policy, *extra), note)

    def primary_rows(self) -> list[Scenario]:
        primary, backup, restore, lock_text = (self.primary, self.backup, self.restore,
                                               self.lock_text)
        key_arn = _key_arn(primary)
        retention = {"s3:object-lock-mode": "COMPLIANCE",
                     "s3:object-lock-remaining-retention-days": str(KEPT_DAYS)}
        rows = [
            self.s3("A plain-HTTP request", "backup role", backup, "s3:GetObject",
                    context={"aws:SecureTransport": "false", "aws:PrincipalArn": backup}),
            self.s3("A TLS 1.0 request", "backup role", backup, "s3:GetObject",
                    context=_https(backup, **{"s3:TlsVersion": "1.0"})),
            self.s3("Backup role writes a backup", "backup role", backup, "s3:PutObject",
                    note="No encryption header, as wal-g and restic send it: the bucket's "
                         "default encryption (SSE-KMS, its own key) applies."),
            Scenario("…and gets the SSE-KMS data key for it", "backup role",
                     Request(backup, "kms:GenerateDataKey", key_arn, {
                         "kms:ViaService": f"s3.{primary.region}.amazonaws.com",
                         "kms:EncryptionContext:aws:s3:arn": primary.arn,
                         "aws:PrincipalArn": backup}),
                     (_key_policy(self.inventory, primary), *_identity(self.inventory, backup)),
                     "S3 Bucket Key: the encryption context is the bucket ARN (S3 User Guide, "
                     "\"Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys\")"),
            self.s3("Backup role writes naming the bucket's own key", "backup role", backup,
                    "s3:PutObject", context=_https(backup, **{
                        "s3:x-amz-server-side-encryption": "aws:kms",
                        "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn})),
            self.s3("Backup role writes naming SSE-S3 (AES256)", "backup role", backup,
                    "s3:PutObject",
                    context=_https(backup, **{"s3:x-amz-server-side-encryption": "AES256"}),
                    note="Also a multipart initiation: CreateMultipartUpload is authorized as "
                         "s3:PutObject."),
            self.s3("Backup role writes naming another KMS key", "backup role", backup,
                    "s3:PutObject", context=_https(backup, **{
                        "s3:x-amz-server-side-encryption": "aws:kms",
                        "s3:x-amz-server-side-encryption-aws-kms-key-id":
                            _foreign_key(key_arn)})),
            self.s3("Backup role writes with a customer-provided key (SSE-C)", "backup role",
                    backup, "s3:PutObject", context=_https(backup, **{
                        "s3:x-amz-server-side-encryption-customer-algorithm": "AES256"}),
                    note="SSE-C objects carry neither SSE header, and S3 does not replicate "
                         "them."),
            self.s3("Backup role overwrites an existing backup", "backup role", backup,
                    "s3:PutObject",
                    note="Allowed: the PUT adds a new current version; versioning keeps the "
                         f"old one as noncurrent and {lock_text} keeps it undeletable until its "
                         "retention ends; lifecycle then expires it "
                         "(NoncurrentVersionExpiration)."),
            self.s3("Backup role deletes an object", "backup role", backup, "s3:DeleteObject",
                    note="Allowed (restic prune, wal-g delete): on a versioned bucket this "
                         "writes a delete marker; every version stays, and the delete-marker "
                         "event pages."),
            self.s3("Backup role deletes a version", "backup role", backup,
                    "s3:DeleteObjectVersion",
                    note=f"Denied by policy; {lock_text} would refuse it within retention even "
                         "without the Deny."),
            self.s3("Backup role extends a kept backup's COMPLIANCE retention (keep)",
                    "backup role", backup, "s3:PutObjectRetention",
                    context=_https(backup, **retention),
                    note="Granted under keep.protection compliance-retention (the default): "
                         "nobody, root included, can shorten it afterwards."),
            self.s3("Backup role places a legal hold (keep)", "backup role", backup,
                    "s3:PutObjectLegalHold",
                    context=_https(backup, **{"s3:object-lock-legal-hold": "ON"}),
                    note="Granted only under keep.protection legal-hold; under "
                         "compliance-retention keep extends the retention instead (the row "
                         "above)."),
            self.s3("Backup role sets a GOVERNANCE retention", "backup role", backup,
                    "s3:PutObjectRetention", context=_https(backup, **{
                        **retention, "s3:object-lock-mode": "GOVERNANCE"}),
                    note="Only COMPLIANCE is granted: a GOVERNANCE date could be bypassed."),
            self.s3("Backup role locks a backup for 100 years", "backup role", backup,
                    "s3:PutObjectRetention", context=_https(backup, **{
                        **retention,
                        "s3:object-lock-remaining-retention-days": str(CENTURY_DAYS)}),
                    note="Beyond keep.maxDays: a compromised backup host cannot lock data "
                         "irrevocably for longer."),
            self.s3("Restore role reads (primary region)", "restore role", restore,
                    "s3:GetObject"),
        ]
        if self.replica is not None:
            rows.append(self.s3(f"Restore role reads (replica, {self.replica.region})",
                                "restore role", restore, "s3:GetObject", bucket=self.replica))
        rows += [
            self.s3("Restore role writes", "restore role", restore, "s3:PutObject"),
            self.s3("Anonymous read", "anonymous", None, "s3:GetObject",
                    note="No statement allows an anonymous principal; the public access block "
                         "also refuses any policy that would."),
            self.s3(f"Anyone strips the {RETENTION_TAG_KEY} tag", "backup role", backup,
                    "s3:DeleteObjectTagging",
                    context=_https(backup, **{f"s3:ExistingObjectTag/{RETENTION_TAG_KEY}":
                                              RETENTION_TAG_ACTIVE})),
            self.by_admin("An admin deletes a version", "s3:DeleteObjectVersion",
                          context=_https(self.admin)),
            self.by_admin("An admin lifts a legal hold", "s3:PutObjectLegalHold",
                          context=_https(self.admin, **{"s3:object-lock-legal-hold": "OFF"}),
                          note="Unless the admin first rewrites the bucket policy (the row "
                               "below): a legal hold is only as strong as the policy; COMPLIANCE "
                               "retention cannot be shortened by anyone."),
            self.by_admin("An admin locks a backup for 100 years", "s3:PutObjectRetention",
                          context=_https(self.admin, **{
                              **retention,
                              "s3:object-lock-remaining-retention-days": str(CENTURY_DAYS)})),
            self._break_glass_row(),
            self._deploy_row(),
            self.by_admin("An admin rewrites the bucket policy", "s3:PutBucketPolicy",
                          resource=primary.arn, context=_https(self.admin),
                          note="Allowed: nothing in the account can stop its administrators. "
                               "It could then drop every Deny but Object Lock; the organization "
                               "guard's rows below show what an organization adds."),
        ]
        return rows

    def task_role_rows(self) -> list[Scenario]:
        """The ECS task roles, granted beside the host roles: a job's writes as the backup
        role's, the drill's as the restore role's, the exporter's none (only when placed on
        ECS)."""
        outcome = f"{self.primary.arn}/{EVIDENCE_PREFIX}2026/01/outcome.json"
        rows = []
        for purpose, question, action, resource in (
                ("task-postgres", "writes a backup", "s3:PutObject", None),
                ("task-drill", "writes a backup", "s3:PutObject", None),
                ("task-drill", "records its outcome", "s3:PutObject", outcome),
                ("task-exporter", "records an outcome", "s3:PutObject", outcome)):
            arn = _role_arn(self.inventory, self.account, purpose)
            if arn is not None:
                rows.append(self.s3(f"ECS task role ({purpose}) {question}", f"{purpose} role",
                                    arn, action, resource=resource))
        return rows

    def replica_rows(self, replica: BucketView) -> list[Scenario]:
        """The replica under the same scrutiny: only replication writes there."""
        other = f"arn:aws:iam::{self.account}:role/other-replicator"
        replicator = _identity_allowing("other role's identity policy (modelled)", other,
                                        ["s3:Replicate*"], "*")
        rows = [
            self.s3("A plain-HTTP request (replica)", "restore role", self.restore,
                    "s3:GetObject", bucket=replica,
                    context={"aws:SecureTransport": "false", "aws:PrincipalArn": self.restore}),
            self.s3("Anonymous read (replica)", "anonymous", None, "s3:GetObject",
                    bucket=replica),
            self.s3("Restore role writes (replica)", "restore role", self.restore,
                    "s3:PutObject", bucket=replica),
            self.s3("Backup role writes (replica)", "backup role", self.backup, "s3:PutObject",
                    bucket=replica),
        ]
        if self.replication is not None:
            rows.append(self.s3("The replication role replicates into the replica",
                                "replication role", self.replication, "s3:ReplicateObject",
                                bucket=replica))
        rows += [
            self.s3("Another role with s3:Replicate* replicates into the replica",
                    "another role of the account (modelled)", other, "s3:ReplicateObject",
                    bucket=replica, extra=(replicator,),
                    note="Such a role could be named in a replication rule of another bucket "
                         "and write new current versions here."),
            self.s3("…or writes delete markers into the replica",
                    "another role of the account (modelled)", other, "s3:ReplicateDelete",
                    bucket=replica, extra=(replicator,)),
            self.by_admin("An admin writes into the replica", "s3:PutObject", bucket=replica,
                          context=_https(self.admin)),
            self.by_admin("An admin writes into the replica naming SSE-S3", "s3:PutObject",
                          bucket=replica, context=_https(
                              self.admin, **{"s3:x-amz-server-side-encryption": "AES256"})),
            self.by_admin("An admin changes a replica's retention", "s3:PutObjectRetention",
                          bucket=replica, context=_https(self.admin, **{
                              "s3:object-lock-mode": "COMPLIANCE",
                              "s3:object-lock-remaining-retention-days": str(KEPT_DAYS)})),
            self.by_admin("An admin places a legal hold in the replica", "s3:PutObjectLegalHold",
                          bucket=replica, context=_https(
                              self.admin, **{"s3:object-lock-legal-hold": "ON"})),
            self.by_admin("An admin tags an untagged replica", "s3:PutObjectTagging",
                          bucket=replica, context=_https(self.admin)),
            self.by_admin("An admin deletes a version (replica)", "s3:DeleteObjectVersion",
                          bucket=replica, context=_https(self.admin)),
        ]
        return rows

    def _break_glass_row(self) -> Scenario:
        break_glass_arn = configured_break_glass(_bucket_policy(self.primary).document)
        glass = break_glass_arn or f"arn:aws:iam::{self.account}:role/break-glass"
        lock = self.lock
        return self.s3(
            "The break-glass role deletes a version", "break-glass role" if break_glass_arn
            else "break-glass role (none configured; modelled)", glass, "s3:DeleteObjectVersion",
            extra=(_identity_allowing("break-glass identity policy (modelled)", glass,
                                      ["s3:DeleteObjectVersion"], f"{self.primary.arn}/*"),),
            note=("The stack names this role in the Denies' ArnNotEquals exception. "
                  if break_glass_arn else "No breakGlassArn is configured: nobody is excepted. ")
            + (f"{self.lock_text}: " + ("no one, root included, can delete a locked version "
                                        "before its retention ends." if lock[0] == "COMPLIANCE"
                                        else "a locked version needs "
                                             "s3:BypassGovernanceRetention too.")
               if lock else ""))

    def deployer(self) -> tuple[str, str, tuple[LabelledPolicy, ...]]:
        """The deploy role: the stack's own (the GitHub deploy role), else modelled."""
        declared = _stack_deployer(self.inventory, self.account, self.primary)
        if declared is not None:
            return declared, f"{declared.rsplit('/', 1)[-1]} (declared by the stack)", ()
        deploy = f"arn:aws:iam::{self.account}:role/deploy"
        return deploy, "deploy role (modelled)", (_identity_allowing(
            "deploy identity policy (modelled)", deploy, ["s3:PutBucketPolicy"],
            self.primary.arn),)

    def _deploy_row(self) -> Scenario:
        arn, who, extra = self.deployer()
        return self.s3("The deploy role rewrites the bucket policy", who, arn,
                       "s3:PutBucketPolicy", resource=self.primary.arn, extra=extra,
                       note=_deploy_note(self.lock))

    def guard_rows(self) -> list[Scenario]:
        """The same questions with the organization guard attached to the account."""
        guard = _guard_policies(self.inventory)
        if not guard:
            return []
        in_org = {"aws:PrincipalOrgID": ORGANIZATION, "aws:ResourceOrgID": ORGANIZATION,
                  "aws:PrincipalIsAWSService": "false"}
        deploy, who, deploy_extra = self.deployer()
        suffix = ", with the organization guard attached"
        rows = [
            self.by_admin("An admin rewrites the bucket policy" + suffix, "s3:PutBucketPolicy",
                          resource=self.primary.arn, context=_https(self.admin, **in_org),
                          extra=guard),
            self.s3("The deploy role rewrites the bucket policy" + suffix, who, deploy,
                    "s3:PutBucketPolicy", resource=self.primary.arn,
                    context=_https(deploy, **in_org), extra=(*deploy_extra, *guard),
                    note="Allowed only if the guard exempts the deploy role: it does when "
                         "github is configured; prod declares no deploy role, so changes go "
                         "through the management account."),
            self.by_admin("An admin changes a key's policy" + suffix, "kms:PutKeyPolicy",
                          resource=_key_arn(self.primary), context=_https(self.admin, **in_org),
                          extra=guard),
        ]
        if self.replication is not None:
            rows.append(self.by_admin(
                "An admin makes the replication role assumable" + suffix,
                "iam:UpdateAssumeRolePolicy", resource=self.replication,
                context=_https(self.admin, **in_org), extra=guard,
                note="The SCP: an exempt role cannot be made assumable, or the exemption would "
                     "be the way round."))
        outsider = "arn:aws:iam::444455556666:role/outsider"
        rows += [
            self.s3("A principal outside the organization reads" + suffix,
                    "another organization's role (modelled)", outsider, "s3:GetObject",
                    context=_https(outsider, **{**in_org,
                                                "aws:PrincipalOrgID": OUTSIDE_ORGANIZATION}),
                    extra=(_identity_allowing("outsider identity policy (modelled)", outsider,
                                              ["s3:GetObject"], "*"), *guard)),
            self.s3("Restore role reads" + suffix, "restore role", self.restore, "s3:GetObject",
                    context=_https(self.restore, **in_org), extra=guard),
        ]
        return rows

    def topic_key_rows(self) -> list[Scenario]:
        """Who may use the alert topic's key: exactly the services that publish to it."""
        found = _topic_key(self.inventory)
        if found is None:
            return []
        topic_arn, key = found
        bucket_events = {"aws:SourceArn": self.primary.arn, "aws:SourceAccount": self.account,
                         "kms:EncryptionContext:aws:sns:topicArn": topic_arn}
        region = topic_arn.split(":")[3]
        alarm = f"arn:aws:cloudwatch:{region}:{self.account}:alarm:any-alarm"

        def use(question: str, service: str, context: Mapping[str, str],
                note: str = "") -> Scenario:
            return Scenario(question, service, Request(f"service:{service}",
                                                       "kms:GenerateDataKey", "*", context),
                            (key,), note)

        return [
            use("S3 publishes the primary bucket's delete events to the encrypted alert topic",
                "s3.amazonaws.com", bucket_events),
            use("Another bucket's events use the alert topic's key", "s3.amazonaws.com",
                {**bucket_events, "aws:SourceArn": "arn:aws:s3:::another-bucket"}),
            use("CloudWatch alarms of this account publish to the encrypted alert topic",
                "cloudwatch.amazonaws.com", {**bucket_events, "aws:SourceArn": alarm}),
            use("EventBridge uses the alert topic's key", "events.amazonaws.com",
                {**bucket_events, "aws:SourceArn":
                 f"arn:aws:events:{region}:{self.account}:rule/any-rule"},
                note="No EventBridge rule of this stack publishes to the topic."),
        ]


def _foreign_key(key_arn: str) -> str:
    """Another key of the same account and region."""
    return key_arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"


def _guard_policies(inventory: Inventory) -> tuple[LabelledPolicy, ...]:
    kinds: dict[str, PolicyKind] = {RESOURCE_CONTROL_POLICY: "rcp", SERVICE_CONTROL_POLICY: "scp"}
    return tuple(LabelledPolicy(p.resource.name, kinds[p.resource.type], p.document())
                 for p in inventory.policies if p.resource.type in kinds)


def _topic_key(inventory: Inventory) -> tuple[str, LabelledPolicy] | None:
    """The alert topic's ARN and the policy of the key its messages are encrypted with."""
    account = inventory.account_id() or "111122223333"
    for topic in inventory.of_type(TOPIC):
        key = next((k for k in inventory.of_type(KMS_KEY) if k.parent == topic.parent), None)
        if key is None or not topic.get("kmsMasterKeyId"):
            continue
        arn = f"arn:aws:sns:{topic.get('region')}:{account}:{topic.get('name')}"
        return arn, LabelledPolicy(key.name, "resource",
                                   PolicyDocument(key, "resource").document())
    return None


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
            "s3:BypassGovernanceRetention (S3 User Guide, \"Bypassing governance mode\"); only "
            "COMPLIANCE or the organization guard prevents that.")


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
