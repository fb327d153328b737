"""Credentials in an ECS task come from the container credentials endpoint, for boto3 (the agent)
and for the real restic 0.14 (minio-go 7.0.46, what Debian bookworm's restic is built with).

The agent runs as its own process with the environment a task gives it and nothing else: no
AWS keys, an empty HOME (no shared credentials files), AWS_CONTAINER_CREDENTIALS_FULL_URI
pointing at an endpoint on 127.0.0.1 that serves temporary credentials. Every AWS request (S3
from restic and boto3, ECS and CloudWatch from boto3) goes through a proxy that verifies its
Signature Version 4 signature against exactly those credentials before moto_server sees it.

On Fargate, ECS sets AWS_CONTAINER_CREDENTIALS_RELATIVE_URI instead, resolved against the fixed
address 169.254.170.2, which cannot be served here; both SDKs read both variables (sources in
docs/runtime.md, "The agent in a task")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from backup_agent import task
from contract.agent_settings import SETTINGS_VARIABLE, to_json
from contract.jobs import Job
from contract.tasks import task_group
from tests.support import task_endpoints

from .conftest import (
    REGION,
    RESTIC_PASSWORD,
    ROOT,
    SECRET_VARIABLE,
    file_set_data,
    make_tree,
    start_tasks,
)

pytestmark = pytest.mark.usefixtures("restic_binary")

@pytest.fixture
def served():
    return task_endpoints.Credentials.new()


@pytest.fixture
def started_task(ecs, cluster):
    [arn] = start_tasks(ecs, cluster, task_group(Job.parse("files:app")))
    return cluster, arn


def run_in_task(settings, served_secret: task_endpoints.Credentials, expected, metadata_uri,
                home, moto_endpoint, argv):
    """`backup-agent <argv>` as a task's container runs it: credentials only from the endpoint
    serving `served_secret`, every AWS call through the proxy expecting `expected`."""
    with task_endpoints.credentials_endpoint(served_secret) as credentials, \
            task_endpoints.signing_proxy(moto_endpoint, expected) as proxy:
        environment = {
            "PATH": os.environ["PATH"], "HOME": str(home),
            SETTINGS_VARIABLE: to_json(settings(proxy.url)),
            SECRET_VARIABLE: RESTIC_PASSWORD,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials.url,
            task.METADATA_VARIABLE: metadata_uri,
            "AWS_ENDPOINT_URL_ECS": proxy.url, "AWS_ENDPOINT_URL_CLOUDWATCH": proxy.url,
            "TMPDIR": str(home / "scratch" / "tmp"),
        }
        result = subprocess.run([sys.executable, "-m", "backup_agent.cli", *argv],
                                env=environment, cwd=ROOT, capture_output=True, text=True,
                                timeout=300)
        listing = subprocess.run(
            ["restic", "snapshots", "--json", "--no-lock"], capture_output=True, text=True,
            timeout=120, env={
                "PATH": os.environ["PATH"], "HOME": str(home),
                "RESTIC_REPOSITORY": settings(proxy.url).primary.restic_repository,
                "RESTIC_PASSWORD_FILE": settings(proxy.url).restic_password_file,
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials.url,
                "AWS_DEFAULT_REGION": REGION, "RESTIC_CACHE_DIR": str(home / "cache")})
        return result, listing, list(proxy.seen), list(credentials.hits)


@pytest.fixture
def task_settings(agent_settings, shared_dir, bucket, restic_repository, started_task):
    """Settings of a file set whose repository is a copy of the template (the backup's signed
    requests are what count here, not init)."""
    cluster, _ = started_task
    home = shared_dir / "home"
    (home / "scratch").mkdir(parents=True, mode=0o700)
    source = shared_dir / "app"
    make_tree(source)
    password = str(home / "scratch" / "secrets" / "restic-password")

    def make(endpoint: str):
        return agent_settings(**file_set_data(source) | {
            "primary": {"bucket": bucket, "region": REGION, "endpoint": endpoint},
            "resticPasswordFile": password, "stateDir": str(home / "scratch" / "state"),
            "task": {"cluster": cluster, "metricsNamespace": "BackupCredentialsTest",
                     "secrets": [{"variable": SECRET_VARIABLE, "path": password}]}})

    return make, home


def test_boto3_and_restic_sign_with_the_container_credentials(
        task_settings, started_task, served, metadata, moto_endpoint):
    make, home = task_settings
    _, arn = started_task
    result, listing, seen, hits = run_in_task(make, served, served, metadata.uri(arn), home,
                                              moto_endpoint, ["run", "files", "app"])
    assert result.returncode == 0, result.stderr
    snapshot = result.stdout.strip().removeprefix("snapshot ")
    assert [s["short_id"] for s in json.loads(listing.stdout)
            if "manifest" not in s["tags"]] == [snapshot[:8]]
    assert [s for s in seen if s.problem is not None] == []
    by_client = {(s.user_agent.split(" ")[0], s.service) for s in seen}
    assert {(agent.split("/")[0], service) for agent, service in by_client} == {
        ("MinIO", "s3"),  # restic (minio-go)
        ("Boto3", "s3"), ("Boto3", "ecs"), ("Boto3", "monitoring")}  # the agent
    assert any("minio-go/v7.0.46" in s.user_agent for s in seen)
    # Both asked the endpoint: Go's HTTP client (minio-go), urllib3 (botocore's fetcher).
    assert {hit.split("/")[0] for hit in hits} == {"Go-http-client", "python-urllib3"}


def test_without_the_served_secret_nothing_is_signed_right(
        task_settings, started_task, served, metadata, moto_endpoint):
    """The proxy is what makes the first test a proof: it refuses what the served secret did
    not sign."""
    make, home = task_settings
    _, arn = started_task
    wrong = task_endpoints.Credentials(served.key, served.secret + "x", served.token)
    result, listing, seen, _ = run_in_task(make, wrong, served, metadata.uri(arn), home,
                                           moto_endpoint, ["run", "files", "app"])
    assert result.returncode == 1
    assert result.stderr.startswith("error: files:app: overlap guard: ECS ListTasks: ")
    assert listing.returncode != 0
    assert {s.problem for s in seen} == {"signature does not match the served secret key"}
    assert {s.user_agent.split("/")[0] for s in seen} == {"Boto3", "MinIO (linux; amd64) minio-go"}
