"""`backup-agent status`: each target's newest backup of each kind, its age against the RPO,
and the last drill result, as a table for a human — and a check: `report` also returns what is
wrong (a bucket that cannot be read, a backup past its RPO, a failed last drill, an unreadable
drill result), and the command exits 1 when anything is."""

from __future__ import annotations

import datetime as dt
import time

from backup_agent import drill, tools
from backup_agent.exporter import BucketReader
from contract import schedule
from contract.agent_settings import AgentSettings

BASE_BACKUP_GRACE_SECONDS = 2 * 3600
HEADER = ["target", "kind", "name", "newest", "age", "rpo", "state", "last drill"]


def _age(timestamp: float | None, now: float) -> str:
    if timestamp is None:
        return "none"
    return str(dt.timedelta(seconds=int(now - timestamp)))


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def rows(settings: AgentSettings, reader: BucketReader,
         now: float) -> tuple[list[list[str]], list[str]]:
    """The table rows of one target that was read, and its problems."""
    problems: list[str] = []
    try:
        results = drill.read_results(settings, reader.target)
        drills = {(o.kind, o.name): "passed" if o.success else "FAILED"
                  for o in (results.outcomes if results else ())}
    except drill.DrillResultsError as error:
        problems.append(f"{reader.target}: drill results unreadable ({error})")
        drills = None
    table = []

    def row(kind: str, name: str, newest: float | None, rpo: int, drill_key: tuple) -> None:
        late = newest is None or now - newest > rpo
        last_drill = "unreadable" if drills is None else drills.get(drill_key, "never")
        table.append([reader.target, kind, name, _when(newest), _age(newest, now),
                      str(dt.timedelta(seconds=rpo)), "LATE" if late else "ok", last_drill])
        if late:
            problems.append(f"{reader.target} {kind} {name}: "
                            + ("no backup" if newest is None
                               else f"the newest is {_age(newest, now)} old")
                            + f", beyond its rpo {dt.timedelta(seconds=rpo)}")
        if last_drill == "FAILED":
            problems.append(f"{reader.target} {kind} {name}: the last drill failed")

    for database in settings.databases:
        state = reader.databases[database.name]
        # A base backup is due once per schedule interval (the longest gap of the cron
        # expression); the database's RPO is bounded by continuous WAL archiving instead.
        interval = schedule.gaps(database.schedule).longest.total_seconds()
        row("base backup", database.name, state.newest_base_backup,
            int(interval) + BASE_BACKUP_GRACE_SECONDS, ("postgres", database.name))
        row("wal", database.name, state.wal_newest_modified, database.rpo_seconds,
            ("postgres", database.name))
    for file_set in settings.file_sets:
        row("restic snapshot", file_set.name, reader.restic.newest_snapshot,
            file_set.rpo_seconds, ("files", file_set.name))
    return table, problems


def report(settings: AgentSettings, readers: list[BucketReader]) -> tuple[str, list[str]]:
    """The table, and what is wrong (empty when everything is within its RPO and drilled)."""
    now = time.time()
    table, problems = [HEADER], []
    for reader in readers:
        try:
            reader.read_bucket()
        except Exception as error:  # S3 refused or is unreachable: the table says so
            table.append([reader.target, "bucket unreadable", "-", "-", "-", "-", "ERROR", "-"])
            problems.append(f"{reader.target}: bucket {reader.storage.bucket} could not be read "
                            f"({tools.describe_failure(error)})")
            continue
        found, wrong = rows(settings, reader, now)
        table += found
        problems += wrong
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    text = "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths,
                                                                          strict=True)).rstrip()
                     for line in table)
    return text, problems
