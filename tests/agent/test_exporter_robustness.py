"""No object in the bucket and no file on disk silences the exporter: refreshes go on, scrapes
stay HTTP 200 with the last good values, and the refresh metrics say what happened."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from prometheus_client import start_http_server
from prometheus_client.registry import CollectorRegistry

from backup_agent import exporter, records
from backup_agent.exporter import BucketReader, parse_sentinel

from .conftest import free_port, wait_for_port
from .wal_g_objects import metric_values, only, put_backup, sentinel

VALID = "2026-01-01T00:10:00.000000Z"
OLD_FINISH = 1767226200.0  # VALID as a timestamp


@pytest.fixture
def settings(agent_settings):
    return agent_settings(
        role="restore", jobs=["drill"],  # the drill runs here: its result file
        databases=[{"name": "biometrics", "host": "db", "user": "backup", "dbname": "biometrics",
                    "tables": ["users"], "retainFull": 7, "schedule": "0 2 * * *",
                    "rpoSeconds": 86400}],
        deleteMarkerScanSeconds=0)


def body(**fields) -> bytes:
    document = json.loads(sentinel(VALID))
    for key, value in fields.items():
        if value is KeyError:
            del document[key]
        else:
            document[key] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize("broken", [
    body(FinishTime=KeyError), body(FinishTime=None), body(FinishTime=1767226200),
    body(FinishTime="yesterday"), body(SystemIdentifier="7301234567890123456"),
    body(SystemIdentifier=True), sentinel(VALID)[:40], b"[1, 2]", b"", b"\xff\xfe",
], ids=["no-finish-time", "null-finish-time", "numeric-finish-time", "text-finish-time",
        "text-system-identifier", "boolean-system-identifier", "truncated", "a-list", "empty",
        "not-utf8"])
def test_malformed_sentinels_are_counted_and_the_valid_one_reported(settings, s3, bucket,
                                                                    broken):
    assert parse_sentinel(broken) is None
    put_backup(s3, bucket, "base_000000010000000000000002", VALID)
    put_backup(s3, bucket, "base_000000010000000000000009", "", body=broken)
    reader = BucketReader(settings, "primary", settings.primary)
    assert reader.refresh()
    values = metric_values(exporter.BackupCollector(settings, [reader]))
    assert only(values, "backup_postgres_invalid_sentinels") == 1
    assert only(values, "backup_postgres_base_backup_timestamp_seconds") == OLD_FINISH
    assert only(values, "backup_exporter_s3_up") == 1


def refresh_metrics(collector) -> tuple[float, float, float | None]:
    values = metric_values(collector)
    refreshed = values.get("backup_exporter_last_refresh_timestamp_seconds")
    return (only(values, "backup_exporter_s3_up"), only(values, "backup_exporter_s3_errors_total"),
            next(iter(refreshed.values())) if refreshed else None)


@pytest.mark.parametrize("damage", ["directory", "not-json", "wrong-types", "other-target"])
def test_an_unreadable_drill_result_keeps_the_last_one_and_says_so(settings, bucket, damage):
    records.write_drill(settings, "primary", [records.DrillOutcome("postgres", "biometrics", True,
                                                                 12.5, "ok")])
    reader = BucketReader(settings, "primary", settings.primary)
    collector = exporter.BackupCollector(settings, [reader])
    assert reader.refresh()
    up, errors, good_refresh = refresh_metrics(collector)
    assert (up, errors) == (1, 0)
    path = records.drill_path(settings, "primary")
    path.unlink()
    if damage == "directory":
        path.mkdir()
    else:
        path.write_text({"not-json": '{"target": "primary", "fin',
                         "wrong-types": json.dumps({"target": "primary", "finished": "today",
                                                    "outcomes": []}),
                         "other-target": json.dumps({"target": "replica", "finished": 1.0,
                                                     "outcomes": []})}[damage])
    time.sleep(0.01)
    assert not reader.refresh()
    assert refresh_metrics(collector) == (0, 1, good_refresh)  # the refresh time stops
    values = metric_values(collector)
    assert only(values, "backup_drill_success") == 1  # the last good result stays
    assert only(values, "backup_drill_duration_seconds") == 12.5


def test_the_reason_an_unreadable_drill_result_is_refused_names_the_field(settings):
    path = records.drill_path(settings, "primary")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"target": "primary", "finished": 1.0,
                                "outcomes": [{"kind": "files", "name": "app", "success": "yes",
                                              "duration_seconds": 1.0}]}))
    with pytest.raises(records.StateFileError) as error:
        records.read_drill(settings, "primary")
    assert str(error.value) == f"{path}: outcomes[0].success: got the text 'yes'; allowed: " \
                               "true or false"


def test_any_exception_in_a_refresh_is_counted_and_the_loop_goes_on(settings, s3, bucket,
                                                                    monkeypatch):
    put_backup(s3, bucket, "base_000000010000000000000002", VALID)
    reader = BucketReader(settings, "primary", settings.primary)
    collector = exporter.BackupCollector(settings, [reader])
    loop = exporter.RefreshLoop(collector, interval=0.05)
    calls = []
    real = BucketReader.refresh_database

    def sometimes_broken(self, name, state):
        calls.append(name)
        if len(calls) == 2:
            raise KeyError("a bug in the exporter itself")
        return real(self, name, state)

    monkeypatch.setattr(BucketReader, "refresh_database", sometimes_broken)
    loop.start()
    try:
        deadline = time.monotonic() + 10
        while len(calls) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        loop.stop()
        loop.join(5)
    assert len(calls) >= 4 and not loop.is_alive()
    assert reader.errors == 1 and reader.up
    values = metric_values(collector)
    assert only(values, "backup_exporter_s3_errors_total") == 1
    assert only(values, "backup_postgres_base_backup_timestamp_seconds") == OLD_FINISH


def test_metrics_stay_http_200_while_refreshes_fail(settings, s3, bucket):
    put_backup(s3, bucket, "base_000000010000000000000002", VALID)
    records.write_drill(settings, "primary", [records.DrillOutcome("files", "app", False, 3.0,
                                                                 "snapshot 1234abcd: ...")])
    reader = BucketReader(settings, "primary", settings.primary)
    collector = exporter.BackupCollector(settings, [reader])
    assert reader.refresh()
    path = records.drill_path(settings, "primary")
    path.write_bytes(b"\x00" * 10)
    assert not reader.refresh()
    registry = CollectorRegistry()
    registry.register(collector)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        wait_for_port(port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as page:
            status, text = page.status, page.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert status == 200
    assert f'backup_exporter_s3_up{{bucket="{bucket}",target="primary"}} 0.0' in text
    assert f'backup_exporter_s3_errors_total{{bucket="{bucket}",target="primary"}} 1.0' in text
    assert 'backup_drill_success{kind="files",name="app",target="primary"} 0.0' in text
