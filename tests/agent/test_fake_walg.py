"""The FAKE wal-g (tests/fakes/wal-g) behaves like real wal-g where the agent depends on it
(its storage layout: wal-g's docs/PostgreSQL.md and its internal/ storage code), so the
PostgreSQL tests exercise the agent's real calls."""

from __future__ import annotations

import base64
import hashlib
import importlib.machinery
import json
import subprocess
import types

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .conftest import FAKE_WALG, REGION


def run_fake(fake_walg, moto_endpoint, bucket, *args, check=True):
    env = {"WALG_S3_PREFIX": f"s3://{bucket}/postgres/db", "AWS_REGION": REGION,
           "AWS_ENDPOINT": moto_endpoint, "AWS_S3_FORCE_PATH_STYLE": "true",
           "WALG_COMPRESSION_METHOD": "lzma", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(fake_walg), *args], env=env, capture_output=True, text=True,
                          check=check)


def test_empty_listing_prints_an_empty_json_array(fake_walg, moto_endpoint, bucket):
    assert run_fake(fake_walg, moto_endpoint, bucket, "backup-list", "--json").stdout == "[]\n"


def test_wal_push_and_fetch_use_wal_g_names_and_exit_74_when_absent(
        fake_walg, moto_endpoint, bucket, s3, shared_dir):
    segment = shared_dir / "000000010000000000000003"
    segment.write_bytes(b"\x01" * 4096)
    run_fake(fake_walg, moto_endpoint, bucket, "wal-push", str(segment))
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["postgres/db/wal_005/000000010000000000000003.lzma"]
    run_fake(fake_walg, moto_endpoint, bucket, "wal-fetch", "000000010000000000000003",
             str(shared_dir / "fetched"))
    assert (shared_dir / "fetched").read_bytes() == b"\x01" * 4096
    missing = run_fake(fake_walg, moto_endpoint, bucket, "wal-fetch",
                       "000000010000000000000004", str(shared_dir / "x"), check=False)
    assert missing.returncode == 74


def test_delete_retain_keeps_history_files_and_newer_timelines(
        fake_walg, moto_endpoint, bucket, s3):
    root = "postgres/db/"
    sentinel = json.dumps({"LSN": 1, "FinishTime": "2026-01-01T00:00:00.000000Z"})
    for name in ("base_000000010000000000000004", "base_00000002000000000000000C"):
        s3.put_object(Bucket=bucket, Key=f"{root}basebackups_005/{name}/metadata.json",
                      Body=json.dumps({"is_permanent": False}))
        s3.put_object(Bucket=bucket, Key=f"{root}basebackups_005/{name}_backup_stop_sentinel"
                      ".json", Body=sentinel)
    for wal in ("000000010000000000000004.lzma", "000000010000000000000009.lzma",
                "00000002.history.lzma", "00000002000000000000000A.lzma",
                "00000002000000000000000C.lzma"):
        s3.put_object(Bucket=bucket, Key=f"{root}wal_005/{wal}", Body=b"w")
    run_fake(fake_walg, moto_endpoint, bucket, "delete", "retain", "FULL", "1", "--confirm")
    keys = sorted(item["Key"][len(root):] for item in s3.list_objects_v2(
        Bucket=bucket, Prefix=root)["Contents"])
    # wal-g's `delete retain FULL 1` keeps base_...0C, timeline-2 WAL from 0C, .history.
    assert keys == [
        "basebackups_005/base_00000002000000000000000C/metadata.json",
        "basebackups_005/base_00000002000000000000000C_backup_stop_sentinel.json",
        "wal_005/00000002.history.lzma",
        "wal_005/00000002000000000000000C.lzma",
    ]


def test_requests_carry_the_signature_botocore_computes(monkeypatch):
    """moto does not check signatures: this shows the fake signs its requests as the SDKs do
    (Signature Version 4; the session token and Content-MD5 signed too), path-style and not."""
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    loader = importlib.machinery.SourceFileLoader("fake_walg", str(FAKE_WALG))
    fake = types.ModuleType(loader.name)
    loader.exec_module(fake)
    signer = S3SigV4Auth(Credentials("AKIDEXAMPLE", secret, "session-token"), "s3", REGION)
    requests = (("PUT", "postgres/db/wal_005/000000010000000000000003.lzma", {}, b"segment"),
                ("GET", "", {"list-type": "2", "prefix": "postgres/db/", "delimiter": "/",
                             "continuation-token": "a+b/c="}, b""))
    for endpoint, path_style in (("http://127.0.0.1:9000", True),
                                 ("https://s3.eu-central-1.amazonaws.com", False)):
        bucket = fake.Bucket("backups", REGION, endpoint, path_style)
        for method, key, params, body in requests:
            target, headers = bucket.signed(method, key, params, body)
            assert target.startswith("/backups/" if path_style else "/")
            path, _, _ = target.partition("?")  # botocore encodes the parameters itself
            request = AWSRequest(
                method=method, url=f"{endpoint.split(':')[0]}://{headers['host']}{path}",
                params=params, data=body,
                headers={k: v for k, v in headers.items() if k != "authorization"})
            request.context["timestamp"] = headers["x-amz-date"]
            signature = signer.signature(
                signer.string_to_sign(request, signer.canonical_request(request)), request)
            assert headers["authorization"] == (
                f"AWS4-HMAC-SHA256 Credential={signer.scope(request)}, "
                f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(request))}, "
                f"Signature={signature}")
            assert headers["x-amz-security-token"] == "session-token"
        assert headers["host"] == ("127.0.0.1:9000" if path_style
                                   else "backups.s3.eu-central-1.amazonaws.com")
    put_headers = bucket.signed(*requests[0])[1]
    assert put_headers["content-md5"] == base64.b64encode(hashlib.md5(b"segment").digest()).decode()
