"""Stack configuration parsed once into typed, validated settings.

`parse_settings` takes the project's config namespace as plain data (what `pulumi.Config` or a
Pulumi.<stack>.yaml holds) and either returns `StackSettings` or raises one `ConfigError` naming
the offending key, what is wrong and what is allowed. It runs before any resource is declared.
Every value is read through `contract.reader` (type, range, null = absent), so a setting added
here gets those checks by being read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from components.config_reader import ConfigError, ConfigReader
from components.layout import GITHUB_ROLE_PURPOSES, PROJECT, STACK_TAG_KEY, github_role_name
from components.runtime_settings import (
    RuntimeDatabase,
    RuntimeSettings,
    parse_runtime,
)
from contract import schedule

# How `backup-agent keep` protects a backup kept past the lock window (docs/runtime.md, GDPR),
# and S3 Object Lock's 100-year limit (no lifecycle or log period here is longer either): the
# agent's settings define them, the stack renders them.
from contract.agent_settings import KEEP_PROTECTIONS, MAX_RETENTION_DAYS, KeptBackups
from contract.layout import COLD_STORAGE_CLASSES, POSTGRES_PREFIX, RESTIC_PREFIX

# AWS commercial regions (aws ec2 describe-regions --all-regions, 2026).
AWS_REGIONS: Final = frozenset(
    {
        "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2",
        "ap-northeast-3", "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2",
        "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
        "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1",
        "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1",
        "me-south-1", "mx-central-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1",
        "us-west-2",
    }
)  # fmt: skip

# Lifecycle transition targets, coldest last: AWS only transitions "down" this waterfall.
TRANSITION_ORDER: Final = (
    "STANDARD_IA",
    "INTELLIGENT_TIERING",
    "ONEZONE_IA",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
)
# Minimum storage duration in days (early-deletion fee below it): https://docs.aws.amazon.com/AmazonS3/latest/userguide/storage-class-intro.html
MINIMUM_STORAGE_DAYS: Final = {
    "STANDARD_IA": 30,
    "ONEZONE_IA": 30,
    "GLACIER_IR": 90,
    "GLACIER": 90,
    "DEEP_ARCHIVE": 180,
}
# STANDARD_IA/ONEZONE_IA reject transitions earlier than 30 days after creation.
MINIMUM_TRANSITION_DAYS: Final = {"STANDARD_IA": 30, "ONEZONE_IA": 30}
ObjectLockMode = Literal["COMPLIANCE", "GOVERNANCE"]
OBJECT_LOCK_MODES: Final = ("COMPLIANCE", "GOVERNANCE")
SUBSCRIPTION_PROTOCOLS: Final = ("email", "email-json", "https", "sqs", "lambda", "sms")
DATA_RESIDENCIES: Final = ("eu", "any")

ACCESS_LOG_SUFFIX: Final = "-access-logs"
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,49}[a-z0-9]")
_BUCKET_NAME_ALLOWED: Final = (
    f"3-51 characters of a-z, 0-9 and '-' (no dots: they break TLS for virtual-hosted "
    f"requests; {len(ACCESS_LOG_SUFFIX)} characters are kept for the '{ACCESS_LOG_SUFFIX}' log "
    "bucket)")
# S3 User Guide, "General purpose bucket naming rules": reserved for S3's own names.
RESERVED_BUCKET_PREFIXES: Final = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES: Final = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# IAM User Guide, "IAM and AWS STS quotas": role names are 1-64 of these characters and
# unique in the account regardless of case.
_ROLE_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{1,64}")
_ROLE_NAME_ALLOWED: Final = "an IAM role name (1-64 of A-Z a-z 0-9 +=,.@_-)"
_ROLE_ARN = re.compile(r"arn:aws:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,64}")
MAX_ROLE_NAME: Final = 64
# The environment names GitHub roles and defaults to the stack name, which Pulumi limits to
# these characters.
_ENVIRONMENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class BucketSettings:
    bucket_name: str
    region: str

    @property
    def log_bucket_name(self) -> str:
        return self.bucket_name + ACCESS_LOG_SUFFIX


@dataclass(frozen=True)
class ObjectLockSettings:
    enabled: bool = True
    mode: ObjectLockMode = "COMPLIANCE"
    days: int = 30


@dataclass(frozen=True)
class Transition:
    days: int
    storage_class: str


@dataclass(frozen=True)
class LifecycleTier:
    prefix: str
    transitions: tuple[Transition, ...] = ()
    expiration_days: int | None = None


@dataclass(frozen=True)
class LifecycleSettings:
    tiers: tuple[LifecycleTier, ...] = ()
    noncurrent_version_days: int = 30
    abort_incomplete_upload_days: int = 7


@dataclass(frozen=True)
class RoleSettings:
    backup: str = "backup-server"
    restore: str = "restore-server"
    wal_archiver: str = "wal-archiver"
    replication: str = "backup-replication"
    break_glass_arn: str | None = None


@dataclass(frozen=True)
class Subscriber:
    protocol: str
    endpoint: str


@dataclass(frozen=True)
class AlertSettings:
    subscribers: tuple[Subscriber, ...] = ()


@dataclass(frozen=True)
class KeepSettings:
    """`backup-agent keep`: COMPLIANCE retention (nobody can shorten it, erasure waits for it)
    or a legal hold (break-glass can lift it, and so can an account admin who rewrites the
    bucket policy). `max_days` caps any retention anyone sets, so a compromised backup host
    cannot lock data for decades."""

    protection: str = KeptBackups.protection
    max_days: int = KeptBackups.max_days


@dataclass(frozen=True)
class Waiver:
    """A compliance control this stack does not meet, and why. The control id is checked where
    the controls live (compliance.report), which components do not import."""

    control: str
    reason: str


@dataclass(frozen=True)
class GitHubSettings:
    """CI through GitHub Actions OIDC: `repository` is the `sub` claim's repository part."""

    repository: str
    environment: str
    oidc_provider_arn: str | None = None
    state_bucket: str | None = None
    secrets_key_arn: str | None = None


@dataclass(frozen=True)
class StackSettings:
    environment: str
    primary: BucketSettings
    replica: BucketSettings | None
    object_lock: ObjectLockSettings
    lifecycle: LifecycleSettings
    roles: RoleSettings
    alerts: AlertSettings
    keep: KeepSettings = field(default_factory=KeepSettings)
    access_log_days: int = 365
    protect: bool = False
    data_residency: str = "eu"
    github: GitHubSettings | None = None
    waivers: tuple[Waiver, ...] = ()
    runtime: RuntimeSettings | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def key_tags(self) -> dict[str, str]:
        """The tags of every KMS key the stack creates (the deploy role is scoped by them)."""
        return {STACK_TAG_KEY: self.environment}


# Top-level keys of the project namespace and whether they hold structured (object) values.
CONFIG_KEYS: Final = {
    "environment": False,
    "protect": False,
    "dataResidency": False,
    "primary": True,
    "replica": True,
    "objectLock": True,
    "lifecycle": True,
    "roles": True,
    "alerts": True,
    "accessLogs": True,
    "keep": True,
    "github": True,
    "waivers": True,
    "runtime": True,
}
# Set only with `pulumi config set --secret`; infra/__main__.py reads them as secret Outputs,
# never into these settings.
SECRET_CONFIG_KEYS: Final = ("resticPassword", "databasePasswords", "webhookUrl")


def _decode(key: str, value: Any, structured: bool) -> Any:
    """Pulumi hands structured config to programs as JSON text; YAML files hold it parsed."""
    if structured and isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(key, f"got the text {value!r}; allowed: an object (structured "
                              "config)") from None
    return value


def check_known_keys(names: Iterable[str]) -> None:
    for name in names:
        if name not in CONFIG_KEYS and name not in SECRET_CONFIG_KEYS:
            raise ConfigError(name, "unknown key; allowed: "
                              + ", ".join([*CONFIG_KEYS, *SECRET_CONFIG_KEYS]))


def parse_settings(raw: Mapping[str, Any], *, stack: str) -> StackSettings:
    """Validate the project's config namespace (keys without the `project:` prefix)."""
    check_known_keys(raw)
    root = ConfigReader("", {k: _decode(k, v, CONFIG_KEYS[k]) for k, v in raw.items()})
    residency = root.choice("dataResidency", DATA_RESIDENCIES, "eu")
    primary_reader = root.child("primary")
    primary_reader.reject_unknown(("bucketName", "region"))
    primary = _bucket(primary_reader, residency)
    replica_reader = root.child("replica")
    replica_reader.reject_unknown(("enabled", "bucketName", "region"))
    replica = None
    if replica_reader.boolean("enabled", True):
        replica = _bucket(replica_reader, residency)
        if replica.region == primary.region:
            raise ConfigError(
                "replica.region",
                f"must differ from primary.region ({primary.region}): cross-region replication "
                f"needs a second region; allowed: an AWS region other than {primary.region}",
            )
        _check_bucket_names(primary, replica)
    object_lock = _object_lock(root.child("objectLock"))
    lifecycle = _lifecycle(root.child("lifecycle"), object_lock)
    access_logs = root.child("accessLogs")
    access_logs.reject_unknown(("retentionDays",))
    roles = _roles(root.child("roles"))
    github = _github(root, stack)
    environment = root.string("environment", stack, pattern=_ENVIRONMENT,
                              allowed="1-64 of A-Z a-z 0-9 _ . - (a stack name)")
    if github is not None:
        _check_github_role_names(environment, roles)
        if github.state_bucket in _store_bucket_names(primary, replica):
            raise ConfigError("github.stateBucket", f"{github.state_bucket!r} is a bucket of "
                              "this store; allowed: the Pulumi state bucket, outside the store")
    settings = StackSettings(
        environment=environment,
        primary=primary,
        replica=replica,
        object_lock=object_lock,
        lifecycle=lifecycle,
        roles=roles,
        alerts=_alerts(root.child("alerts")),
        keep=_keep(root.child("keep"), object_lock),
        access_log_days=access_logs.days("retentionDays", 365),
        protect=root.boolean("protect", False),
        data_residency=residency,
        github=github,
        waivers=_waivers(root),
    )
    settings = replace(settings, warnings=(*lifecycle_warnings(settings),
                                           *protection_warnings(settings)))
    if root.data.get("runtime") is None:
        return settings
    runtime_reader = root.child("runtime")
    runtime = parse_runtime(runtime_reader)
    for reader, database in zip(runtime_reader.items("databases"), runtime.databases,
                                strict=True):
        _check_against_lifecycle(reader, database, settings.lifecycle)
    if runtime.ecs is not None and runtime.ecs.image_digest is None and environment == "prod":
        # No Docker engine here builds or pushes the image: prod's tasks run exactly the image
        # someone pushed and named, never whatever a tag points at today.
        raise ConfigError("runtime.ecs.imageDigest", "is required in environment prod when "
                          "anything has placement: ecs: the task definitions pin the image by "
                          "digest; allowed: sha256: and 64 of 0-9 a-f, as aws ecr describe-images "
                          "prints it (imageDetails[].imageDigest)")
    return replace(settings, runtime=runtime)


def _bucket(reader: ConfigReader, residency: str) -> BucketSettings:
    name = reader.string("bucketName", required=True, allowed=_BUCKET_NAME_ALLOWED)
    if not _BUCKET_NAME.fullmatch(name):
        raise ConfigError(reader.key("bucketName"),
                          f"{name!r} is not allowed: {_BUCKET_NAME_ALLOWED}")
    reserved = ([f"starts with {p!r}" for p in RESERVED_BUCKET_PREFIXES if name.startswith(p)]
                + [f"ends with {s!r}" for s in RESERVED_BUCKET_SUFFIXES if name.endswith(s)])
    if reserved:
        raise ConfigError(reader.key("bucketName"), f"{name!r} {reserved[0]}, which S3 reserves; "
                          "allowed: a name without the prefixes "
                          + ", ".join(RESERVED_BUCKET_PREFIXES) + " and the suffixes "
                          + ", ".join(RESERVED_BUCKET_SUFFIXES))
    region = reader.choice("region", sorted(AWS_REGIONS))
    if residency == "eu" and not region.startswith("eu-"):
        raise ConfigError(
            reader.key("region"),
            f"{region!r} is outside the EU; dataResidency 'eu' allows only eu-* regions "
            "(set dataResidency: any to lift this)",
        )
    return BucketSettings(bucket_name=name, region=region)


def _store_bucket_names(primary: BucketSettings, replica: BucketSettings | None) -> list[str]:
    buckets = [primary] + ([replica] if replica else [])
    return [name for b in buckets for name in (b.bucket_name, b.log_bucket_name)]


def _check_bucket_names(primary: BucketSettings, replica: BucketSettings) -> None:
    """The two buckets and the access-log bucket each one derives must be four names."""
    taken = {primary.bucket_name: "primary.bucketName",
             primary.log_bucket_name: f"the access-log bucket of primary.bucketName "
                                      f"({primary.bucket_name!r})"}
    if replica.bucket_name in taken:
        raise ConfigError("replica.bucketName", f"{replica.bucket_name!r} is already "
                          f"{taken[replica.bucket_name]}; allowed: a name other than "
                          + " and ".join(repr(n) for n in taken))
    if replica.log_bucket_name == primary.bucket_name:
        raise ConfigError("primary.bucketName", f"{primary.bucket_name!r} is already the "
                          "access-log bucket of replica.bucketName "
                          f"({replica.bucket_name!r}); allowed: a name other than "
                          f"{replica.log_bucket_name!r}")


def _object_lock(reader: ConfigReader) -> ObjectLockSettings:
    reader.reject_unknown(("enabled", "mode", "days"))
    return ObjectLockSettings(
        enabled=reader.boolean("enabled", True),
        mode=reader.choice("mode", OBJECT_LOCK_MODES, "COMPLIANCE"),
        days=reader.days("days", ObjectLockSettings.days),
    )


def _lifecycle(reader: ConfigReader, object_lock: ObjectLockSettings) -> LifecycleSettings:
    reader.reject_unknown(("tiers", "noncurrentVersionDays", "abortIncompleteUploadDays"))
    tiers = tuple(_tier(item) for item in reader.items("tiers"))
    prefixes = [t.prefix for t in tiers]
    for index, prefix in enumerate(prefixes):
        if prefix in prefixes[:index]:
            raise ConfigError(f"lifecycle.tiers[{index}].prefix", f"{prefix!r} appears twice; "
                              "allowed: one tier per prefix")
    lock_days = object_lock.days if object_lock.enabled else 1
    noncurrent = reader.days("noncurrentVersionDays", max(lock_days, 30))
    if noncurrent < lock_days:
        raise ConfigError(
            "lifecycle.noncurrentVersionDays",
            f"{noncurrent} is shorter than objectLock.days ({lock_days}); S3 cannot expire a "
            "locked version, allowed: >= objectLock.days",
        )
    return LifecycleSettings(
        tiers=tiers,
        noncurrent_version_days=noncurrent,
        abort_incomplete_upload_days=reader.days("abortIncompleteUploadDays", 7),
    )


def _tier(reader: ConfigReader) -> LifecycleTier:
    reader.reject_unknown(("prefix", "transitions", "expirationDays"))
    prefix = reader.string("prefix", required=True, allowed="a key prefix ending with '/'")
    if not prefix.endswith("/"):
        raise ConfigError(reader.key("prefix"), f"{prefix!r} must end with '/'; allowed: a key "
                          "prefix ending with '/'")
    if prefix.startswith(RESTIC_PREFIX):
        # Expiring restic's objects deletes packs that kept snapshots still use, and restic
        # cannot read from cold storage; `restic forget --prune` is its only retention.
        raise ConfigError(reader.key("prefix"), f"{prefix!r} is inside the restic repository "
                          f"({RESTIC_PREFIX}), which no lifecycle tier may expire or transition; "
                          f"allowed: a prefix outside {RESTIC_PREFIX}")
    transitions = []
    for item in reader.items("transitions"):
        item.reject_unknown(("days", "storageClass"))
        storage_class = item.choice("storageClass", TRANSITION_ORDER)
        days = item.days("days", required=True)
        if days < MINIMUM_TRANSITION_DAYS.get(storage_class, 0):
            raise ConfigError(
                item.key("days"),
                f"{days} is too early for {storage_class}; allowed: >= "
                f"{MINIMUM_TRANSITION_DAYS[storage_class]}",
            )
        if transitions:
            previous = transitions[-1]
            if days <= previous.days:
                raise ConfigError(item.key("days"), f"{days} must be later than the previous "
                                  f"transition ({previous.days} days); allowed: > "
                                  f"{previous.days}")
            if TRANSITION_ORDER.index(storage_class) <= TRANSITION_ORDER.index(
                previous.storage_class
            ):
                raise ConfigError(
                    item.key("storageClass"),
                    f"{storage_class} cannot follow {previous.storage_class}; allowed after it: "
                    + ", ".join(TRANSITION_ORDER[TRANSITION_ORDER.index(previous.storage_class)
                                                 + 1:]),
                )
        transitions.append(Transition(days=days, storage_class=storage_class))
    expiration = reader.days("expirationDays")
    if expiration is not None and transitions and expiration <= transitions[-1].days:
        raise ConfigError(
            reader.key("expirationDays"),
            f"{expiration} must be later than the last transition ({transitions[-1].days} "
            f"days); allowed: > {transitions[-1].days}",
        )
    if not transitions and expiration is None:
        raise ConfigError(reader.key("transitions"), "a tier needs transitions or "
                          "expirationDays; allowed: either or both")
    return LifecycleTier(prefix=prefix, transitions=tuple(transitions), expiration_days=expiration)


def _roles(reader: ConfigReader) -> RoleSettings:
    names = {"backup": "backup", "restore": "restore", "walArchiver": "wal_archiver",
             "replication": "replication"}
    reader.reject_unknown((*names, "breakGlassArn"))
    values = {attribute: reader.string(name, getattr(RoleSettings, attribute),
                                       pattern=_ROLE_NAME, allowed=_ROLE_NAME_ALLOWED)
              for name, attribute in names.items()}
    by_lower: dict[str, str] = {}
    for name, attribute in names.items():
        value = values[attribute]
        earlier = by_lower.get(value.lower())
        if earlier is not None:
            earlier_value = values[names[earlier]]
            relation = "is the same as" if value == earlier_value else "differs only in case from"
            raise ConfigError(reader.key(name), f"{value!r} {relation} roles.{earlier} "
                              f"({earlier_value!r}); IAM role names are unique regardless of "
                              "case; allowed: distinct names")
        by_lower[value.lower()] = name
    break_glass = reader.string(
        "breakGlassArn", pattern=_ROLE_ARN,
        allowed="an IAM role ARN (arn:aws:iam::<12 digits>:role/NAME)")
    return RoleSettings(**values, break_glass_arn=break_glass)


def _check_github_role_names(environment: str, roles: RoleSettings) -> None:
    """The GitHub roles are named after the environment (components.layout.github_role_name,
    whose characters `_ENVIRONMENT` already keeps to IAM's): the derived names must fit IAM's
    length and differ from the store's roles."""
    store = {getattr(roles, a).lower() for a in ("backup", "restore", "wal_archiver",
                                                 "replication")}
    longest = max(len(github_role_name("", p)) for p in GITHUB_ROLE_PURPOSES)
    for purpose in GITHUB_ROLE_PURPOSES:
        name = github_role_name(environment, purpose)
        if len(name) > MAX_ROLE_NAME:
            raise ConfigError("environment", f"{environment!r} makes the GitHub role name "
                              f"{name!r} ({len(name)} characters); allowed: an environment of "
                              f"at most {MAX_ROLE_NAME - longest} characters (IAM role names: "
                              f"at most {MAX_ROLE_NAME})")
        if name.lower() in store:
            raise ConfigError("environment", f"{environment!r} makes the GitHub role name "
                              f"{name!r}, which a roles.* name already takes; allowed: another "
                              "environment or other role names")


# OWNER/REPO, or the immutable form OWNER@ID/REPO@ID that repositories created from
# 15 July 2026 (and opted-in older ones) put into `sub` (aws-actions/configure-aws-credentials
# README, v6.2.3).
_GITHUB_REPOSITORY = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:@\d+)?/[A-Za-z0-9._-]{1,100}(?:@\d+)?$")
_OIDC_PROVIDER_ARN = re.compile(
    r"^arn:aws:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$")
_KMS_KEY_ARN = re.compile(r"^arn:aws:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")
_STATE_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _github(root: ConfigReader, stack: str) -> GitHubSettings | None:
    """Absent: no OIDC roles. Present: `repository` is required."""
    if root.data.get("github") is None:
        return None
    reader = root.child("github")
    reader.reject_unknown(("repository", "environment", "oidcProviderArn", "stateBucket",
                           "secretsKeyArn"))
    checks = {
        "repository": (_GITHUB_REPOSITORY, "OWNER/REPO (or OWNER@ID/REPO@ID)"),
        "environment": (re.compile(r"^[^\s:*?/\\]{1,255}$"),
                        "a GitHub environment name (no spaces, ':', '*', '?', '/', '\\')"),
        "oidcProviderArn": (_OIDC_PROVIDER_ARN, "arn:aws:iam::<12 digits>:oidc-provider/"
                            "token.actions.githubusercontent.com"),
        "stateBucket": (_STATE_BUCKET, "an S3 bucket name"),
        "secretsKeyArn": (_KMS_KEY_ARN, "a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)"),
    }
    defaults = {"repository": None, "environment": stack}
    values = {}
    for name, (pattern, allowed) in checks.items():
        value = reader.string(name, defaults.get(name), required=name == "repository")
        if value is not None and not pattern.fullmatch(value):
            raise ConfigError(reader.key(name), f"{value!r} is not allowed; allowed: {allowed}")
        values[name] = value
    return GitHubSettings(
        repository=values["repository"],
        environment=values["environment"],
        oidc_provider_arn=values["oidcProviderArn"],
        state_bucket=values["stateBucket"],
        secrets_key_arn=values["secretsKeyArn"],
    )


# What SNS accepts as the endpoint of each protocol (SNS API reference, Subscribe).
_ENDPOINTS: Final = {
    "email": (re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+"), "an email address"),
    "email-json": (re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+"), "an email address"),
    "https": (re.compile(r"https://\S+"), "an https:// URL"),
    "sqs": (re.compile(r"arn:aws:sqs:[a-z0-9-]+:\d{12}:\S+"), "an SQS queue ARN"),
    "lambda": (re.compile(r"arn:aws:lambda:[a-z0-9-]+:\d{12}:function:\S+"),
               "a Lambda function ARN"),
    "sms": (re.compile(r"\+\d{6,15}"), "a phone number in E.164 form (+4930...)"),
}


def _alerts(reader: ConfigReader) -> AlertSettings:
    reader.reject_unknown(("subscribers",))
    subscribers = []
    for item in reader.items("subscribers"):
        item.reject_unknown(("protocol", "endpoint"))
        protocol = item.choice("protocol", SUBSCRIPTION_PROTOCOLS)
        pattern, allowed = _ENDPOINTS[protocol]
        subscribers.append(Subscriber(protocol=protocol, endpoint=item.string(
            "endpoint", required=True, pattern=pattern, allowed=f"{allowed} ({protocol})")))
    return AlertSettings(subscribers=tuple(subscribers))


def _keep(reader: ConfigReader, object_lock: ObjectLockSettings) -> KeepSettings:
    reader.reject_unknown(("protection", "maxDays"))
    defaults = KeepSettings()
    max_days = reader.days("maxDays", defaults.max_days)
    lock_days = object_lock.days if object_lock.enabled else 0
    if not lock_days < max_days <= MAX_RETENTION_DAYS:
        raise ConfigError(
            reader.key("maxDays"),
            f"{max_days} is not allowed; allowed: more than objectLock.days ({lock_days}), so a "
            f"kept backup can outlive the lock window, and at most {MAX_RETENTION_DAYS} "
            "(S3's 100-year limit)",
        )
    return KeepSettings(protection=reader.choice("protection", KEEP_PROTECTIONS,
                                                 defaults.protection),
                        max_days=max_days)


def _waivers(root: ConfigReader) -> tuple[Waiver, ...]:
    waivers: list[Waiver] = []
    for item in root.items("waivers"):
        item.reject_unknown(("control", "reason"))
        waiver = Waiver(control=item.string("control", required=True, allowed="a control id"),
                        reason=item.string("reason", required=True,
                                           allowed="why the stack does not meet the control"))
        if any(w.control == waiver.control for w in waivers):
            raise ConfigError(item.key("control"), f"{waiver.control!r} is waived twice; "
                              "allowed: one waiver per control")
        waivers.append(waiver)
    return tuple(waivers)


def _postgres_tiers(lifecycle: LifecycleSettings, database: str) -> list[tuple[int, LifecycleTier]]:
    """Every lifecycle tier that covers objects under postgres/<database>/: S3 applies each
    rule whose prefix overlaps, and the earliest expiration or transition wins."""
    key = f"{POSTGRES_PREFIX}{database}/"
    return [(index, tier) for index, tier in enumerate(lifecycle.tiers)
            if key.startswith(tier.prefix) or tier.prefix.startswith(key)]


def _check_against_lifecycle(reader: ConfigReader, database: RuntimeDatabase,
                             lifecycle: LifecycleSettings) -> None:
    """wal-g retention: full-backup interval x retainFull must end before any lifecycle tier
    that covers postgres/<db>/ (every one of them, not the first) expires it; restore speed:
    nothing the newest base backup needs may turn GLACIER/DEEP_ARCHIVE before the next base
    backup supersedes it (hours to restore from there, RTO 30 minutes)."""
    interval = schedule.interval_days(database.schedule)
    window = interval * database.retain_full
    for index, tier in _postgres_tiers(lifecycle, database.name):
        tier_key = f"lifecycle.tiers[{index}]"
        if tier.expiration_days is not None and window >= tier.expiration_days:
            raise ConfigError(
                reader.key("retainFull"),
                f"wal-g keeps {database.retain_full} full backups taken every {interval} "
                f"day(s), a window of {window} days, but {tier_key}.expirationDays expires "
                f"{tier.prefix} after {tier.expiration_days} days: objects wal-g still needs "
                f"would expire; allowed: retainFull < "
                f"{math.ceil(tier.expiration_days / interval)}, or a later "
                f"{tier_key}.expirationDays",
            )
        cold = [t for t in tier.transitions if t.storage_class in COLD_STORAGE_CLASSES]
        if cold and cold[0].days <= interval:
            position = tier.transitions.index(cold[0])
            raise ConfigError(
                f"{tier_key}.transitions[{position}].days",
                f"{cold[0].days} moves {tier.prefix} to {cold[0].storage_class} before the "
                f"newest base backup of {database.name} is superseded (runtime schedule "
                f"{database.schedule!r} = every {interval} day(s)); restoring it would take "
                f"hours (RTO 30 minutes); allowed: > {interval} days, or a more frequent "
                f"{reader.key('schedule')}",
            )


def lifecycle_warnings(settings: StackSettings) -> list[str]:
    """Choices AWS accepts that cost money: objects leaving a class before its minimum duration."""
    warnings = []
    for index, tier in enumerate(settings.lifecycle.tiers):
        if not tier.transitions:
            continue
        ends = [t.days for t in tier.transitions[1:]] + [tier.expiration_days]
        for transition, leaves in zip(tier.transitions, ends, strict=True):
            minimum = MINIMUM_STORAGE_DAYS.get(transition.storage_class)
            if minimum is not None and leaves is not None and leaves - transition.days < minimum:
                warnings.append(
                    f"{PROJECT}:lifecycle.tiers[{index}] ({tier.prefix}): objects stay "
                    f"{leaves - transition.days} days in {transition.storage_class}, below its "
                    f"{minimum}-day minimum; each object is billed an early-deletion fee for "
                    f"{minimum - (leaves - transition.days)} more days"
                )
    return warnings


def protection_warnings(settings: StackSettings) -> list[str]:
    """Choices that weaken what survives a compromised account admin, said where they matter
    (protected, i.e. production, stacks)."""
    if not settings.protect:
        return []
    warnings = []
    if settings.keep.protection == "legal-hold":
        warnings.append(
            f"{PROJECT}:keep.protection: legal-hold: an account administrator who may "
            "s3:PutBucketPolicy can remove DenyLegalHoldRemoval, lift the hold of a kept "
            "backup, and lifecycle then expires its versions; compliance-retention cannot be "
            "shortened by anyone (docs/runtime.md, GDPR)")
    if settings.github is None and settings.roles.break_glass_arn is None:
        warnings.append(
            f"{PROJECT}: the organization guard exempts no principal (neither github nor "
            "roles.breakGlassArn is set): once the management account attaches it, changing a "
            "bucket policy, Object Lock, replication, lifecycle or a key policy needs the "
            "management account to detach it first (docs/compliance.md)")
    return warnings
