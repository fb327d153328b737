"""Benchmark of the backup agent against moto_server on 127.0.0.1 (prints figures; asserts none).

1. A generated tree (default 200 MB in 2,000 files) backed up and restored through
   `backup-agent` (restic: backup + manifest + forget --prune + check subset; restore --verify +
   hash comparison), beside boto3 uploading and downloading the same bytes directly; each run
   into fresh buckets.
2. Exporter refreshes against a bucket holding 10,000 WAL segments and 100 base backups:
   S3 requests by operation and wall time, cold (a new reader's first) and warm (incremental).

    python benchmarks/agent_benchmark.py [--megabytes 200] [--files 2000] [--repeat 5]

Every figure is the median of --repeat runs.

Needs restic and moto_server on PATH. Dummy AWS credentials are set for moto only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

from backup_agent import files
from backup_agent.exporter import BucketReader
from contract import agent_settings
from contract.agent_settings import AgentSettings
from contract.layout import segment_name

REGION = "eu-central-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"http://127.0.0.1:{port}"
        time.sleep(0.05)
    process.terminate()
    raise TimeoutError("moto_server did not start")


def make_tree(root: Path, megabytes: int, count: int) -> int:
    size = megabytes * 1024 * 1024 // count
    for index in range(count):
        directory = root / "uploads" / f"{index % 20:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"file-{index:05d}.bin").write_bytes(os.urandom(size))
    return size * count


def settings_for(work: Path, endpoint: str, bucket: str, tree: Path,
                 role: str = "backup") -> AgentSettings:
    password = work / "restic-password"
    password.write_text("benchmark password\n")
    return agent_settings.parse({
        "role": role,
        "primary": {"bucket": bucket, "region": REGION, "endpoint": endpoint},
        "fileSets": [{"name": "bench", "paths": [str(tree / "uploads")], "hostname": "bench",
                      "schedule": "0 3 * * *", "rpoSeconds": 86400, "checkSubset": "1%"}],
        "jobs": ["files:bench"] if role == "backup" else ["drill"],
        "drillSchedule": "0 6 * * *",
        "resticPasswordFile": str(password),
        "stateDir": str(work / "state"),
        "databases": [{"name": "biometrics", "host": "db", "user": "u", "dbname": "d",
                       "tables": ["users"], "retainFull": 7, "schedule": "0 2 * * *",
                       "rpoSeconds": 300}],
        "walRelistMargin": 64,
    })


def transfer_once(s3: object, endpoint: str, work: Path, tree: Path, paths: list[Path],
                  count: int, run: int) -> dict[str, float]:
    """Seconds for each of the four transfers of one run, into buckets of its own."""
    raw, agent = f"raw-{run}", f"agent-{run}"
    s3.create_bucket(Bucket=raw, CreateBucketConfiguration={"LocationConstraint": REGION})
    seconds: dict[str, float] = {}
    download = work / f"download-{run}"
    with ThreadPoolExecutor(8) as pool:
        started = time.perf_counter()
        list(pool.map(lambda p: s3.upload_file(str(p), raw, str(p.relative_to(tree))), paths))
        seconds["boto3 upload (8 threads)"] = time.perf_counter() - started

        def fetch(path: Path) -> None:
            target = download / path.relative_to(tree)
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(raw, str(path.relative_to(tree)), str(target))

        started = time.perf_counter()
        list(pool.map(fetch, paths))
        seconds["boto3 download (8 threads)"] = time.perf_counter() - started
    shutil.rmtree(download)

    s3.create_bucket(Bucket=agent, CreateBucketConfiguration={"LocationConstraint": REGION})
    backup_settings = settings_for(work, endpoint, agent, tree)
    started = time.perf_counter()
    files.run_backup(backup_settings, backup_settings.file_set("bench"))
    seconds["agent backup job (restic)"] = time.perf_counter() - started
    restore_settings = settings_for(work, endpoint, agent, tree, role="restore")
    started = time.perf_counter()
    compared = files.restore_and_compare(restore_settings, restore_settings.primary,
                                         restore_settings.file_set("bench"),
                                         work / f"restore-{run}")
    seconds["agent restore + verify + hashes"] = time.perf_counter() - started
    assert compared["files"] == count  # a benchmark of a broken restore would mean nothing
    shutil.rmtree(work / f"restore-{run}", ignore_errors=True)
    shutil.rmtree(work / "state", ignore_errors=True)
    return seconds


def throughput(endpoint: str, work: Path, megabytes: int, count: int, repeat: int) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    tree = work / "tree"
    total = make_tree(tree, megabytes, count)
    paths = sorted(p for p in tree.rglob("*.bin"))
    mb = total / 1e6
    runs = [transfer_once(s3, endpoint, work, tree, paths, count, run) for run in range(repeat)]
    median = {label: statistics.median(run[label] for run in runs) for label in runs[0]}

    print(f"tree: {mb:.0f} MB in {count} files (random bytes, incompressible); "
          f"median of {repeat} runs")
    print(f"{'':34}{'seconds':>9}{'MB/s':>9}{'min s':>9}{'max s':>9}")
    for label in ("boto3 upload (8 threads)", "agent backup job (restic)",
                  "boto3 download (8 threads)", "agent restore + verify + hashes"):
        spread = [run[label] for run in runs]
        print(f"{label:34}{median[label]:9.2f}{mb / median[label]:9.1f}"
              f"{min(spread):9.2f}{max(spread):9.2f}")
    backup_ratio = median["boto3 upload (8 threads)"] / median["agent backup job (restic)"]
    restore_ratio = (median["boto3 download (8 threads)"]
                     / median["agent restore + verify + hashes"])
    print(f"throughput ratio agent/raw (medians): backup {backup_ratio:.2f}, "
          f"restore {restore_ratio:.2f}")


def exporter_refresh(endpoint: str, work: Path, repeat: int) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    s3.create_bucket(Bucket="walg", CreateBucketConfiguration={"LocationConstraint": REGION})
    root = "postgres/biometrics/"
    keys = [f"{root}wal_005/{segment_name(1, n)}.lz4" for n in range(1, 10_001)]
    sentinel = json.dumps({"FinishTime": "2026-01-01T00:00:00.000000Z", "Version": 2,
                           "SystemIdentifier": 1}).encode()
    for n in range(100):
        name = f"base_{segment_name(1, 1 + n * 100)}"
        keys += [f"{root}basebackups_005/{name}/tar_partitions/part_001.tar.lz4",
                 f"{root}basebackups_005/{name}/metadata.json"]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket="walg", Key=key, Body=b"x"), keys))
        list(pool.map(lambda n: s3.put_object(
            Bucket="walg", Body=sentinel,
            Key=f"{root}basebackups_005/base_{segment_name(1, 1 + n * 100)}"
                "_backup_stop_sentinel.json"), range(100)))
    print(f"\nexporter: bucket with 10,000 WAL segments and 100 base backups "
          f"({len(keys) + 100} objects); median of {repeat} refreshes each")
    settings = settings_for(work, endpoint, "walg", work / "tree", role="restore")
    settings = AgentSettings(**{**settings.__dict__, "file_sets": (),
                                       "delete_marker_scan_seconds": 0})
    timings: dict[str, list[float]] = {"cold": [], "warm": []}
    requests: dict[str, dict[str, int]] = {}
    for _ in range(repeat):
        reader = BucketReader(settings, "primary", settings.primary)
        for label in ("cold", "warm"):
            reader.client.requests.clear()
            started = time.perf_counter()
            reader.refresh()
            timings[label].append(time.perf_counter() - started)
            state = reader.databases["biometrics"]
            requests[label] = dict(reader.client.requests)
            requests[label]["WAL keys listed"] = state.wal_listed
            requests[label]["base backups"] = state.base_backups
    for label, title in (("cold", "first refresh (full listing)"),
                         ("warm", "second refresh (incremental)")):
        print(f"{title}: {statistics.median(timings[label]) * 1000:.0f} ms "
              f"(min {min(timings[label]) * 1000:.0f}, max {max(timings[label]) * 1000:.0f}), "
              f"{requests[label]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="benchmark", AWS_SECRET_ACCESS_KEY="benchmark",
                      AWS_DEFAULT_REGION=REGION)
    process, endpoint = start_moto()
    work = Path(tempfile.mkdtemp(prefix="agent-benchmark-"))
    try:
        throughput(endpoint, work, args.megabytes, args.files, args.repeat)
        exporter_refresh(endpoint, work, args.repeat)
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
