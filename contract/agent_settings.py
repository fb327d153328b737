"""The agent's settings file: one schema for the component that renders it
(`components.container_specs`) and the agent that reads it (`backup_agent.config`).

The dataclasses are the schema, their defaults the only defaults: `document` renders settings
as the file's JSON object, `parse` reads that object back (every key checked by
`contract.reader`), and `parse(document(s)) == s`; `to_json` and `from_json` are the file's
text. The file holds no secret: passwords and the
webhook URL are paths of files mounted into the container.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from contract import layout, restic, schedule
from contract.jobs import DRILL, database_job, files_job
from contract.reader import InvalidSetting, Reader, describe

ROLES: Final = ("backup", "restore")
# How `backup-agent keep` protects a base backup kept past the lock window.
KEEP_PROTECTIONS: Final = ("compliance-retention", "legal-hold")
# S3 Object Lock accepts retention periods of at most 100 years.
MAX_RETENTION_DAYS: Final = 36500
TARGETS: Final = ("primary", "replica")
COMPRESSION_METHODS: Final = ("lz4", "zstd", "lzma", "brotli")
DRILL_JOB: Final = DRILL.id
MAX_PORT: Final = 65535
DRILL_PICKS: Final = ("latest", "random-within")

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")
NAME_ALLOWED: Final = "1-31 of a-z, 0-9, '-', starting with a letter or digit"
TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
TABLE_ALLOWED: Final = "a table name (name or schema.name)"
_ABSOLUTE_PATH = re.compile(r"/\S*")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
_ENDPOINT = re.compile(r"https?://\S+")


class SettingsError(InvalidSetting):
    """The settings file is invalid; the key path is inside the file."""


@dataclass(frozen=True)
class Storage:
    """One bucket (the primary or the replica). `endpoint` is only set for a local S3 (tests)."""

    bucket: str
    region: str
    endpoint: str | None = None

    def walg_prefix(self, database: str) -> str:
        return layout.walg_prefix(self.bucket, database)

    def database_root(self, database: str) -> str:
        return layout.database_root(database)

    @property
    def restic_repository(self) -> str:
        return layout.restic_repository(self.bucket, self.region, self.endpoint)


@dataclass(frozen=True)
class Database:
    name: str
    host: str
    dbname: str
    tables: tuple[str, ...]
    schedule: str
    rpo_seconds: int
    port: int = 5432
    user: str = "backup"
    password_file: str | None = None  # None where nothing connects to it (the restore host)
    retain_full: int = 7
    compression: str = "lz4"


@dataclass(frozen=True)
class Keep:
    daily: int = 7
    weekly: int = 4
    monthly: int = 6


@dataclass(frozen=True)
class FileSet:
    name: str
    paths: tuple[str, ...]
    hostname: str
    schedule: str
    rpo_seconds: int
    tags: tuple[str, ...] = ()
    keep: Keep = field(default_factory=Keep)
    check_subset: str = "5%"
    # Which snapshot a drill restores: the newest, or one picked at random (seeded, logged)
    # among those of the last `drill_window_days` days.
    drill_pick: str = "latest"
    drill_window_days: int | None = None


@dataclass(frozen=True)
class KeptBackups:
    """How `backup-agent keep` protects a base backup past the lock window: COMPLIANCE
    retention until a date at most `max_days` ahead, or a legal hold."""

    protection: str = "compliance-retention"
    max_days: int = 365


@dataclass(frozen=True)
class Retry:
    attempts: int = 3
    delay_seconds: float = 300.0


# ECS placement: the task definition passes the settings document in this environment variable
# (a task has no file the stack could upload); it holds no secret.
SETTINGS_VARIABLE: Final = "BACKUP_AGENT_SETTINGS"


@dataclass(frozen=True)
class SecretVariable:
    """A secret ECS injects as an environment variable (the task definition's `secrets`,
    `valueFrom` a Secrets Manager secret): the agent writes it to `path` (mode 0400, on the
    task's own scratch storage) and removes the variable before it starts any tool."""

    variable: str
    path: str


@dataclass(frozen=True)
class TaskRuntime:
    """Set when the agent runs as a one-shot ECS task (None on a Docker host)."""

    cluster: str  # the cluster's name: the overlap guard lists this job's running tasks there
    metrics_namespace: str  # CloudWatch namespace the job's outcome metric is put into
    secrets: tuple[SecretVariable, ...] = ()


@dataclass(frozen=True)
class AgentSettings:
    role: str
    primary: Storage
    replica: Storage | None = None
    databases: tuple[Database, ...] = ()
    file_sets: tuple[FileSet, ...] = ()
    jobs: tuple[str, ...] = ()
    drill_schedule: str | None = None
    restic_password_file: str | None = None  # None without file sets (and for the exporter)
    webhook_url_file: str | None = None
    state_dir: str = "/var/lib/backup-agent"
    retry: Retry = field(default_factory=Retry)
    kept_backups: KeptBackups | None = None  # a backup host's `keep`; None on a restore host
    listen_address: str = "0.0.0.0"  # in a container: every interface, published by Docker
    metrics_port: int = 8080
    refresh_seconds: float = 60.0
    wal_relist_margin: int = 64
    full_relist_every: int = 60
    delete_marker_scan_seconds: float = 3600.0  # 0: off
    postgres_bin: str = "/usr/lib/postgresql/15/bin"
    walg_binary: str = "wal-g"
    restic_binary: str = "restic"
    # The drill's PostgreSQL: the role it connects as (the cluster's superuser, for amcheck),
    # and — only where the agent itself runs as root (tests) — the OS user that runs it.
    drill_superuser: str = "postgres"
    drill_run_as: str | None = None
    drill_timeout_seconds: float = 1800.0
    task: TaskRuntime | None = None  # the ECS placement; None on a Docker host

    @property
    def schedules(self) -> dict[str, str]:
        """Cron expression per job id."""
        found = {database_job(d.name).id: d.schedule for d in self.databases}
        found |= {files_job(f.name).id: f.schedule for f in self.file_sets}
        if self.drill_schedule is not None:
            found[DRILL_JOB] = self.drill_schedule
        return found

    def database(self, name: str) -> Database:
        for database in self.databases:
            if database.name == name:
                return database
        raise SettingsError("databases", f"no database named {name!r}; allowed: "
                            + (", ".join(d.name for d in self.databases) or "none here"))

    def file_set(self, name: str) -> FileSet:
        for file_set in self.file_sets:
            if file_set.name == name:
                return file_set
        raise SettingsError("fileSets", f"no file set named {name!r}; allowed: "
                            + (", ".join(f.name for f in self.file_sets) or "none here"))

    @property
    def targets(self) -> tuple[str, ...]:
        return ("primary", "replica") if self.replica is not None else ("primary",)

    def storage(self, target: str) -> Storage:
        if target == "primary":
            return self.primary
        if target == "replica" and self.replica is not None:
            return self.replica
        raise SettingsError("replica" if target == "replica" else "target",
                            f"no bucket for target {target!r}; allowed: "
                            + ", ".join(self.targets))


# --- rendering ----------------------------------------------------------------------------

def _storage_document(storage: Storage) -> dict[str, Any]:
    document = {"bucket": storage.bucket, "region": storage.region}
    if storage.endpoint is not None:
        document["endpoint"] = storage.endpoint
    return document


def _without_none(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if value is not None}


def document(settings: AgentSettings) -> dict[str, Any]:
    """The file's JSON object (keys with no value are left out)."""
    return _without_none({
        "role": settings.role,
        "primary": _storage_document(settings.primary),
        "replica": _storage_document(settings.replica) if settings.replica else None,
        "databases": [_without_none({
            "name": d.name, "host": d.host, "port": d.port, "user": d.user, "dbname": d.dbname,
            "passwordFile": d.password_file, "tables": list(d.tables),
            "retainFull": d.retain_full, "schedule": d.schedule, "rpoSeconds": d.rpo_seconds,
            "compression": d.compression,
        }) for d in settings.databases],
        "fileSets": [_without_none({
            "name": f.name, "paths": list(f.paths), "tags": list(f.tags), "hostname": f.hostname,
            "keep": {"daily": f.keep.daily, "weekly": f.keep.weekly, "monthly": f.keep.monthly},
            "checkSubset": f.check_subset, "schedule": f.schedule, "rpoSeconds": f.rpo_seconds,
            "drillPick": f.drill_pick, "drillWindowDays": f.drill_window_days,
        }) for f in settings.file_sets],
        "jobs": list(settings.jobs),
        "drillSchedule": settings.drill_schedule,
        "resticPasswordFile": settings.restic_password_file,
        "webhookUrlFile": settings.webhook_url_file,
        "stateDir": settings.state_dir,
        "retry": {"attempts": settings.retry.attempts,
                  "delaySeconds": settings.retry.delay_seconds},
        "keep": {"protection": settings.kept_backups.protection,
                 "maxDays": settings.kept_backups.max_days} if settings.kept_backups else None,
        "listenAddress": settings.listen_address,
        "metricsPort": settings.metrics_port,
        "refreshSeconds": settings.refresh_seconds,
        "walRelistMargin": settings.wal_relist_margin,
        "fullRelistEvery": settings.full_relist_every,
        "deleteMarkerScanSeconds": settings.delete_marker_scan_seconds,
        "postgresBin": settings.postgres_bin,
        "walgBinary": settings.walg_binary,
        "resticBinary": settings.restic_binary,
        "drillSuperuser": settings.drill_superuser,
        "drillRunAs": settings.drill_run_as,
        "drillTimeoutSeconds": settings.drill_timeout_seconds,
        "task": {"cluster": settings.task.cluster,
                 "metricsNamespace": settings.task.metrics_namespace,
                 "secrets": [{"variable": s.variable, "path": s.path}
                             for s in settings.task.secrets]} if settings.task else None,
    })


# --- reading ------------------------------------------------------------------------------

KEYS: Final = ("role", "primary", "replica", "databases", "fileSets", "jobs", "drillSchedule",
               "resticPasswordFile", "webhookUrlFile", "stateDir", "retry", "keep", "listenAddress",
               "metricsPort", "refreshSeconds", "walRelistMargin", "fullRelistEvery",
               "deleteMarkerScanSeconds", "postgresBin", "walgBinary", "resticBinary",
               "drillSuperuser", "drillRunAs", "drillTimeoutSeconds", "task")

def _path(reader: Reader, name: str, default: str | None = None, *,
          required: bool = False) -> Any:
    return reader.string(name, default, required=required, pattern=_ABSOLUTE_PATH,
                         allowed="an absolute path")


def _cron(reader: Reader, name: str, *, required: bool = True) -> Any:
    value = reader.string(name, required=required, allowed="a cron expression")
    if value is not None:
        try:
            schedule.check(value)
        except schedule.NotASchedule as problem:
            reader.fail(name, f"{describe(value)} {problem}")
    return value


def _storage(reader: Reader) -> Storage:
    reader.reject_unknown(("bucket", "region", "endpoint"))
    return Storage(
        bucket=reader.string("bucket", required=True, pattern=_BUCKET,
                             allowed="an S3 bucket name"),
        region=reader.string("region", required=True, pattern=_REGION,
                             allowed="an AWS region (eu-central-1)"),
        endpoint=reader.string("endpoint", pattern=_ENDPOINT, allowed="http(s)://HOST[:PORT]"),
    )


def _database(reader: Reader) -> Database:
    reader.reject_unknown(("name", "host", "port", "user", "dbname", "passwordFile", "tables",
                           "retainFull", "schedule", "rpoSeconds", "compression"))
    return Database(
        name=reader.string("name", required=True, pattern=NAME, allowed=NAME_ALLOWED),
        host=reader.string("host", required=True, allowed="a host name or address"),
        port=reader.integer("port", Database.port, maximum=MAX_PORT),
        user=reader.string("user", Database.user),
        dbname=reader.string("dbname", required=True, allowed="a database name"),
        password_file=_path(reader, "passwordFile"),
        tables=reader.strings("tables", required=True, pattern=TABLE, allowed=TABLE_ALLOWED),
        retain_full=reader.integer("retainFull", Database.retain_full),
        schedule=_cron(reader, "schedule"),
        rpo_seconds=reader.integer("rpoSeconds", required=True, unit="seconds"),
        compression=reader.choice("compression", COMPRESSION_METHODS, Database.compression),
    )


def check_subset(reader: Reader, name: str, default: str) -> str:
    """restic's --read-data-subset value, validated as restic 0.14 does, or the agent's
    rotate:<t> (contract.restic)."""
    value = reader.string(name, default, allowed=restic.SUBSET_ALLOWED)
    problem = restic.check_subset_problem(value)
    if problem is not None:
        reader.fail(name, f"{problem}; allowed: {restic.SUBSET_ALLOWED}")
    return value


def keep_span_days(keep: Keep) -> int:
    """How far back `restic forget --keep-daily/weekly/monthly` is sure to keep a snapshot
    (months counted as 28 days): a drill window must not reach further."""
    return max(keep.daily, 7 * keep.weekly, 28 * keep.monthly)


def drill_pick(reader: Reader, keep: Keep) -> tuple[str, int | None]:
    """`drillPick` and `drillWindowDays` of a file set: the window is required for
    random-within, refused otherwise, and must lie inside what the keep rules keep."""
    pick = reader.choice("drillPick", DRILL_PICKS, FileSet.drill_pick)
    if pick == "latest":
        if reader.has("drillWindowDays"):
            reader.fail("drillWindowDays", "applies only to drillPick random-within; allowed: "
                                           "no drillWindowDays with drillPick latest")
        return pick, None
    span = keep_span_days(keep)
    window = reader.integer("drillWindowDays", required=True, unit="days")
    if window > span:
        reader.fail("drillWindowDays", f"{window} reaches past what keep keeps ({span} days: "
                    f"daily {keep.daily}, weekly {keep.weekly} x 7, monthly {keep.monthly} x "
                    f"28); allowed: 1 to {span} days, or longer keep rules")
    return pick, window


def _file_set(reader: Reader) -> FileSet:
    reader.reject_unknown(("name", "paths", "tags", "hostname", "keep", "checkSubset",
                           "schedule", "rpoSeconds", "drillPick", "drillWindowDays"))
    keep_reader = reader.child("keep")
    keep_reader.reject_unknown(("daily", "weekly", "monthly"))
    keep = Keep(daily=keep_reader.integer("daily", Keep.daily),
                weekly=keep_reader.integer("weekly", Keep.weekly),
                monthly=keep_reader.integer("monthly", Keep.monthly))
    pick, window = drill_pick(reader, keep)
    return FileSet(
        name=reader.string("name", required=True, pattern=NAME, allowed=NAME_ALLOWED),
        paths=reader.strings("paths", required=True, pattern=_ABSOLUTE_PATH,
                             allowed="an absolute path"),
        tags=reader.strings("tags", allowed="a restic tag (text)"),
        hostname=reader.string("hostname", required=True, allowed="a host name for restic"),
        keep=keep,
        check_subset=check_subset(reader, "checkSubset", FileSet.check_subset),
        schedule=_cron(reader, "schedule"),
        rpo_seconds=reader.integer("rpoSeconds", required=True, unit="seconds"),
        drill_pick=pick,
        drill_window_days=window,
    )


def parse(data: Any) -> AgentSettings:
    """Validate the settings file's object; raises SettingsError naming the key."""
    if not isinstance(data, Mapping):
        raise SettingsError("", f"got {describe(data)}; allowed: a JSON object")
    reader = Reader("", data, SettingsError)
    reader.reject_unknown(KEYS)
    role = reader.choice("role", ROLES)
    databases = tuple(_database(item) for item in reader.items("databases"))
    file_sets = tuple(_file_set(item) for item in reader.items("fileSets"))
    reader.unique_names("databases", [d.name for d in databases])
    reader.unique_names("fileSets", [f.name for f in file_sets])
    known = [database_job(d.name).id for d in databases] + [files_job(f.name).id
                                                            for f in file_sets]
    jobs = reader.strings("jobs", allowed="a job id: " + ", ".join([*known, DRILL_JOB]))
    for index, job in enumerate(jobs):
        key = f"jobs[{index}]"
        if job not in (*known, DRILL_JOB):
            raise SettingsError(key, f"{job!r} is unknown; allowed: "
                                + ", ".join([*known, DRILL_JOB]))
        if job == DRILL_JOB and role != "restore":
            raise SettingsError(key, "the drill runs only on the read-only restore host; "
                                "allowed here (role backup): " + (", ".join(known) or "none"))
        if job != DRILL_JOB and role != "backup":
            raise SettingsError(key, f"{job!r} writes backups and runs only on a backup host; "
                                f"allowed here (role restore): {DRILL_JOB}")
    drill_schedule = _cron(reader, "drillSchedule", required=DRILL_JOB in jobs)
    retry = reader.child("retry")
    retry.reject_unknown(("attempts", "delaySeconds"))
    keep = reader.child("keep")
    keep.reject_unknown(("protection", "maxDays"))
    if role != "backup" and reader.has("keep"):
        reader.fail("keep", "applies only to a backup host (backup-agent keep needs the backup "
                            "role's credentials); allowed: no keep on a restore host")
    return AgentSettings(
        role=role,
        primary=_storage(_required_child(reader, "primary")),
        replica=_storage(reader.child("replica")) if reader.has("replica") else None,
        databases=databases,
        file_sets=file_sets,
        jobs=jobs,
        drill_schedule=drill_schedule,
        restic_password_file=_path(reader, "resticPasswordFile"),
        webhook_url_file=_path(reader, "webhookUrlFile"),
        state_dir=_path(reader, "stateDir", AgentSettings.state_dir),
        retry=Retry(attempts=retry.integer("attempts", Retry.attempts, maximum=100),
                    delay_seconds=retry.number("delaySeconds", Retry.delay_seconds,
                                               unit="seconds")),
        kept_backups=KeptBackups(
            protection=keep.choice("protection", KEEP_PROTECTIONS, KeptBackups.protection),
            max_days=keep.integer("maxDays", KeptBackups.max_days, maximum=MAX_RETENTION_DAYS,
                                  unit="days")) if role == "backup" else None,
        listen_address=reader.ip_address("listenAddress", AgentSettings.listen_address,
                                         allowed="an IP address to listen on (0.0.0.0, "
                                                 "127.0.0.1, ::)"),
        metrics_port=reader.integer("metricsPort", AgentSettings.metrics_port, maximum=MAX_PORT),
        refresh_seconds=reader.number("refreshSeconds", AgentSettings.refresh_seconds,
                                      minimum=0.1, unit="seconds"),
        wal_relist_margin=reader.integer("walRelistMargin", AgentSettings.wal_relist_margin,
                                         minimum=0),
        full_relist_every=reader.integer("fullRelistEvery", AgentSettings.full_relist_every),
        delete_marker_scan_seconds=reader.number(
            "deleteMarkerScanSeconds", AgentSettings.delete_marker_scan_seconds, unit="seconds"),
        postgres_bin=_path(reader, "postgresBin", AgentSettings.postgres_bin),
        walg_binary=reader.string("walgBinary", AgentSettings.walg_binary),
        restic_binary=reader.string("resticBinary", AgentSettings.restic_binary),
        drill_superuser=reader.string("drillSuperuser", AgentSettings.drill_superuser),
        drill_run_as=reader.string("drillRunAs"),
        drill_timeout_seconds=reader.number("drillTimeoutSeconds",
                                            AgentSettings.drill_timeout_seconds, minimum=1.0,
                                            unit="seconds"),
        task=_task(reader.child("task")) if reader.has("task") else None,
    )


_VARIABLE = re.compile(r"[A-Z_][A-Z0-9_]*")


def _task(reader: Reader) -> TaskRuntime:
    reader.reject_unknown(("cluster", "metricsNamespace", "secrets"))
    secrets = []
    for item in reader.items("secrets"):
        item.reject_unknown(("variable", "path"))
        secrets.append(SecretVariable(
            variable=item.string("variable", required=True, pattern=_VARIABLE,
                                 allowed="an environment variable name (A-Z, 0-9, _)"),
            path=_path(item, "path", required=True)))
    return TaskRuntime(cluster=reader.string("cluster", required=True,
                                             allowed="the ECS cluster's name"),
                       metrics_namespace=reader.string("metricsNamespace", required=True,
                                                       allowed="a CloudWatch namespace"),
                       secrets=tuple(secrets))


def _required_child(reader: Reader, name: str) -> Reader:
    if not reader.has(name):
        reader.fail(name, "is required; allowed: an object with bucket and region")
    return reader.child(name)


def to_json(settings: AgentSettings) -> str:
    """The settings file's text (stable: sorted keys)."""
    return json.dumps(document(settings), indent=2, sort_keys=True)


def from_json(text: str) -> AgentSettings:
    """Read the settings file's text; raises SettingsError naming the key (or the position of
    what is not JSON)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsError("", f"is not JSON (line {error.lineno}, column {error.colno}: "
                            f"{error.msg}); allowed: a JSON object") from None
    return parse(data)
