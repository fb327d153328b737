"""`backup_drill_*` and the status rows where the drill runs on another machine than the exporter
(the drill in an ECS task and the exporter on a host, or the reverse): read from the newest
drill outcomes in the outcome record (evidence/), never from a state directory the exporter
does not share. A real restic drill, moto's S3, ECS and CloudWatch."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest

from backup_agent import cli, evidence, exporter, records, status
from contract.jobs import DRILL
from contract.tasks import task_group

from .conftest import (
    SECRET_VARIABLE,
    copy_bucket,
    create_bucket,
    file_set_data,
    outcomes_put,
    start_tasks,
)
from .wal_g_objects import metric_values

pytestmark = pytest.mark.usefixtures("restic_binary")

DRILL_METRICS = ("backup_drill_success", "backup_drill_timestamp_seconds",
                 "backup_drill_duration_seconds")


@pytest.fixture
def backed_up(backed_up_copy):
    """A file set backed up once (a copy of the session's backed-up repository in this test's
    bucket); `make(**overrides)` names it."""
    _, make = backed_up_copy
    return make


def drill_metrics(settings) -> dict[str, dict]:
    """The drill metrics an exporter with these settings serves after one refresh."""
    collector = exporter.BackupCollector(settings, exporter.readers_for(settings))
    for reader in collector.readers:
        assert reader.refresh(), reader.last_error
    values = metric_values(collector)
    return {name: values.get(name, {}) for name in DRILL_METRICS}


def expected(outcomes: list[evidence.Outcome]) -> dict[str, dict]:
    def labels(o):
        return (("kind", o.job.split(":")[0]), ("name", o.job.split(":")[1]),
                ("target", o.target))
    return {"backup_drill_success": {labels(o): float(o.success) for o in outcomes},
            "backup_drill_timestamp_seconds": {labels(o): o.finished for o in outcomes},
            "backup_drill_duration_seconds": {labels(o): o.duration_seconds for o in outcomes}}


def drills_recorded(settings) -> list[evidence.Outcome]:
    now = dt.datetime.now(dt.UTC)
    return [o for o in evidence.read_month(settings.primary, now.year, now.month).outcomes
            if o.kind == "drill"]


def test_a_drill_in_a_task_is_seen_by_the_exporter_on_a_host(
        backed_up, in_task, ecs, cluster, cloudwatch, shared_dir, capsys):
    password = shared_dir / "scratch" / "secrets" / "restic-password"
    (shared_dir / "scratch").mkdir(mode=0o700)
    in_the_task = backed_up(
        role="restore", jobs=["drill"], resticPasswordFile=str(password),
        stateDir=str(shared_dir / "scratch" / "state"),
        task={"cluster": cluster, "metricsNamespace": "BackupDrillTest", "secrets": [
            {"variable": SECRET_VARIABLE, "path": str(password)}]})
    [arn] = start_tasks(ecs, cluster, task_group(DRILL))
    in_task(arn, in_the_task)
    assert cli.main(["drill", "--target", "all"]) == 0
    assert capsys.readouterr().out.startswith("PASS primary files app (")
    assert outcomes_put(cloudwatch, "BackupDrillTest") == [
        ("JobSucceeded", [{"Name": "Job", "Value": "drill"}],
         {"SampleCount": 1.0, "Sum": 1.0, "Minimum": 1.0, "Maximum": 1.0, "Unit": "Count"})]
    [outcome] = drills_recorded(in_the_task)
    # The exporter's host does not run the drill: its state directory has none, its settings
    # list no drill job.
    on_the_host = backed_up(role="restore", jobs=[], stateDir=str(shared_dir / "host-state"))
    assert drill_metrics(on_the_host) == expected([outcome])
    [reader] = exporter.readers_for(on_the_host)
    reader.refresh()
    [row] = status.rows(on_the_host, reader, outcome.finished + 60)
    assert (row.drill.result, row.drill.finished) == ("passed", outcome.finished)


def test_a_drill_on_the_restore_host_is_seen_by_the_exporter_task(backed_up, shared_dir):
    on_the_host = backed_up(role="restore", jobs=["drill"])
    assert cli.main(["--settings", str(shared_dir / "settings.json"), "drill"]) == 0
    [outcome] = drills_recorded(on_the_host)
    assert records.read_drill(on_the_host, "primary") is not None  # the host's own copy
    exporter_task = backed_up(
        role="restore", jobs=[], stateDir=str(shared_dir / "scratch" / "state"),
        task={"cluster": "backup", "metricsNamespace": "BackupDrillTest"})
    assert drill_metrics(exporter_task) == expected([outcome])


def test_where_the_drill_runs_here_its_state_file_is_what_counts(backed_up, shared_dir):
    """The settings list the drill: the state file, even if the record says otherwise."""
    settings = backed_up(role="restore", jobs=["drill"])
    evidence.record(settings, evidence.Outcome("drill", "files:app", "primary", 100.0, 160.0,
                                               True, "recorded only"))
    records.write_drill(settings, "primary", [records.DrillOutcome("files", "app", False, 7.0,
                                                                   "from the state file")])
    finished = records.read_drill(settings, "primary").finished
    labels = (("kind", "files"), ("name", "app"), ("target", "primary"))
    assert drill_metrics(settings) == {
        "backup_drill_success": {labels: 0.0}, "backup_drill_timestamp_seconds": {
            labels: finished}, "backup_drill_duration_seconds": {labels: 7.0}}


# --- which outcomes count -------------------------------------------------------------------

NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)


def at(day: str, hour: int) -> float:
    return dt.datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00").timestamp()


def outcome(job: str, target: str, finished: float, success: bool = True,
            kind: str = "drill") -> evidence.Outcome:
    return evidence.Outcome(kind, job, target, finished - 30.0, finished, success, "detail",
                            host="restore-1")


def test_the_newest_drill_of_each_backup_from_each_target(agent_settings, s3, bucket,
                                                          moto_endpoint, caplog):
    settings = agent_settings(role="restore", jobs=[])
    wanted = [("postgres", "db-1"), ("files", "app"), ("files", "old")]
    newest = {
        ("primary", "postgres:db-1"): outcome("postgres:db-1", "primary", at("2026-03-15", 5)),
        ("replica", "postgres:db-1"): outcome("postgres:db-1", "replica", at("2026-03-15", 6),
                                              success=False),
        ("primary", "files:app"): outcome("files:app", "primary", at("2026-02-03", 6)),
    }
    for recorded in [*newest.values(),
                     outcome("postgres:db-1", "primary", at("2026-03-15", 4), success=False),
                     outcome("postgres:db-1", "primary", at("2026-03-15", 7), kind="backup"),
                     outcome("files:app", "primary", at("2026-01-20", 6), success=False),
                     outcome("files:old", "primary", at("2025-02-28", 6)),  # 13 months back
                     outcome("postgres:gone", "primary", at("2026-03-15", 8))]:
        assert evidence.record(settings, recorded) is not None
    # Not an outcome, under a drill key that sorts newest: skipped (Object Lock keeps it).
    s3.put_object(Bucket=bucket, Body=b"{not json",
                  Key="evidence/2026/03/2026-03-15T09-00-00Z-drill-postgres-db-1-0123abcd.json")

    client = exporter.CountingClient(s3)
    drills = evidence.LatestDrills(client.client, bucket)
    with caplog.at_level(logging.WARNING, logger="backup_agent.evidence"):
        found = drills.newest("primary", wanted, NOW)
    assert found == {("postgres", "db-1"): newest[("primary", "postgres:db-1")],
                     ("files", "app"): newest[("primary", "files:app")]}
    assert "2026-03-15T09-00-00Z-drill-postgres-db-1-0123abcd.json" in caplog.text
    # files:old was never found: all 13 months listed (2026-03 back to 2025-03); GETs only of
    # drill keys of wanted backups, newest first, until each was found.
    assert client.requests == {"ListObjectsV2": 13, "GetObject": 4}
    client.requests.clear()
    assert drills.newest("primary", wanted, NOW) == found
    assert client.requests == {"ListObjectsV2": 1}  # the current month; settled ones are kept

    # It stops at the month that has them all.
    fresh = exporter.CountingClient(s3)
    assert evidence.LatestDrills(fresh.client, bucket).newest(
        "primary", [("postgres", "db-1")], NOW) == {("postgres", "db-1"): found[("postgres",
                                                                                 "db-1")]}
    assert fresh.requests == {"ListObjectsV2": 1, "GetObject": 3}

    # The replica's reader reads its own bucket, where replication brings the record.
    replica = create_bucket(moto_endpoint, "replica")
    copy_bucket(s3, bucket, replica)
    assert evidence.LatestDrills(s3, replica).newest("replica", wanted, NOW) == {
        ("postgres", "db-1"): newest[("replica", "postgres:db-1")]}


def test_a_record_that_cannot_be_read_fails_the_refresh(agent_settings):
    settings = agent_settings(**file_set_data(Path("/app")) | {"role": "restore", "jobs": []})
    reader = exporter.BucketReader(settings, "primary", settings.primary)
    reader.latest_drills.bucket = "no-such-bucket"
    assert not reader.refresh()
    assert (reader.up, reader.errors, reader.drill) == (False, 1, ())
    assert reader.last_error.startswith("S3 ListObjectsV2: NoSuchBucket")
