"""`backup-agent drill`: prove that the newest backups restore, on the read-only restore host.

PostgreSQL: `wal-g backup-fetch` of the newest base backup that has a recorded restore point
into a temporary PGDATA, a server on a spare 127.0.0.1 port with recovery.signal,
`restore_command = 'wal-g wal-fetch %f %p'`, `recovery_target_name` = the recorded restore point,
promotion at the target and `archive_mode=off` (the restored PGDATA carries production's
archive_command: the drill must never write into the production archive). Then the per-table
row counts must equal the recorded ones and `bt_index_check` must pass on every B-tree index.
Files: `restic restore --verify` of the newest snapshot, compared with its recorded hashes.
Everything temporary is removed whatever happens; the outcome goes to the state directory
(`backup_agent.records`), where the exporter and `status` on the same host read it, and to the
outcome record (`backup_agent.evidence`), where they read it when the drill runs elsewhere (an
ECS task).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from botocore.exceptions import ClientError

from backup_agent import evidence, files, postgres, records, s3, tools
from backup_agent.picks import Pick
from contract.agent_settings import AgentSettings, Database, FileSet, Storage

log = logging.getLogger(__name__)

# Newest base backups to consider when the very newest has no restore point yet (a backup job
# that is still waiting for its restore point to be archived).
CANDIDATE_BACKUPS = 3


def spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _chown_tree(root: Path, user: str) -> None:
    for directory, names, files_ in os.walk(root):
        shutil.chown(directory, user, user)
        for name in names + files_:
            shutil.chown(os.path.join(directory, name), user, user)


def find_reference(settings: AgentSettings, storage: Storage,
                   database: Database, env: dict[str, str]) -> postgres.RestorePoint:
    client = s3.client(storage)
    names = postgres.backup_names(settings, env)
    for name in reversed(names[-CANDIDATE_BACKUPS:]):
        key = postgres.reference_key(storage, database, name)
        try:
            body = client.get_object(Bucket=storage.bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                continue
            raise
        return postgres.RestorePoint(**json.loads(body))
    raise RuntimeError(f"database {database.name}: none of the newest base backups {names[-3:]} "
                       "has a recorded restore point")


@contextlib.contextmanager
def recovered_server(settings: AgentSettings, pgdata: Path, socket_dir: Path,
                     env: dict[str, str], point: postgres.RestorePoint) -> Iterator[int]:
    """Start PostgreSQL on the restored PGDATA, wait until it has recovered to the restore
    point and promoted; stop it (by the PID in postmaster.pid) on the way out."""
    walg = shutil.which(settings.walg_binary) or settings.walg_binary
    (pgdata / "recovery.signal").touch()
    if not (pgdata / "postgresql.conf").exists():  # Debian keeps it outside PGDATA
        (pgdata / "postgresql.conf").touch()
    hba = socket_dir / "drill_hba.conf"
    hba.write_text("local all all trust\n")
    port = spare_port()
    options = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(socket_dir),
        "hba_file": str(hba),
        "archive_mode": "off",
        "archive_command": "",
        "restore_command": f"{walg} wal-fetch %f %p",
        "recovery_target_name": point.restore_point,
        "recovery_target_action": "promote",
        "logging_collector": "off",
    }
    if settings.drill_run_as:
        _chown_tree(pgdata.parent, settings.drill_run_as)
    argv = [str(Path(settings.postgres_bin, "postgres")), "-D", str(pgdata)]
    argv += [arg for name, value in options.items() for arg in ("-c", f"{name}={value}")]
    if settings.drill_run_as:
        argv = ["runuser", "-u", settings.drill_run_as, "--", "env",
                *[f"{k}={v}" for k, v in env.items()], *argv]
    log_path = pgdata.parent / "postgres.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + settings.drill_timeout_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError("the restored server exited during recovery: "
                                   + _log_tail(log_path))
            with contextlib.suppress(psycopg.OperationalError):
                with psycopg.connect(host=str(socket_dir), port=port,
                                     user=settings.drill_superuser, dbname="postgres",
                                     autocommit=True, connect_timeout=2) as connection:
                    if not connection.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        break
            if time.monotonic() > deadline:
                raise TimeoutError("recovery did not finish in time: " + _log_tail(log_path))
            time.sleep(0.2)
        yield port
    finally:
        _stop(process, pgdata)


def _log_tail(path: Path, lines: int = 6) -> str:
    return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])


def _stop(process: subprocess.Popen, pgdata: Path) -> None:
    pid_file = pgdata / "postmaster.pid"
    if process.poll() is None and pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)  # fast shutdown
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        process.wait(timeout=10)


def check_recovered(settings: AgentSettings, socket_dir: Path, port: int, database: Database,
                    point: postgres.RestorePoint) -> str:
    with psycopg.connect(host=str(socket_dir), port=port, user=settings.drill_superuser,
                         dbname=database.dbname, autocommit=True) as connection:
        counts = {
            table: connection.execute(psycopg.sql.SQL("SELECT count(*) FROM {}").format(
                postgres.table_identifier(table))).fetchone()[0]
            for table in point.counts
        }
        if counts != point.counts:
            raise RuntimeError(f"row counts differ at restore point {point.restore_point}: "
                               f"recorded {point.counts}, restored {counts}")
        connection.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        indexes = connection.execute(
            "SELECT count(bt_index_check(c.oid)) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
            "WHERE a.amname = 'btree' AND i.indisvalid AND c.relpersistence <> 't'"
        ).fetchone()[0]
    return f"backup {point.backup_name}: counts {counts} match; amcheck passed on {indexes} indexes"


def drill_database(settings: AgentSettings, storage: Storage,
                   database: Database) -> tuple[str, str]:
    """The restored base backup and what was proved of it."""
    env = tools.walg_env(storage, database)
    point = find_reference(settings, storage, database, env)
    work = Path(tempfile.mkdtemp(prefix=f"drill-{database.name}-",
                                 dir=Path(settings.state_dir, "drill")))
    try:
        pgdata = work / "pgdata"
        tools.run([settings.walg_binary, "backup-fetch", str(pgdata), point.backup_name], env)
        with recovered_server(settings, pgdata, work, env, point) as port:
            return point.backup_name, check_recovered(settings, work, port, database, point)
    except Exception as error:  # named by the backup it could not restore
        raise tools.RestoreFailed(point.backup_name, f"base backup {point.backup_name} (restore "
                                  f"point {point.restore_point}): "
                                  f"{tools.describe_failure(error)}") from error
    finally:
        shutil.rmtree(work, ignore_errors=True)


def drill_file_set(settings: AgentSettings, storage: Storage, file_set: FileSet,
                   pick: Pick) -> tuple[str, str]:
    """The restored snapshot and what was proved of it."""
    work = Path(tempfile.mkdtemp(prefix=f"drill-{file_set.name}-",
                                 dir=Path(settings.state_dir, "drill")))
    try:
        compared = files.restore_and_compare(settings, storage, file_set, work / "restore", pick)
        return compared["snapshot"], (
            f"{compared['files']} files match their recorded hashes "
            f"({compared['unstable']} changed during the backup and were not compared)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_drill(settings: AgentSettings, target: str = "primary",
              pick: Pick | None = None) -> list[records.DrillOutcome]:
    """Restore and check every database and file set from `target`. File sets with drillPick
    random-within restore the snapshot `pick` chooses (a new pick, logged, if None)."""
    storage = settings.storage(target)
    pick = pick or Pick.new(dt.datetime.now(dt.UTC))
    picking = [f.name for f in settings.file_sets if f.drill_pick != "latest"]
    if picking:
        log.info("drill from %s: pick %s for %s (rerun: backup-agent drill --target %s "
                 "--pick %s)", target, pick.id, ", ".join(picking), target, pick.id)
    Path(settings.state_dir, "drill").mkdir(parents=True, exist_ok=True)
    outcomes = []
    for database in settings.databases:
        outcomes.append(_outcome(settings, target, "postgres", database.name, "",
                                 lambda d=database: drill_database(settings, storage, d)))
    for file_set in settings.file_sets:
        outcomes.append(_outcome(
            settings, target, "files", file_set.name,
            pick.id if file_set.name in picking else "",
            lambda f=file_set: drill_file_set(settings, storage, f, pick)))
    records.write_drill(settings, target, outcomes)
    return outcomes


def _outcome(settings: AgentSettings, target: str, kind: str, name: str, pick: str,
             restore: Callable[[], tuple[str, str]]) -> records.DrillOutcome:
    """One restore, timed; its outcome is also appended to the outcome record."""
    started, clock = time.time(), time.monotonic()
    try:
        point, detail = restore()
        success = True
    except Exception as error:  # any failure is a failed drill, reported, not raised
        log.exception("drill of %s %s failed", kind, name)
        point = error.restore_point if isinstance(error, tools.RestoreFailed) else ""
        detail, success = tools.describe_failure(error), False
    duration = time.monotonic() - clock
    tool = settings.walg_binary if kind == "postgres" else settings.restic_binary
    evidence.record(settings, evidence.Outcome(
        "drill", f"{kind}:{name}", target, started, started + duration, success, detail,
        restore_point=point, pick=pick, tool_version=evidence.tool_version(tool)))
    return records.DrillOutcome(kind, name, success, duration, detail, restore_point=point,
                                pick=pick)
