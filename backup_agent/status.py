"""Each target's newest backups against their limits, and its last drill.

One row model (`TargetRow`, one per bucket and database or file set) feeds `backup-agent status`
(a table), `backup-agent status --json` (for scripts) and the exporter's status page. The same
limits are exported as `*_max_age_seconds` gauges, so the alert rules and the dashboard judge
"overdue" exactly as the rows do. `backup-agent status` is also a check: `problems` lists what
is wrong (a target that could not be refreshed, an overdue backup, a failed last drill) and the
command exits 1 when anything is.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from backup_agent.exporter import BucketReader
from contract import schedule
from contract.agent_settings import AgentSettings, Database, FileSet
from contract.layout import RESTIC_PREFIX

BASE_BACKUP_GRACE_SECONDS = 2 * 3600


def base_backup_max_age(database: Database) -> int:
    """A base backup is due once per schedule interval (the longest gap of its cron
    expression: a weekday schedule's weekend), plus a grace for a slow run; the database's RPO
    itself is bounded by continuous WAL archiving (`rpoSeconds`)."""
    longest = schedule.gaps(database.schedule).longest
    return int(longest.total_seconds()) + BASE_BACKUP_GRACE_SECONDS


def check_cycle_max_age(file_set: FileSet, groups: int) -> int:
    """A rotating check reads one of `groups` parts per backup run: a full cycle takes
    `groups` schedule intervals (the longest gap of the cron expression), plus a grace."""
    longest = schedule.gaps(file_set.schedule).longest
    return groups * int(longest.total_seconds()) + BASE_BACKUP_GRACE_SECONDS


def snapshot_max_age(settings: AgentSettings) -> int | None:
    """restic's snapshots are encrypted, so the exporter sees one newest snapshot for the whole
    repository: it must be as fresh as the strictest file set demands."""
    return min((f.rpo_seconds for f in settings.file_sets), default=None)


@dataclass(frozen=True)
class Freshness:
    newest: float | None  # the backup's own time (sentinel FinishTime, S3 LastModified)
    age_seconds: float | None
    max_age_seconds: int
    overdue: bool


def freshness(newest: float | None, max_age: int, now: float) -> Freshness:
    age = None if newest is None else now - newest
    return Freshness(newest, age, max_age, age is None or age > max_age)


@dataclass(frozen=True)
class LastDrill:
    result: str  # passed | failed | never
    finished: float | None


@dataclass(frozen=True)
class TargetRow:
    target: str  # primary | replica
    bucket: str
    kind: str  # database | file set
    name: str
    prefix: str
    backup: Freshness  # newest base backup / newest restic snapshot
    wal: Freshness | None  # newest archived WAL segment (databases only)
    drill: LastDrill
    bucket_readable: bool
    refreshed: float | None  # the last successful read of the bucket

    @property
    def overdue(self) -> bool:
        return self.backup.overdue or (self.wal is not None and self.wal.overdue)


def rows(settings: AgentSettings, reader: BucketReader, now: float) -> list[TargetRow]:
    """From the reader's last state, drill results included; reads neither S3 nor files (the
    caller refreshes, or the exporter's loop does)."""
    drills = {(d.kind, d.name): LastDrill("passed" if d.success else "failed", d.finished)
              for d in reader.drill}
    never = LastDrill("never", None)

    def row(kind: str, name: str, prefix: str, backup: Freshness, wal: Freshness | None,
            drill_kind: str) -> TargetRow:
        return TargetRow(reader.target, reader.storage.bucket, kind, name, prefix, backup, wal,
                         drills.get((drill_kind, name), never), reader.up, reader.last_success)

    table = []
    for database in settings.databases:
        state = reader.databases[database.name]
        table.append(row("database", database.name, reader.storage.database_root(database.name),
                         freshness(state.newest_base_backup, base_backup_max_age(database), now),
                         freshness(state.wal_newest_modified, database.rpo_seconds, now),
                         "postgres"))
    for file_set in settings.file_sets:
        table.append(row("file set", file_set.name, RESTIC_PREFIX,
                         freshness(reader.restic.newest_snapshot, file_set.rpo_seconds, now),
                         None, "files"))
    return table


def duration(seconds: float | None) -> str:
    """The two largest units: `3 d 2 h`, `5 min 3 s`, `40 s`."""
    if seconds is None:
        return "-"
    remaining = max(int(seconds), 0)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if remaining >= size or (unit == "s" and not parts):
            parts.append(f"{remaining // size} {unit}")
            remaining %= size
    return " ".join(parts[:2])


def when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _state(value: Freshness | None) -> str:
    if value is None:
        return "-"
    return f"{duration(value.age_seconds)}/{duration(value.max_age_seconds)} " + (
        "LATE" if value.overdue else "ok")


def to_table(table: Sequence[TargetRow]) -> str:
    header = ["target", "kind", "name", "newest", "age/max", "wal age/max", "last drill",
              "bucket"]
    lines = [header] + [[
        row.target, row.kind, row.name, when(row.backup.newest), _state(row.backup),
        _state(row.wal), row.drill.result, "ok" if row.bucket_readable else "UNREADABLE",
    ] for row in table]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
                     .rstrip() for line in lines)


def to_json(table: Sequence[TargetRow]) -> str:
    return json.dumps([asdict(row) | {"overdue": row.overdue} for row in table], indent=2)


def problems(readers: Sequence[BucketReader], table: Sequence[TargetRow]) -> list[str]:
    """What makes `backup-agent status` fail, one phrase each."""
    found = [f"{reader.target}: refreshing {reader.storage.bucket} failed ({reader.last_error})"
             for reader in readers if not reader.up]
    for row in table:
        for what, value in (("backup", row.backup), ("wal", row.wal)):
            if value is not None and value.overdue:
                found.append(f"{row.target} {row.kind} {row.name}: {what} "
                             + ("none" if value.age_seconds is None
                                else f"{duration(value.age_seconds)} old")
                             + f", beyond {duration(value.max_age_seconds)}")
        if row.drill.result == "failed":
            found.append(f"{row.target} {row.kind} {row.name}: the last drill failed")
    return found


def render(settings: AgentSettings, readers: Sequence[BucketReader], *,
           as_json: bool = False) -> tuple[str, list[str]]:
    """`backup-agent status`: reads each bucket and drill result once now (no exporter runs in
    this process); the output, and what is wrong."""
    for reader in readers:
        reader.refresh()
    now = time.time()
    table = [row for reader in readers for row in rows(settings, reader, now)]
    return (to_json(table) if as_json else to_table(table)), problems(readers, table)


class MaxAgeCollector(Collector):
    """The rows' limits as gauges, per bucket: what the alert rules and the dashboard compare
    the backups' ages with."""

    def __init__(self, settings: AgentSettings, readers: Sequence[BucketReader]) -> None:
        self.settings = settings
        self.readers = readers

    def collect(self) -> Iterator[Any]:
        labels = ["target", "bucket"]
        base = GaugeMetricFamily("backup_postgres_base_backup_max_age_seconds",
                                 "Age at which the newest base backup is overdue "
                                 "(schedule interval + 2 h)", labels=[*labels, "database"])
        wal = GaugeMetricFamily("backup_postgres_wal_max_age_seconds",
                                "The database's RPO: age at which the newest archived WAL "
                                "segment is overdue", labels=[*labels, "database"])
        snapshot = GaugeMetricFamily("backup_restic_snapshot_max_age_seconds",
                                     "Age at which the newest restic snapshot is overdue "
                                     "(the smallest RPO of the file sets)", labels=labels)
        snapshot_limit = snapshot_max_age(self.settings)
        for reader in self.readers:
            values = [reader.target, reader.storage.bucket]
            for database in self.settings.databases:
                base.add_metric([*values, database.name], base_backup_max_age(database))
                wal.add_metric([*values, database.name], database.rpo_seconds)
            if snapshot_limit is not None:
                snapshot.add_metric(values, snapshot_limit)
        yield from (base, wal, snapshot)
