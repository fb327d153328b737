"""`backup-agent schedule`: the long-running container command.

Runs the jobs placed on this host at their cron times, retries failures (settings `retry`), never
runs two instances of one job at once (a late run is skipped and counted, not queued), posts
the status webhook when one is configured, and serves its own job outcomes as metrics. On a
backup host with databases it also reports WAL archiving health from pg_stat_archiver.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from croniter import croniter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from backup_agent import drill, evidence, files, postgres, records, status, tools
from contract.agent_settings import AgentSettings
from contract.jobs import Job, database_job, files_job
from contract.restic import rotation_groups

log = logging.getLogger(__name__)
# Not "job": Prometheus sets `job` to the scrape job's name and would rename this one.
JOB_LABEL = "job_id"


def job_runner(settings: AgentSettings, job: str) -> Callable[[], str]:
    """What a job id means; raises on failure, returns a one-line summary on success. Every
    backup run's outcome is appended to the outcome record (`backup_agent.evidence`); the
    drill records each restore it tries."""
    parsed = Job.parse(job)
    if parsed.kind == "postgres":
        database = settings.database(parsed.name)
        return _recorded(settings, job, settings.walg_binary,
                         lambda: postgres.run_backup(settings, database).backup_name,
                         "base backup")
    if parsed.kind == "files":
        file_set = settings.file_set(parsed.name)
        return _recorded(settings, job, settings.restic_binary,
                         lambda: files.run_backup(settings, file_set).snapshot_id, "snapshot")
    # The drill: the one kind left (Job.parse knows no other).
    def run() -> str:
        targets = ["primary"] + (["replica"] if settings.replica else [])
        failed = [f"{target}: {o.kind} {o.name}: {o.detail}" for target in targets
                  for o in drill.run_drill(settings, target) if not o.success]
        if failed:
            raise RuntimeError("; ".join(failed))
        return "drill passed on " + ", ".join(targets)
    return run


def _recorded(settings: AgentSettings, job: str, tool: str, take: Callable[[], str],
              what: str) -> Callable[[], str]:
    def run() -> str:
        started = time.time()
        try:
            point = take()
        except Exception as error:
            evidence.record(settings, evidence.Outcome(
                "backup", job, "primary", started, time.time(), False,
                tools.describe_failure(error), tool_version=evidence.tool_version(tool)))
            raise
        summary = f"{what} {point}"
        evidence.record(settings, evidence.Outcome(
            "backup", job, "primary", started, time.time(), True, summary, restore_point=point,
            tool_version=evidence.tool_version(tool)))
        return summary
    return run


def post_status(settings: AgentSettings, job: str, ok: bool, summary: str,
                finished: float) -> None:
    """The seed's status webhook, after each scheduled run (on a host by the scheduler, in an
    ECS task by the task itself); its URL is a secret (a file) and never logged."""
    if not settings.webhook_url_file:
        return
    url = Path(settings.webhook_url_file).read_text().strip()
    body = json.dumps({
        "status": "success" if ok else "failure", "job": job, "detail": summary,
        "timestamp": dt.datetime.fromtimestamp(finished, dt.UTC).isoformat(),
    }).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except OSError as error:
        log.warning("status webhook for %s failed: %s", job, type(error).__name__)


@dataclass
class JobState:
    runs: dict[str, int] = field(default_factory=lambda: {"success": 0, "failure": 0})
    skipped: int = 0
    running: bool = False
    last_success: float | None = None
    last_finish: float | None = None
    last_ok: bool | None = None
    last_duration: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Scheduler:
    def __init__(self, settings: AgentSettings, *, sleep: Callable[[float], None] = time.sleep,
                 runners: dict[str, Callable[[], str]] | None = None) -> None:
        self.settings = settings
        self.sleep = sleep
        self.runners = runners or {job: job_runner(settings, job) for job in settings.jobs}
        self.states = {job: JobState() for job in self.runners}
        self.archiver: dict[str, dict[str, float]] = {}
        self.archiver_errors = 0

    def run_job(self, job: str) -> bool:
        """One scheduled run with retries; False if another instance still runs."""
        state = self.states[job]
        if not state.lock.acquire(blocking=False):
            state.skipped += 1
            log.warning("%s is still running: this run is skipped", job)
            return False
        try:
            state.running = True
            started = time.monotonic()
            attempts = max(self.settings.retry.attempts, 1)
            for attempt in range(1, attempts + 1):
                try:
                    summary = self.runners[job]()
                    ok = True
                    break
                except Exception as error:  # a failed job is reported, the scheduler goes on
                    summary, ok = tools.describe_failure(error), False
                    log.error("%s failed (attempt %d of %d): %s", job, attempt, attempts, error)
                    if attempt < attempts:
                        self.sleep(self.settings.retry.delay_seconds)
            finished = time.time()
            state.runs["success" if ok else "failure"] += 1
            state.last_ok, state.last_finish = ok, finished
            state.last_duration = time.monotonic() - started
            if ok:
                state.last_success = finished
            post_status(self.settings, job, ok, summary, finished)
            return True
        finally:
            state.running = False
            state.lock.release()

    def refresh_archiver(self) -> None:
        for database in self.settings.databases:
            if database_job(database.name).id not in self.runners:
                continue
            try:
                self.archiver[database.name] = postgres.archiver_status(database)
            except Exception as error:  # the database being down must not stop the scheduler
                self.archiver_errors += 1
                log.warning("pg_stat_archiver of %s unreadable: %s", database.name, error)

    def next_runs(self, now: dt.datetime) -> dict[str, dt.datetime]:
        return {job: croniter(self.settings.schedules[job], now).get_next(dt.datetime)
                for job in self.runners}

    def serve_forever(self, stop: threading.Event) -> None:
        due = self.next_runs(dt.datetime.now(dt.UTC))
        while not stop.is_set():
            self.refresh_archiver()
            now = dt.datetime.now(dt.UTC)
            for job, when in due.items():
                if when <= now:
                    threading.Thread(target=self.run_job, args=(job,), daemon=True,
                                     name=job).start()
                    due[job] = croniter(self.settings.schedules[job], now).get_next(dt.datetime)
            wait = min((when - now).total_seconds() for when in due.values()) if due else 60.0
            stop.wait(max(0.5, min(wait, self.settings.refresh_seconds)))


class SchedulerCollector(Collector):
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def collect(self) -> Iterator[Any]:
        runs = CounterMetricFamily("backup_job_runs", "Finished job runs by outcome",
                                   labels=[JOB_LABEL, "outcome"])
        skipped = CounterMetricFamily("backup_job_skipped",
                                      "Runs skipped because the previous one was still running",
                                      labels=[JOB_LABEL])
        success = GaugeMetricFamily("backup_job_last_success_timestamp_seconds",
                                    "When the job last succeeded", labels=[JOB_LABEL])
        finished = GaugeMetricFamily("backup_job_last_run_timestamp_seconds",
                                     "When the job last finished", labels=[JOB_LABEL])
        ok = GaugeMetricFamily("backup_job_last_run_success",
                               "1 if the job's last run succeeded", labels=[JOB_LABEL])
        duration = GaugeMetricFamily("backup_job_last_run_duration_seconds",
                                     "Duration of the job's last run", labels=[JOB_LABEL])
        running = GaugeMetricFamily("backup_job_running", "1 while the job runs",
                                    labels=[JOB_LABEL])
        for job, state in self.scheduler.states.items():
            for outcome, number in state.runs.items():
                runs.add_metric([job, outcome], number)
            skipped.add_metric([job], state.skipped)
            running.add_metric([job], 1.0 if state.running else 0.0)
            if state.last_success is not None:
                success.add_metric([job], state.last_success)
            if state.last_finish is not None:
                finished.add_metric([job], state.last_finish)
                ok.add_metric([job], 1.0 if state.last_ok else 0.0)
                duration.add_metric([job], state.last_duration)
        yield from (runs, skipped, success, finished, ok, duration, running)
        archived = CounterMetricFamily("backup_postgres_archiver_archived",
                                       "pg_stat_archiver.archived_count", labels=["database"])
        failed = CounterMetricFamily("backup_postgres_archiver_failed",
                                     "pg_stat_archiver.failed_count", labels=["database"])
        last_archived = GaugeMetricFamily(
            "backup_postgres_archiver_last_archived_timestamp_seconds",
            "pg_stat_archiver.last_archived_time", labels=["database"])
        last_failed = GaugeMetricFamily(
            "backup_postgres_archiver_last_failed_timestamp_seconds",
            "pg_stat_archiver.last_failed_time (0 if never)", labels=["database"])
        for name, values in self.scheduler.archiver.items():
            archived.add_metric([name], values["archived_total"])
            failed.add_metric([name], values["failed_total"])
            last_archived.add_metric([name], values["last_archived_timestamp_seconds"])
            last_failed.add_metric([name], values["last_failed_timestamp_seconds"])
        errors = CounterMetricFamily("backup_postgres_archiver_read_errors",
                                     "Failed reads of pg_stat_archiver")
        errors.add_metric([], self.scheduler.archiver_errors)
        yield from (archived, failed, last_archived, last_failed, errors)
        yield from self._rotation_metrics()

    def _rotation_metrics(self) -> Iterator[Any]:
        """The rotating data checks (checkSubset rotate:<t>) of the file sets placed here, from
        the state the backup job keeps."""
        labels = ["file_set"]
        position = GaugeMetricFamily("backup_restic_check_cycle_position",
                                     "Parts of the current rotating check cycle read so far",
                                     labels=labels)
        parts = GaugeMetricFamily("backup_restic_check_cycle_parts",
                                  "Parts of a rotating check cycle (t of rotate:<t>)",
                                  labels=labels)
        started = GaugeMetricFamily("backup_restic_check_cycle_started_timestamp_seconds",
                                    "When the current rotating check cycle started",
                                    labels=labels)
        full = GaugeMetricFamily("backup_restic_check_last_full_cycle_timestamp_seconds",
                                 "When a rotating check last finished reading every part",
                                 labels=labels)
        max_age = GaugeMetricFamily("backup_restic_check_cycle_max_age_seconds",
                                    "How long a rotating check cycle may take (t schedule "
                                    "intervals + 2 h)", labels=labels)
        settings = self.scheduler.settings
        rotating = {f.name: (f, rotation_groups(f.check_subset)) for f in settings.file_sets
                    if files_job(f.name).id in self.scheduler.runners
                    and rotation_groups(f.check_subset) is not None}
        try:
            recorded = records.read_rotations(settings) if rotating else {}
        except records.StateFileError as error:  # the next files job fails on it, and alerts
            log.warning("rotating check state unreadable: %s", error)
            recorded = {}
        for name, (file_set, groups) in sorted(rotating.items()):
            parts.add_metric([name], groups)
            max_age.add_metric([name], status.check_cycle_max_age(file_set, groups))
            found = recorded.get(name)
            if found is None or found.groups != groups:
                continue  # no part of this cycle has been read yet
            position.add_metric([name], found.next - 1)
            if found.cycle_started is not None:
                started.add_metric([name], found.cycle_started)
            if found.last_full_cycle is not None:
                full.add_metric([name], found.last_full_cycle)
        yield from (position, parts, started, full, max_age)
