"""The agent as a one-shot ECS task: settings from BACKUP_AGENT_SETTINGS, secret variables turned
into 0400 files, the overlap guard against moto's ECS (run_task, describe_tasks, stop_task), the
outcome metric in moto's CloudWatch, and a real restic doing the job.

moto runs the tasks (it never starts a container); this process plays the task's container,
with a task metadata endpoint on 127.0.0.1 serving the TaskARN moto returned."""

from __future__ import annotations

import datetime as dt
import os
import stat
import uuid
from pathlib import Path

import pytest

from backup_agent import cli, config, evidence, task
from contract.agent_settings import SETTINGS_VARIABLE, SecretVariable, TaskRuntime, to_json
from contract.jobs import Job
from contract.layout import RESTIC_PREFIX
from contract.tasks import JOB_DIMENSION, OUTCOME_METRIC, SKIPPED_EXIT, task_group
from tests.support import task_endpoints

from .conftest import (
    RESTIC_PASSWORD,
    SECRET_VARIABLE,
    file_set_data,
    make_tree,
    outcomes_put,
    start_tasks,
)

pytestmark = pytest.mark.usefixtures("restic_binary")

JOB = "files:app"
JOB_GROUP = task_group(Job.parse(JOB))


@pytest.fixture
def scratch(shared_dir) -> Path:
    """The task's scratch volume: present and empty, as the image declares it."""
    path = shared_dir / "scratch"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def task_settings(agent_settings, shared_dir, scratch, cluster):
    """Settings as the task definition renders them for the files kind: the restic password
    a secret variable written under the scratch volume, the state there too."""
    source = shared_dir / "app"
    make_tree(source)
    namespace = f"BackupTest{uuid.uuid4().hex[:8]}"

    password = str(scratch / "secrets" / "restic-password")

    def make(extra_secrets=(), **overrides):
        return agent_settings(**file_set_data(source) | {
            "resticPasswordFile": password,
            "stateDir": str(scratch / "state"),
            "task": {"cluster": cluster, "metricsNamespace": namespace, "secrets": [
                {"variable": SECRET_VARIABLE, "path": password}, *extra_secrets]},
        } | overrides)

    return make


def succeeded(value: float) -> list[tuple[str, list, dict]]:
    return [(OUTCOME_METRIC, [{"Name": JOB_DIMENSION, "Value": JOB}],
             {"SampleCount": 1.0, "Sum": value, "Minimum": value, "Maximum": value,
              "Unit": "Count"})]


def restic_objects(s3, bucket: str) -> list[str]:
    return [item["Key"] for item in
            s3.list_objects_v2(Bucket=bucket, Prefix=RESTIC_PREFIX).get("Contents", [])]


def recorded(settings) -> list[evidence.Outcome]:
    now = dt.datetime.now(dt.UTC)
    return list(evidence.read_month(settings.primary, now.year, now.month).outcomes)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- settings from the environment ----------------------------------------------------------

def test_settings_come_from_the_variable_unless_a_file_is_given(task_settings, shared_dir):
    settings = task_settings()
    other = task_settings(stateDir=str(shared_dir / "other-state"))
    environ = {SETTINGS_VARIABLE: to_json(settings)}
    assert config.resolve(None, environ) == settings
    (shared_dir / "other.json").write_text(to_json(other))
    assert config.resolve(str(shared_dir / "other.json"), environ) == other


@pytest.mark.parametrize(("value", "message"), [
    ("", "error: BACKUP_AGENT_SETTINGS: is empty; allowed: the JSON settings document the task "
         "definition sets"),
    ("{", "error: BACKUP_AGENT_SETTINGS: is not JSON (line 1, column 2: Expecting property name "
          "enclosed in double quotes); allowed: a JSON object"),
    ('{"role": "backup", "primary": {"bucket": "backups", "region": "europe"}}',
     "error: BACKUP_AGENT_SETTINGS: primary.region: got the text 'europe'; allowed: an AWS "
     "region (eu-central-1)"),
])
def test_a_bad_settings_variable_is_one_line_naming_it(monkeypatch, capsys, value, message):
    monkeypatch.setenv(SETTINGS_VARIABLE, value)
    assert cli.main(["status"]) == 2
    assert capsys.readouterr().err == message + "\n"


# --- secrets --------------------------------------------------------------------------------

def test_secret_variables_become_0400_files_and_leave_the_environment(tmp_path):
    existing = tmp_path / "scratch"
    existing.mkdir(mode=0o750)
    old = existing / "secrets" / "webhook-url"
    old.parent.mkdir(mode=0o700)
    old.write_text("left by an earlier run")
    old.chmod(0o400)
    runtime = TaskRuntime("c", "N", (
        SecretVariable("BACKUP_AGENT_SECRET_DB_DB_01", str(existing / "deep" / "db-db-01")),
        SecretVariable("BACKUP_AGENT_SECRET_WEBHOOK_URL", str(old))))
    environ = {"BACKUP_AGENT_SECRET_DB_DB_01": "pä:ss\nword", "PATH": "/bin",
               "BACKUP_AGENT_SECRET_WEBHOOK_URL": "https://hooks.example.com/x"}
    umask = os.umask(0o277)  # whatever the umask, the modes are exact
    try:
        task.write_secrets(runtime, environ)
    finally:
        os.umask(umask)
    assert environ == {"PATH": "/bin"}
    assert (existing / "deep" / "db-db-01").read_text() == "pä:ss\nword"
    assert old.read_text() == "https://hooks.example.com/x"
    assert [mode(existing / "deep" / "db-db-01"), mode(old)] == [0o400, 0o400]
    assert [mode(existing / "deep"), mode(existing)] == [0o700, 0o750]  # made 0700; kept
    assert sorted(p.name for p in old.parent.iterdir()) == ["webhook-url"]  # no temporary left


def test_a_missing_secret_variable_is_refused_before_anything_is_written(
        task_settings, in_task, ecs, cluster, scratch, monkeypatch, capsys):
    settings = task_settings(extra_secrets=[
        {"variable": WEBHOOK_VARIABLE, "path": str(scratch / "webhook")}])
    [arn] = start_tasks(ecs, cluster, JOB_GROUP)
    in_task(arn, settings)
    monkeypatch.delenv(SECRET_VARIABLE)
    monkeypatch.setenv("BACKUP_AGENT_SECRET_WEBHOOK_URL", "")
    assert cli.main(["run", "files", "app"]) == 2
    assert capsys.readouterr().err == (
        "error: BACKUP_AGENT_SECRET_RESTIC_PASSWORD, BACKUP_AGENT_SECRET_WEBHOOK_URL: not set in "
        "the task's environment; allowed: the secrets of the task definition (valueFrom a "
        "Secrets Manager secret), one variable each\n")
    assert list(scratch.iterdir()) == []


# --- a job in a task ------------------------------------------------------------------------

def recording_restic(directory: Path, restic_binary: str) -> Path:
    """A restic that first writes its arguments and the environment it was started with into
    `directory` (NUL-separated)."""
    wrapper = directory / "restic-recording"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\0" "$*" > "{directory}/env-$$"\n'
                       f'env -0 >> "{directory}/env-$$"\nexec {restic_binary} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


WEBHOOK_VARIABLE = "BACKUP_AGENT_SECRET_WEBHOOK_URL"


def with_webhook(task_settings, scratch: Path, **overrides):
    """Task settings with the status webhook's URL as a second secret variable."""
    path = str(scratch / "secrets" / "webhook-url")
    return task_settings(webhookUrlFile=path, **overrides,
                         extra_secrets=[{"variable": WEBHOOK_VARIABLE, "path": path}])


def run_posting(monkeypatch, argv: list[str]) -> tuple[int, list[dict], str]:
    """`backup-agent <argv>` with a webhook listening: exit status, posts, its URL."""
    with task_endpoints.webhook() as (url, posted):
        monkeypatch.setenv(WEBHOOK_VARIABLE, url)
        return cli.main(argv), posted, url


def test_a_job_runs_once_in_its_task_with_its_secrets_only_as_files(
        task_settings, in_task, ecs, cluster, cloudwatch, scratch, shared_dir, restic_binary,
        monkeypatch, capsys):
    environments = shared_dir / "environments"
    environments.mkdir()
    settings = with_webhook(task_settings, scratch,
                            resticBinary=str(recording_restic(environments, restic_binary)))
    [arn] = start_tasks(ecs, cluster, JOB_GROUP)
    in_task(arn, settings)
    code, posted, url = run_posting(monkeypatch, ["run", "files", "app"])
    assert code == 0
    snapshot = capsys.readouterr().out.strip().removeprefix("snapshot ")
    assert [(p["status"], p["job"], p["detail"]) for p in posted] == [
        ("success", JOB, f"snapshot {snapshot}")]
    password = scratch / "secrets" / "restic-password"
    assert password.read_text() == RESTIC_PASSWORD
    assert (mode(password), mode(password.parent), mode(scratch / "tmp")) == (0o400, 0o700,
                                                                              0o700)
    assert SECRET_VARIABLE not in os.environ
    started = [path.read_bytes().split(b"\0") for path in environments.glob("env-*")]
    assert sorted(arguments.split(b" ")[0] for arguments, *_ in started) == [
        b"backup", b"backup", b"cat", b"check", b"forget", b"init", b"version"]
    for arguments, *environment in started:
        assert not [v for v in environment if v.startswith(b"BACKUP_AGENT_SECRET_")
                    or RESTIC_PASSWORD.encode() in v or url.encode() in v]
        assert (f"RESTIC_PASSWORD_FILE={password}".encode() in environment) == (
            arguments != b"version")
    [outcome] = recorded(settings)
    assert (outcome.job, outcome.success, outcome.restore_point) == (JOB, True, snapshot)
    assert outcomes_put(cloudwatch, settings.task.metrics_namespace) == succeeded(1.0)


@pytest.mark.usefixtures("restic_repository")  # what the failure reports, not init: a copy
def test_a_failed_job_posts_and_puts_0_and_exits_1(task_settings, in_task, ecs, cluster,
                                                   cloudwatch, scratch, shared_dir,
                                                   monkeypatch, capsys):
    settings = with_webhook(task_settings, scratch, **file_set_data(shared_dir / "missing"))
    [arn] = start_tasks(ecs, cluster, JOB_GROUP)
    in_task(arn, settings)
    code, posted, _ = run_posting(monkeypatch, ["run", "files", "app"])
    assert code == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: {JOB}: `")
    assert [(p["status"], p["job"], p["detail"]) for p in posted] == [
        ("failure", JOB, error.removeprefix("error: ").strip())]
    [outcome] = recorded(settings)
    assert (outcome.job, outcome.success) == (JOB, False)
    assert outcomes_put(cloudwatch, settings.task.metrics_namespace) == succeeded(0.0)


# --- the overlap guard ----------------------------------------------------------------------

def test_a_running_twin_skips_the_run_and_a_killed_one_does_not(
        task_settings, in_task, ecs, cluster, cloudwatch, s3, restic_repository, capsys):
    """The bucket holds a copy of the template repository: the skipped run leaves it as it
    was, the run after the kill adds its snapshot."""
    settings = task_settings()
    template = restic_objects(s3, restic_repository)
    # moto reports no createdAt, so the ARN decides: the smaller one is the earlier twin.
    twin, mine = start_tasks(ecs, cluster, JOB_GROUP, count=2)
    in_task(mine, settings)
    assert cli.main(["run", "files", "app"]) == SKIPPED_EXIT
    assert capsys.readouterr().err == (
        f"skipped: {JOB}: task {twin} (created at an unreported time) is still running it; "
        "this run did nothing (exit 75)\n")
    assert (restic_objects(s3, restic_repository), recorded(settings)) == (template, [])
    assert outcomes_put(cloudwatch, settings.task.metrics_namespace) == []

    ecs.stop_task(cluster=cluster, task=twin, reason="killed")  # no lock is left behind
    in_task(mine, settings)
    assert cli.main(["run", "files", "app"]) == 0
    assert restic_objects(s3, restic_repository) != template
    assert [o.success for o in recorded(settings)] == [True]
    assert outcomes_put(cloudwatch, settings.task.metrics_namespace) == succeeded(1.0)


@pytest.mark.usefixtures("restic_repository")  # the guard, not init: a copy of the template
def test_tasks_started_together_do_the_job_once(task_settings, in_task, ecs, cluster,
                                                cloudwatch, capsys):
    settings = task_settings()
    arns = start_tasks(ecs, cluster, JOB_GROUP, count=2)
    exits = []
    for arn in reversed(arns):  # the later one checks first: it must still give way
        in_task(arn, settings)
        exits.append(cli.main(["run", "files", "app"]))
    assert exits == [SKIPPED_EXIT, 0]
    assert [o.job for o in recorded(settings)] == [JOB]
    assert outcomes_put(cloudwatch, settings.task.metrics_namespace) == succeeded(1.0)


def test_a_task_outside_the_jobs_group_is_refused(task_settings, in_task, ecs, cluster, s3,
                                                  bucket, capsys):
    settings = task_settings()
    [arn] = start_tasks(ecs, cluster, None)
    in_task(arn, settings)
    assert cli.main(["run", "files", "app"]) == 2
    assert capsys.readouterr().err == (
        f"error: {JOB}: this task's group is 'family:{cluster}-agent'; allowed: the group "
        "backup-job:files:app (the schedules start it there; by hand: aws ecs run-task --group "
        "backup-job:files:app), by which the overlap guard finds the job's other runs\n")
    assert restic_objects(s3, bucket) == []


def test_without_the_metadata_endpoint_a_task_does_not_run(task_settings, in_task, ecs,
                                                          cluster, monkeypatch, capsys):
    settings = task_settings()
    [arn] = start_tasks(ecs, cluster, JOB_GROUP)
    in_task(arn, settings)
    monkeypatch.delenv(task.METADATA_VARIABLE)
    assert cli.main(["run", "files", "app"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: ECS_CONTAINER_METADATA_URI_V4: is not set; allowed: an ECS task on Fargate")
    assert recorded(settings) == []


def test_a_task_the_cluster_does_not_run_does_not_run_the_job(task_settings, in_task, ecs,
                                                              cluster, capsys):
    settings = task_settings()
    [arn] = start_tasks(ecs, cluster, JOB_GROUP)
    ecs.stop_task(cluster=cluster, task=arn)
    in_task(arn, settings)
    assert cli.main(["run", "files", "app"]) == 1
    assert capsys.readouterr().err == (f"error: {JOB}: overlap guard: this task {arn} is not "
                                       f"running in cluster {cluster}\n")
    assert recorded(settings) == []


AT = dt.datetime(2026, 3, 1, 6, 0, tzinfo=dt.UTC)


def described(arn: str, seconds: int | None, group: str = "backup-job:drill",
              desired: str = "RUNNING") -> dict:
    shown = {"taskArn": arn, "group": group, "desiredStatus": desired}
    return shown | ({} if seconds is None else {"createdAt": AT + dt.timedelta(seconds=seconds)})


@pytest.mark.parametrize(("others", "first"), [
    ([described("arn:z", 0)], "arn:z"),  # created earlier: it wins, whatever its ARN
    ([described("arn:a", 20)], None),  # created later: it gives way
    ([described("arn:a", 10), described("arn:z", 10)], "arn:a"),  # a tie: the smaller ARN
    ([described("arn:z", 10)], None),
    ([described("arn:a", 0, desired="STOPPED")], None),  # stopped or killed: not running
    ([described("arn:a", 0, group="backup-job:files:app")], None),  # another job
    ([described("arn:z", None)], "arn:z"),  # no creation time: counted as the earliest
    ([described("arn:c", 5), described("arn:b", 0)], "arn:b"),  # the first of several
])
def test_the_first_created_twin_runs(others, first):
    own = described("arn:m", 10)
    found = task.first_twin(own, [own, *others])
    assert (found["taskArn"] if found else None) == first



class CountingEcs:
    """Only what the guard calls, answering for `arns`; DescribeTasks refuses more than 100
    tasks per call, as ECS does."""

    def __init__(self, arns: list[str]) -> None:
        self.arns = arns
        self.described: list[int] = []

    def get_paginator(self, name: str):
        assert name == "list_tasks"
        pages = [{"taskArns": self.arns[i:i + 100]} for i in range(0, len(self.arns), 100)]
        return type("Paginator", (), {"paginate": lambda _, **kwargs: iter(pages)})()

    def describe_tasks(self, cluster: str, tasks: list[str]) -> dict:
        assert len(tasks) <= 100
        self.described.append(len(tasks))
        return {"tasks": [{"taskArn": arn} for arn in tasks]}


def testrunning_tasks_are_described_100_at_a_time():
    ecs = CountingEcs([f"arn:{index}" for index in range(250)])
    assert [t["taskArn"] for t in task.running_tasks(ecs, "c")] == ecs.arns
    assert ecs.described == [100, 100, 50]
