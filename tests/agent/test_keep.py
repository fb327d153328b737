"""`backup-agent keep`: a backup kept past the lock window is permanent for wal-g (FAKE wal-g
here), tagged Retention=active and under legal hold, in an Object Lock bucket on moto."""

from __future__ import annotations

import json
import uuid

import boto3
from botocore.exceptions import ClientError

from backup_agent import cli, postgres, tools

from .conftest import REGION

ROOT = "postgres/biometrics/"
KEPT = "base_000000010000000000000002"
NEWER = "base_000000010000000000000005"


def put(s3, bucket, key, body=b"x"):
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def test_keep_protects_the_backup_and_its_wal_and_retention_skips_it(
        agent_settings, moto_endpoint, shared_dir, fake_walg):
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    bucket = f"locked-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True,
                     CreateBucketConfiguration={"LocationConstraint": REGION})
    for name, start in ((KEPT, 0x2000028), (NEWER, 0x5000028)):
        folder = f"{ROOT}basebackups_005/{name}/"
        put(s3, bucket, folder + "tar_partitions/part_001.tar.lzma")
        put(s3, bucket, folder + "metadata.json", json.dumps(
            {"start_lsn": start, "finish_lsn": start + 0xD8, "is_permanent": False}).encode())
        put(s3, bucket, f"{ROOT}basebackups_005/{name}_backup_stop_sentinel.json",
            json.dumps({"LSN": start, "FinishTime": "2026-01-01T00:00:00.000000Z"}).encode())
    wal = [f"{ROOT}wal_005/00000001000000000000000{n}.lzma" for n in range(1, 7)]
    history = f"{ROOT}wal_005/000000010000000000000002.00000028.backup.lzma"
    for key in (*wal, history):
        put(s3, bucket, key)
    settings = agent_settings(databases=[{
        "name": "biometrics", "host": "db", "user": "backup", "dbname": "biometrics",
        "tables": ["users"], "retainFull": 1, "schedule": "0 2 * * *", "rpoSeconds": 300,
        "compression": "lzma"}], jobs=["postgres:biometrics"],
        primary={"bucket": bucket, "region": REGION, "endpoint": moto_endpoint})

    assert cli.main(["--settings", str(shared_dir / "settings.json"), "keep", "biometrics",
                     KEPT]) == 0
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=ROOT)["Contents"]]
    protected = {key for key in keys if legal_hold(s3, bucket, key) == "ON"}
    assert protected == {
        f"{ROOT}basebackups_005/{KEPT}_backup_stop_sentinel.json",
        f"{ROOT}basebackups_005/{KEPT}/metadata.json",
        f"{ROOT}basebackups_005/{KEPT}/tar_partitions/part_001.tar.lzma",
        history, wal[1],
    }
    assert {key for key in keys if s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == [
        {"Key": "Retention", "Value": "active"}]} == protected
    metadata = json.loads(s3.get_object(
        Bucket=bucket, Key=f"{ROOT}basebackups_005/{KEPT}/metadata.json")["Body"].read())
    assert metadata["is_permanent"] is True

    database = settings.database("biometrics")
    tools.run([settings.walg_binary, "delete", "retain", "FULL", "1", "--confirm"],
              tools.walg_env(settings.primary, database))
    remaining = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket,
                                                            Prefix=ROOT)["Contents"]}
    assert remaining == protected | {
        f"{ROOT}basebackups_005/{NEWER}_backup_stop_sentinel.json",
        f"{ROOT}basebackups_005/{NEWER}/metadata.json",
        f"{ROOT}basebackups_005/{NEWER}/tar_partitions/part_001.tar.lzma",
        wal[4], wal[5],
    }
    # Keeping twice is harmless: the marker is not written again (the policy would deny it).
    assert set(postgres.keep_backup(settings, database, KEPT)) == protected
    assert s3.get_object_tagging(Bucket=bucket, Key=wal[1])["TagSet"] == [
        {"Key": "Retention", "Value": "active"}]


def legal_hold(s3, bucket, key) -> str | None:
    try:
        return s3.get_object_legal_hold(Bucket=bucket, Key=key)["LegalHold"].get("Status")
    except ClientError:
        return None
