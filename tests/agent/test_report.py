"""The outcome record in moto and `backup-agent report` of one month."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from backup_agent import cli, evidence, report, schedule

from .conftest import free_port

OCTOBER = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


@pytest.fixture
def settings(agent_settings):
    return agent_settings(role="restore", jobs=["drill"], fileSets=[{
        "name": "app", "paths": ["/app"], "hostname": "app", "schedule": "0 3 * * *",
        "rpoSeconds": 93600}])  # 26 h


def at(day: int, hour: int, minute: int = 0) -> float:
    return (OCTOBER + dt.timedelta(days=day - 1, hours=hour, minutes=minute)).timestamp()


@pytest.fixture
def october(settings):
    """A daily file backup at 03:00 (five minutes each) all month but 14 October, the last one
    of September, and a daily drill at 06:00 that fails on 20 October."""
    outcome = evidence.Outcome
    evidence.record(settings, outcome("backup", "files:app", "primary", at(0, 3), at(0, 3, 5),
                                      True, "snapshot s0", restore_point="s0"))
    for day in range(1, 32):
        if day != 14:
            evidence.record(settings, outcome("backup", "files:app", "primary", at(day, 3),
                                              at(day, 3, 5), True, f"snapshot s{day}",
                                              restore_point=f"s{day}", tool_version="restic 0.14"))
        failed = day == 20
        evidence.record(settings, outcome(
            "drill", "files:app", "primary", at(day, 6), at(day, 6, 2), not failed,
            "file set app: snapshot s19: ciphertext verification failed" if failed
            else "20 files match their recorded hashes", restore_point=f"s{day - 1}",
            pick="20261001T060000Z-0000002a"))
    return settings


def build(settings):
    return report.build(settings, 2026, 10, evidence.read_month(settings.primary, 2026, 9),
                        evidence.read_month(settings.primary, 2026, 10),
                        dt.datetime(2026, 11, 2, tzinfo=dt.UTC))


def test_a_month_with_a_missed_backup_and_a_failed_drill_shows_both(october, s3, bucket):
    built = build(october)
    [row] = built["targets"]["primary"]["backups"]
    assert (row["job"], row["scheduled"], row["taken"], row["failed_runs"]) == (
        "files:app", 31, 30, 0)
    assert row["missed"] == ["2026-10-14T03:00:00Z"]
    # The 13th's snapshot (03:05) was 26 h old at 05:05 on the 14th, until the 15th's at 03:05.
    assert row["gaps"] == [{"from": "2026-10-14T05:05:00Z", "to": "2026-10-15T03:05:00Z",
                            "hours": 22.0}]
    assert [day for day, met in row["days"].items() if not met] == ["2026-10-14", "2026-10-15"]
    assert row["days_met"] == 29
    drills = built["targets"]["primary"]["drills"]
    assert (built["targets"]["primary"]["drills_run"], len(drills)) == (31, 31)
    [failed] = [d for d in drills if not d["success"]]
    assert (failed["finished"], failed["restore_point"], failed["pick"]) == (
        "2026-10-20T06:02:00Z", "s19", "20261001T060000Z-0000002a")
    assert report.problems(built) == [
        "primary files:app: 1 scheduled backup(s) missed",
        "primary files:app: limit not met on 2 day(s)",
        "primary: 1 of 31 drill restores failed"]
    text = report.markdown(built)
    assert "| files:app | `0 3 * * *` | 31 | 30 | 0 | 29 of 31 | 26 h |" in text
    assert "- files:app: missed the scheduled run at 2026-10-14T03:00:00Z" in text
    assert ("- files:app: past its limit from 2026-10-14T05:05:00Z to 2026-10-15T03:05:00Z "
            "(22.0 h); days not met: 2026-10-14, 2026-10-15") in text
    assert ("| 2026-10-20T06:02:00Z | files:app | s19 | 20261001T060000Z-0000002a | FAILED | "
            "file set app: snapshot s19: ciphertext verification failed |") in text
    assert "31 restores, 1 failed." in text
    # The record itself: one object per outcome under evidence/2026/10/.
    keys = [item["Key"] for item in s3.list_objects_v2(
        Bucket=bucket, Prefix="evidence/2026/10/")["Contents"]]
    assert len(keys) == 30 + 31
    assert all(key.startswith("evidence/2026/10/2026-10-") for key in keys)


def test_a_full_month_has_no_findings_and_a_rewritten_outcome_is_one(settings, s3, bucket):
    # Versioned, as the backup bucket is: writing a key again adds a version.
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for day in range(0, 32):
        evidence.record(settings, evidence.Outcome("backup", "files:app", "primary",
                                                   at(day, 3), at(day, 3, 5), True, "ok"))
        if day:
            evidence.record(settings, evidence.Outcome("drill", "files:app", "primary",
                                                       at(day, 6), at(day, 6, 1), True, "ok"))
    assert report.problems(build(settings)) == []
    key = sorted(item["Key"] for item in s3.list_objects_v2(
        Bucket=bucket, Prefix="evidence/2026/10/")["Contents"])[0]
    s3.put_object(Bucket=bucket, Key=key, Body=s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert report.problems(build(settings)) == [f"outcome {key} was written more than once"]


def test_the_report_command_prints_json_and_fails_on_findings(october, shared_dir, capsys):
    code = cli.main(["--settings", str(shared_dir / "settings.json"), "report", "--month",
                     "2026-10", "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip().endswith("primary: 1 of 31 drill restores failed")
    built = json.loads(out)
    assert built["month"] == "2026-10" and built["to"] == "2026-11-01T00:00:00Z"
    assert built["targets"]["primary"]["backups"][0]["missed"] == ["2026-10-14T03:00:00Z"]


def test_a_malformed_month_is_refused(shared_dir, settings, capsys):
    assert cli.main(["--settings", str(shared_dir / "settings.json"), "report", "--month",
                     "2026-13"]) == 2
    assert capsys.readouterr().err == (
        "error: argument --month: got '2026-13'; allowed: a month YYYY-MM\n")


def test_a_failed_backup_run_is_recorded_with_its_reason(agent_settings, shared_dir):
    settings = agent_settings(jobs=["files:app"], resticBinary="/nonexistent/restic",
                              fileSets=[{"name": "app", "paths": [str(shared_dir)],
                                         "hostname": "app", "schedule": "0 3 * * *",
                                         "rpoSeconds": 86400}])
    with pytest.raises(FileNotFoundError):
        schedule.job_runner(settings, "files:app")()
    now = dt.datetime.now(dt.UTC)
    [recorded] = evidence.read_month(settings.primary, now.year, now.month).outcomes
    assert (recorded.kind, recorded.job, recorded.target, recorded.success) == (
        "backup", "files:app", "primary", False)
    assert recorded.detail == "No such file or directory: /nonexistent/restic"
    assert recorded.tool_version == "unknown"
    assert recorded.started <= recorded.finished <= now.timestamp()


def test_outcomes_recorded_into_one_bucket_share_one_client(settings, monkeypatch):
    """The scheduler records every job's outcome: one boto3 client for the bucket, not one per
    outcome."""
    built = []

    def counted(storage, **options):
        built.append(storage)
        return client(storage, **options)

    client = evidence.s3.client
    monkeypatch.setattr(evidence.s3, "client", counted)
    for finished in (at(2, 3), at(3, 3)):
        assert evidence.record(settings, evidence.Outcome(
            "backup", "files:app", "primary", finished - 60, finished, True, "ok")) is not None
    assert built == [settings.primary]
    assert len(evidence.read_month(settings.primary, 2026, 10).outcomes) == 2


def test_an_outcome_that_cannot_be_written_is_logged_not_raised(agent_settings, caplog):
    settings = agent_settings(primary={"bucket": "unreachable", "region": "eu-central-1",
                                       "endpoint": f"http://127.0.0.1:{free_port()}"})
    outcome = evidence.Outcome("drill", "files:app", "primary", 1.0, 2.0, True, "ok")
    assert evidence.record(settings, outcome) is None
    [line] = [r for r in caplog.records if r.name == "backup_agent.evidence"]
    assert line.levelname == "ERROR"
    assert line.getMessage().startswith("outcome of drill files:app not recorded: ")
