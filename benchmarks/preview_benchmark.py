"""How long the offline preview takes: prod, the floor, and N backup targets. Prints figures.

    python benchmarks/preview_benchmark.py [--repeat 5]

Each case is the whole offline pipeline in one process, after imports: the program under the
recording mocks, the rendered documents, and the compliance report (controls, parliament,
scenario table, cost model) — what `python -m review.preview` does minus interpreter
start-up and writing files.

* floor: the same mocks running a program that declares one bucket (nothing else);
* prod: infra/ with Pulumi.prod.yaml (two BackupBuckets, roles, replication, alerts);
* targets: a "backup target" is one BackupBucket component as prod declares it (KMS key,
  locked bucket, bucket/role/key policies for the backup, WAL-archiver and restore roles, its
  access-log bucket), all sharing one BackupRoles — the program declares 1, 10, 25 and 50 of
  them. Replication and alerts are left out, so the slope is the cost of one bucket's worth of
  resources and documents.

No timing is asserted anywhere; the figures are for reading.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

warnings.filterwarnings("ignore", category=DeprecationWarning, module="pulumi_aws")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compliance.inventory import from_recorded  # noqa: E402
from compliance.report import build_report, to_json, to_markdown  # noqa: E402
from review.recording import run_program  # noqa: E402
from review.render import render_documents, to_text  # noqa: E402
from review.stack_config import load_stack_config  # noqa: E402

FLOOR_PROGRAM = """
import pulumi_aws as aws

aws.s3.Bucket("floor-bucket", bucket="floor-bucket", region="eu-central-1")
"""

TARGETS_PROGRAM = """
from functools import partial

import pulumi
import pulumi_aws as aws

from components import policies
from components.backup_bucket import BackupBucket, BackupBucketArgs, RoleGrant
from components.backup_roles import BackupRoles
from components.settings import BucketSettings, CONFIG_KEYS, parse_settings

config = pulumi.Config()
settings = parse_settings({{k: config.get(k) for k in CONFIG_KEYS if config.get(k) is not None}},
                          stack=pulumi.get_stack())
account_id = aws.get_caller_identity_output().account_id
roles = BackupRoles("roles", settings.roles, account_id=account_id, replication_source_arn=None)
host = roles.host_roles
grants = [
    RoleGrant("backup", host["backup"].name, host["backup"].arn,
              partial(policies.backup_server_statements, keep=settings.keep)),
    RoleGrant("wal-archiver", host["wal_archiver"].name, host["wal_archiver"].arn,
              policies.wal_archiver_statements),
    RoleGrant("restore", host["restore"].name, host["restore"].arn,
              policies.restore_server_statements),
]
for index in range({count}):
    BackupBucket(f"target-{{index}}", BackupBucketArgs(
        bucket=BucketSettings(f"backup-target-{{index}}", settings.primary.region),
        object_lock=settings.object_lock, lifecycle=settings.lifecycle,
        access_log_days=settings.access_log_days, account_id=account_id, grants=grants,
        break_glass_arn=None, keep=settings.keep, key_tags=settings.key_tags,
        protect=settings.protect))
"""


@dataclass(frozen=True)
class Timing:
    program: float  # the program under the recording mocks
    report: float  # documents rendered + compliance report (controls, parliament, table, cost)
    resources: int
    documents: int

    @property
    def total(self) -> float:
        return self.program + self.report


def pipeline(program: Path, stack: str, config: dict[str, str]) -> Timing:
    start = time.perf_counter()
    run = run_program(program, stack=stack, config=config)
    ran = time.perf_counter()
    documents = {path: to_text(doc) for path, doc in render_documents(run).items()}
    report = build_report(stack, from_recorded(run.resources))
    to_markdown(report)
    to_json(report)
    done = time.perf_counter()
    return Timing(ran - start, done - ran, len(run.resources), len(documents))


def measure(label: str, case: Callable[[], Timing], repeat: int) -> Timing:
    case()  # warm-up: first-use imports and caches are not part of any case
    runs = [case() for _ in range(repeat)]
    median = Timing(statistics.median(r.program for r in runs),
                    statistics.median(r.report for r in runs), runs[0].resources,
                    runs[0].documents)
    print(f"{label:<20} {median.resources:>5} {median.documents:>5}   "
          f"{median.program * 1000:8.1f} {median.report * 1000:8.1f} {median.total * 1000:8.1f}"
          f"   (min total {min(r.total for r in runs) * 1000:.1f})")
    return median


def whole_process(case: str, repeat: int) -> float:
    """Seconds for a fresh interpreter to import everything and run one case once."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--once", case], check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--once", choices=("floor", "prod"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    config, _ = load_stack_config(ROOT / "Pulumi.prod.yaml")
    with tempfile.TemporaryDirectory() as scratch:
        def program(name: str, source: str) -> Path:
            path = Path(scratch) / name
            path.mkdir()
            (path / "__main__.py").write_text(textwrap.dedent(source))
            return path

        floor_dir = program("floor", FLOOR_PROGRAM)
        if args.once:
            pipeline(floor_dir if args.once == "floor" else ROOT / "infra", "prod", config)
            return 0
        print(f"In one process after imports; median of {args.repeat} runs after a warm-up run.")
        print(f"{'case':<20} {'res.':>5} {'docs':>5}   {'program':>8} {'report':>8} "
              f"{'total':>8}   (ms)")
        floor = measure("floor (one bucket)", lambda: pipeline(floor_dir, "prod", config),
                        args.repeat)
        prod = measure("prod", lambda: pipeline(ROOT / "infra", "prod", config), args.repeat)
        targets = {}
        for count in (1, 10, 25, 50):
            directory = program(f"targets-{count}", TARGETS_PROGRAM.format(count=count))
            targets[count] = measure(f"{count} backup targets",
                                     lambda d=directory: pipeline(d, "prod", config),
                                     args.repeat)
    print()
    print(f"prod / floor (total)               {prod.total / floor.total:7.2f}")
    print(f"prod - floor (total)               {(prod.total - floor.total) * 1000:7.1f} ms")
    print(f"50 targets / prod (total)          {targets[50].total / prod.total:7.2f}")
    print(f"50 targets / 1 target (total)      {targets[50].total / targets[1].total:7.2f}")
    for (low, high) in ((1, 10), (10, 25), (25, 50)):
        step = high - low
        program_ms = (targets[high].program - targets[low].program) / step * 1000
        report_ms = (targets[high].report - targets[low].report) / step * 1000
        print(f"per target {low:>2} -> {high:<2}   program {program_ms:6.1f} ms   "
              f"report {report_ms:6.1f} ms")
    floor_process, prod_process = whole_process("floor", 3), whole_process("prod", 3)
    print()
    print("Whole process (fresh interpreter: imports + one run), median of 3:")
    print(f"floor {floor_process:6.2f} s   prod {prod_process:6.2f} s   "
          f"prod / floor {prod_process / floor_process:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
