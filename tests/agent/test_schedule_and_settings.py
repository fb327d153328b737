"""The scheduler (retries, no overlap, webhook, metrics) and the agent's settings file."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import stat
import threading

import pytest

from backup_agent import schedule, tools
from contract.agent_settings import Database, SettingsError

from .conftest import write_secret


def values(collector) -> dict[tuple, float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in collector.collect() for sample in family.samples}


def test_retries_then_reports_success_and_failure(agent_settings):
    settings = agent_settings(retry={"attempts": 3, "delaySeconds": 7})
    calls, sleeps = [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("S3 said no")
        return "ok"

    def broken() -> str:
        raise RuntimeError("always")

    scheduler = schedule.Scheduler(settings, sleep=sleeps.append,
                                   runners={"files:app": flaky, "postgres:db": broken})
    assert scheduler.run_job("files:app")
    assert scheduler.run_job("postgres:db")
    assert (len(calls), sleeps) == (3, [7, 7, 7, 7])
    metrics = values(schedule.SchedulerCollector(scheduler))
    app, db = ("job_id", "files:app"), ("job_id", "postgres:db")
    assert metrics[("backup_job_runs_total", (app, ("outcome", "success")))] == 1
    assert metrics[("backup_job_runs_total", (db, ("outcome", "failure")))] == 1
    assert metrics[("backup_job_last_run_success", (db,))] == 0
    assert ("backup_job_last_success_timestamp_seconds", (db,)) not in metrics
    assert metrics[("backup_job_last_success_timestamp_seconds", (app,))] == \
        scheduler.states["files:app"].last_finish


def test_a_job_never_runs_twice_at_once(agent_settings):
    settings = agent_settings()
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(10)
        return "done"

    scheduler = schedule.Scheduler(settings, runners={"files:app": slow})
    first = threading.Thread(target=scheduler.run_job, args=("files:app",))
    first.start()
    started.wait(10)
    assert scheduler.run_job("files:app") is False
    release.set()
    first.join()
    metrics = values(schedule.SchedulerCollector(scheduler))
    app = ("job_id", "files:app")
    assert metrics[("backup_job_skipped_total", (app,))] == 1
    assert metrics[("backup_job_runs_total", (app, ("outcome", "success")))] == 1


def test_status_webhook_posts_outcome_and_never_logs_the_url(agent_settings, shared_dir, caplog):
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    # shutdown() waits for serve_forever's next poll: 0.5 s by default.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook-secret-token"
        settings = agent_settings(webhookUrlFile=write_secret(shared_dir, "webhook", url))
        scheduler = schedule.Scheduler(settings, runners={"files:app": lambda: "snapshot 1"})
        with caplog.at_level("DEBUG"):
            scheduler.run_job("files:app")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert [(r["status"], r["job"], r["detail"]) for r in received] == [
        ("success", "files:app", "snapshot 1")]
    assert "hook-secret-token" not in caplog.text


def test_cron_schedules_give_the_next_run(agent_settings):
    settings = agent_settings(fileSets=[{"name": "app", "paths": ["/a"], "hostname": "h",
                                         "schedule": "0 3 * * *", "rpoSeconds": 86400}],
                              jobs=["files:app"])
    scheduler = schedule.Scheduler(settings, runners={"files:app": lambda: ""})
    now = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert scheduler.next_runs(now) == {"files:app": dt.datetime(2026, 5, 2, 3, 0, tzinfo=dt.UTC)}


def test_settings_refuse_jobs_on_the_wrong_host_kind(agent_settings):
    with pytest.raises(SettingsError, match="the drill runs only on the read-only restore host"):
        agent_settings(jobs=["drill"])
    with pytest.raises(SettingsError, match="'files:x' is unknown"):
        agent_settings(jobs=["files:x"])
    with pytest.raises(SettingsError, match="role: got the text 'admin'; allowed: backup, "
                       "restore"):
        agent_settings(role="admin")


def test_pgpass_file_is_private_and_removed(agent_settings, shared_dir):
    password = write_secret(shared_dir, "pw", "p:a\\ss")
    database = Database(name="db", host="db.internal", port=5432, user="backup",
                               dbname="biometrics", password_file=password, tables=("users",),
                               retain_full=7, schedule="0 2 * * *", rpo_seconds=86400)
    with tools.pgpass_file(database) as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path) as handle:
            assert handle.read() == "db.internal:5432:*:backup:p\\:a\\\\ss\n"
        env = tools.libpq_env(database, path)
        assert "p:a" not in json.dumps(env)
    assert not os.path.exists(path)


def test_serve_forever_runs_due_jobs_until_stopped(agent_settings):
    # croniter's optional sixth field is seconds: due every second, so the loop is quick to test.
    settings = agent_settings(fileSets=[{"name": "app", "paths": ["/a"], "hostname": "h",
                                         "schedule": "* * * * * */1", "rpoSeconds": 86400}],
                              jobs=["files:app"])
    stop, ran = threading.Event(), threading.Event()

    def job() -> str:
        ran.set()
        stop.set()
        return "ok"

    scheduler = schedule.Scheduler(settings, runners={"files:app": job})
    loop = threading.Thread(target=scheduler.serve_forever, args=(stop,))
    loop.start()
    assert ran.wait(10)
    loop.join(10)
    assert not loop.is_alive()
    with scheduler.states["files:app"].lock:  # the run has finished recording its outcome
        assert scheduler.states["files:app"].runs["success"] == 1
