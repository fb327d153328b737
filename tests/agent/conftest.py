"""Fixtures for the agent: moto_server, a real restic, a real PostgreSQL 15 and the FAKE wal-g.

Every server here listens on 127.0.0.1, is started by the fixture and stopped by its PID.
AWS credentials are dummies for moto, set only in this test process's environment.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from backup_agent import config, files, task
from contract.agent_settings import SETTINGS_VARIABLE, AgentSettings, to_json
from tests.conftest import required_tool
from tests.support import changed, project_config
from tests.support.restic_key import cheapen_repository_key
from tests.support.task_endpoints import metadata_endpoint

ROOT = Path(__file__).resolve().parents[2]
FAKE_WALG = ROOT / "tests" / "fakes" / "wal-g"
PG_USER = "postgres"
REGION = "eu-central-1"
TABLES = ("users", "sessions", "biometrics_data")
RESTIC_PASSWORD = "correct horse battery staple"


def postgres_bindir() -> Path:
    """The server binaries of the installed postgresql-15 package. Debian keeps them off PATH, and
    its pg_config describes libpq (not the server) unless libpq-dev is installed, so ask dpkg."""
    listing = subprocess.run(["dpkg-query", "-L", "postgresql-15"], capture_output=True, text=True)
    for line in listing.stdout.splitlines():
        if line.endswith("/bin/postgres"):
            return Path(line).parent
    pytest.fail("no PostgreSQL 15 server found: dpkg-query -L postgresql-15 lists no bin/postgres "
                "(scripts/test-prerequisites installs it)")


PG_BIN = postgres_bindir()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def stop_process(process: subprocess.Popen, signum: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session", autouse=True)
def dummy_aws_credentials() -> Iterator[None]:
    """Only for moto: production never sets keys (instance profiles)."""
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                            "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION=REGION)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        # moto_server of this interpreter's environment: `make test` does not put .venv/bin on PATH.
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    return create_bucket(moto_endpoint)


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the unprivileged PostgreSQL user can traverse (pytest's tmp_path is 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="agent-test-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def fake_walg() -> Iterator[Path]:
    """A `wal-g` on a path the PostgreSQL user can run: the FAKE, under Debian's python3 (this
    test runner's Python lives under /root, mode 0700); it needs only the standard library."""
    if not os.access("/usr/bin/python3", os.X_OK):
        pytest.fail("/usr/bin/python3 is needed to run the fake wal-g as the postgres user")
    directory = Path(tempfile.mkdtemp(prefix="fake-walg-"))
    directory.chmod(0o755)
    script = directory / "wal-g.py"
    shutil.copy(FAKE_WALG, script)
    script.chmod(0o644)
    wrapper = directory / "wal-g"
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/python3 {script} "$@"\n')
    wrapper.chmod(0o755)
    yield wrapper
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def restic_binary() -> str:
    return required_tool("restic", "restic")


def create_bucket(endpoint: str, prefix: str = "backups") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


def write_secret(directory: Path, name: str, value: str) -> str:
    path = directory / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return str(path)


def settings_maker(endpoint: str, bucket: str, directory: Path,
                   walg: Path) -> Callable[..., AgentSettings]:
    """Settings as the component renders them, pointed at moto and written to
    `directory/settings.json`; `**overrides` replace keys."""
    secrets = directory / "secrets"
    secrets.mkdir()
    restic_password = write_secret(secrets, "restic-password", RESTIC_PASSWORD)

    def make(**overrides: Any) -> AgentSettings:
        data: dict[str, Any] = {
            "role": "backup",
            "primary": {"bucket": bucket, "region": REGION, "endpoint": endpoint},
            "databases": [],
            "fileSets": [],
            "jobs": [],
            "drillSchedule": "0 6 * * *",
            "resticPasswordFile": restic_password,
            "stateDir": str(directory / "state"),
            "retry": {"attempts": 1, "delaySeconds": 0},
            "walgBinary": str(walg),
            "postgresBin": str(PG_BIN),
            "drillRunAs": PG_USER,
            "drillTimeoutSeconds": 60,
            "refreshSeconds": 0.2,
        }
        data.update(overrides)
        path = directory / "settings.json"
        path.write_text(json.dumps(data))
        return config.load(path)

    return make


@pytest.fixture
def agent_settings(moto_endpoint: str, bucket: str, shared_dir: Path,
                   fake_walg: Path) -> Callable[..., AgentSettings]:
    """`settings_maker` for this test's bucket and directory."""
    return settings_maker(moto_endpoint, bucket, shared_dir, fake_walg)


def make_tree(root: Path, files_count: int = 20) -> dict[str, bytes]:
    """A tree of random files under root/uploads and root/config; path -> content."""
    contents = {}
    for index in range(files_count):
        sub = root / ("uploads" if index % 2 else "config")
        sub.mkdir(parents=True, exist_ok=True)
        data = os.urandom(1000 + index * 37)
        (sub / f"file-{index}.bin").write_bytes(data)
        contents[str(sub / f"file-{index}.bin")] = data
    return contents


def file_set_data(source: Path) -> dict:
    """Settings keys for one file set `app` over `make_tree(source)`, placed here."""
    return {
        "fileSets": [{
            "name": "app", "paths": [str(source / "uploads"), str(source / "config")],
            "tags": ["production", "automated"], "hostname": "app-files",
            "keep": {"daily": 7, "weekly": 4, "monthly": 6}, "checkSubset": "100%",
            "schedule": "0 3 * * *", "rpoSeconds": 86400,
        }],
        "jobs": ["files:app"],
    }


def copy_bucket(s3: Any, source: str, target: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=source):
        for item in page.get("Contents", []):
            s3.copy_object(Bucket=target, Key=item["Key"],
                           CopySource={"Bucket": source, "Key": item["Key"]})


@pytest.fixture(scope="session")
def restic_template(moto_endpoint: str, fake_walg: Path, restic_binary: str,
                    tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> str:
    """A bucket holding an empty restic repository (RESTIC_PASSWORD), its key re-wrapped with
    cheap scrypt parameters (tests/support/restic_key.py): the tests that need a repository
    but not the backup job's way of creating one (that is test_restic_real.py's first test)
    start from a copy (`restic_repository`), without init's calibration (about three seconds
    of CPU) and the calibrated key derivation in every command. `restic init` runs once per
    run of the suite: the first pytest-xdist worker to need the repository saves its objects
    in the run's temporary root, where the other finds them (each has its own moto_server)."""
    bucket = create_bucket(moto_endpoint, "restic-template")
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    base = tmp_path_factory.getbasetemp()
    saved = (base if worker_id == "master" else base.parent) / "restic-template-objects"
    with open(f"{saved}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not saved.exists():
            settings = settings_maker(moto_endpoint, bucket,
                                      tmp_path_factory.mktemp("restic-template"), fake_walg)()
            files.restic(settings, settings.primary, ["init"])
            cheapen_repository_key(s3, bucket, RESTIC_PASSWORD)
            partial = saved.with_name(f"{saved.name}.partial")
            for item in s3.list_objects_v2(Bucket=bucket)["Contents"]:
                path = partial / item["Key"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            partial.rename(saved)
            return bucket
    for path in saved.rglob("*"):
        if path.is_file():
            s3.put_object(Bucket=bucket, Key=path.relative_to(saved).as_posix(),
                          Body=path.read_bytes())
    return bucket


@pytest.fixture
def restic_repository(restic_template: str, s3: Any, bucket: str) -> str:
    """This test's bucket, holding a copy of the empty template repository."""
    copy_bucket(s3, restic_template, bucket)
    return bucket


@pytest.fixture(scope="session")
def backed_up_template(moto_endpoint: str, fake_walg: Path, restic_template: str,
                       tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A tree (`make_tree`) and a bucket where the backup job backed it up once (snapshot, its
    hashes, forget, check) into a copy of the template repository, once per session: the
    tests that restore, damage, drill or replicate a backup work on copies
    (`backed_up_copy`)."""
    directory = tmp_path_factory.mktemp("backed-up")
    source = directory / "app"
    make_tree(source)
    bucket = create_bucket(moto_endpoint)
    copy_bucket(boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION),
                restic_template, bucket)
    settings = settings_maker(moto_endpoint, bucket, directory, fake_walg)(
        **file_set_data(source))
    files.run_backup(settings, settings.file_set("app"))
    return source, bucket


@pytest.fixture
def backed_up_copy(agent_settings: Callable[..., AgentSettings],
                   backed_up_template: tuple[Path, str], s3: Any,
                   bucket: str) -> tuple[Path, Callable[..., AgentSettings]]:
    """This test's bucket holds a copy of `backed_up_template`'s repository; the settings
    (`make(**overrides)`) name its tree as file set `app`."""
    source, template = backed_up_template
    copy_bucket(s3, template, bucket)
    return source, lambda **overrides: agent_settings(**file_set_data(source) | overrides)


# --- the prod stack file with runtime values changed -----------------------------------------

def raw_prod() -> dict[str, Any]:
    return project_config("prod")


def with_runtime(**changes: Any) -> dict[str, Any]:
    """prod with runtime values replaced; keys are paths like databases.0.port."""
    return changed(raw_prod(), {f"runtime.{path}": value for path, value in changes.items()})


# --- ECS tasks: moto's ECS and CloudWatch, a task metadata endpoint -------------------------

# The variable the task definitions name for the restic password.
SECRET_VARIABLE = "BACKUP_AGENT_SECRET_RESTIC_PASSWORD"


@pytest.fixture
def ecs(moto_endpoint):
    return boto3.client("ecs", endpoint_url=moto_endpoint, region_name=REGION)


@pytest.fixture
def cloudwatch(moto_endpoint):
    return boto3.client("cloudwatch", endpoint_url=moto_endpoint, region_name=REGION)


@pytest.fixture
def cluster(ecs):
    name = f"backup-{uuid.uuid4().hex[:8]}"
    ecs.create_cluster(clusterName=name)
    return name


def start_tasks(ecs: Any, cluster: str, group: str | None, count: int = 1) -> list[str]:
    """`count` tasks started by one RunTask in `group` (None: ECS's default, the family), their
    ARNs sorted. The task definition
    has the default network mode: moto 5.2.1's run_task fails on an awsvpc network
    configuration (AttributeError: 'NetworkInterface' object has no attribute
    'private_dns_name'); the guard reads only the ARN, group, desiredStatus and createdAt."""
    definition = ecs.register_task_definition(family=f"{cluster}-agent", containerDefinitions=[
        {"name": "backup-agent", "image": "backup-agent", "cpu": 256, "memory": 512}])
    tasks = ecs.run_task(cluster=cluster, launchType="FARGATE", count=count,
                         taskDefinition=definition["taskDefinition"]["taskDefinitionArn"],
                         **({"group": group} if group else {}))["tasks"]
    return sorted(t["taskArn"] for t in tasks)


@pytest.fixture
def metadata():
    with metadata_endpoint() as endpoint:
        yield endpoint


@pytest.fixture
def in_task(monkeypatch, moto_endpoint, metadata):
    """`enter(arn, settings)`: this process becomes the container of task `arn` — its
    metadata endpoint, its settings, the restic password as its secret variable, TMPDIR beside
    the state directory — with ECS and CloudWatch at moto (botocore's
    AWS_ENDPOINT_URL_<SERVICE>)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECS", moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", moto_endpoint)

    def enter(arn: str, settings) -> None:
        monkeypatch.setenv(task.METADATA_VARIABLE, metadata.uri(arn))
        monkeypatch.setenv(SETTINGS_VARIABLE, to_json(settings))
        monkeypatch.setenv(SECRET_VARIABLE, RESTIC_PASSWORD)
        monkeypatch.setenv("TMPDIR", str(Path(settings.state_dir).parent / "tmp"))

    return enter


def outcomes_put(cloudwatch, namespace: str) -> list[tuple[str, list, dict]]:
    """Every metric in the namespace with its statistics over the last hour."""
    now = dt.datetime.now(dt.UTC)
    found = []
    for metric in cloudwatch.list_metrics(Namespace=namespace)["Metrics"]:
        [point] = cloudwatch.get_metric_statistics(
            Namespace=namespace, MetricName=metric["MetricName"],
            Dimensions=metric["Dimensions"], StartTime=now - dt.timedelta(hours=1),
            EndTime=now + dt.timedelta(hours=1), Period=7200,
            Statistics=["SampleCount", "Sum", "Minimum", "Maximum"])["Datapoints"]
        found.append((metric["MetricName"], metric["Dimensions"], {
            key: point[key] for key in ("SampleCount", "Sum", "Minimum", "Maximum", "Unit")}))
    return found
