"""moto servers on 127.0.0.1, started and stopped by the tests, and a stack's buckets and ECS
runtime built from a rendered offline preview with boto3 (the delivery tests' helpers)."""

from __future__ import annotations

import functools
import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from delivery.smoke_check import Check, planned_checks, substitute
from review.recording import PLACEHOLDER_ACCOUNT_ID
from tests.support import ROOT

# Fake credentials for the local fake: moto accepts any.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "moto-fake-key", "AWS_SECRET_ACCESS_KEY": "moto-fake",
                    "AWS_SESSION_TOKEN": "moto-fake"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(command: list[str]) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([*command, "-H", "127.0.0.1", "-p", str(port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not start on {url}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def reset(url: str) -> str:
    """Empty the moto server at `url` (every service, every region); returns the URL."""
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=5).close()
    return url


@functools.cache  # a client per service, endpoint and region: creating one takes long
def client(service: str, url: str, region: str) -> Any:
    config = Config(s3={"addressing_style": "path"}) if service == "s3" else None
    return boto3.client(service, region_name=region, endpoint_url=url, config=config)


Mutation = Callable[[Check], Any]  # returns the document to install, or None to skip it


def _rank(check: Check, log_buckets: set[str]) -> int:
    """Configuration first; then the log buckets' policies (moto, like S3, accepts a logging
    configuration only when the target's policy lets the logging service write); then logging
    and replication; the backup buckets' policies last."""
    if check.aspect == "policy":
        return 1 if check.resource in log_buckets else 3
    return 2 if check.aspect in ("logging", "replication") else 0


def _install_bucket(s3: Any, check: Check, document: Any) -> None:
    bucket = check.resource
    if check.aspect == "versioning":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=document)
    elif check.aspect == "encryption":
        s3.put_bucket_encryption(Bucket=bucket, **document)
    elif check.aspect == "public access block":
        s3.put_public_access_block(Bucket=bucket, **document)
    elif check.aspect == "ownership":
        s3.put_bucket_ownership_controls(Bucket=bucket, **document)
    elif check.aspect == "object lock":
        s3.put_object_lock_configuration(Bucket=bucket, **document)
    elif check.aspect == "lifecycle":
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": document["Rules"]},
            TransitionDefaultMinimumObjectSize=document["TransitionDefaultMinimumObjectSize"])
    elif check.aspect == "logging":
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus=document)
    elif check.aspect == "replication":
        s3.put_bucket_replication(Bucket=bucket, **document)
    elif check.aspect == "policy":
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    else:
        raise AssertionError(f"no installer for {check.aspect}")


# The order the ECS resources are created in: the schedules name the task definitions and the
# queue, the targets the rule.
ECS_ORDER = ("cluster", "task definition", "queue", "queue policy", "schedule", "rule",
             "rule targets")


Clients = Callable[[str, str], Any]  # (service, region) -> a boto3 client of the deployment


def _install_ecs(clients: Clients, check: Check, document: Any) -> None:
    def aws(service: str) -> Any:
        return clients(service, check.region)

    configuration = {key: value for key, value in document.items() if key != "status"}
    if check.aspect == "cluster":
        arn = aws("ecs").create_cluster(**configuration)["cluster"]["clusterArn"]
        assert [arn] == check.request["clusters"], "moto named the cluster otherwise"
    elif check.aspect == "task definition":
        registered = aws("ecs").register_task_definition(**configuration)["taskDefinition"]
        assert registered["taskDefinitionArn"] == check.request["taskDefinition"], \
            "moto gave the task definition another revision"
    elif check.aspect == "queue":
        aws("sqs").set_queue_attributes(QueueUrl=check.request["QueueUrl"], Attributes=document)
    elif check.aspect == "queue policy":
        aws("sqs").set_queue_attributes(QueueUrl=check.request["QueueUrl"],
                                        Attributes={"Policy": json.dumps(document)})
    elif check.aspect == "schedule":
        aws("scheduler").create_schedule(**document)
    elif check.aspect == "rule":
        aws("events").put_rule(Name=check.resource, State=document["State"],
                               EventPattern=json.dumps(document["EventPattern"]))
    elif check.aspect == "rule targets":
        aws("events").put_targets(Rule=check.resource, Targets=document["Targets"])
    else:
        raise AssertionError(f"no installer for {check.aspect}")


def secret_value(config_key: str) -> str:
    """The value the moto deploy gives each runtime secret (the agent reads them in a task)."""
    return f"moto-{config_key}"


def _ecs_names(clients: Clients, planned: Mapping[str, Any], account: str,
               secret_values: Mapping[str, str]) -> dict[str, Any]:
    """The `ecs` outputs: what only AWS names (the runtime key, the secrets, the repository,
    the queue URL) created first; the cluster's and task definitions' ARNs as AWS forms them,
    checked when they are created."""
    region = planned["clusterArn"].split(":")[3]
    outputs = substitute(planned, {f":{PLACEHOLDER_ACCOUNT_ID}:": f":{account}:"})
    outputs["keyArn"] = clients("kms", region).create_key(
        Description="ECS runtime (moto)")["KeyMetadata"]["Arn"]
    secrets = clients("secretsmanager", region)
    outputs["secretArns"] = {
        key: secrets.create_secret(Name=arn.split(":secret:")[1].rsplit("-", 1)[0],
                                   KmsKeyId=outputs["keyArn"],
                                   SecretString=secret_values.get(key, secret_value(key)))["ARN"]
        for key, arn in planned["secretArns"].items()}
    repository = planned["repositoryUrl"].split("/", 1)[1]
    outputs["repositoryUrl"] = clients("ecr", region).create_repository(
        repositoryName=repository)["repository"]["repositoryUri"]
    queue = planned["deadLetterQueueUrl"].rsplit("/", 1)[1]
    outputs["deadLetterQueueUrl"] = clients("sqs", region).create_queue(
        QueueName=queue)["QueueUrl"]
    return outputs


def deploy_from_preview(url: str, preview: Path, preview_outputs: dict[str, Any],
                        mutate: Mutation | None = None,
                        secret_values: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Create the stack's buckets and, with an ECS placement, its cluster, task definitions,
    schedules, dead-letter queue and paging rule in moto from the rendered documents; return
    the outputs `pulumi stack output --json` would print (with moto's names and ARNs).
    `secret_values` by config key (default `secret_value(key)`)."""
    clients: dict[tuple[str, str], Any] = {}

    def regional(service: str, region: str) -> Any:
        """One client per service and region for the whole deployment (creating a boto3 client
        costs more than the call it makes)."""
        if (service, region) not in clients:
            clients[service, region] = client(service, url, region)
        return clients[service, region]

    buckets = {}
    for purpose, planned in preview_outputs["buckets"].items():
        kms = regional("kms", planned["region"])
        key_arn = kms.create_key(Description=f"{planned['bucket']} (moto)")["KeyMetadata"]["Arn"]
        buckets[purpose] = {**planned, "keyArn": key_arn}
    outputs = {**preview_outputs, "buckets": buckets}
    if "ecs" in preview_outputs:
        account = buckets["primary"]["keyArn"].split(":")[4]
        outputs["ecs"] = _ecs_names(regional, preview_outputs["ecs"], account,
                                    secret_values or {})
    checks = planned_checks(outputs, preview)
    bucket_checks = [check for check in checks if check.is_bucket]
    locked = {check.resource for check in bucket_checks if check.aspect == "object lock"}
    for live in buckets.values():
        for bucket in (live["bucket"], live["logBucket"]):
            regional("s3", live["region"]).create_bucket(
                Bucket=bucket, ObjectLockEnabledForBucket=bucket in locked,
                CreateBucketConfiguration={"LocationConstraint": live["region"]})
    log_buckets = {live["logBucket"] for live in buckets.values()}
    for check in sorted(bucket_checks, key=lambda c: _rank(c, log_buckets)):
        document = mutate(check) if mutate else check.expected
        if document is not None:
            _install_bucket(regional("s3", check.region), check, document)
    ecs_checks = [check for check in checks if not check.is_bucket]
    for group, region in {(c.request["GroupName"], c.region) for c in ecs_checks
                          if c.aspect == "schedule"}:
        regional("scheduler", region).create_schedule_group(Name=group)
    for check in sorted(ecs_checks, key=lambda c: ECS_ORDER.index(c.aspect)):
        document = mutate(check) if mutate else check.expected
        if document is not None:
            _install_ecs(regional, check, document)
    return outputs
