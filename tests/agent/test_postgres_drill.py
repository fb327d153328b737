"""A real PostgreSQL 15 archiving through the FAKE wal-g (tests/fakes/wal-g: no wal-g binary
exists on this machine) into moto; `backup-agent` backs it up while writes continue and the
drill recovers it to the recorded restore point."""

from __future__ import annotations

import json
import lzma
import shutil
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from backup_agent import drill, exporter, postgres, records, tools

from .conftest import PG_BIN, PG_USER, REGION, TABLES, free_port, write_secret

BACKUP_PASSWORD = "backup-role-password"
WRITES_AROUND_THE_BACKUP = 20  # transactions committed before and after run_backup


def as_postgres(*argv: str, env: dict[str, str] | None = None) -> list[str]:
    prefix = ["runuser", "-u", PG_USER, "--"]
    if env:
        prefix += ["env", *[f"{key}={value}" for key, value in env.items()]]
    return [*prefix, *argv]


@pytest.fixture
def database(shared_dir, moto_endpoint, bucket, fake_walg):
    """initdb + a server with archive_command = '<fake wal-g> wal-push %p'; stopped by PID."""
    pgdata = shared_dir / "pgdata"
    socket_dir = shared_dir / "socket"
    for directory in (pgdata, socket_dir):
        directory.mkdir(mode=0o700)
        shutil.chown(directory, PG_USER, PG_USER)
    subprocess.run(as_postgres(str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", "postgres",
                               "--auth-local=trust", "--auth-host=scram-sha-256", "-N", "-k"),
                   check=True, capture_output=True)
    port = free_port()
    walg_env = {
        "WALG_S3_PREFIX": f"s3://{bucket}/postgres/biometrics", "AWS_REGION": REGION,
        "AWS_ENDPOINT": moto_endpoint, "AWS_S3_FORCE_PATH_STYLE": "true",
        "WALG_COMPRESSION_METHOD": "lzma",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    }
    with open(pgdata / "postgresql.conf", "a") as conf:
        conf.write(f"listen_addresses = '127.0.0.1'\nport = {port}\n"
                   f"unix_socket_directories = '{socket_dir}'\n"
                   f"archive_mode = on\narchive_command = '{fake_walg} wal-push %p'\n"
                   "archive_timeout = 60\nfsync = off\n")
    log = open(shared_dir / "server.log", "wb")
    server = subprocess.Popen(as_postgres(str(PG_BIN / "postgres"), "-D", str(pgdata),
                                          env=walg_env), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                admin = psycopg.connect(host=str(socket_dir), port=port, user="postgres",
                                        dbname="postgres", autocommit=True)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        with admin:
            admin.execute("CREATE DATABASE biometrics")
            admin.execute(f"CREATE ROLE backup LOGIN REPLICATION PASSWORD '{BACKUP_PASSWORD}'")
        with psycopg.connect(host=str(socket_dir), port=port, user="postgres",
                             dbname="biometrics", autocommit=True) as connection:
            for table in TABLES:
                connection.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, "
                                   "payload text NOT NULL, created timestamptz DEFAULT now())")
                connection.execute(f"CREATE INDEX ON {table} (created)")
                connection.execute(f"INSERT INTO {table} (payload) SELECT md5(g::text) "
                                   "FROM generate_series(1, 500) g")
            # What the backup role needs (docs/runtime.md): UPDATE only for LOCK ... SHARE MODE.
            connection.execute(f"GRANT SELECT, UPDATE ON {', '.join(TABLES)} TO backup")
            connection.execute("GRANT EXECUTE ON FUNCTION pg_create_restore_point(text), "
                               "pg_switch_wal() TO backup")
        yield {"port": port, "socket": socket_dir, "pgdata": pgdata, "server": server}
    finally:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0]) \
            if (pgdata / "postmaster.pid").exists() else None
        if pid is not None and server.poll() is None:
            subprocess.run(["kill", "-INT", str(pid)], check=False)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture
def pg_settings(agent_settings, database, shared_dir):
    password_file = write_secret(shared_dir / "secrets", "db-password", BACKUP_PASSWORD)

    def make(retain_full=2, **overrides):
        data = {
            "databases": [{
                "name": "biometrics", "host": "127.0.0.1", "port": database["port"],
                "user": "backup", "dbname": "biometrics", "passwordFile": password_file,
                "tables": list(TABLES), "retainFull": retain_full, "schedule": "0 2 * * *",
                "rpoSeconds": 86400, "compression": "lzma",
            }],
            "jobs": ["postgres:biometrics"],
        }
        data.update(overrides)
        return agent_settings(**data)

    return make


class Writer(threading.Thread):
    """Inserts into all three tables in small transactions until stopped."""

    def __init__(self, database) -> None:
        super().__init__(daemon=True)
        self.database = database
        self.stop = threading.Event()
        self.committed = 0

    def run(self) -> None:
        with psycopg.connect(host=str(self.database["socket"]), port=self.database["port"],
                             user="postgres", dbname="biometrics", autocommit=True) as connection:
            while not self.stop.is_set():
                with connection.transaction():
                    for table in TABLES:
                        connection.execute(f"INSERT INTO {table} (payload) VALUES ('w')")
                self.committed += 1
                time.sleep(0.005)  # WAL volume the fake wal-g archives in time

    def wait_for(self, committed: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.committed < committed:
            assert self.is_alive() and time.monotonic() < deadline, "the writer stopped writing"
            time.sleep(0.01)


def live_counts(database) -> dict[str, int]:
    with psycopg.connect(host=str(database["socket"]), port=database["port"], user="postgres",
                         dbname="biometrics") as connection:
        return {t: connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_backup_under_writes_then_drill_recovers_exact_counts(pg_settings, database, s3, bucket):
    settings = pg_settings()
    writer = Writer(database)
    writer.start()
    try:
        writer.wait_for(WRITES_AROUND_THE_BACKUP)  # writes before the backup...
        point = postgres.run_backup(settings, settings.database("biometrics"))
        writer.wait_for(writer.committed + WRITES_AROUND_THE_BACKUP)  # ...and after it
    finally:
        writer.stop.set()
        writer.join()
    assert writer.committed > 0
    final = live_counts(database)
    # Writes went on after the restore point: production now differs from the recorded counts.
    assert all(final[t] > point.counts[t] for t in TABLES)
    # Each writer transaction inserts into all three tables: a consistent cut has equal counts.
    assert len(set(point.counts.values())) == 1

    key = postgres.reference_key(settings.primary, settings.database("biometrics"),
                                 point.backup_name)
    recorded = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert recorded["counts"] == point.counts
    assert recorded["restore_point"] == f"backup-agent-{point.backup_name}"

    restore = pg_settings(role="restore", jobs=["drill"])
    [outcome] = drill.run_drill(restore)
    assert outcome.success, outcome.detail
    assert outcome.detail.startswith(f"backup {point.backup_name}: counts {point.counts} match")
    # PostgreSQL 15's 165 catalog B-tree indexes and the test's 6.
    assert outcome.detail.endswith("amcheck passed on 171 indexes")
    assert list(Path(restore.state_dir, "drill").iterdir()) == []

    reader = exporter.BucketReader(restore, "primary", restore.primary)
    assert reader.refresh()
    state = reader.databases["biometrics"]
    assert state.base_backups == 1
    assert state.invalid_sentinels == 0
    assert state.wal_newest_position is not None

    # Damage the WAL segment holding the restore point (same size, valid compression):
    # PostgreSQL's record CRC rejects it, recovery cannot reach the target, the drill fails.
    wal_key = f"postgres/biometrics/wal_005/{point.wal_file}.lzma"
    segment = bytearray(lzma.decompress(s3.get_object(Bucket=bucket, Key=wal_key)["Body"].read()))
    offset = int(point.lsn.split("/")[1], 16) % (16 * 1024 * 1024)
    for index in range(max(offset - 64, 40), offset + 64):
        segment[index] ^= 0x5A
    s3.put_object(Bucket=bucket, Key=wal_key,
                  Body=lzma.compress(bytes(segment), format=lzma.FORMAT_ALONE, preset=0))
    [damaged] = drill.run_drill(restore)
    assert not damaged.success
    # Named by what could not be restored: the base backup and its restore point.
    assert damaged.detail.startswith(
        f"base backup {point.backup_name} (restore point {point.restore_point}): the restored "
        "server exited during recovery: ")
    assert list(Path(restore.state_dir, "drill").iterdir()) == []
    results = records.read_drill(restore, "primary")
    assert [o.success for o in results.outcomes] == [False]


def test_retention_deletes_older_full_backups_and_their_wal(pg_settings, s3, bucket):
    settings = pg_settings(retain_full=1)
    database = settings.database("biometrics")
    names = [postgres.run_backup(settings, database).backup_name]
    # moto's LastModified has one-second resolution and backup-list orders by the sentinel's:
    # the second backup starts once the first sentinel's second is over (it mostly is by now).
    sentinel = (f"{settings.primary.database_root('biometrics')}{postgres.BASEBACKUPS}"
                f"{names[0]}_backup_stop_sentinel.json")
    written = s3.head_object(Bucket=bucket, Key=sentinel)["LastModified"].timestamp()
    while time.time() < written + 1:
        time.sleep(0.01)
    names.append(postgres.run_backup(settings, database).backup_name)
    with tools.pgpass_file(database) as pgpass:
        env = tools.walg_env(settings.primary, database) | tools.libpq_env(database, pgpass)
        assert postgres.backup_names(settings, env) == names[1:]  # retainFull = 1
    keys = [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix="postgres/biometrics/") for item in page.get("Contents", [])]
    oldest_kept = names[1].removeprefix("base_")
    wal = [k.rsplit("/", 1)[1] for k in keys if "/wal_005/" in k]
    assert wal and all(name[:24] >= oldest_kept for name in wal)
    assert not any(names[0] in key for key in keys)
    assert sum(key.endswith(postgres.REFERENCE_FILE) for key in keys) == 1
    # What the scheduler exports about archiving, read from the real pg_stat_archiver.
    archiver = postgres.archiver_status(database)
    assert archiver["failed_total"] == 0
    assert archiver["archived_total"] >= 4  # >= 2 segments and a .backup file per backup
    assert archiver["last_archived_timestamp_seconds"] > time.time() - 120
