"""`backup-agent run postgres`: a streamed wal-g base backup, a restore point with the row
counts that hold exactly at it, then wal-g's retention.

Why the counts are exact: the restore point is created inside a transaction that first takes
`LOCK TABLE ... IN SHARE MODE` on the counted tables. SHARE conflicts with the ROW EXCLUSIVE
lock every INSERT/UPDATE/DELETE holds until its transaction ends, so when the lock is granted
every writer of those tables has committed or aborted (its commit record is already in WAL) and
no new writer can commit until we do. The counts (read after the lock, READ COMMITTED) and the
restore point's WAL record therefore describe the same state: recovery with
`recovery_target_name` replays exactly the commits before that record. Writers wait for the
duration of the counts only; other tables are not blocked.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg import sql

from backup_agent import s3, tools
from contract.agent_settings import AgentSettings, Database, KeptBackups, Storage
from contract.layout import RETENTION_TAG_ACTIVE, RETENTION_TAG_KEY

log = logging.getLogger(__name__)

BASEBACKUPS = "basebackups_005/"
# Written beside wal-g's own files in the backup's folder, so `delete retain` removes it with
# the backup (its key carries the backup's 24-hex WAL name).
REFERENCE_FILE = "restore_point.json"
LOCK_TIMEOUT = "60s"
SEGMENT_SIZE = 16 * 1024 * 1024
SEGMENTS_PER_XLOGID = 256


@dataclass(frozen=True)
class RestorePoint:
    backup_name: str
    restore_point: str
    lsn: str
    wal_file: str
    counts: dict[str, int]
    created: str


def reference_key(storage: Storage, database: Database, backup_name: str) -> str:
    return f"{storage.database_root(database.name)}{BASEBACKUPS}{backup_name}/{REFERENCE_FILE}"


def connect(database: Database, pgpass: str, **kwargs: Any) -> psycopg.Connection:
    return psycopg.connect(host=database.host, port=database.port, user=database.user,
                           dbname=database.dbname, passfile=pgpass, connect_timeout=10, **kwargs)


def table_identifier(name: str) -> sql.Identifier:
    return sql.Identifier(*name.split("."))


def walg(settings: AgentSettings, args: Sequence[str], env: dict[str, str]) -> tools.Result:
    return tools.run([settings.walg_binary, *args], env)


def backup_names(settings: AgentSettings, env: dict[str, str]) -> list[str]:
    """Oldest first, as `wal-g backup-list --json` orders them (by sentinel LastModified)."""
    listing = json.loads(walg(settings, ["backup-list", "--json"], env).stdout or "[]")
    return [entry["backup_name"] for entry in listing]


def create_restore_point(database: Database, pgpass: str, backup_name: str) -> RestorePoint:
    name = f"backup-agent-{backup_name}"
    tables = [table_identifier(t) for t in database.tables]
    with connect(database, pgpass) as connection:
        with connection.transaction():
            connection.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(
                sql.Literal(LOCK_TIMEOUT)))
            connection.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(
                sql.SQL(", ").join(tables)))
            counts = {
                table: connection.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(identifier)).fetchone()[0]
                for table, identifier in zip(database.tables, tables, strict=True)
            }
            lsn, wal_file = connection.execute(
                "SELECT p, pg_walfile_name(p) FROM pg_create_restore_point(%s) AS p",
                [name]).fetchone()
        # Close the segment holding the restore point so archive_command ships it now.
        connection.execute("SELECT pg_switch_wal()")
    return RestorePoint(backup_name=backup_name, restore_point=name, lsn=str(lsn),
                        wal_file=wal_file, counts=counts,
                        created=dt.datetime.now(dt.UTC).isoformat())


def wait_archived(database: Database, pgpass: str, wal_file: str, timeout: float) -> None:
    """The drill needs the restore point's segment in the archive; wait for the database's
    archiver (pg_stat_archiver) to report it or a later segment of the same timeline."""
    deadline = time.monotonic() + timeout
    with connect(database, pgpass, autocommit=True) as connection:
        while True:
            archived = connection.execute(
                "SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]
            if archived and archived[:8] == wal_file[:8] and archived[:24] >= wal_file:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"WAL segment {wal_file} was not archived within {timeout} s "
                                   f"(last archived: {archived})")
            time.sleep(0.2)


def run_backup(settings: AgentSettings, database: Database, *,
               archive_timeout: float = 300.0) -> RestorePoint:
    storage = settings.primary
    with tools.pgpass_file(database) as pgpass:
        env = tools.walg_env(storage, database) | tools.libpq_env(database, pgpass)
        before = set(backup_names(settings, env))
        walg(settings, ["backup-push"], env)
        new = [name for name in backup_names(settings, env) if name not in before]
        if len(new) != 1:
            raise RuntimeError(f"expected one new base backup after backup-push, found {new}")
        point = create_restore_point(database, pgpass, new[0])
        wait_archived(database, pgpass, point.wal_file, archive_timeout)
        s3.client(storage).put_object(
            Bucket=storage.bucket, Key=reference_key(storage, database, point.backup_name),
            Body=json.dumps(asdict(point), indent=2).encode(), ContentType="application/json")
        log.info("base backup %s, restore point %s at %s", point.backup_name,
                 point.restore_point, point.lsn)
        walg(settings, ["delete", "retain", "FULL", str(database.retain_full), "--confirm"], env)
    return point


def archiver_status(database: Database) -> dict[str, float]:
    """pg_stat_archiver as numbers for the scheduler's metrics."""
    with tools.pgpass_file(database) as pgpass, \
            connect(database, pgpass, autocommit=True) as connection:
        row = connection.execute(
            "SELECT archived_count, failed_count, extract(epoch FROM last_archived_time), "
            "extract(epoch FROM last_failed_time) FROM pg_stat_archiver").fetchone()
    return {
        "archived_total": float(row[0]),
        "failed_total": float(row[1]),
        "last_archived_timestamp_seconds": float(row[2] or 0),
        "last_failed_timestamp_seconds": float(row[3] or 0),
    }


def _segment(timeline: int, lsn: int) -> str:
    number = lsn // SEGMENT_SIZE
    return f"{timeline:08X}{number // SEGMENTS_PER_XLOGID:08X}{number % SEGMENTS_PER_XLOGID:08X}"


class KeepError(ValueError):
    """`keep` was asked for something the stack's keep settings do not allow."""


def retain_until(kept: KeptBackups, until: dt.date | None,
                 now: dt.datetime | None = None) -> dt.datetime | None:
    """The retain-until moment (`until` at 00:00 UTC) for compliance-retention, None for a
    legal hold; refused before anything is written when the settings do not allow it."""
    if kept.protection == "legal-hold":
        if until is not None:
            raise KeepError("--until: keep.protection is legal-hold, which has no end date "
                            "(break-glass lifts it)")
        return None
    if until is None:
        raise KeepError("--until DATE is required: keep.protection is compliance-retention, "
                        "and a COMPLIANCE retention cannot be shortened once set")
    moment = dt.datetime(until.year, until.month, until.day, tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    if moment <= now:
        raise KeepError(f"--until {until.isoformat()}: must be a future date")
    if moment - now > dt.timedelta(days=kept.max_days):
        raise KeepError(f"--until {until.isoformat()}: is {(moment - now).days + 1} days away; "
                        f"keep.maxDays allows at most {kept.max_days} (the bucket policy "
                        "denies a longer retention)")
    return moment


def mark_object(client: Any, bucket: str, key: str) -> str | None:
    """Tag the current version Retention=active (the bucket policy denies removing the tag);
    returns its version id, so the protection applies to exactly the version marked."""
    tags = client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    marker = {"Key": RETENTION_TAG_KEY, "Value": RETENTION_TAG_ACTIVE}
    if marker not in tags:  # re-tagging a marked object is denied by the bucket policy
        client.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": [*tags, marker]})
    return client.head_object(Bucket=bucket, Key=key).get("VersionId")


def extend_retention(client: Any, bucket: str, key: str, version: str | None,
                     until: dt.datetime) -> None:
    """COMPLIANCE retention of the version until at least `until`. A version already kept
    longer keeps its date: S3 refuses to shorten COMPLIANCE retention (moto accepts it, which
    is why keep never asks). Read with HeadObject, which returns the lock with
    s3:GetObjectRetention."""
    head = client.head_object(Bucket=bucket, Key=key,
                              **({"VersionId": version} if version else {}))
    current = head.get("ObjectLockRetainUntilDate")
    if head.get("ObjectLockMode") == "COMPLIANCE" and current is not None and current >= until:
        return
    client.put_object_retention(
        Bucket=bucket, Key=key, **({"VersionId": version} if version else {}),
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": max(until, current or until)})


def keep_backup(settings: AgentSettings, database: Database, backup_name: str,
                until: dt.date | None = None) -> list[str]:
    """Keep a base backup past the lock window (e.g. a year-end backup): `wal-g backup-mark`
    makes `delete retain` skip it and its WAL; every object a restore of it needs is tagged
    Retention=active and kept — COMPLIANCE retention until `until` (keep.protection
    compliance-retention) or a legal hold. The replica's copies follow: S3 replicates Object
    Lock retention and legal-hold changes of a source version to its replica (S3 User Guide,
    "Replicating metadata changes with replica modification sync"). Returns the kept keys."""
    storage = settings.primary
    kept = settings.kept_backups
    if kept is None:
        raise KeepError("keep: this host's settings have no keep (a restore host); allowed: run "
                        "it on the backup host")
    moment = retain_until(kept, until)  # refused before anything is written
    walg(settings, ["backup-mark", backup_name], tools.walg_env(storage, database))
    client = s3.client(storage)
    root = storage.database_root(database.name)
    folder = f"{root}{BASEBACKUPS}{backup_name}/"
    metadata = json.loads(client.get_object(Bucket=storage.bucket,
                                            Key=folder + "metadata.json")["Body"].read())
    keys = [f"{root}{BASEBACKUPS}{backup_name}_backup_stop_sentinel.json"]
    paginator = client.get_paginator("list_objects_v2")
    keys += [item["Key"] for page in paginator.paginate(Bucket=storage.bucket, Prefix=folder)
             for item in page.get("Contents", [])]
    # The WAL from the backup's start to its end (what reaching consistency needs), on its
    # timeline (the first 8 hex digits of the name), as wal-g's permanence rule (start-1..end-1).
    timeline = int(backup_name.removeprefix("base_")[:8], 16)
    first = _segment(timeline, metadata["start_lsn"] - 1)
    last = _segment(timeline, metadata["finish_lsn"] - 1)
    wal = f"{root}wal_005/"
    listed = (item["Key"] for page in paginator.paginate(
        Bucket=storage.bucket, Prefix=wal, StartAfter=wal + first)
        for item in page.get("Contents", []))
    keys += itertools.takewhile(lambda key: key[len(wal):][:24] <= last, listed)
    for key in keys:
        version = mark_object(client, storage.bucket, key)
        if moment is None:
            client.put_object_legal_hold(Bucket=storage.bucket, Key=key,
                                         **({"VersionId": version} if version else {}),
                                         LegalHold={"Status": "ON"})
        else:
            extend_retention(client, storage.bucket, key, version, moment)
    log.info("kept base backup %s: %d objects tagged %s=%s and %s", backup_name, len(keys),
             RETENTION_TAG_KEY, RETENTION_TAG_ACTIVE,
             "under legal hold" if moment is None
             else f"in COMPLIANCE retention until at least {moment.isoformat()}")
    return keys
