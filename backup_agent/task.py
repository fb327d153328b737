"""The agent as a one-shot ECS Fargate task (`settings.task` is set).

- Secrets: ECS injects each one as an environment variable (the task definition's `secrets`).
  `prepare` writes each to its file (mode 0400, new directories 0700) and removes the variable
  before any tool starts, so restic, wal-g and PostgreSQL never inherit it.
- Scratch: `$TMPDIR` (the task definition sets it under the task's scratch volume) is created,
  since the read-only root file system has no writable /tmp.
- Overlap guard (`job_run`): EventBridge Scheduler does not prevent two runs of one job at
  once. The task asks the task metadata endpoint v4 for its own ARN, then ECS for the running
  tasks of the job's task group (`contract.tasks.task_group`); if one was created before this
  task (ties: the smaller ARN), this run is skipped. A killed task is STOPPED and no longer
  counts: there is no lock to go stale.
- Outcome: after the job, the status webhook where one is configured, and `JobSucceeded` (1 or
  0, dimension Job) into the task's CloudWatch namespace, which the stack's "no successful run"
  alarms watch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from backup_agent import schedule, tools
from backup_agent.commands.host import JobFailed, JobSkipped, UsageError
from contract.agent_settings import AgentSettings, TaskRuntime
from contract.jobs import Job
from contract.tasks import JOB_DIMENSION, OUTCOME_METRIC, SKIPPED_EXIT, task_group

log = logging.getLogger(__name__)

# Set by ECS in every container of a Fargate task (platform version 1.4.0 or later).
METADATA_VARIABLE = "ECS_CONTAINER_METADATA_URI_V4"
_TASK_ARN = re.compile(r"arn:[a-z-]+:ecs:(?P<region>[a-z0-9-]+):\d{12}:task/\S+")
DESCRIBE_BATCH = 100  # DescribeTasks takes at most 100 tasks per call
# A task whose creation time ECS does not report sorts first: it wins, this run waits.
_UNKNOWN_CREATION = dt.datetime.min.replace(tzinfo=dt.UTC)


# --- before anything else: secrets and scratch ---------------------------------------------

def _private_directories(directory: Path) -> None:
    """Create `directory` and any missing parent with mode 0700; existing ones stay as they
    are (the image's /scratch)."""
    missing = [directory, *directory.parents]
    for path in reversed([p for p in missing if not p.exists()]):
        path.mkdir(mode=0o700)
        path.chmod(0o700)  # mkdir's mode is filtered by the umask


def _write_secret(path: Path, value: str) -> None:
    """Written beside and renamed, so an earlier 0400 file is replaced, never half-written."""
    _private_directories(path.parent)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
            os.fchmod(handle.fileno(), 0o400)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_secrets(task: TaskRuntime, environ: MutableMapping[str, str]) -> None:
    """Each secret variable to its file, then out of the environment; UsageError naming every
    variable that is missing or empty, before any file is written."""
    missing = [s.variable for s in task.secrets if not environ.get(s.variable)]
    if missing:
        raise UsageError(f"{', '.join(missing)}: not set in the task's environment; allowed: "
                         "the secrets of the task definition (valueFrom a Secrets Manager "
                         "secret), one variable each")
    for secret in task.secrets:
        _write_secret(Path(secret.path), environ[secret.variable])
    for secret in task.secrets:
        del environ[secret.variable]


def prepare(settings: AgentSettings, environ: MutableMapping[str, str] = os.environ) -> None:
    """In a task, before any command: the secret files, and $TMPDIR."""
    if settings.task is None:
        return
    write_secrets(settings.task, environ)
    if environ.get("TMPDIR"):
        _private_directories(Path(environ["TMPDIR"]))


# --- the overlap guard ---------------------------------------------------------------------

@dataclass(frozen=True)
class OwnTask:
    arn: str
    region: str  # the task's, so also the cluster's and the metrics'


def own_task(environ: Mapping[str, str]) -> OwnTask:
    """This task's ARN from the task metadata endpoint v4 (`${ECS_CONTAINER_METADATA_URI_V4}
    /task`, field TaskARN)."""
    base = environ.get(METADATA_VARIABLE)
    if not base:
        raise UsageError(f"{METADATA_VARIABLE}: is not set; allowed: an ECS task on Fargate "
                         "platform 1.4.0 or later, which sets it (settings with `task` run "
                         "only there)")
    url = f"{base.rstrip('/')}/task"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            arn = json.load(response)["TaskARN"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise JobFailed(f"task metadata {url}: {tools.describe_failure(error)}; the overlap "
                        "guard needs this task's ARN") from None
    found = _TASK_ARN.fullmatch(arn) if isinstance(arn, str) else None
    if found is None:
        raise JobFailed(f"task metadata {url}: TaskARN {arn!r} is not an ECS task ARN")
    return OwnTask(arn, found.group("region"))


def client(service: str, region: str) -> Any:
    """boto3 client for the task's region; credentials from the task role (the container
    credentials endpoint)."""
    return boto3.client(service, config=Config(
        region_name=region, connect_timeout=10, read_timeout=10,
        retries={"max_attempts": 3, "mode": "standard"}))


def _order(task: dict[str, Any]) -> tuple[dt.datetime, str]:
    return task.get("createdAt") or _UNKNOWN_CREATION, task["taskArn"]


def first_twin(own: dict[str, Any], tasks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Of the other tasks of `own`'s group still meant to run (desiredStatus RUNNING: a
    stopped or killed one is not), the first created, if it was created before `own`."""
    twins = [t for t in tasks if t.get("group") == own.get("group")
             and t["taskArn"] != own["taskArn"] and t.get("desiredStatus") == "RUNNING"]
    earlier = [t for t in twins if _order(t) < _order(own)]
    return min(earlier, key=_order) if earlier else None


def running_tasks(ecs: Any, cluster: str) -> list[dict[str, Any]]:
    """Every task of the cluster meant to run (this one among them), described."""
    arns = [arn for page in ecs.get_paginator("list_tasks").paginate(
        cluster=cluster, desiredStatus="RUNNING") for arn in page["taskArns"]]
    return [task for start in range(0, len(arns), DESCRIBE_BATCH)
            for task in ecs.describe_tasks(cluster=cluster,
                                           tasks=arns[start:start + DESCRIBE_BATCH])["tasks"]]


def check_no_twin(task: TaskRuntime, own: OwnTask, job: str) -> None:
    """JobSkipped naming the twin if an earlier task of the job's group still runs."""
    group = task_group(Job.parse(job))
    try:
        tasks = running_tasks(client("ecs", own.region), task.cluster)
    except Exception as error:  # the guard cannot decide: the job must not run unguarded
        raise JobFailed(f"{job}: overlap guard: {tools.describe_failure(error, 'ECS')}") \
            from error
    mine = next((t for t in tasks if t["taskArn"] == own.arn), None)
    if mine is None:
        raise JobFailed(f"{job}: overlap guard: this task {own.arn} is not running in cluster "
                        f"{task.cluster}")
    if mine.get("group") != group:
        raise UsageError(f"{job}: this task's group is {mine.get('group')!r}; allowed: the "
                         f"group {group} (the schedules start it there; by hand: aws ecs "
                         f"run-task --group {group}), by which the overlap guard finds the "
                         "job's other runs")
    twin = first_twin(mine, tasks)
    if twin is not None:
        created = twin.get("createdAt")
        raise JobSkipped(f"{job}: task {twin['taskArn']} (created "
                         f"{created.isoformat() if created else 'at an unreported time'}) is "
                         f"still running it; this run did nothing (exit {SKIPPED_EXIT})")


# --- the outcome ---------------------------------------------------------------------------

def put_outcome(task: TaskRuntime, region: str, job: str, success: bool) -> None:
    client("cloudwatch", region).put_metric_data(Namespace=task.metrics_namespace, MetricData=[{
        "MetricName": OUTCOME_METRIC,
        "Dimensions": [{"Name": JOB_DIMENSION, "Value": job}],
        "Value": 1.0 if success else 0.0,
        "Unit": "Count",
    }])


@dataclass
class Run:
    """What the command tells `job_run` of the job it ran: its one-line summary."""

    summary: str = ""


@contextlib.contextmanager
def job_run(settings: AgentSettings, job: str,
            environ: Mapping[str, str] = os.environ) -> Iterator[Run]:
    """Around one job: in a task, the overlap guard before it; after it, the status webhook
    (where one is configured, as the host's scheduler posts it) and the outcome metric — a
    failure is re-raised after both. On a Docker host, nothing: the scheduler does all that."""
    run = Run()
    if settings.task is None:
        yield run
        return
    own = own_task(environ)
    check_no_twin(settings.task, own, job)
    try:
        yield run
    except Exception as error:
        schedule.post_status(settings, job, False, str(error) if isinstance(error, JobFailed)
                             else tools.describe_failure(error), time.time())
        try:
            put_outcome(settings.task, own.region, job, False)
        except Exception as put_error:  # the job's own failure is what the task reports
            log.error("%s: outcome metric %s not put: %s", job, OUTCOME_METRIC,
                      tools.describe_failure(put_error, "CloudWatch"))
        raise
    schedule.post_status(settings, job, True, run.summary, time.time())
    try:
        put_outcome(settings.task, own.region, job, True)
    except Exception as error:  # else the "no successful run" alarm pages with no reason
        raise JobFailed(f"{job}: succeeded, but its outcome metric {OUTCOME_METRIC} was not "
                        f"put: {tools.describe_failure(error, 'CloudWatch')}") from error
