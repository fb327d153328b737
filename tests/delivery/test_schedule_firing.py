"""Schedules of the scale stack firing, played against moto: EventBridge Scheduler's and ECS's
parts done by this test with boto3, the container's part by the real `backup-agent` and the
real restic — a file-set backup, then the drill (`--target all`) that restores it from the
primary and from the replica. moto replicates nothing: S3 replication's part is played by
copying the primary's objects into the replica before the drill fires. The file set's restic
repository is in the bucket before the backup fires (`restic init` by this test).

The stack (Pulumi.scale.yaml) is built in moto from its offline preview
(tests/support/delivery.py), buckets included, in a VPC created in moto first: the stack takes
its subnets and security groups from config (a VPC it does not manage), so the stack file is
rendered with moto's ids in their place — nothing else of it changes. For one schedule:

1. its target as Scheduler stores it (`scheduler.get_schedule`);
2. what Scheduler does with it: `ecs.run_task` with exactly its ECS parameters (cluster = the
   target's ARN, task definition, launch type, platform version, count, group, network
   configuration) and its input as `overrides` (ECS Developer Guide, "Using Amazon EventBridge
   Scheduler to schedule Amazon ECS tasks");
3. what ECS does: the task definition's container (`ecs.describe_task_definition`) run as a
   process on this machine — its `entryPoint` and the override's command; its `environment`;
   its `secrets` read from Secrets Manager by `valueFrom` into environment variables, as ECS
   injects them; what ECS sets in a Fargate container (Amazon ECS Developer Guide, "Amazon ECS
   environment variables"): the task metadata endpoint v4, on 127.0.0.1, serving RunTask's task
   ARN, the task's region and AWS_EXECUTION_ENV; its mount points on temporary directories: the
   scratch volume, and for the files kind a directory standing in for the EFS access point's
   mount, holding the file set's paths. When the process exits, the task is stopped (ECS stops
   a task whose essential container exited).

The task role's credentials come from a container credentials endpoint on 127.0.0.1
(AWS_CONTAINER_CREDENTIALS_FULL_URI; on Fargate ECS sets the _RELATIVE_URI form, resolved
against 169.254.170.2, which cannot be served here), and every AWS request of the agent and of
restic goes through a proxy that verifies its Signature Version 4 signature against exactly
those credentials before moto sees it (tests/support/task_endpoints.py).

What is not as in a task: the S3 endpoint of the settings document's buckets (moto's, through
that proxy; unset, AWS's own) and AWS_ENDPOINT_URL_ECS/_CLOUDWATCH for boto3, the paths under
the mount points (rewritten to the temporary directories, as a bind mount would place them),
PATH (the image's: here this virtualenv's bin and the system's, for restic), and the user: the
process runs as this test's user, not the task definition's 10001 (the interpreter lives where
that user cannot read); read-only root file system, dropped capabilities and EFS read-only are
Fargate's to enforce and are not played.

A wal-g base backup (`run postgres <db>`) cannot be played: the real wal-g cannot be built here
(the Go module proxy refuses its pinned commit), and the stand-in under tests/fakes proves
nothing about wal-g. For the same reason the drill's settings are played without their
databases (their restores need wal-g); its file set is restored as the schedule runs it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backup_agent import evidence, task
from contract.agent_settings import SETTINGS_VARIABLE, Storage
from contract.tasks import JOB_DIMENSION, OUTCOME_METRIC
from delivery.smoke_check import substitute
from review.preview import main as offline_preview
from review.render import OUTPUTS_DOCUMENT
from tests.support import ROOT, required_tool, task_endpoints
from tests.support.delivery import FAKE_CREDENTIALS, client, deploy_from_preview, reset
from tests.support.restic_key import cheapen_repository_key

REGION = "eu-central-1"
CLUSTER = "biometrics-backup"
FILES_SCHEDULE = f"{CLUSTER}-files-uploads"
DRILL_SCHEDULE = f"{CLUSTER}-drill"
NAMESPACE = "BiometricsBackup"  # Pulumi.scale.yaml: runtime.ecs.metricsNamespace
RESTIC_PASSWORD = "moto correct horse battery staple"
# Pulumi.scale.yaml's network, which moto's ids replace.
STACK_SUBNETS = ("subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002",
                 "subnet-0a1b2c3d4e5f60003")
STACK_SECURITY_GROUP = "sg-0a1b2c3d4e5f60010"
# The file set's content on the EFS stand-in (paths /mnt/uploads/app and /mnt/uploads/media).
UPLOADS = {"app/config.json": '{"tenant": 1}\n', "app/users/0001.bin": "\x00\x01" * 2048,
           "media/logo.svg": "<svg/>\n"}


@pytest.fixture(scope="module", autouse=True)
def moto_credentials() -> Iterator[None]:
    """For this test's own requests to moto (the task gets the endpoint's)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_CREDENTIALS.items():
            patch.setenv(name, value)
        yield


@pytest.fixture(scope="module")
def aws(local_aws: str) -> str:
    """The session's moto, emptied once for this module: the backup and the drill share it."""
    return reset(local_aws)


@pytest.fixture(scope="module")
def network(aws: str) -> dict[str, str]:
    """The VPC the stack does not manage: three subnets and a security group (DNS hostnames
    on, as moto's task network interfaces need), by the stack file's ids they stand in for."""
    ec2 = client("ec2", aws, REGION)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    ids = {stack_id: ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{index}.0/24")["Subnet"][
        "SubnetId"] for index, stack_id in enumerate(STACK_SUBNETS)}
    ids[STACK_SECURITY_GROUP] = ec2.create_security_group(
        GroupName="backup-tasks", Description="backup tasks", VpcId=vpc)["GroupId"]
    return ids


@pytest.fixture(scope="module")
def preview(tmp_path_factory, network) -> tuple[Path, dict[str, Any]]:
    """The offline preview of Pulumi.scale.yaml with moto's network ids, as CI renders it."""
    project = tmp_path_factory.mktemp("scale-project")
    (project / "infra").symlink_to(ROOT / "infra")
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    stack = (ROOT / "Pulumi.scale.yaml").read_text()
    for stack_id, moto_id in network.items():
        assert stack.count(stack_id) == 1, stack_id
        stack = stack.replace(stack_id, moto_id)
    (project / "Pulumi.scale.yaml").write_text(stack)
    out = tmp_path_factory.mktemp("scale-preview")
    assert offline_preview(["--stack", "scale", "--project-dir", str(project),
                            "--out", str(out)]) == 0
    return out, json.loads((out / OUTPUTS_DOCUMENT).read_text())


@pytest.fixture(scope="module")
def webhook() -> Iterator[tuple[str, list[dict]]]:
    with task_endpoints.webhook() as served:
        yield served


@pytest.fixture(scope="module")
def stack(aws, preview, webhook) -> dict[str, Any]:
    """The stack's outputs, deployed into moto as rendered; the runtime secrets' values: the
    restic password and the status webhook on 127.0.0.1."""
    directory, outputs = preview
    url, _ = webhook
    return deploy_from_preview(aws, directory, outputs, secret_values={
        "resticPassword": RESTIC_PASSWORD, "webhookUrl": url})


@pytest.fixture(scope="module")
def endpoints(aws) -> Iterator[Endpoints]:
    served = task_endpoints.Credentials.new()
    with task_endpoints.metadata_endpoint() as metadata, \
            task_endpoints.credentials_endpoint(served) as credentials, \
            task_endpoints.signing_proxy(aws, served) as proxy:
        yield Endpoints(metadata, credentials, proxy)


@dataclass(frozen=True)
class Endpoints:
    """What AWS provides in a task: metadata, the task role's credentials, AWS's endpoints (a
    proxy checking the signatures, in front of moto)."""

    metadata: task_endpoints.Metadata
    credentials: task_endpoints.CredentialsEndpoint
    proxy: task_endpoints.Proxy


@pytest.fixture(scope="module")
def efs(tmp_path_factory) -> Path:
    """Stands in for the file set's EFS access point, mounted at /mnt/uploads in the task."""
    root = tmp_path_factory.mktemp("efs-uploads")
    for relative, content in UPLOADS.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(content)
    return root


@dataclass(frozen=True)
class Fired:
    task_arn: str
    run_task: dict[str, Any]
    command: list[str]
    result: subprocess.CompletedProcess


def run_task_request(target: Mapping[str, Any]) -> dict[str, Any]:
    """What Scheduler sends to RunTask for its ECS target: every ECS parameter it holds (in
    RunTask's names), the cluster its ARN, the input as `overrides`."""
    parameters = dict(target["EcsParameters"])
    network = parameters.pop("NetworkConfiguration")["awsvpcConfiguration"]
    request = {
        "cluster": target["Arn"],
        "taskDefinition": parameters.pop("TaskDefinitionArn"),
        "launchType": parameters.pop("LaunchType"),
        "platformVersion": parameters.pop("PlatformVersion"),
        "count": parameters.pop("TaskCount"),
        "group": parameters.pop("Group"),
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": network["Subnets"], "securityGroups": network["SecurityGroups"],
            "assignPublicIp": network["AssignPublicIp"]}},
        "overrides": json.loads(target["Input"]),
    }
    assert parameters == {}, f"ECS parameters this test does not pass on: {parameters}"
    return request


def fire(schedule_name: str, *, aws: str, endpoints: Endpoints, volumes: Mapping[str, Path],
         home: Path, played_settings=lambda settings: settings) -> Fired:
    """One firing of the schedule: Scheduler's RunTask, then the task's container run here
    (`volumes`: source volume name → the directory it is here), then the task stopped.
    `played_settings` changes the settings document before the container starts (only the
    drill's: see the module docstring)."""
    target = client("scheduler", aws, REGION).get_schedule(
        Name=schedule_name, GroupName=CLUSTER)["Target"]
    request = run_task_request(target)
    ecs = client("ecs", aws, REGION)
    [started] = ecs.run_task(**request)["tasks"]
    [container] = ecs.describe_task_definition(
        taskDefinition=started["taskDefinitionArn"])["taskDefinition"]["containerDefinitions"]
    [override] = [o for o in request["overrides"]["containerOverrides"]
                  if o["name"] == container["name"]]
    command = [*container["entryPoint"], *override["command"]]
    # Every path under a mount point of the container, where the volume lies here.
    mounts = {f"{point['containerPath']}/": f"{volumes[point['sourceVolume']]}/"
              for point in container["mountPoints"]}
    secrets = client("secretsmanager", aws, REGION)
    environment = {item["name"]: substitute(item["value"], mounts)
                   for item in container["environment"]}
    settings = substitute(json.loads(environment[SETTINGS_VARIABLE]), mounts)
    for storage in ("primary", "replica"):
        if storage in settings:
            settings[storage]["endpoint"] = endpoints.proxy.url
    environment[SETTINGS_VARIABLE] = json.dumps(played_settings(settings))
    environment.update({secret["name"]: secrets.get_secret_value(
        SecretId=secret["valueFrom"])["SecretString"] for secret in container["secrets"]})
    environment.update({
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        task.METADATA_VARIABLE: endpoints.metadata.uri(started["taskArn"]),
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": endpoints.credentials.url,
        "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
        "AWS_ENDPOINT_URL_ECS": endpoints.proxy.url,
        "AWS_ENDPOINT_URL_CLOUDWATCH": endpoints.proxy.url,
    })
    result = subprocess.run(command, env=environment, cwd=home, capture_output=True, text=True,
                            timeout=600)
    ecs.stop_task(cluster=request["cluster"], task=started["taskArn"],
                  reason="Essential container in task exited")
    return Fired(started["taskArn"], request, command, result)


@pytest.fixture(scope="module")
def volumes(tmp_path_factory, efs) -> dict[str, Path]:
    """The task definitions' volumes here: the scratch space (empty, as the image declares
    it) and the EFS stand-in."""
    return {"scratch": tmp_path_factory.mktemp("scratch"), "efs-uploads": efs}


def restic_environment(stack: Mapping[str, Any], aws: str, home: Path) -> dict[str, str]:
    """restic on the file set's repository in the primary bucket, with this test's own
    credentials for moto (not the task role's)."""
    primary = stack["buckets"]["primary"]
    return {"PATH": os.environ["PATH"], "HOME": str(home), "RESTIC_PASSWORD": RESTIC_PASSWORD,
            "RESTIC_REPOSITORY": Storage(primary["bucket"], primary["region"],
                                         aws).restic_repository,
            **{key: os.environ[key] for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}}


@pytest.fixture(scope="module")
def repository(stack, aws, tmp_path_factory) -> None:
    """The file set's restic repository, there before the first firing: `restic init` run
    here, its key re-wrapped under cheap scrypt parameters (tests/support/restic_key.py). The
    firings prove the schedules, the tasks and the backup and restores through the task role,
    not the job's way of creating a repository (tests/agent/test_restic_real.py's first test);
    with init's own key, each of the firings' eleven restic commands would derive it again
    (restic 0.14 calibrates that to a good part of a second)."""
    required_tool("restic", "restic")
    subprocess.run(["restic", "init"], capture_output=True, timeout=120, check=True,
                   env=restic_environment(stack, aws, tmp_path_factory.mktemp("restic-home")))
    primary = stack["buckets"]["primary"]
    cheapen_repository_key(client("s3", aws, primary["region"]), primary["bucket"],
                           RESTIC_PASSWORD)


@pytest.fixture(scope="module")
def backup(stack, aws, endpoints, volumes, repository, tmp_path_factory) -> Fired:
    return fire(FILES_SCHEDULE, aws=aws, endpoints=endpoints, volumes=volumes,
                home=tmp_path_factory.mktemp("home"))


def job_succeeded(aws: str, job: str) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    points = client("cloudwatch", aws, REGION).get_metric_statistics(
        Namespace=NAMESPACE, MetricName=OUTCOME_METRIC,
        Dimensions=[{"Name": JOB_DIMENSION, "Value": job}],
        StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(hours=1),
        Period=7200, Statistics=["SampleCount", "Sum"])["Datapoints"]
    return [{key: point[key] for key in ("SampleCount", "Sum", "Unit")} for point in points]


def outcomes(stack: Mapping[str, Any], aws: str) -> list[evidence.Outcome]:
    primary = stack["buckets"]["primary"]
    now = dt.datetime.now(dt.UTC)
    month = evidence.read_month(Storage(primary["bucket"], primary["region"], aws),
                                now.year, now.month)
    return list(month.outcomes)


def snapshots(stack: Mapping[str, Any], aws: str, home: Path) -> list[dict[str, Any]]:
    """The file set's snapshots, as restic itself lists them from the bucket."""
    listing = subprocess.run(
        ["restic", "snapshots", "--json", "--no-lock", "--no-cache"], capture_output=True,
        text=True, timeout=120, check=True, env=restic_environment(stack, aws, home))
    return json.loads(listing.stdout)


def test_the_file_set_schedule_firing_backs_it_up(backup, stack, aws, endpoints, webhook, efs,
                                                  network, tmp_path):
    # What Scheduler passed to RunTask, and the container's command.
    assert backup.run_task == {
        "cluster": stack["ecs"]["clusterArn"],
        "taskDefinition": stack["ecs"]["taskDefinitionArns"]["files"],
        "launchType": "FARGATE", "platformVersion": "LATEST", "count": 1,
        "group": "backup-job:files:uploads",
        "networkConfiguration": {"awsvpcConfiguration": {
            "subnets": [network[subnet] for subnet in STACK_SUBNETS],
            "securityGroups": [network[STACK_SECURITY_GROUP]], "assignPublicIp": "DISABLED"}},
        "overrides": {"containerOverrides": [{"name": "backup-agent",
                                              "command": ["run", "files", "uploads"]}]}}
    assert backup.command == ["backup-agent", "run", "files", "uploads"]
    assert backup.result.returncode == 0, backup.result.stderr

    # restic's snapshot in the bucket, of the file set's paths on the EFS stand-in.
    [snapshot] = [s for s in snapshots(stack, aws, tmp_path) if "manifest" not in s["tags"]]
    assert backup.result.stdout.strip().splitlines()[-1] == f"snapshot {snapshot['short_id']}"
    assert (snapshot["hostname"], sorted(snapshot["paths"]), sorted(snapshot["tags"])) == (
        "biometrics-uploads", [str(efs / "app"), str(efs / "media")],
        ["automated", "fileset:uploads", "production"])
    # The outcome: the metric the "no successful run" alarm watches, the record, the webhook.
    assert job_succeeded(aws, "files:uploads") == [
        {"SampleCount": 1.0, "Sum": 1.0, "Unit": "Count"}]
    [record] = [o for o in outcomes(stack, aws) if o.kind == "backup"]
    assert (record.job, record.target, record.success, record.restore_point) == (
        "files:uploads", "primary", True, snapshot["short_id"])
    _, posted = webhook
    assert [(post["job"], post["status"]) for post in posted] == [("files:uploads", "success")]
    # Every request signed with the task role's credentials from the endpoint, by restic
    # (minio-go) and the agent (boto3: S3, ECS's overlap guard, CloudWatch).
    seen = endpoints.proxy.seen
    assert [s for s in seen if s.problem is not None] == []
    assert {(s.user_agent.split("/")[0], s.service) for s in seen} >= {
        ("MinIO (linux; amd64) minio-go", "s3"), ("Boto3", "s3"), ("Boto3", "ecs"),
        ("Boto3", "monitoring")}
    # The task, stopped when its container exited, ran in the job's group.
    [described] = client("ecs", aws, REGION).describe_tasks(
        cluster=CLUSTER, tasks=[backup.task_arn])["tasks"]
    assert (described["group"], described["desiredStatus"]) == (
        "backup-job:files:uploads", "STOPPED")


def without_databases(settings: dict[str, Any]) -> dict[str, Any]:
    """The drill's settings without the 50 databases it also restores (with wal-g: see the
    module docstring)."""
    assert len(settings["databases"]) == 50
    return {**settings, "databases": []}


def replicate(stack: Mapping[str, Any], aws: str) -> list[str]:
    """What S3 replication does (rule replicate-everything; moto replicates nothing): each
    current object of the primary into the replica under its key; the keys copied."""
    buckets = stack["buckets"]
    primary = client("s3", aws, buckets["primary"]["region"])
    replica = client("s3", aws, buckets["replica"]["region"])
    keys = [item["Key"] for page in primary.get_paginator("list_objects_v2").paginate(
        Bucket=buckets["primary"]["bucket"]) for item in page.get("Contents", [])]
    for key in keys:
        body = primary.get_object(Bucket=buckets["primary"]["bucket"], Key=key)["Body"].read()
        replica.put_object(Bucket=buckets["replica"]["bucket"], Key=key, Body=body)
    return keys


def test_the_drill_schedule_firing_restores_it_from_both_buckets(backup, stack, aws, endpoints,
                                                                 webhook, tmp_path):
    assert backup.result.returncode == 0, backup.result.stderr
    assert any(key.startswith("restic/snapshots/") for key in replicate(stack, aws))
    (tmp_path / "scratch").mkdir()
    drill = fire(DRILL_SCHEDULE, aws=aws, endpoints=endpoints,
                 volumes={"scratch": tmp_path / "scratch"}, home=tmp_path,
                 played_settings=without_databases)
    assert drill.command == ["backup-agent", "drill", "--target", "all"]
    assert drill.run_task["group"] == "backup-job:drill"
    assert drill.result.returncode == 0, drill.result.stdout + drill.result.stderr
    # From each bucket it restored the snapshot the backup took (the drill records its full
    # id, the backup restic's short one) and verified its files.
    [snapshot] = [s for s in snapshots(stack, aws, tmp_path) if "manifest" not in s["tags"]]
    assert sorted((o.job, o.target, o.success, o.restore_point)
                  for o in outcomes(stack, aws) if o.kind == "drill") == [
        ("files:uploads", "primary", True, snapshot["id"]),
        ("files:uploads", "replica", True, snapshot["id"])]
    verified = (r"\(\d+\.\d s\): 3 files match their recorded hashes \(0 changed during the "
                r"backup and were not compared\)\n")
    assert re.fullmatch(f"PASS primary files uploads {verified}PASS replica files uploads "
                        f"{verified}", drill.result.stdout)
    assert job_succeeded(aws, "drill") == [{"SampleCount": 1.0, "Sum": 1.0, "Unit": "Count"}]
    _, posted = webhook
    assert [(post["job"], post["status"]) for post in posted][-1] == ("drill", "success")
