"""Stack configuration parsed once into typed, validated settings.

`parse_settings` takes the project's config namespace as plain data (what `pulumi.Config` or a
Pulumi.<stack>.yaml holds) and either returns `StackSettings` or raises one `ConfigError` naming
the offending key and what is allowed. It runs before any resource is declared.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Literal

from components.layout import PROJECT, RESTIC_PREFIX, STACK_TAG_KEY

if TYPE_CHECKING:
    from components.runtime_settings import RuntimeSettings

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
# Minimum storage duration in days (early-deletion fee below it), facts §3.
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
# How `backup-agent keep` protects a backup kept past the lock window (docs/runtime.md, GDPR).
KEEP_PROTECTIONS: Final = ("compliance-retention", "legal-hold")
# S3 Object Lock accepts retention periods of at most 100 years.
MAX_RETENTION_DAYS: Final = 36500
DATA_RESIDENCIES: Final = ("eu", "any")

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,49}[a-z0-9]$")
_ROLE_NAME = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,64}$")
_ROLE_ARN = re.compile(r"^arn:aws:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,64}$")
ACCESS_LOG_SUFFIX: Final = "-access-logs"


class ConfigError(ValueError):
    """Invalid stack configuration; `key` is the full config key (`project:path`)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = f"{PROJECT}:{key}"
        super().__init__(f"{self.key}: {message}")


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

    protection: str = "compliance-retention"
    max_days: int = 365


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


class _Reader:
    """Typed access to one config object; every error names the full key path."""

    def __init__(self, path: str, data: Any) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(path, f"must be an object, got {type(data).__name__}")
        self.path = path
        self.data = data

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def reject_unknown(self, allowed: Sequence[str]) -> None:
        for name in self.data:
            if name not in allowed:
                raise ConfigError(
                    self.key(str(name)), f"unknown key; allowed: {', '.join(allowed)}"
                )

    def child(self, name: str) -> _Reader:
        return _Reader(self.key(name), self.data.get(name))

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> Any:
        value = self.data.get(name, default)
        if value is None:
            if required:
                raise ConfigError(self.key(name), "is required")
            return None
        if not isinstance(value, str) or not value:
            raise ConfigError(self.key(name), "must be a non-empty string")
        return value

    def choice(self, name: str, allowed: Sequence[str], default: str | None = None) -> Any:
        value = self.string(name, default, required=default is None)
        if value not in allowed:
            raise ConfigError(self.key(name), f"{value!r} is not allowed; allowed: "
                              + ", ".join(allowed))
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(self.key(name), "must be true or false")
        return value

    def days(self, name: str, default: int | None = None, *, required: bool = False) -> Any:
        value = self.data.get(name, default)
        if value is None:
            if required:
                raise ConfigError(self.key(name), "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(self.key(name), f"must be a whole number of days > 0, got {value!r}")
        return value

    def items(self, name: str) -> list[_Reader]:
        value = self.data.get(name, [])
        if not isinstance(value, list):
            raise ConfigError(self.key(name), "must be a list")
        return [_Reader(f"{self.key(name)}[{i}]", item) for i, item in enumerate(value)]


def _decode(key: str, value: Any, structured: bool) -> Any:
    """Pulumi hands structured config to programs as JSON text; YAML files hold it parsed."""
    if structured and isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(
                key, f"must be an object (structured config), got text {value!r}") from None
    return value


def check_known_keys(names: Iterable[str]) -> None:
    for name in names:
        if name not in CONFIG_KEYS and name not in SECRET_CONFIG_KEYS:
            raise ConfigError(name, "unknown key; allowed: "
                              + ", ".join([*CONFIG_KEYS, *SECRET_CONFIG_KEYS]))


def parse_settings(raw: Mapping[str, Any], *, stack: str) -> StackSettings:
    """Validate the project's config namespace (keys without the `project:` prefix)."""
    check_known_keys(raw)
    root = _Reader("", {k: _decode(k, v, CONFIG_KEYS[k]) for k, v in raw.items()})
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
                "needs a second region",
            )
        if replica.bucket_name == primary.bucket_name:
            raise ConfigError("replica.bucketName", "must differ from primary.bucketName")
    object_lock = _object_lock(root.child("objectLock"))
    lifecycle = _lifecycle(root.child("lifecycle"), object_lock)
    access_logs = root.child("accessLogs")
    access_logs.reject_unknown(("retentionDays",))
    settings = StackSettings(
        environment=root.string("environment", stack),
        primary=primary,
        replica=replica,
        object_lock=object_lock,
        lifecycle=lifecycle,
        roles=_roles(root.child("roles")),
        alerts=_alerts(root.child("alerts")),
        keep=_keep(root.child("keep"), object_lock),
        access_log_days=access_logs.days("retentionDays", 365),
        protect=root.boolean("protect", False),
        data_residency=residency,
        github=_github(root, stack),
        waivers=_waivers(root),
    )
    settings = replace(settings, warnings=(*lifecycle_warnings(settings),
                                           *protection_warnings(settings)))
    if root.data.get("runtime") is None:
        return settings
    # Imported here: the runtime's checks build on this module's settings (lifecycle, roles).
    from components.runtime_settings import parse_runtime

    return replace(settings, runtime=parse_runtime(root.child("runtime"), settings))


def _bucket(reader: _Reader, residency: str) -> BucketSettings:
    name = reader.string("bucketName", required=True)
    if not _BUCKET_NAME.match(name):
        raise ConfigError(
            reader.key("bucketName"),
            f"{name!r} is not allowed: 3-{51} characters of a-z, 0-9 and '-' (no dots: they break "
            f"TLS for virtual-hosted requests; {len(ACCESS_LOG_SUFFIX)} characters are kept for "
            f"the '{ACCESS_LOG_SUFFIX}' log bucket)",
        )
    region = reader.string("region", required=True)
    if region not in AWS_REGIONS:
        raise ConfigError(reader.key("region"), f"{region!r} is not an AWS region; allowed: "
                          + ", ".join(sorted(AWS_REGIONS)))
    if residency == "eu" and not region.startswith("eu-"):
        raise ConfigError(
            reader.key("region"),
            f"{region!r} is outside the EU; dataResidency 'eu' allows only eu-* regions "
            "(set dataResidency: any to lift this)",
        )
    return BucketSettings(bucket_name=name, region=region)


def _object_lock(reader: _Reader) -> ObjectLockSettings:
    reader.reject_unknown(("enabled", "mode", "days"))
    return ObjectLockSettings(
        enabled=reader.boolean("enabled", True),
        mode=reader.choice("mode", OBJECT_LOCK_MODES, "COMPLIANCE"),
        days=reader.days("days", 30),
    )


def _lifecycle(reader: _Reader, object_lock: ObjectLockSettings) -> LifecycleSettings:
    reader.reject_unknown(("tiers", "noncurrentVersionDays", "abortIncompleteUploadDays"))
    tiers = tuple(_tier(item) for item in reader.items("tiers"))
    prefixes = [t.prefix for t in tiers]
    for index, prefix in enumerate(prefixes):
        if prefix in prefixes[:index]:
            raise ConfigError(f"lifecycle.tiers[{index}].prefix", f"{prefix!r} appears twice")
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


def _tier(reader: _Reader) -> LifecycleTier:
    reader.reject_unknown(("prefix", "transitions", "expirationDays"))
    prefix = reader.string("prefix", required=True)
    if not prefix.endswith("/"):
        raise ConfigError(reader.key("prefix"), f"{prefix!r} must end with '/'")
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
                                  f"transition ({previous.days} days)")
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
    if transitions and prefix.startswith(RESTIC_PREFIX):
        raise ConfigError(
            reader.key("transitions"),
            f"{prefix!r} holds the restic repository, which cannot read from cold storage; "
            "allowed: no transitions (expiration only)",
        )
    expiration = reader.days("expirationDays")
    if expiration is not None and transitions and expiration <= transitions[-1].days:
        raise ConfigError(
            reader.key("expirationDays"),
            f"{expiration} must be later than the last transition ({transitions[-1].days} days)",
        )
    if not transitions and expiration is None:
        raise ConfigError(reader.key("transitions"), "a tier needs transitions or expirationDays")
    return LifecycleTier(prefix=prefix, transitions=tuple(transitions), expiration_days=expiration)


def _roles(reader: _Reader) -> RoleSettings:
    names = ("backup", "restore", "walArchiver", "replication")
    reader.reject_unknown((*names, "breakGlassArn"))
    defaults = RoleSettings()
    values = {}
    for name, attribute in zip(names, ("backup", "restore", "wal_archiver", "replication"),
                               strict=True):
        value = reader.string(name, getattr(defaults, attribute))
        if not _ROLE_NAME.match(value):
            raise ConfigError(reader.key(name), f"{value!r} is not an IAM role name "
                              "(1-64 of A-Z a-z 0-9 +=,.@_-)")
        values[attribute] = value
    if len(set(values.values())) != len(values):
        raise ConfigError(reader.path, "role names must be distinct")
    break_glass = reader.string("breakGlassArn")
    if break_glass is not None and not _ROLE_ARN.match(break_glass):
        raise ConfigError(
            reader.key("breakGlassArn"),
            f"{break_glass!r} is not an IAM role ARN (arn:aws:iam::<12 digits>:role/NAME)")
    return RoleSettings(**values, break_glass_arn=break_glass)


# OWNER/REPO, or the immutable form OWNER@ID/REPO@ID that repositories created from
# 15 July 2026 (and opted-in older ones) put into `sub` (aws-actions/configure-aws-credentials
# README, v6.2.3).
_GITHUB_REPOSITORY = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:@\d+)?/[A-Za-z0-9._-]{1,100}(?:@\d+)?$")
_OIDC_PROVIDER_ARN = re.compile(
    r"^arn:aws:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$")
_KMS_KEY_ARN = re.compile(r"^arn:aws:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}$")
_STATE_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _github(root: _Reader, stack: str) -> GitHubSettings | None:
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
        if value is not None and not pattern.match(value):
            raise ConfigError(reader.key(name), f"{value!r} is not allowed; allowed: {allowed}")
        values[name] = value
    return GitHubSettings(
        repository=values["repository"],
        environment=values["environment"],
        oidc_provider_arn=values["oidcProviderArn"],
        state_bucket=values["stateBucket"],
        secrets_key_arn=values["secretsKeyArn"],
    )


def _alerts(reader: _Reader) -> AlertSettings:
    reader.reject_unknown(("subscribers",))
    subscribers = []
    for item in reader.items("subscribers"):
        item.reject_unknown(("protocol", "endpoint"))
        subscribers.append(
            Subscriber(protocol=item.choice("protocol", SUBSCRIPTION_PROTOCOLS),
                       endpoint=item.string("endpoint", required=True))
        )
    return AlertSettings(subscribers=tuple(subscribers))


def _keep(reader: _Reader, object_lock: ObjectLockSettings) -> KeepSettings:
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


def _waivers(root: _Reader) -> tuple[Waiver, ...]:
    waivers: list[Waiver] = []
    for item in root.items("waivers"):
        item.reject_unknown(("control", "reason"))
        waiver = Waiver(control=item.string("control", required=True),
                        reason=item.string("reason", required=True))
        if any(w.control == waiver.control for w in waivers):
            raise ConfigError(item.key("control"), f"{waiver.control!r} is waived twice")
        waivers.append(waiver)
    return tuple(waivers)


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
