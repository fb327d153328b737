"""`backup-agent keep`: a backup kept past the lock window is permanent for wal-g (FAKE wal-g
here), tagged Retention=active, and kept — COMPLIANCE retention until a date (the default) or a
legal hold — in an Object Lock bucket on moto.

What moto 5.2.1 enforces of Object Lock retention (see test_moto_does_not_enforce_retention):
a version delete under retention is refused, but PutObjectRetention is accepted whatever it
asks — a shorter COMPLIANCE date, a switch to GOVERNANCE, a date in the past — and
GetObjectRetention answers HTTP 500 (not implemented). So these tests read the retention back
with HeadObject (ObjectLockMode, ObjectLockRetainUntilDate), and keep's own rule never to
shorten a retention is tested with an object already kept longer: moto would not refuse it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from backup_agent import cli, postgres, tools
from contract.agent_settings import KeptBackups

from .conftest import REGION

ROOT = "postgres/biometrics/"
KEPT = "base_000000010000000000000002"
NEWER = "base_000000010000000000000005"
WAL = [f"{ROOT}wal_005/00000001000000000000000{n}.lzma" for n in range(1, 7)]
HISTORY = f"{ROOT}wal_005/000000010000000000000002.00000028.backup.lzma"
# Everything a restore of KEPT needs: sentinel, its folder, the WAL of its LSN range.
KEPT_KEYS = {
    f"{ROOT}basebackups_005/{KEPT}_backup_stop_sentinel.json",
    f"{ROOT}basebackups_005/{KEPT}/metadata.json",
    f"{ROOT}basebackups_005/{KEPT}/tar_partitions/part_001.tar.lzma",
    HISTORY, WAL[1],
}
NEWER_KEYS = {
    f"{ROOT}basebackups_005/{NEWER}_backup_stop_sentinel.json",
    f"{ROOT}basebackups_005/{NEWER}/metadata.json",
    f"{ROOT}basebackups_005/{NEWER}/tar_partitions/part_001.tar.lzma",
}
DATABASE = {"name": "biometrics", "host": "db", "user": "backup", "dbname": "biometrics",
            "tables": ["users"], "retainFull": 1, "schedule": "0 2 * * *", "rpoSeconds": 300,
            "compression": "lzma"}


def put(s3, bucket, key, body=b"x"):
    s3.put_object(Bucket=bucket, Key=key, Body=body)


@pytest.fixture
def locked_bucket(moto_endpoint):
    """Two base backups and their WAL in an Object Lock bucket (1-day COMPLIANCE default)."""
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    bucket = f"locked-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True,
                     CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})
    for name, start in ((KEPT, 0x2000028), (NEWER, 0x5000028)):
        folder = f"{ROOT}basebackups_005/{name}/"
        put(s3, bucket, folder + "tar_partitions/part_001.tar.lzma")
        put(s3, bucket, folder + "metadata.json", json.dumps(
            {"start_lsn": start, "finish_lsn": start + 0xD8, "is_permanent": False}).encode())
        put(s3, bucket, f"{ROOT}basebackups_005/{name}_backup_stop_sentinel.json",
            json.dumps({"LSN": start, "FinishTime": "2026-01-01T00:00:00.000000Z"}).encode())
    for key in (*WAL, HISTORY):
        put(s3, bucket, key)
    return s3, bucket


def settings_for(agent_settings, moto_endpoint, bucket, **keep):
    return agent_settings(databases=[DATABASE], jobs=["postgres:biometrics"],
                          primary={"bucket": bucket, "region": REGION, "endpoint": moto_endpoint},
                          **({"keep": keep} if keep else {}))


def keys_of(s3, bucket):
    return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=ROOT)["Contents"]}


def lock(s3, bucket, key):
    head = s3.head_object(Bucket=bucket, Key=key)
    return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")


def tagged(s3, bucket, key):
    return s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == [
        {"Key": "Retention", "Value": "active"}]


def test_keep_extends_compliance_retention_of_every_object_the_backup_needs(
        agent_settings, moto_endpoint, shared_dir, locked_bucket):
    s3, bucket = locked_bucket
    settings = settings_for(agent_settings, moto_endpoint, bucket)
    assert settings.kept_backups == KeptBackups("compliance-retention", 365)
    until = dt.date.today() + dt.timedelta(days=200)
    keep_date = dt.datetime(until.year, until.month, until.day, tzinfo=dt.UTC)
    # One WAL segment is already kept longer: keep must not shorten it (moto would let it).
    longer = keep_date + dt.timedelta(days=30)
    s3.put_object_retention(Bucket=bucket, Key=WAL[1],
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": longer})
    assert lock(s3, bucket, WAL[1]) == ("COMPLIANCE", longer)

    assert cli.main(["--settings", str(shared_dir / "settings.json"), "keep", "biometrics",
                     KEPT, "--until", until.isoformat()]) == 0

    for key in keys_of(s3, bucket):
        mode, retained = lock(s3, bucket, key)
        if key in KEPT_KEYS:
            assert mode == "COMPLIANCE" and retained >= keep_date, key
            assert tagged(s3, bucket, key), key
        else:  # the newer backup and the other WAL keep the bucket's 1-day default
            assert retained < keep_date, key
            assert not tagged(s3, bucket, key), key
    assert lock(s3, bucket, WAL[1]) == ("COMPLIANCE", longer)
    assert {key for key in KEPT_KEYS if lock(s3, bucket, key)[1] == keep_date} == \
        KEPT_KEYS - {WAL[1]}
    metadata = json.loads(s3.get_object(
        Bucket=bucket, Key=f"{ROOT}basebackups_005/{KEPT}/metadata.json")["Body"].read())
    assert metadata["is_permanent"] is True
    assert legal_holds(s3, bucket) == set()  # nothing an admin could lift
    # Retention applies to the version keep marked: a later version of a key is not kept.
    put(s3, bucket, WAL[1], b"overwritten")
    assert lock(s3, bucket, WAL[1])[1] < keep_date


def test_keep_refuses_dates_the_settings_do_not_allow_before_writing_anything(
        agent_settings, moto_endpoint, shared_dir, locked_bucket, capsys):
    s3, bucket = locked_bucket
    settings_for(agent_settings, moto_endpoint, bucket, protection="compliance-retention",
                 maxDays=30)
    before = {key: lock(s3, bucket, key) for key in keys_of(s3, bucket)}
    too_far = dt.date.today() + dt.timedelta(days=60)
    for arguments, message in (
        (["--until", too_far.isoformat()],
         f"--until {too_far.isoformat()}: is 60 days away; keep.maxDays allows at most 30"),
        (["--until", "2020-01-01"], "--until 2020-01-01: must be a future date"),
        ([], "--until DATE is required"),
    ):
        assert cli.main(["--settings", str(shared_dir / "settings.json"), "keep", "biometrics",
                         KEPT, *arguments]) == 2
        assert message in capsys.readouterr().err
    assert {key: lock(s3, bucket, key) for key in keys_of(s3, bucket)} == before
    metadata = json.loads(s3.get_object(
        Bucket=bucket, Key=f"{ROOT}basebackups_005/{KEPT}/metadata.json")["Body"].read())
    assert metadata["is_permanent"] is False  # not even wal-g's mark was written


def test_keep_with_legal_hold_protection_and_retention_skips_it(
        agent_settings, moto_endpoint, shared_dir, locked_bucket, fake_walg):
    s3, bucket = locked_bucket
    settings = settings_for(agent_settings, moto_endpoint, bucket, protection="legal-hold")
    assert cli.main(["--settings", str(shared_dir / "settings.json"), "keep", "biometrics",
                     KEPT, "--until", "2030-01-01"]) == 2  # a hold has no end date

    assert cli.main(["--settings", str(shared_dir / "settings.json"), "keep", "biometrics",
                     KEPT]) == 0
    assert legal_holds(s3, bucket) == KEPT_KEYS
    assert {key for key in keys_of(s3, bucket) if tagged(s3, bucket, key)} == KEPT_KEYS

    database = settings.database("biometrics")
    tools.run([settings.walg_binary, "delete", "retain", "FULL", "1", "--confirm"],
              tools.walg_env(settings.primary, database))
    assert keys_of(s3, bucket) == KEPT_KEYS | NEWER_KEYS | {WAL[4], WAL[5]}
    # Keeping twice is harmless: the marker is not written again (the policy would deny it).
    assert set(postgres.keep_backup(settings, database, KEPT)) == KEPT_KEYS
    assert tagged(s3, bucket, WAL[1])


def test_moto_does_not_enforce_retention(locked_bucket):
    """The test double's limits the tests above work around (moto 5.2.1): it refuses a version
    delete under retention, as S3 does, but lets a COMPLIANCE retention be shortened, which S3
    refuses, and cannot answer GetObjectRetention."""
    s3, bucket = locked_bucket
    later = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=10)
    s3.put_object_retention(Bucket=bucket, Key=WAL[0],
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later})
    shorter = later - dt.timedelta(days=5)
    s3.put_object_retention(Bucket=bucket, Key=WAL[0],
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": shorter})
    assert lock(s3, bucket, WAL[0]) == ("COMPLIANCE", shorter)
    version = s3.head_object(Bucket=bucket, Key=WAL[0])["VersionId"]
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key=WAL[0], VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # One attempt: botocore would retry the 500 four times, with back-off, for nothing.
    once = boto3.client("s3", endpoint_url=s3.meta.endpoint_url, region_name=REGION,
                        config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as unanswered:
        once.get_object_retention(Bucket=bucket, Key=WAL[0])
    assert unanswered.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_retain_until_is_the_date_at_midnight_utc_within_the_cap():
    kept = KeptBackups("compliance-retention", 365)
    now = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)
    assert postgres.retain_until(kept, dt.date(2027, 6, 1), now) == dt.datetime(
        2027, 6, 1, tzinfo=dt.UTC)  # 364 days 14 hours: S3 counts at most 365 remaining days
    with pytest.raises(postgres.KeepError, match=r"keep\.maxDays allows at most 365"):
        postgres.retain_until(kept, dt.date(2027, 6, 2), now)
    assert postgres.retain_until(KeptBackups("legal-hold", 365), None, now) is None


def legal_holds(s3, bucket) -> set[str]:
    held = set()
    for key in keys_of(s3, bucket):
        try:
            status = s3.get_object_legal_hold(Bucket=bucket, Key=key)["LegalHold"].get("Status")
        except ClientError:
            continue
        if status == "ON":
            held.add(key)
    return held
