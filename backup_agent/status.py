"""`backup-agent status`: each target's newest backup of each kind, its age against the RPO,
and the last drill result, as a table for a human."""

from __future__ import annotations

import datetime as dt
import time

from croniter import croniter

from backup_agent import drill
from backup_agent.exporter import BucketReader
from contract.agent_settings import AgentSettings

BASE_BACKUP_GRACE_SECONDS = 2 * 3600


def schedule_interval_seconds(expression: str, now: dt.datetime | None = None) -> int:
    runs = croniter(expression, now or dt.datetime.now(dt.UTC))
    first = runs.get_next(dt.datetime)
    return int((runs.get_next(dt.datetime) - first).total_seconds())


def _age(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return "none"
    return str(dt.timedelta(seconds=int(now - timestamp)))


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def rows(settings: AgentSettings, reader: BucketReader, now: float) -> list[list[str]]:
    results = drill.read_results(settings, reader.target) or {"outcomes": []}
    drills = {(o["kind"], o["name"]): "passed" if o["success"] else "FAILED"
              for o in results["outcomes"]}
    table = []

    def row(kind: str, name: str, newest: float | None, rpo: int, drill_key: tuple) -> None:
        late = newest is None or now - newest > rpo
        table.append([reader.target, kind, name, _when(newest), _age(newest, now),
                      str(dt.timedelta(seconds=rpo)), "LATE" if late else "ok",
                      drills.get(drill_key, "never")])

    for database in settings.databases:
        state = reader.databases[database.name]
        # A base backup is due once per schedule interval; the database's RPO is bounded by
        # continuous WAL archiving instead (an idle database archives nothing: pg_stat_archiver).
        row("base backup", database.name, state.newest_base_backup,
            schedule_interval_seconds(database.schedule) + BASE_BACKUP_GRACE_SECONDS,
            ("postgres", database.name))
        row("wal", database.name, state.wal_newest_modified, database.rpo_seconds,
            ("postgres", database.name))
    for file_set in settings.file_sets:
        row("restic snapshot", file_set.name, reader.restic.newest_snapshot,
            file_set.rpo_seconds, ("files", file_set.name))
    return table


def render(settings: AgentSettings, readers: list[BucketReader]) -> str:
    now = time.time()
    header = ["target", "kind", "name", "newest", "age", "rpo", "state", "last drill"]
    table = [header]
    for reader in readers:
        if not reader.refresh():
            table.append([reader.target, "bucket unreadable", "-", "-", "-", "-", "ERROR", "-"])
            continue
        table += rows(settings, reader, now)
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
                     .rstrip() for line in table)
