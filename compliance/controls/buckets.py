"""The bucket controls: public access, TLS, versioning, Object Lock, encryption, lifecycle,
replication, notifications, logging, and who may change or delete what."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Any, Final

from compliance.controls.registry import (
    ACCOUNT,
    ALL_BUCKETS,
    BACKUP_BUCKETS,
    LOG_BUCKETS,
    SOURCE_BUCKETS,
    Scope,
    Verdict,
    as_list,
    bucket_label,
    control,
    explicitly_denied,
    failed,
    passed,
    policy_of,
    statements_of,
)
from compliance.evaluation import Decision, LabelledPolicy, Request, evaluate
from compliance.inventory import (
    ENCRYPTION,
    KMS_KEY,
    LIFECYCLE,
    LOGGING,
    NOTIFICATION,
    OBJECT_LOCK,
    OWNERSHIP,
    PUBLIC_ACCESS_BLOCK,
    REPLICATION,
    VERSIONING,
    BucketView,
    Inventory,
    PolicyDocument,
)
from contract.layout import (
    POSTGRES_PREFIX,
)


@control("s3-account-public-access-block", "Account-level S3 public access block",
         severity="high", scope=ACCOUNT, frameworks=("SecurityHub S3.1",), mandatory=False)
def _account_public_access_block(subject: Any, inventory: Inventory) -> Verdict:
    raise AssertionError("the account scope has no subjects")  # pragma: no cover


@control("s3-ssl-only", "Requests without TLS are denied", severity="high", scope=ALL_BUCKETS,
         frameworks=("SecurityHub S3.5",))
def _ssl_only(bucket: BucketView, inventory: Inventory) -> Verdict:
    objects = explicitly_denied(bucket, inventory, "s3:GetObject", f"{bucket.arn}/any-key",
                      {"aws:SecureTransport": "false"})
    if objects.status != "pass":
        return objects
    listing = explicitly_denied(bucket, inventory, "s3:ListBucket", bucket.arn,
                      {"aws:SecureTransport": "false"})
    return listing if listing.status != "pass" else passed(
        "bucket and object requests with aws:SecureTransport=false are explicitly denied",
        dict.fromkeys(objects.sids + listing.sids))


@control("s3-tls-1-2", "Requests with TLS older than 1.2 are denied", severity="medium",
         scope=ALL_BUCKETS)
def _tls_minimum(bucket: BucketView, inventory: Inventory) -> Verdict:
    verdict = explicitly_denied(bucket, inventory, "s3:GetObject", f"{bucket.arn}/any-key",
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
                  "encryption, S3 User Guide: enable-server-access-logging)")


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
    policy = policy_of(bucket, inventory)
    if policy is None:
        return failed(f"{bucket.label} has no bucket policy")
    name, document = policy
    allows = [s for s in statements_of(document) if s.get("Effect") == "Allow"]
    for statement in allows:
        sid = str(statement.get("Sid", "?"))
        if "NotAction" in statement:
            return failed(f"{name}: Allow with NotAction", [sid])
        granted = [a for a in S3_6_ACTIONS for pattern in as_list(statement.get("Action"))
                   if fnmatchcase(a.lower(), str(pattern).lower())]
        if granted:
            return failed(f"{name}: {sid} grants {', '.join(granted)}", [sid])
    return passed(f"{name}: none of {len(allows)} Allow statements grants "
                  f"{', '.join(S3_6_ACTIONS)}; changes go through the account's own IAM",
                  [str(s.get("Sid", "?")) for s in allows])


def account_administrator(inventory: Inventory) -> tuple[str, LabelledPolicy]:
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
        account_administrator(inventory)[0],
        *(f"arn:aws:iam::{account}:role/{role.role_name}" for role in inventory.roles),
    })


def https_request(principal: str | None, **extra: str) -> dict[str, str]:
    context = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3", **extra}
    if principal is not None:
        context["aws:PrincipalArn"] = principal
    return context


def decide(policies: Sequence[LabelledPolicy], principal: str | None, action: str,
            resource: str, context: Mapping[str, str | list[str]]) -> Decision:
    """Raises ValueError (a policy the evaluator cannot read), which callers report as fail."""
    return evaluate(Request(principal, action, resource, context), policies)


def _denied_to_all(name: str, document: Mapping[str, Any], inventory: Inventory,
                   principals: Sequence[str], action: str, resource: str,
                   context: Mapping[str, str] = MappingProxyType({})) -> tuple[list[str], str]:
    """Is `action` explicitly denied by the resource policy to each of `principals` (the
    administrator with its *:* identity policy)? (deciding Sids, "" or the failure)."""
    admin = account_administrator(inventory)[1]
    policies = [LabelledPolicy(name, "resource", document), admin]
    sids: list[str] = []
    for principal in principals:
        try:
            decision = decide(policies, principal, action, resource,
                               https_request(principal, **context))
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
    policy = policy_of(bucket, inventory)
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
    for statement in statements_of(document):
        if statement.get("Sid") in sids:
            block = (statement.get("Condition") or {}).get("ArnNotEquals") or {}
            for arn in map(str, as_list(block.get("aws:PrincipalArn"))):
                decision = decide(policies, arn, action, resource, https_request(arn))
                if decision.reason != "explicit-deny" and arn not in found:
                    found.append(arn)
    return found


def replica_buckets(inventory: Inventory) -> list[tuple[BucketView, str]]:
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


REPLICA_BUCKETS = Scope("replica buckets (replication destinations)", replica_buckets,
                        lambda pair: bucket_label(pair[0]),
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
    policy = policy_of(bucket, inventory)
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
    replicated = decide([LabelledPolicy(name, "resource", document)], writer,
                         "s3:ReplicateObject", resource, https_request(writer))
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
    policy = policy_of(bucket, inventory)
    encryption = bucket.one(ENCRYPTION)
    if policy is None or encryption is None:
        return failed(f"{bucket.label} has no bucket policy or no default encryption")
    name, document = policy
    key_arn = str(encryption.get("rules", 0, "applyServerSideEncryptionByDefault",
                                 "kmsMasterKeyId") or "")
    replicated_by = [role for replica, role in replica_buckets(inventory) if replica == bucket]
    writer, identity = account_administrator(inventory)
    writer = replicated_by[0] if replicated_by else writer
    policies = [LabelledPolicy(name, "resource", document), identity]
    resource = f"{bucket.arn}/{POSTGRES_PREFIX}x"
    own = {"s3:x-amz-server-side-encryption": "aws:kms",
           "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}
    sids: list[str] = []
    try:
        for label, headers in (("without encryption headers", {}),
                               *([(f"naming {key_arn}", own)] if key_arn else [])):
            decision = decide(policies, writer, "s3:PutObject", resource,
                               https_request(writer, **headers))
            if decision.reason == "explicit-deny":
                return failed(f"{name}: a PUT by {writer} {label} is denied",
                              [ref.sid for ref in decision.deciding])
        for label, headers in FOREIGN_ENCRYPTION:
            decision = decide(policies, writer, "s3:PutObject", resource,
                               https_request(writer, **headers))
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
    policy = policy_of(bucket, inventory)
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
    caps = sorted({str(value) for statement in statements_of(document)
                   if statement.get("Sid") in sids
                   for value in as_list((statement.get("Condition") or {}).get(
                       "NumericGreaterThan", {}).get("s3:object-lock-remaining-retention-days"))})
    for role in inventory.roles_with("backup"):
        arn = f"arn:aws:iam::{inventory.account_id() or '000000000000'}:role/{role.role_name}"
        policies = [LabelledPolicy(name, "resource", document),
                    *(LabelledPolicy(p.name, "identity", PolicyDocument(p, "identity").document(),
                                     arn) for p in role.policies)]
        governance = decide(policies, arn, "s3:PutObjectRetention", resource, https_request(
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
