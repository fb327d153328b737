"""The backup runtime's stack config (`biometrics-backup:runtime`), validated against the store.

Parsed by `settings.parse_settings` (which imports this module when it runs, and calls
`parse_runtime` last, with the store's settings) so that every error is raised before any
resource is declared. Cross-checks:
- placement: backup jobs only on hosts with the backup role's instance profile; the drill and the
  exporter only on hosts with the read-only restore profile — instance-profile credentials reach
  every container on a host, so a drill on a backup host would run with write credentials;
- wal-g retention: full-backup interval x retainFull must end before postgres/ expires;
- restore speed: nothing the newest base backup needs may turn GLACIER/DEEP_ARCHIVE before the
  next base backup supersedes it (facts §3: hours to restore from there, RTO 30 minutes).
Secrets are not here: `pulumi config set --secret` keys (SECRET_CONFIG_KEYS) hold them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from croniter import croniter

from components.layout import POSTGRES_PREFIX
from components.settings import ConfigError, _Reader

if TYPE_CHECKING:
    from components.settings import StackSettings

HOST_PROFILES: Final = ("backup", "restore")
COLD_CLASSES: Final = ("GLACIER", "DEEP_ARCHIVE")
COMPRESSION_METHODS: Final = ("lz4", "zstd", "lzma", "brotli")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
_DOCKER_HOST = re.compile(r"^(ssh|tcp|unix)://\S+$")
_ADDRESS = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
# A fixed start makes the interval of a cron expression reproducible across previews.
_CRON_SAMPLE_START: Final = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_CRON_SAMPLE_RUNS: Final = 400


@dataclass(frozen=True)
class DockerHost:
    name: str
    docker_host: str
    profile: str
    metrics_address: str  # where Prometheus reaches the host's published metrics ports


@dataclass(frozen=True)
class RuntimeDatabase:
    name: str
    host: str
    address: str
    port: int
    user: str
    dbname: str
    tables: tuple[str, ...]
    schedule: str
    retain_full: int
    compression: str
    rpo_seconds: int


@dataclass(frozen=True)
class Keep:
    daily: int
    weekly: int
    monthly: int


@dataclass(frozen=True)
class RuntimeFileSet:
    name: str
    host: str
    paths: tuple[str, ...]
    hostname: str
    tags: tuple[str, ...]
    schedule: str
    keep: Keep
    check_subset: str
    rpo_seconds: int


@dataclass(frozen=True)
class RuntimeSettings:
    image: str
    hosts: tuple[DockerHost, ...]
    databases: tuple[RuntimeDatabase, ...]
    file_sets: tuple[RuntimeFileSet, ...]
    drill_host: str
    drill_schedule: str
    exporter_host: str
    metrics_port: int
    retry_attempts: int
    retry_delay_seconds: int
    webhook: bool
    scheduler_memory_mb: int
    drill_memory_mb: int
    exporter_memory_mb: int

    def host(self, name: str) -> DockerHost:
        return next(h for h in self.hosts if h.name == name)


def schedule_interval_days(expression: str) -> int:
    """The longest gap between two runs of a cron expression, in whole days (rounded up)."""
    runs = croniter(expression, _CRON_SAMPLE_START)
    previous = runs.get_next(dt.datetime)
    longest = dt.timedelta(0)
    for _ in range(_CRON_SAMPLE_RUNS):
        current = runs.get_next(dt.datetime)
        longest = max(longest, current - previous)
        previous = current
    return max(1, math.ceil(longest / dt.timedelta(days=1)))


def _cron(reader: _Reader, name: str) -> str:
    value = reader.string(name, required=True)
    if not croniter.is_valid(value):
        raise ConfigError(reader.key(name), f"{value!r} is not a cron expression "
                    "(minute hour day-of-month month day-of-week)")
    return value


def _positive(reader: _Reader, name: str, default: int | None) -> int:
    value = reader.data.get(name, default)
    if value is None:
        raise ConfigError(reader.key(name), "is required")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(reader.key(name), f"must be a whole number > 0, got {value!r}")
    return value


def _name(reader: _Reader) -> str:
    value = reader.string("name", required=True)
    if not _NAME.match(value):
        raise ConfigError(reader.key("name"), f"{value!r} is not allowed: 1-31 of a-z, 0-9, '-'")
    return value


def _host_ref(reader: _Reader, hosts: dict[str, DockerHost], profile: str, why: str,
              key: str = "host") -> str:
    name = reader.string(key, required=True)
    if name not in hosts:
        raise ConfigError(reader.key(key), f"{name!r} is not in runtime.hosts; allowed: "
                    + ", ".join(hosts))
    if hosts[name].profile != profile:
        raise ConfigError(reader.key(key), f"{name!r} has instance profile "
                    f"{hosts[name].profile!r}; {why} needs a host with profile {profile!r}")
    return name


def _metrics_address(reader: _Reader, docker_host: str) -> str:
    """`metricsAddress`, by default the host name of an ssh:// or tcp:// Docker host; a unix://
    engine has no name the Prometheus server could reach, so it must be given."""
    address = reader.string("metricsAddress") or urlsplit(docker_host).hostname
    if not address:
        raise ConfigError(reader.key("metricsAddress"), f"is required for dockerHost "
                          f"{docker_host!r}: the host name or IP address Prometheus scrapes")
    if not _ADDRESS.match(address):
        raise ConfigError(reader.key("metricsAddress"), f"{address!r} is not allowed; allowed: "
                          "a host name or IPv4 address, without scheme or port")
    return address


def parse_runtime(reader: _Reader, settings: StackSettings) -> RuntimeSettings:
    reader.reject_unknown(("image", "hosts", "databases", "fileSets", "drill", "exporter",
                           "retry", "webhook", "memoryMb"))
    hosts: dict[str, DockerHost] = {}
    for item in reader.items("hosts"):
        item.reject_unknown(("name", "dockerHost", "instanceProfile", "metricsAddress"))
        name = _name(item)
        if name in hosts:
            raise ConfigError(item.key("name"), f"{name!r} appears twice")
        docker_host = item.string("dockerHost", required=True)
        if not _DOCKER_HOST.match(docker_host):
            raise ConfigError(item.key("dockerHost"), f"{docker_host!r} is not allowed; allowed: "
                        "ssh://USER@HOST, tcp://HOST:PORT (TLS), unix:///PATH")
        hosts[name] = DockerHost(name, docker_host,
                                 item.choice("instanceProfile", HOST_PROFILES),
                                 _metrics_address(item, docker_host))
    if not hosts:
        raise ConfigError(reader.key("hosts"), "needs at least one host")
    databases = tuple(_database(item, hosts, settings) for item in reader.items("databases"))
    file_sets = tuple(_file_set(item, hosts) for item in reader.items("fileSets"))
    for kind, items in (("databases", databases), ("fileSets", file_sets)):
        names = [i.name for i in items]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ConfigError(f"runtime.{kind}[{index}].name", f"{name!r} appears twice")
    drill = reader.child("drill")
    drill.reject_unknown(("host", "schedule"))
    exporter = reader.child("exporter")
    exporter.reject_unknown(("host", "port"))
    retry = reader.child("retry")
    retry.reject_unknown(("attempts", "delaySeconds"))
    memory = reader.child("memoryMb")
    memory.reject_unknown(("scheduler", "drill", "exporter"))
    return RuntimeSettings(
        image=reader.string("image", "biometrics-backup-agent:0.1.0"),
        hosts=tuple(hosts.values()),
        databases=databases,
        file_sets=file_sets,
        drill_host=_host_ref(drill, hosts, "restore", "the restore drill (read-only)"),
        drill_schedule=_cron(drill, "schedule"),
        exporter_host=_host_ref(exporter, hosts, "restore", "the exporter (read-only)"),
        metrics_port=_positive(exporter, "port", 8080),
        retry_attempts=_positive(retry, "attempts", 3),
        retry_delay_seconds=_positive(retry, "delaySeconds", 300),
        webhook=reader.boolean("webhook", False),
        scheduler_memory_mb=_positive(memory, "scheduler", 512),
        drill_memory_mb=_positive(memory, "drill", 4096),
        exporter_memory_mb=_positive(memory, "exporter", 256),
    )


def _postgres_tier(settings: StackSettings, database: str) -> tuple[int, Any] | None:
    """The lifecycle tier whose prefix covers postgres/<database>/, with its index."""
    key = f"{POSTGRES_PREFIX}{database}/"
    for index, tier in enumerate(settings.lifecycle.tiers):
        if key.startswith(tier.prefix):
            return index, tier
    return None


def _database(reader: _Reader, hosts: dict[str, DockerHost],
              settings: StackSettings) -> RuntimeDatabase:
    reader.reject_unknown(("name", "host", "address", "port", "user", "dbname", "tables",
                           "schedule", "retainFull", "compression", "rpoMinutes"))
    tables = tuple(reader.data.get("tables") or ())
    for index, table in enumerate(tables):
        if not isinstance(table, str) or not _TABLE.match(table):
            raise ConfigError(f"{reader.key('tables')}[{index}]",
                        f"{table!r} is not a table name (name or schema.name)")
    if not tables:
        raise ConfigError(reader.key("tables"),
                          "the drill compares row counts: name at least one table")
    database = RuntimeDatabase(
        name=_name(reader),
        host=_host_ref(reader, hosts, "backup", "a base backup job (writes to S3)"),
        address=reader.string("address", required=True),
        port=_positive(reader, "port", 5432),
        user=reader.string("user", "backup"),
        dbname=reader.string("dbname", required=True),
        tables=tables,
        schedule=_cron(reader, "schedule"),
        retain_full=_positive(reader, "retainFull", 7),
        compression=reader.choice("compression", COMPRESSION_METHODS, "lz4"),
        rpo_seconds=60 * _positive(reader, "rpoMinutes", 1440),
    )
    _check_against_lifecycle(reader, database, settings)
    return database


def _check_against_lifecycle(reader: _Reader, database: RuntimeDatabase,
                             settings: StackSettings) -> None:
    found = _postgres_tier(settings, database.name)
    if found is None:
        return
    index, tier = found
    interval = schedule_interval_days(database.schedule)
    window = interval * database.retain_full
    tier_key = f"lifecycle.tiers[{index}]"
    if tier.expiration_days is not None and window >= tier.expiration_days:
        raise ConfigError(
            reader.key("retainFull"),
            f"wal-g keeps {database.retain_full} full backups taken every {interval} day(s), "
            f"a window of {window} days, but {tier_key}.expirationDays expires "
            f"{tier.prefix} after {tier.expiration_days} days: objects wal-g still needs would "
            f"expire; allowed: retainFull < {math.ceil(tier.expiration_days / interval)}, or a "
            f"later {tier_key}.expirationDays",
        )
    cold = [t for t in tier.transitions if t.storage_class in COLD_CLASSES]
    if cold and cold[0].days <= interval:
        position = tier.transitions.index(cold[0])
        raise ConfigError(
            f"{tier_key}.transitions[{position}].days",
            f"{cold[0].days} moves {tier.prefix} to {cold[0].storage_class} before the newest "
            f"base backup of {database.name} is superseded (runtime schedule "
            f"{database.schedule!r} = every {interval} day(s)); restoring it would take hours "
            f"(RTO 30 minutes); allowed: > {interval} days, or a more frequent "
            f"{reader.key('schedule')}",
        )


def _file_set(reader: _Reader, hosts: dict[str, DockerHost]) -> RuntimeFileSet:
    reader.reject_unknown(("name", "host", "paths", "hostname", "tags", "schedule", "keep",
                           "checkSubset", "rpoMinutes"))
    paths = tuple(reader.data.get("paths") or ())
    if not paths or not all(isinstance(p, str) and p.startswith("/") for p in paths):
        raise ConfigError(reader.key("paths"), "must be a non-empty list of absolute paths")
    keep = reader.child("keep")
    keep.reject_unknown(("daily", "weekly", "monthly"))
    subset = reader.string("checkSubset", "5%")
    if not re.match(r"^(\d{1,3}(\.\d+)?%|\d+/\d+)$", subset):
        raise ConfigError(reader.key("checkSubset"),
                    f"{subset!r} is not allowed; allowed: a percentage (5%) or n/t (1/7)")
    tags = tuple(reader.data.get("tags") or ())
    return RuntimeFileSet(
        name=_name(reader),
        host=_host_ref(reader, hosts, "backup", "a file backup job (writes to S3)"),
        paths=paths,
        hostname=reader.string("hostname", required=True),
        tags=tags,
        schedule=_cron(reader, "schedule"),
        keep=Keep(daily=_positive(keep, "daily", 7),
                  weekly=_positive(keep, "weekly", 4),
                  monthly=_positive(keep, "monthly", 6)),
        check_subset=subset,
        rpo_seconds=60 * _positive(reader, "rpoMinutes", 1440),
    )
