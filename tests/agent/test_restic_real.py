"""A real restic (Debian's 0.14) against moto_server, driven through `backup-agent`."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import boto3
import pytest

from backup_agent import cli, drill, evidence, exporter, files, records, tools
from backup_agent.picks import Pick
from contract.layout import RESTIC_PREFIX
from tests.support.restic_key import cheapen_repository_key

from .conftest import RESTIC_PASSWORD, file_set_data, make_tree

pytestmark = pytest.mark.usefixtures("restic_binary")


@pytest.fixture
def file_set_settings(agent_settings, shared_dir):
    """A fresh tree and an empty bucket: the backup job starts with `restic init`."""
    source = shared_dir / "app"
    make_tree(source)
    return source, lambda **overrides: agent_settings(**file_set_data(source) | overrides)


def restic_objects(s3, bucket, folder):
    response = s3.list_objects_v2(Bucket=bucket, Prefix=f"{RESTIC_PREFIX}{folder}/")
    return [item["Key"] for item in response.get("Contents", [])]


def test_backup_prune_check_and_drill_restore_byte_identical(file_set_settings, s3, bucket,
                                                             shared_dir, capsys):
    source, make = file_set_settings
    settings = make()
    first = files.run_backup(settings, settings.file_set("app"))
    assert (first.files, first.unstable) == (20, 0)
    # The job ran `restic init` (its one key, with calibrated scrypt: half a second for every
    # command that opens the repository). The rest proves backup, forget and the drill, not
    # the key derivation: the same master key, re-wrapped cheaply, as in the template.
    cheapen_repository_key(s3, bucket, RESTIC_PASSWORD)
    (source / "uploads" / "file-1.bin").write_bytes(b"changed after the first backup")
    (source / "uploads" / "new.bin").write_bytes(b"added")
    assert cli.main(["--settings", str(shared_dir / "settings.json"), "run", "files"]) == 0
    second_id = capsys.readouterr().out.strip().removeprefix("snapshot ")
    now = dt.datetime.now(dt.UTC)
    [recorded] = evidence.read_month(settings.primary, now.year, now.month).outcomes
    assert (recorded.kind, recorded.job, recorded.success, recorded.restore_point) == (
        "backup", "files:app", True, second_id)
    listing = files.snapshots(settings, settings.primary, settings.file_set("app"))
    data = sorted(s["short_id"] for s in listing if files.MANIFEST_TAG not in s.get("tags", []))
    # keep-daily 7 keeps one snapshot per day: forget --prune removed the first one.
    assert data == [second_id[:8]]
    assert len(restic_objects(s3, bucket, "snapshots")) == 2  # the data and its manifest

    restore_settings = make(role="restore", jobs=["drill"])
    outcomes = drill.run_drill(restore_settings)
    assert [(o.kind, o.name, o.success) for o in outcomes] == [("files", "app", True)]
    assert outcomes[0].detail.startswith("21 files match their recorded hashes")
    assert list((shared_dir / "state" / "drill").iterdir()) == []  # the drill cleaned up


def test_restore_is_byte_identical(backed_up_copy, shared_dir):
    source, make = backed_up_copy
    settings = make()
    target = shared_dir / "restore"
    result = files.restore_and_compare(make(role="restore", jobs=["drill"]), settings.primary,
                                       settings.file_set("app"), target)
    [data] = [s for s in files.snapshots(settings, settings.primary, settings.file_set("app"))
              if files.MANIFEST_TAG not in s["tags"]]
    assert result == {"files": 20, "unstable": 0, "snapshot": data["id"]}
    for original in source.rglob("*.bin"):
        assert (Path(str(target) + str(original))).read_bytes() == original.read_bytes()


def test_corrupt_pack_fails_check_drill_and_metric(backed_up_copy, s3, bucket):
    _, make = backed_up_copy
    settings = make()
    packs = [key for key in restic_objects(s3, bucket, "data") if key.count("/") == 3]
    sizes = {key: s3.head_object(Bucket=bucket, Key=key)["ContentLength"] for key in packs}
    biggest = max(sizes, key=sizes.get)  # the pack holding the file data, not a tree
    body = bytearray(s3.get_object(Bucket=bucket, Key=biggest)["Body"].read())
    body[len(body) // 2] ^= 0xFF  # same size: only reading the data can find it
    s3.put_object(Bucket=bucket, Key=biggest, Body=bytes(body))

    structural = files.restic(settings, settings.primary, ["check"], check=False)
    assert structural.returncode == 0
    with pytest.raises(tools.ToolError) as failure:
        files.restic(settings, settings.primary, ["check", "--read-data"])
    assert failure.value.returncode == 1
    # The command, its exit code and restic's last lines, which name the damaged pack.
    pack = biggest.rsplit("/", 1)[1]
    assert str(failure.value).startswith("`restic check --read-data` exited 1: ")
    assert f"Pack ID does not match, want {pack}" in str(failure.value)

    restore_settings = make(role="restore", jobs=["drill"])
    [outcome] = drill.run_drill(restore_settings)
    assert (outcome.kind, outcome.success) == ("files", False)
    # Named by what restic could not restore: the snapshot, and the file restic says.
    snapshot = next(s for s in files.snapshots(settings, settings.primary,
                                               settings.file_set("app"))
                    if files.MANIFEST_TAG not in s.get("tags", []))
    assert re.fullmatch(
        rf"file set app: snapshot {snapshot['short_id']}: `restic --no-lock restore "
        rf"{snapshot['id']} --target \S+ --verify` exited 1: ignoring error for \S+: ciphertext "
        r"verification failed \| .*Fatal: There were \d+ errors", outcome.detail), outcome.detail
    reader = exporter.BucketReader(restore_settings, "primary", restore_settings.primary)
    assert reader.refresh()
    collector = exporter.BackupCollector(restore_settings, [reader])
    metrics = {m.name: m for m in collector.collect()}
    [sample] = metrics["backup_drill_success"].samples
    assert (sample.labels, sample.value) == (
        {"target": "primary", "kind": "files", "name": "app"}, 0.0)


def test_missing_repository_is_recognised_for_both_exit_code_styles(file_set_settings):
    _, make = file_set_settings
    settings = make()
    probe = files.restic(settings, settings.primary, ["cat", "config"], check=False)
    assert tools.restic_repository_missing(probe)  # 0.14 here: exit 1 and its message
    assert tools.restic_repository_missing(tools.Result("", "", 10))  # >= 0.17
    assert not tools.restic_repository_missing(tools.Result("", "wrong password", 1))


def test_restic_environment_carries_no_secret(file_set_settings):
    _, make = file_set_settings
    settings = make()
    env = tools.restic_env(settings, settings.primary)
    assert set(env) == {"RESTIC_REPOSITORY", "RESTIC_PASSWORD_FILE", "RESTIC_CACHE_DIR",
                        "AWS_DEFAULT_REGION"}
    password = Path(settings.restic_password_file).read_text().strip()
    assert password not in json.dumps(env)


def test_failover_drill_reads_the_replica_bucket(backed_up_copy, s3, bucket, moto_endpoint):
    _, make = backed_up_copy
    replica = f"{bucket}-replica"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="eu-west-1").create_bucket(
        Bucket=replica, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):  # what replication would have copied
            s3.copy_object(Bucket=replica, Key=item["Key"],
                           CopySource={"Bucket": bucket, "Key": item["Key"]})
    restore = make(role="restore", jobs=["drill"],
                   replica={"bucket": replica, "region": "eu-west-1", "endpoint": moto_endpoint})
    [outcome] = drill.run_drill(restore, "replica")
    assert (outcome.kind, outcome.success) == ("files", True)
    assert records.read_drill(restore, "replica").target == "replica"
    assert records.read_drill(restore, "primary") is None


@pytest.mark.usefixtures("restic_repository")
def test_a_rotating_check_finds_the_damaged_pack_a_fixed_subset_misses(agent_settings, shared_dir,
                                                                       s3, bucket, monkeypatch):
    """rotate:20 reads a twentieth per run, as a fixed 5 % does, but the next twentieth each
    time (restic's n/t: the packs whose first ID byte mod t is n-1), so t runs read every pack."""
    monkeypatch.setenv("RESTIC_PACK_SIZE", "4")  # MiB, restic's smallest: more packs, less data
    source = shared_dir / "big"
    source.mkdir()
    for index in range(6):  # random data: 24 MiB, about six data packs
        (source / f"blob-{index}.bin").write_bytes(os.urandom(4 << 20))
    settings = agent_settings(jobs=["files:big"], fileSets=[{
        "name": "big", "paths": [str(source)], "hostname": "big", "schedule": "0 3 * * *",
        "rpoSeconds": 86400, "checkSubset": "rotate:20"}])
    file_set = settings.file_set("big")
    files.run_backup(settings, file_set)  # its check read part 1 of 20
    assert records.rotation(settings, "big", 20).next == 2
    packs = {key.rsplit("/", 1)[1]: s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
             for key in restic_objects(s3, bucket, "data") if key.count("/") == 3}
    data_packs = [pack for pack, size in packs.items() if size > 1 << 20]
    assert len(data_packs) >= 3
    part = {pack: int(pack[:2], 16) % 20 + 1 for pack in data_packs}
    # The damaged pack: one the first part (the fixed subset 1/20) does not hold.
    damaged = min((p for p in data_packs if part[p] != 1), key=part.get)
    key = f"{RESTIC_PREFIX}data/{damaged[:2]}/{damaged}"
    body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(body))

    fixed = files.restic(settings, settings.primary, ["check", "--read-data-subset=1/20"],
                         check=False)
    assert fixed.returncode == 0  # the same 5 % every run never reads the damaged pack

    for run in range(2, part[damaged]):  # parts before the damaged one read clean...
        assert files.check_data(settings, file_set) == f"{run}/20"
        assert records.rotation(settings, "big", 20).next == run + 1
    with pytest.raises(tools.ToolError) as found:  # ...and its part finds it, within 20 runs
        files.check_data(settings, file_set)
    assert f"--read-data-subset={part[damaged]}/20" in str(found.value)
    assert f"Pack ID does not match, want {damaged}" in str(found.value)
    # Not advanced past a damaged part: the next run reads it again.
    assert records.rotation(settings, "big", 20).next == part[damaged]


def test_a_random_within_drill_records_its_pick_and_reruns_it(backed_up_copy, shared_dir,
                                                              capsys):
    source, make = backed_up_copy
    [file_set] = file_set_data(source)["fileSets"]
    restore = make(role="restore", jobs=["drill"], fileSets=[
        {**file_set, "drillPick": "random-within", "drillWindowDays": 7}])
    [outcome] = drill.run_drill(restore)
    assert outcome.success, outcome.detail
    [snapshot] = [s for s in files.snapshots(restore, restore.primary, restore.file_set("app"))
                  if files.MANIFEST_TAG not in s["tags"]]
    assert (outcome.restore_point, Pick.parse(outcome.pick).id) == (snapshot["id"], outcome.pick)
    assert records.read_drill(restore, "primary").outcomes == (outcome,)
    capsys.readouterr()
    assert cli.main(["--settings", str(shared_dir / "settings.json"), "drill", "--pick",
                     outcome.pick]) == 0
    assert capsys.readouterr().out.startswith(f"PASS primary files app pick {outcome.pick} (")
    [again] = records.read_drill(restore, "primary").outcomes
    assert (again.restore_point, again.pick) == (outcome.restore_point, outcome.pick)
    # Both drills are in the outcome record, with what they restored and the pick.
    now = dt.datetime.now(dt.UTC)
    drills = [o for o in evidence.read_month(restore.primary, now.year, now.month).outcomes
              if o.kind == "drill"]
    assert [(o.job, o.target, o.success, o.restore_point, o.pick) for o in drills] == [
        ("files:app", "primary", True, snapshot["id"], outcome.pick)] * 2
    assert drills[0].tool_version.startswith("restic 0.14")
