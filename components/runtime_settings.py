"""The backup runtime's stack config (`biometrics-backup:runtime`), validated against the store.

Parsed by `settings.parse_settings` (which calls `parse_runtime` last and then checks the
runtime against the store's lifecycle) so that every error is raised before any resource is
declared. Cross-checks:
- placement: each database, file set, the drill and the exporter is on a Docker host
  (`host: NAME`) or on ECS (`placement: ecs`, read with `components.ecs_config`); backup jobs
  only on hosts with the backup role's instance profile; the drill and the exporter only on
  hosts with the read-only restore profile — instance-profile credentials reach every container
  on a host, so a drill on a backup host would run with write credentials;
- schedules: every job's cron expression (databases, file sets, the drill alike) must fire, at
  most `MAX_SCHEDULE_GAP` apart and at least `MIN_SCHEDULE_GAP` apart;
- against the store (in `settings`): wal-g's full-backup interval x retainFull must end
  before any lifecycle tier that covers postgres/<db>/ expires it, and nothing the newest base
  backup needs may turn GLACIER/DEEP_ARCHIVE before the next one supersedes it (RTO 30 min).
Secrets are not here: `pulumi config set --secret` keys (SECRET_CONFIG_KEYS) hold them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from components import ecs_config
from components.config_reader import ConfigError, ConfigReader
from components.ecs_settings import EcsSettings, EfsVolume
from contract import agent_settings, schedule
from contract.agent_settings import MAX_PORT, NAME, NAME_ALLOWED, TABLE, TABLE_ALLOWED
from contract.jobs import DRILL, Job, database_job, files_job
from contract.reader import describe

HOST_PROFILES: Final = ("backup", "restore")
_DOCKER_HOST = re.compile(r"(ssh|tcp|unix)://\S+")
_DOCKER_HOST_ALLOWED: Final = ("ssh://USER@HOST, tcp://HOST:PORT (with certPath: TLS), "
                               "unix:///PATH")
_ABSOLUTE_PATH = re.compile(r"/\S*")
_ADDRESS = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?")
# Each job must finish before its next run (a late run is skipped, not queued), and a job that
# runs less than monthly leaves its backups or its proof a month old.
MIN_SCHEDULE_GAP: Final = dt.timedelta(hours=1)
MAX_SCHEDULE_GAP: Final = dt.timedelta(days=31)
# Docker refuses a memory limit below 6 MB (the daemon: "Minimum memory limit allowed is 6MB";
# Amazon ECS ContainerDefinition reference: Docker 20.10+ reserves 6 MiB per container);
# pulumi-docker's `memory` is in MB.
DOCKER_MIN_MEMORY_MB: Final = 6


@dataclass(frozen=True)
class DockerHost:
    name: str
    docker_host: str
    profile: str
    metrics_address: str  # where Prometheus reaches the host's published metrics ports
    cert_path: str | None = None  # directory with ca.pem, cert.pem, key.pem for tcp://


@dataclass(frozen=True)
class RuntimeDatabase:
    name: str
    host: str | None  # None: placed on ECS (`placement: ecs`)
    address: str
    port: int
    user: str
    dbname: str
    tables: tuple[str, ...]
    schedule: str
    retain_full: int
    compression: str
    rpo_seconds: int
    size_gib: int | None = None  # `sizeGiB`: what a restore needs on disk (ECS drill sizing)


@dataclass(frozen=True)
class Keep:
    daily: int
    weekly: int
    monthly: int


@dataclass(frozen=True)
class RuntimeFileSet:
    name: str
    host: str | None  # None: placed on ECS (`placement: ecs`, with `efs`)
    paths: tuple[str, ...]
    hostname: str
    tags: tuple[str, ...]
    schedule: str
    keep: Keep
    check_subset: str
    rpo_seconds: int
    drill_pick: str = agent_settings.FileSet.drill_pick
    drill_window_days: int | None = None
    efs: EfsVolume | None = None  # where the paths live when placed on ECS
    size_gib: int | None = None  # `sizeGiB`: what a restore needs on disk (ECS drill sizing)


@dataclass(frozen=True)
class RuntimeSettings:
    image: str
    hosts: tuple[DockerHost, ...]
    databases: tuple[RuntimeDatabase, ...]
    file_sets: tuple[RuntimeFileSet, ...]
    drill_host: str | None  # None: the drill is placed on ECS
    drill_schedule: str
    exporter_host: str | None  # None: the exporter is placed on ECS
    exporter_address: str
    metrics_port: int
    retry_attempts: int
    retry_delay_seconds: int
    webhook: bool
    scheduler_memory_mb: int
    drill_memory_mb: int
    exporter_memory_mb: int
    ecs: EcsSettings | None = None  # `runtime.ecs`: set when anything is placed on ECS

    def host(self, name: str) -> DockerHost:
        return next(h for h in self.hosts if h.name == name)


def _cron(reader: ConfigReader, name: str, *, on_ecs: bool) -> str:
    """Databases, file sets and the drill: one rule for every job's schedule (on ECS, also
    one EventBridge Scheduler can express)."""
    fields = ("minute hour day-of-month month day-of-week; UTC on a host, runtime.ecs.timezone "
              "on ECS")
    value = reader.string(name, required=True, allowed=f"a cron expression ({fields})")
    if len(value.split()) != 5:
        reader.fail(name, f"{describe(value)} has {len(value.split())} fields; allowed: five "
                          f"({fields})")
    try:
        gaps = schedule.gaps(value)
    except schedule.NotASchedule as problem:
        reader.fail(name, f"{describe(value)} {problem}; allowed: a cron expression that fires "
                          f"every {_span(MIN_SCHEDULE_GAP)} to {_span(MAX_SCHEDULE_GAP)}")
    if gaps.longest > MAX_SCHEDULE_GAP or gaps.shortest < MIN_SCHEDULE_GAP:
        found = (f"leaves {_span(gaps.longest)} between two runs" if gaps.longest >
                 MAX_SCHEDULE_GAP else f"runs again after {_span(gaps.shortest)}")
        reader.fail(name, f"{describe(value)} {found}; allowed: runs at least "
                          f"{_span(MIN_SCHEDULE_GAP)} and at most {_span(MAX_SCHEDULE_GAP)} "
                          "apart")
    if on_ecs:
        ecs_config.check_cron_on_ecs(reader, name, value)
    return value


def _span(delta: dt.timedelta) -> str:
    if delta >= dt.timedelta(days=1):
        return f"{delta.days} day(s)" + (f" {delta.seconds // 3600} h" if delta.seconds else "")
    if delta >= dt.timedelta(hours=1):
        return f"{delta.seconds // 3600} h" + (f" {delta.seconds % 3600 // 60} min"
                                               if delta.seconds % 3600 else "")
    return f"{delta.seconds // 60} min" if delta.seconds >= 60 else f"{delta.seconds} s"


def _positive(reader: ConfigReader, name: str, default: int | None, *,
              maximum: int | None = None, minimum: int = 1, unit: str = "") -> int:
    return reader.integer(name, default, required=default is None, minimum=minimum,
                          maximum=maximum, unit=unit)


def _name(reader: ConfigReader) -> str:
    return reader.string("name", required=True, pattern=NAME, allowed=NAME_ALLOWED)


def _host_ref(reader: ConfigReader, hosts: dict[str, DockerHost], profile: str, why: str,
              key: str = "host") -> str:
    name = reader.string(key, required=True, allowed="a name in runtime.hosts")
    if name not in hosts:
        raise ConfigError(reader.key(key), f"{name!r} is not in runtime.hosts; allowed: "
                          + ", ".join(hosts))
    if hosts[name].profile != profile:
        raise ConfigError(reader.key(key), f"{name!r} has instance profile "
                          f"{hosts[name].profile!r}; {why} needs a host with profile "
                          f"{profile!r}; allowed: "
                          + (", ".join(h for h in hosts if hosts[h].profile == profile)
                             or f"no host here has profile {profile!r}"))
    return name


def _metrics_address(reader: ConfigReader, docker_host: str) -> str:
    """`metricsAddress`, by default the host name of an ssh:// or tcp:// Docker host; a unix://
    engine has no name the Prometheus server could reach, so it must be given."""
    allowed = "a host name or IPv4 address, without scheme or port"
    address = reader.string("metricsAddress", pattern=_ADDRESS, allowed=allowed) \
        or urlsplit(docker_host).hostname
    if not address:
        reader.fail("metricsAddress", f"is required for dockerHost {docker_host!r}: the host "
                                      f"name or IP address Prometheus scrapes; allowed: {allowed}")
    return address


def _docker_host(item: ConfigReader) -> DockerHost:
    item.reject_unknown(("name", "dockerHost", "instanceProfile", "metricsAddress", "certPath"))
    name = _name(item)
    docker_host = item.string("dockerHost", required=True, pattern=_DOCKER_HOST,
                              allowed=_DOCKER_HOST_ALLOWED)
    url = urlsplit(docker_host)
    cert_path = item.string("certPath", pattern=_ABSOLUTE_PATH,
                            allowed="the absolute path of a directory with ca.pem, cert.pem and "
                                    "key.pem (Docker's TLS files)")
    if url.scheme == "tcp":
        try:
            port = url.port
        except ValueError:
            port = 0
        if not url.hostname or port is None or not 1 <= port <= MAX_PORT:
            item.fail("dockerHost", f"{docker_host!r} has no host and port 1-{MAX_PORT}; "
                                    "allowed: tcp://HOST:PORT")
        if cert_path is None:
            # An unencrypted Docker API is root on the host for anyone who reaches the port.
            item.fail("certPath", f"is required for {docker_host!r}: the Docker API over tcp:// "
                                  "without TLS gives anyone on the network root on the host; "
                                  "allowed: the directory with ca.pem, cert.pem and key.pem")
    elif cert_path is not None:
        item.fail("certPath", f"applies only to tcp:// hosts, not {docker_host!r}; allowed: "
                              "no certPath")
    return DockerHost(name, docker_host, item.choice("instanceProfile", HOST_PROFILES),
                      _metrics_address(item, docker_host), cert_path)


def parse_runtime(reader: ConfigReader) -> RuntimeSettings:
    reader.reject_unknown(("image", "hosts", "databases", "fileSets", "drill", "exporter",
                           "retry", "webhook", "memoryMb", "ecs"))
    listed = [_docker_host(item) for item in reader.items("hosts")]
    reader.unique_names("hosts", [host.name for host in listed])
    hosts = {host.name: host for host in listed}
    database_readers, file_set_readers = reader.items("databases"), reader.items("fileSets")
    drill, exporter = reader.child("drill"), reader.child("exporter")
    drill.reject_unknown(("host", "placement", "schedule"))
    exporter.reject_unknown(("host", "placement", "port", "listenAddress"))
    on_ecs = {item.path: ecs_config.placed_on_ecs(item)
              for item in (*database_readers, *file_set_readers, drill, exporter)}
    on_host = [path for path, ecs in on_ecs.items() if not ecs]
    if on_host and not hosts:
        raise ConfigError(reader.key("hosts"), f"needs at least one host: {on_host[0]} is placed "
                          "on a host; allowed: a list of {name, dockerHost, instanceProfile}, or "
                          "placement: ecs for every database, file set, the drill and the "
                          "exporter")
    databases = tuple(_database(item, hosts, on_ecs=on_ecs[item.path])
                      for item in database_readers)
    file_sets = tuple(_file_set(item, hosts, on_ecs=on_ecs[item.path])
                      for item in file_set_readers)
    reader.unique_names("databases", [d.name for d in databases])
    reader.unique_names("fileSets", [f.name for f in file_sets])
    ecs_config.check_mount_paths(file_set_readers, [f.efs for f in file_sets])
    drill_on_ecs, exporter_on_ecs = on_ecs[drill.path], on_ecs[exporter.path]
    retry = reader.child("retry")
    retry.reject_unknown(("attempts", "delaySeconds"))
    memory = reader.child("memoryMb")
    memory.reject_unknown(("scheduler", "drill", "exporter"))
    _check_docker_only(memory, "drill", on_ecs=drill_on_ecs, why="the drill task's size is "
                       "runtime.ecs.tasks.drill")
    _check_docker_only(memory, "exporter", on_ecs=exporter_on_ecs, why="the exporter task's "
                       "size is runtime.ecs.tasks.exporter")
    _check_docker_only(exporter, "listenAddress", on_ecs=exporter_on_ecs, why="the task listens "
                       "on its own network interface")
    ecs = ecs_config.parse_ecs(reader, [path for path, ecs in on_ecs.items() if ecs],
                               exporter_on_ecs=exporter_on_ecs)
    if ecs is not None:
        _check_ecs_jobs(reader, ecs, databases, file_sets, drill_on_ecs=drill_on_ecs)
    defaults = agent_settings.AgentSettings
    return RuntimeSettings(
        image=reader.string("image", "biometrics-backup-agent:0.1.0", pattern=_IMAGE,
                            allowed="a Docker image name (NAME[:TAG])"),
        hosts=tuple(hosts.values()),
        databases=databases,
        file_sets=file_sets,
        drill_host=None if drill_on_ecs else _host_ref(drill, hosts, "restore",
                                                       "the restore drill (read-only)"),
        drill_schedule=_cron(drill, "schedule", on_ecs=drill_on_ecs),
        exporter_host=None if exporter_on_ecs else _host_ref(exporter, hosts, "restore",
                                                             "the exporter (read-only)"),
        exporter_address=exporter.ip_address("listenAddress", "0.0.0.0",
                                             allowed="an IP address of the host (0.0.0.0: "
                                                     "every interface)"),
        metrics_port=_positive(exporter, "port", defaults.metrics_port, maximum=MAX_PORT),
        retry_attempts=_positive(retry, "attempts", agent_settings.Retry.attempts, maximum=100),
        retry_delay_seconds=_positive(retry, "delaySeconds",
                                      int(agent_settings.Retry.delay_seconds), minimum=0,
                                      maximum=24 * 3600, unit="seconds"),
        webhook=reader.boolean("webhook", False),
        scheduler_memory_mb=_memory(memory, "scheduler", 512),
        drill_memory_mb=_memory(memory, "drill", 4096),
        exporter_memory_mb=_memory(memory, "exporter", 256),
        ecs=ecs,
    )


def _check_ecs_jobs(reader: ConfigReader, ecs: EcsSettings, databases: tuple[RuntimeDatabase, ...],
                    file_sets: tuple[RuntimeFileSet, ...], *, drill_on_ecs: bool) -> None:
    """What needs both the jobs and runtime.ecs: the schedules' names, and the drill's restores
    of every database and file set (whatever their placement) against its task storage."""
    jobs: list[Job] = [database_job(d.name) for d in databases if d.host is None]
    jobs += [files_job(f.name) for f in file_sets if f.host is None]
    jobs += [DRILL] if drill_on_ecs else []
    ecs_config.check_schedule_names(ecs, jobs, reader.child("ecs").key("clusterName"))
    if drill_on_ecs:
        restores = [(item, d.name, d.size_gib)
                    for item, d in zip(reader.items("databases"), databases, strict=True)]
        restores += [(item, f.name, f.size_gib)
                     for item, f in zip(reader.items("fileSets"), file_sets, strict=True)]
        ecs_config.check_drill_fits(ecs, restores, reader.child("drill").key("placement"))


def _check_docker_only(reader: ConfigReader, name: str, *, on_ecs: bool, why: str) -> None:
    """A setting of the Docker placement, refused where it would change nothing."""
    if on_ecs and reader.has(name):
        reader.fail(name, f"applies only to a Docker host, and this is placed on ECS ({why}); "
                          f"allowed: no {name} with placement: ecs")


def _memory(reader: ConfigReader, name: str, default: int) -> int:
    return reader.integer(name, default, minimum=DOCKER_MIN_MEMORY_MB, unit="MB")


def _database(reader: ConfigReader, hosts: dict[str, DockerHost], *,
              on_ecs: bool) -> RuntimeDatabase:
    reader.reject_unknown(("name", "host", "placement", "address", "port", "user", "dbname",
                           "tables", "schedule", "retainFull", "compression", "rpoMinutes",
                           "sizeGiB"))
    tables = reader.strings("tables", pattern=TABLE, allowed=TABLE_ALLOWED)
    if not tables:
        raise ConfigError(reader.key("tables"), "the drill compares row counts: name at least "
                          f"one table; allowed: a list, each {TABLE_ALLOWED}")
    defaults = agent_settings.Database
    database = RuntimeDatabase(
        name=_name(reader),
        host=None if on_ecs else _host_ref(reader, hosts, "backup",
                                           "a base backup job (writes to S3)"),
        address=reader.string("address", required=True,
                              allowed="the database server's host name or address"),
        port=_positive(reader, "port", defaults.port, maximum=MAX_PORT),
        user=reader.string("user", defaults.user),
        dbname=reader.string("dbname", required=True, allowed="a database name"),
        tables=tables,
        schedule=_cron(reader, "schedule", on_ecs=on_ecs),
        retain_full=_positive(reader, "retainFull", defaults.retain_full, maximum=1000),
        compression=reader.choice("compression", agent_settings.COMPRESSION_METHODS,
                                  defaults.compression),
        rpo_seconds=60 * _positive(reader, "rpoMinutes", 1440, maximum=525600, unit="minutes"),
        size_gib=_size(reader),
    )
    return database


def _size(reader: ConfigReader) -> int | None:
    return reader.integer("sizeGiB", unit="GiB")


def _file_set(reader: ConfigReader, hosts: dict[str, DockerHost], *,
              on_ecs: bool) -> RuntimeFileSet:
    reader.reject_unknown(("name", "host", "placement", "paths", "hostname", "tags", "schedule",
                           "keep", "checkSubset", "rpoMinutes", "drillPick", "drillWindowDays",
                           "efs", "sizeGiB"))
    paths = reader.strings("paths", required=True, pattern=_ABSOLUTE_PATH,
                           allowed="an absolute path")
    keep = reader.child("keep")
    keep.reject_unknown(("daily", "weekly", "monthly"))
    defaults = agent_settings.Keep
    kept = Keep(daily=_positive(keep, "daily", defaults.daily, maximum=3660),
                weekly=_positive(keep, "weekly", defaults.weekly, maximum=520),
                monthly=_positive(keep, "monthly", defaults.monthly, maximum=1200))
    pick, window = agent_settings.drill_pick(reader, kept)
    check_subset = agent_settings.check_subset(reader, "checkSubset",
                                               agent_settings.FileSet.check_subset)
    if on_ecs:
        ecs_config.check_subset_on_ecs(reader, check_subset)
    return RuntimeFileSet(
        name=_name(reader),
        host=None if on_ecs else _host_ref(reader, hosts, "backup",
                                           "a file backup job (writes to S3)"),
        paths=paths,
        hostname=reader.string("hostname", required=True, allowed="a host name for restic"),
        tags=reader.strings("tags", allowed="a restic tag (text)"),
        schedule=_cron(reader, "schedule", on_ecs=on_ecs),
        keep=kept,
        check_subset=check_subset,
        rpo_seconds=60 * _positive(reader, "rpoMinutes", 1440, maximum=525600, unit="minutes"),
        drill_pick=pick,
        drill_window_days=window,
        efs=ecs_config.efs_volume(reader, paths, on_ecs=on_ecs),
        size_gib=_size(reader),
    )
