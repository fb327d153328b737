"""moto servers on 127.0.0.1, started and stopped by the tests, and buckets built from a
rendered offline preview with boto3 (the delivery tests' helpers)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from delivery.smoke_check import Check, planned_checks
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


def client(service: str, url: str, region: str) -> Any:
    config = Config(s3={"addressing_style": "path"}) if service == "s3" else None
    return boto3.client(service, region_name=region, endpoint_url=url, config=config)


Mutation = Callable[[Check], Any]  # returns the document to install, or None to skip it


def _rank(check: Check, log_buckets: set[str]) -> int:
    """Configuration first; then the log buckets' policies (moto, like S3, accepts a logging
    configuration only when the target's policy lets the logging service write); then logging
    and replication; the backup buckets' policies last."""
    if check.aspect == "policy":
        return 1 if check.bucket in log_buckets else 3
    return 2 if check.aspect in ("logging", "replication") else 0


def _install(s3: Any, check: Check, document: Any) -> None:
    bucket = check.bucket
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


def deploy_from_preview(url: str, preview: Path, preview_outputs: dict[str, Any],
                        mutate: Mutation | None = None) -> dict[str, Any]:
    """Create the stack's buckets in moto from the rendered documents; return the outputs
    `pulumi stack output --json` would print (with moto's key ARNs)."""
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
    checks = planned_checks(outputs, preview)
    locked = {check.bucket for check in checks if check.aspect == "object lock"}
    for live in buckets.values():
        for bucket in (live["bucket"], live["logBucket"]):
            regional("s3", live["region"]).create_bucket(
                Bucket=bucket, ObjectLockEnabledForBucket=bucket in locked,
                CreateBucketConfiguration={"LocationConstraint": live["region"]})
    log_buckets = {live["logBucket"] for live in buckets.values()}
    for check in sorted(checks, key=lambda c: _rank(c, log_buckets)):
        document = mutate(check) if mutate else check.expected
        if document is not None:
            _install(regional("s3", check.region), check, document)
    return outputs
