"""The exporter against moto_server: real repository state, incremental reads and faults."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config
from prometheus_client import start_http_server
from prometheus_client.registry import CollectorRegistry

from backup_agent import cli, exporter, records, status, status_page
from backup_agent.exporter import BucketReader, CountingClient
from contract.layout import segment_name

from .conftest import REGION, free_port, wait_for_port
from .wal_g_objects import ROOT, metric_values, only, put_backup


def put_wal(s3, bucket, first, count, timeline=1):
    for number in range(first, first + count):
        s3.put_object(Bucket=bucket, Key=f"{ROOT}wal_005/{segment_name(timeline, number)}.lz4",
                      Body=b"w")


def modified(s3, bucket, key):
    return s3.head_object(Bucket=bucket, Key=key)["LastModified"].timestamp()


@pytest.fixture
def settings(agent_settings):
    return agent_settings(
        role="restore", jobs=["drill"],  # the drill runs here: its result file
        databases=[{"name": "biometrics", "host": "db", "user": "backup", "dbname": "biometrics",
                    "passwordFile": "/run/secrets/unused", "tables": ["users"], "retainFull": 7,
                    "schedule": "0 2 * * *", "rpoSeconds": 86400}],
        fileSets=[{"name": "app", "paths": ["/app/uploads"], "hostname": "app",
                   "schedule": "0 3 * * *", "rpoSeconds": 86400}],
        walRelistMargin=4, fullRelistEvery=100,
    )


def test_reports_repository_state_not_scrape_time(settings, s3, bucket):
    put_backup(s3, bucket, "base_000000010000000000000002", "2026-01-01T00:10:00.000000Z")
    put_backup(s3, bucket, "base_000000010000000000000009", "2026-01-02T00:10:00.000000Z")
    put_wal(s3, bucket, 1, 12)
    s3.put_object(Bucket=bucket, Key="restic/config", Body=b"c")
    s3.put_object(Bucket=bucket, Key="restic/snapshots/" + "a" * 64, Body=b"s")
    reader = BucketReader(settings, "primary", settings.primary)
    assert reader.refresh()
    values = metric_values(exporter.BackupCollector(settings, [reader]))
    assert only(values, "backup_postgres_base_backup_timestamp_seconds") == dt.datetime(
        2026, 1, 2, 0, 10, tzinfo=dt.UTC).timestamp()
    assert only(values, "backup_postgres_base_backups") == 2
    assert only(values, "backup_postgres_wal_archived_timestamp_seconds") == modified(
        s3, bucket, f"{ROOT}wal_005/{segment_name(1, 12)}.lz4")
    assert only(values, "backup_restic_snapshot_timestamp_seconds") == modified(
        s3, bucket, "restic/snapshots/" + "a" * 64)
    assert only(values, "backup_restic_snapshots") == 1
    assert only(values, "backup_restic_repository_present") == 1
    assert only(values, "backup_exporter_s3_up") == 1


def test_wal_is_listed_incrementally_with_a_safety_margin(settings, s3, bucket):
    put_wal(s3, bucket, 1, 40)
    reader = BucketReader(settings, "primary", settings.primary)
    reader.refresh()
    state = reader.databases["biometrics"]
    assert (state.wal_newest_position, state.wal_listed) == ((1, 40), 40)
    put_wal(s3, bucket, 41, 3)
    # A straggler below the newest name, inside the margin, is still seen.
    s3.put_object(Bucket=bucket, Key=f"{ROOT}wal_005/{segment_name(1, 38)}.lz4", Body=b"late")
    reader.refresh()
    # StartAfter = the bare name of segment 40 - margin 4 = 36, which sorts before its
    # "36.lz4" (and "36.<offset>.backup.*"): keys 36..43 are listed, 8 instead of 43.
    assert (state.wal_newest_position, state.wal_listed) == ((1, 43), 8)
    assert state.wal_newest_modified == modified(
        s3, bucket, f"{ROOT}wal_005/{segment_name(1, 38)}.lz4")


def test_empty_bucket_and_missing_restic_repository(settings, bucket):
    reader = BucketReader(settings, "primary", settings.primary)
    assert reader.refresh()
    values = metric_values(exporter.BackupCollector(settings, [reader]))
    assert only(values, "backup_exporter_s3_up") == 1
    assert only(values, "backup_postgres_base_backups") == 0
    assert only(values, "backup_restic_repository_present") == 0
    assert only(values, "backup_restic_snapshots") == 0
    # No backup means no timestamp: the "older than RPO" alert fires on absence (see rules).
    assert "backup_postgres_base_backup_timestamp_seconds" not in values
    assert "backup_restic_snapshot_timestamp_seconds" not in values


def test_corrupt_newest_sentinel_is_counted_and_the_valid_one_reported(settings, s3, bucket):
    put_backup(s3, bucket, "base_000000010000000000000002", "2026-01-01T00:10:00.000000Z")
    put_backup(s3, bucket, "base_000000010000000000000009", "", body=b'{"LSN": 1, "Fini')
    reader = BucketReader(settings, "primary", settings.primary)
    reader.refresh()
    values = metric_values(exporter.BackupCollector(settings, [reader]))
    assert only(values, "backup_postgres_base_backups") == 2
    # Written last, so newest (on a one-second LastModified tie wal-g, too, takes the later name).
    assert only(values, "backup_postgres_invalid_sentinels") == 1
    assert only(values, "backup_postgres_base_backup_timestamp_seconds") == dt.datetime(
        2026, 1, 1, 0, 10, tzinfo=dt.UTC).timestamp()
    assert only(values, "backup_exporter_s3_up") == 1


def test_s3_unreachable_keeps_last_values_and_says_so(settings, s3, bucket):
    put_backup(s3, bucket, "base_000000010000000000000002", "2026-01-01T00:10:00.000000Z")
    reader = BucketReader(settings, "primary", settings.primary)
    assert reader.refresh()
    dead = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{free_port()}", region_name=REGION,
                        config=Config(connect_timeout=1, retries={"total_max_attempts": 1}))
    reader.client = CountingClient(dead)
    assert not reader.refresh()
    values = metric_values(exporter.BackupCollector(settings, [reader]))
    assert only(values, "backup_exporter_s3_up") == 0
    assert only(values, "backup_exporter_s3_errors_total") == 1
    finish = dt.datetime(2026, 1, 1, 0, 10, tzinfo=dt.UTC).timestamp()
    assert only(values, "backup_postgres_base_backup_timestamp_seconds") == finish
    # The status rows, table and page say so too, and keep showing the last known state.
    database, _ = status.rows(settings, reader, time.time())
    assert (database.bucket_readable, database.backup.newest) == (False, finish)
    assert status.to_table([database]).splitlines()[1].endswith("UNREADABLE")
    assert '<li class="unreadable">primary (' in status_page.render_page([database], time.time())


def test_scrapes_are_served_from_the_refresh_loop_without_reading_s3(settings, s3, bucket):
    put_backup(s3, bucket, "base_000000010000000000000002", "2026-01-01T00:10:00.000000Z")
    collector = exporter.BackupCollector(settings, exporter.readers_for(settings))
    loop = exporter.RefreshLoop(collector, interval=3600)
    loop.refresh_once()
    registry = CollectorRegistry()
    registry.register(collector)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        before = dict(collector.readers[0].client.requests)
        pages = []
        for _ in range(3):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
                pages.append(page.read().decode())
        assert collector.readers[0].client.requests == before
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    expected = (
        f'backup_postgres_base_backup_timestamp_seconds{{bucket="{bucket}",'
        'database="biometrics",target="primary"} 1.7672262e+09')
    assert all(expected in page for page in pages)


def test_delete_markers_are_counted_per_prefix_without_restic_locks(settings, s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    wal = [f"{ROOT}wal_005/{segment_name(1, number)}.lz4" for number in (1, 2)]
    for key in (*wal, "restic/locks/" + "b" * 64, "restic/data/aa/" + "a" * 64):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        s3.delete_object(Bucket=bucket, Key=key)
    reader = BucketReader(settings, "primary", settings.primary)
    assert reader.refresh()
    values = metric_values(exporter.BackupCollector(settings, [reader]))
    markers = {dict(labels)["prefix"]: value
               for labels, value in values["backup_s3_delete_markers"].items()}
    assert markers == {"postgres/": 2, "restic/": 1}


def test_status_rows_show_each_backup_against_its_limit(settings, s3, bucket, shared_dir,
                                                        capsys):
    finish = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    put_backup(s3, bucket, "base_000000010000000000000002",
               finish.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    records.write_drill(settings, "primary", [
        records.DrillOutcome("postgres", "biometrics", True, 12.5, "ok"),
        records.DrillOutcome("files", "app", False, 3.0, "hash mismatch")])
    finished = records.read_drill(settings, "primary").finished
    arguments = ["--settings", str(shared_dir / "settings.json"), "status"]
    # A check: what is late or failed makes it exit 1, named in one line.
    problems = ("error: status: primary database biometrics: wal none, beyond 1 d; primary "
                "file set app: backup none, beyond 1 d; primary file set app: the last drill "
                "failed\n")
    assert cli.main([*arguments, "--json"]) == 1
    output = capsys.readouterr()
    assert output.err == problems
    database, file_set = json.loads(output.out)
    # The age comes from the sentinel's FinishTime; the limit is the daily schedule + 2 h.
    assert 3 * 3600 - 5 < database["backup"].pop("age_seconds") < 3 * 3600 + 5
    refreshed = database.pop("refreshed")
    assert refreshed == pytest.approx(time.time(), abs=10)
    assert database == {
        "target": "primary", "bucket": bucket, "kind": "database", "name": "biometrics",
        "prefix": "postgres/biometrics/",
        "backup": {"newest": finish.timestamp(), "max_age_seconds": 26 * 3600,
                   "overdue": False},
        "wal": {"newest": None, "age_seconds": None, "max_age_seconds": 86400, "overdue": True},
        "drill": {"result": "passed", "finished": finished},
        "bucket_readable": True, "overdue": True}
    assert file_set == {
        "target": "primary", "bucket": bucket, "kind": "file set", "name": "app",
        "prefix": "restic/",
        "backup": {"newest": None, "age_seconds": None, "max_age_seconds": 86400,
                   "overdue": True},
        "wal": None, "drill": {"result": "failed", "finished": finished},
        "bucket_readable": True, "refreshed": refreshed, "overdue": True}
    assert cli.main(arguments) == 1
    output = capsys.readouterr()
    assert output.err == problems
    header, base, files = output.out.splitlines()
    assert header.split() == ["target", "kind", "name", "newest", "age/max", "wal", "age/max",
                              "last", "drill", "bucket"]
    assert base.startswith("primary  database  biometrics")
    assert "/1 d 2 h ok  -/1 d LATE" in base and base.split()[-2:] == ["passed", "ok"]
    assert files.split()[:4] == ["primary", "file", "set", "app"]
    assert "-/1 d LATE" in files and "failed" in files


def test_exporter_command_serves_and_stops_on_sigterm(settings, s3, bucket, shared_dir):
    put_backup(s3, bucket, "base_000000010000000000000002", "2026-01-01T00:10:00.000000Z")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "backup_agent.cli", "--settings",
                                str(shared_dir / "settings.json"), "exporter", "--port",
                                str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        deadline = time.monotonic() + 10
        while True:  # the first refresh runs in its own thread right after start
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
                text = page.read().decode()
            if "backup_postgres_base_backups{" in text or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert (f'backup_exporter_s3_up{{bucket="{bucket}",target="primary"}} 1.0') in text
    assert (f'backup_postgres_base_backups{{bucket="{bucket}",database="biometrics",'
            'target="primary"} 1.0') in text
