"""The agent's settings file: plain JSON rendered by the BackupContainers component.

It holds no secret: passwords and the webhook URL are paths of files mounted into the container.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

# Kept in step with components.layout (the agent never imports the Pulumi side).
POSTGRES_PREFIX: Final = "postgres/"
RESTIC_PREFIX: Final = "restic/"
RETENTION_TAG_KEY: Final = "Retention"
RETENTION_TAG_ACTIVE: Final = "active"
ROLES: Final = ("backup", "restore")
# `backup-agent keep`, in step with components.settings (KEEP_PROTECTIONS, KeepSettings).
KEEP_PROTECTIONS: Final = ("compliance-retention", "legal-hold")


class SettingsError(ValueError):
    """The settings file is invalid; the message names the key."""


@dataclass(frozen=True)
class Storage:
    """One bucket (the primary or the replica). `endpoint` is only set for a local S3 (tests)."""

    bucket: str
    region: str
    endpoint: str | None = None

    def walg_prefix(self, database: str) -> str:
        return f"s3://{self.bucket}/{POSTGRES_PREFIX}{database}"

    def database_root(self, database: str) -> str:
        return f"{POSTGRES_PREFIX}{database}/"

    @property
    def restic_repository(self) -> str:
        base = self.endpoint or f"https://s3.{self.region}.amazonaws.com"
        return f"s3:{base}/{self.bucket}/{RESTIC_PREFIX.rstrip('/')}"


@dataclass(frozen=True)
class Database:
    name: str
    host: str
    port: int
    user: str
    dbname: str
    password_file: str | None  # None where nothing connects to it (the restore host)
    tables: tuple[str, ...]
    retain_full: int
    schedule: str
    rpo_seconds: int
    compression: str = "lz4"


@dataclass(frozen=True)
class Keep:
    daily: int = 7
    weekly: int = 4
    monthly: int = 6


@dataclass(frozen=True)
class KeptBackups:
    """How `backup-agent keep` protects a base backup past the lock window: COMPLIANCE
    retention until a date at most `max_days` ahead, or a legal hold."""

    protection: str = "compliance-retention"
    max_days: int = 365


@dataclass(frozen=True)
class FileSet:
    name: str
    paths: tuple[str, ...]
    tags: tuple[str, ...]
    hostname: str
    keep: Keep
    check_subset: str
    schedule: str
    rpo_seconds: int


@dataclass(frozen=True)
class Retry:
    attempts: int = 3
    delay_seconds: float = 60.0


@dataclass(frozen=True)
class AgentSettings:
    role: str
    primary: Storage
    replica: Storage | None
    databases: tuple[Database, ...]
    file_sets: tuple[FileSet, ...]
    jobs: tuple[str, ...]
    schedules: Mapping[str, str]
    restic_password_file: str | None  # None without file sets (and for the exporter)
    state_dir: str
    retry: Retry = field(default_factory=Retry)
    kept_backups: KeptBackups = field(default_factory=KeptBackups)
    webhook_url_file: str | None = None
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

    def database(self, name: str) -> Database:
        for database in self.databases:
            if database.name == name:
                return database
        raise SettingsError(f"databases: no database named {name!r}")

    def file_set(self, name: str) -> FileSet:
        for file_set in self.file_sets:
            if file_set.name == name:
                return file_set
        raise SettingsError(f"fileSets: no file set named {name!r}")

    def storage(self, target: str) -> Storage:
        if target == "primary":
            return self.primary
        if target == "replica" and self.replica is not None:
            return self.replica
        raise SettingsError(f"target {target!r}: allowed: primary"
                            + (", replica" if self.replica else ""))


def _require(data: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in data:
        raise SettingsError(f"{path}{key}: is required")
    return data[key]


def _storage(data: Mapping[str, Any], path: str) -> Storage:
    return Storage(bucket=_require(data, "bucket", path), region=_require(data, "region", path),
                   endpoint=data.get("endpoint"))


def _database(data: Mapping[str, Any], index: int) -> Database:
    path = f"databases[{index}]."
    retain = int(_require(data, "retainFull", path))
    if retain < 1:
        raise SettingsError(f"{path}retainFull: must be >= 1, got {retain}")
    return Database(
        name=_require(data, "name", path), host=_require(data, "host", path),
        port=int(data.get("port", 5432)), user=_require(data, "user", path),
        dbname=_require(data, "dbname", path), password_file=data.get("passwordFile"),
        tables=tuple(_require(data, "tables", path)), retain_full=retain,
        schedule=_require(data, "schedule", path),
        rpo_seconds=int(_require(data, "rpoSeconds", path)),
        compression=data.get("compression", "lz4"),
    )


def _file_set(data: Mapping[str, Any], index: int) -> FileSet:
    path = f"fileSets[{index}]."
    keep = data.get("keep", {})
    return FileSet(
        name=_require(data, "name", path), paths=tuple(_require(data, "paths", path)),
        tags=tuple(data.get("tags", ())), hostname=_require(data, "hostname", path),
        keep=Keep(daily=int(keep.get("daily", 7)), weekly=int(keep.get("weekly", 4)),
                  monthly=int(keep.get("monthly", 6))),
        check_subset=data.get("checkSubset", "5%"), schedule=_require(data, "schedule", path),
        rpo_seconds=int(_require(data, "rpoSeconds", path)),
    )


def _kept_backups(data: Mapping[str, Any]) -> KeptBackups:
    protection = data.get("protection", KeptBackups.protection)
    if protection not in KEEP_PROTECTIONS:
        raise SettingsError(f"keep.protection: {protection!r} is not allowed; allowed: "
                            + ", ".join(KEEP_PROTECTIONS))
    return KeptBackups(protection=protection,
                       max_days=int(data.get("maxDays", KeptBackups.max_days)))


def parse(data: Mapping[str, Any]) -> AgentSettings:
    role = _require(data, "role", "")
    if role not in ROLES:
        raise SettingsError(f"role: {role!r} is not allowed; allowed: {', '.join(ROLES)}")
    databases = tuple(_database(item, i) for i, item in enumerate(data.get("databases", ())))
    file_sets = tuple(_file_set(item, i) for i, item in enumerate(data.get("fileSets", ())))
    known = {f"postgres:{d.name}" for d in databases} | {f"files:{f.name}" for f in file_sets}
    known.add("drill")
    jobs = tuple(data.get("jobs", ()))
    for job in jobs:
        if job not in known:
            raise SettingsError(f"jobs: {job!r} is unknown; allowed: {', '.join(sorted(known))}")
        if job == "drill" and role != "restore":
            raise SettingsError("jobs: the drill runs only on the read-only restore host")
        if job != "drill" and role != "backup":
            raise SettingsError(f"jobs: {job!r} writes backups and runs only on a backup host")
    schedules = {f"postgres:{d.name}": d.schedule for d in databases}
    schedules |= {f"files:{f.name}": f.schedule for f in file_sets}
    if "drillSchedule" in data:
        schedules["drill"] = data["drillSchedule"]
    retry = data.get("retry", {})
    replica = data.get("replica")
    return AgentSettings(
        role=role,
        primary=_storage(_require(data, "primary", ""), "primary."),
        replica=_storage(replica, "replica.") if replica else None,
        databases=databases,
        file_sets=file_sets,
        jobs=jobs,
        schedules=schedules,
        restic_password_file=data.get("resticPasswordFile"),
        state_dir=data.get("stateDir", "/var/lib/backup-agent"),
        retry=Retry(attempts=int(retry.get("attempts", 3)),
                    delay_seconds=float(retry.get("delaySeconds", 60))),
        kept_backups=_kept_backups(data.get("keep", {})),
        webhook_url_file=data.get("webhookUrlFile"),
        metrics_port=int(data.get("metricsPort", 8080)),
        refresh_seconds=float(data.get("refreshSeconds", 60)),
        wal_relist_margin=int(data.get("walRelistMargin", 64)),
        full_relist_every=int(data.get("fullRelistEvery", 60)),
        delete_marker_scan_seconds=float(data.get("deleteMarkerScanSeconds", 3600)),
        postgres_bin=data.get("postgresBin", "/usr/lib/postgresql/15/bin"),
        walg_binary=data.get("walgBinary", "wal-g"),
        restic_binary=data.get("resticBinary", "restic"),
        drill_superuser=data.get("drillSuperuser", "postgres"),
        drill_run_as=data.get("drillRunAs"),
        drill_timeout_seconds=float(data.get("drillTimeoutSeconds", 1800)),
    )


def load(path: str | Path) -> AgentSettings:
    return parse(json.loads(Path(path).read_text()))
