"""How long the offline preview takes and how much memory it needs, each case a fresh process.

    python benchmarks/preview_benchmark.py [--repeat 5] [--top 12] [--ecs-only]

Cases, each run `--repeat` times interleaved (floor, prod, 1 database, 50 databases, floor,
...) and reported as the median wall time and the median peak resident memory (wait4's
ru_maxrss) of the child process:

* floor: a Pulumi program declaring one `aws.s3.Bucket`, under the same recording mocks, with
  its documents rendered and the compliance report built — the preview's pipeline with the
  least a program can declare;
* prod: `python -m review.preview --stack prod` (Pulumi.prod.yaml), files written and all;
* N databases: the same command on Pulumi.prod.yaml with a runtime of N databases and N file
  sets, each with a schedule of its own, spread over ceil(N / 5) backup hosts (Docker
  placement: one scheduler container per backup host, the drill and the exporter on the
  restore host) — what a user scales.

* ECS, N databases (1, 10, 50): Pulumi.scale.yaml (everything on ECS: the databases, a file
  set on EFS, the drill and the exporter) keeping its first N databases, through the same
  `python -m review.preview` command; printed with its resource count, and the resources and
  seconds each further database adds — both must stay flat for the preview to grow linearly.

Then one prod run under cProfile: its self time by package (where the time goes: imports of
pulumi_aws and parliament, the program, rendering, the controls) and its top functions.
No timing is asserted anywhere; the figures are for reading.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_KEY = "biometrics-backup:runtime"
ECS_DATABASES = (1, 10, 50)

FLOOR_PROGRAM = """
import pulumi_aws as aws

aws.s3.Bucket("floor-bucket", bucket="floor-bucket", region="eu-central-1")
"""


def run_floor(program_dir: Path) -> None:
    """The floor's child process: the preview's pipeline over the one-bucket program."""
    from compliance.report import build_report, to_json, to_markdown
    from review.inventory import from_recorded
    from review.preview import collect_less
    from review.recording import run_program
    from review.render import render_documents, to_text
    from review.stack_config import load_stack_config

    collect_less()
    config, _ = load_stack_config(ROOT / "Pulumi.prod.yaml")
    run = run_program(program_dir, stack="prod", config=config)
    {path: to_text(document) for path, document in render_documents(run).items()}
    report = build_report("prod", from_recorded(run.resources))
    to_markdown(report)
    to_json(report)


def scale_stack(databases: int) -> dict:
    """Pulumi.scale.yaml with its first `databases` databases (its file set, drill and exporter
    unchanged)."""
    stack = yaml.safe_load((ROOT / "Pulumi.scale.yaml").read_text())
    runtime = stack["config"][RUNTIME_KEY]
    runtime["databases"] = runtime["databases"][:databases]
    return stack


def resource_count(command: Sequence[str]) -> int:
    """The preview's own count: its last line is `<n> resources, <m> documents written to ...`."""
    output = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    return int(output.stdout.splitlines()[-1].split()[0])


def ecs_cases(repeat: int, scratch: Path) -> None:
    """Wall time and resources of the scale stack as its databases grow, and per database."""
    commands = {}
    for databases in ECS_DATABASES:
        project = project_with(scratch / f"ecs-{databases}", "scaled", scale_stack(databases))
        commands[databases] = [sys.executable, "-m", "review.preview", "--stack", "scaled",
                               "--project-dir", str(project), "--out", str(project / "out")]
    counts = {databases: resource_count(command) for databases, command in commands.items()}
    runs: dict[int, list[float]] = {databases: [] for databases in ECS_DATABASES}
    for _ in range(repeat):
        for databases, command in commands.items():
            runs[databases].append(timed(command)[0])
    wall = {databases: statistics.median(seconds) for databases, seconds in runs.items()}
    print(f"ECS placement (Pulumi.scale.yaml's first N databases), median of {repeat} "
          "interleaved runs (fresh interpreter each):")
    print(f"{'databases on ECS':<18} {'resources':>9} {'wall (s)':>9} "
          f"{'+resources/db':>14} {'+s/db':>7}")
    first = ECS_DATABASES[0]
    for databases in ECS_DATABASES:
        extra = databases - first
        per_resources = f"{(counts[databases] - counts[first]) / extra:.1f}" if extra else "-"
        per_second = f"{(wall[databases] - wall[first]) / extra:.3f}" if extra else "-"
        print(f"{databases:<18} {counts[databases]:>9} {wall[databases]:>9.2f} "
              f"{per_resources:>14} {per_second:>7}")


def scaled_stack(databases: int) -> dict:
    """Pulumi.prod.yaml with `databases` databases and file sets on ceil(n / 5) backup hosts."""
    stack = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    runtime = stack["config"][RUNTIME_KEY]
    database, file_set = runtime["databases"][0], runtime["fileSets"][0]
    restore = [h for h in runtime["hosts"] if h["instanceProfile"] == "restore"]
    backup_hosts = [{"name": f"backup-{i + 1}", "dockerHost": f"ssh://deploy@backup-{i + 1}"
                     ".internal", "instanceProfile": "backup"}
                    for i in range(math.ceil(databases / 5))]
    runtime["hosts"] = [*backup_hosts, *restore]
    # Staggered, as a user would schedule them: every job has a cron expression of its own.
    runtime["databases"] = [{**copy.deepcopy(database), "name": f"db-{i + 1}",
                             "dbname": f"db_{i + 1}", "host": backup_hosts[i // 5]["name"],
                             "schedule": f"{i % 60} {1 + i // 60} * * *"}
                            for i in range(databases)]
    runtime["fileSets"] = [{**copy.deepcopy(file_set), "name": f"files-{i + 1}",
                            "host": backup_hosts[i // 5]["name"],
                            "schedule": f"{i % 60} {3 + i // 60} * * *"}
                           for i in range(databases)]
    return stack


def project_with(directory: Path, stack: str, document: dict) -> Path:
    """A project directory holding Pulumi.<stack>.yaml and this checkout's infra/."""
    directory.mkdir()
    (directory / "infra").symlink_to(ROOT / "infra")
    (directory / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return directory


def timed(command: Sequence[str]) -> tuple[float, int]:
    """Wall seconds and peak resident memory (KiB) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 3):  # 3: a mandatory control fails (still a full run)
        raise SystemExit(f"{' '.join(command)} exited {process.returncode}")
    return elapsed, usage.ru_maxrss


def area(filename: str) -> str:
    """The package a profiled function belongs to (site-packages, this checkout, the stdlib)."""
    if filename == "~":
        return "builtins"  # C functions: class creation, marshal, isinstance, ...
    if filename.startswith("<frozen"):
        return "import machinery"
    path = Path(filename)
    if "site-packages" in path.parts:
        return path.parts[path.parts.index("site-packages") + 1].removesuffix(".py")
    if path.is_relative_to(ROOT):
        return path.relative_to(ROOT).parts[0].removesuffix(".py")
    return "stdlib " + (path.parent.name if path.parent.name != "python3.11" else path.stem)


# The preview's steps, by the function that performs each (cumulative time in the profile).
STEPS = {
    ("review/stack_config.py", "stack_settings"): "stack config parsed (settings, runtime)",
    ("review/recording.py", "run_program"): "program under mocks (pulumi_aws class imports too)",
    ("review/render.py", "render_documents"): "documents rendered",
    ("compliance/report.py", "build_report"): "compliance report (controls, parliament, table)",
    ("compliance/lint.py", "<module>"): "  of which: parliament imported (its IAM table)",
    ("compliance/lint.py", "lint_policy"): "  of which: parliament's analysis",
}


def profile(command: Sequence[str], top: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "prod.prof"
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), *command[1:]],
                       cwd=ROOT, check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        stats = pstats.Stats(str(out))
    by_area: dict[str, float] = {}
    functions = []
    for (filename, line, name), (_, _, tottime, cumtime, _) in stats.stats.items():
        by_area[area(filename)] = by_area.get(area(filename), 0.0) + tottime
        functions.append((tottime, cumtime, f"{area(filename)}: {Path(filename).name}:{line} "
                                            f"{name}"))
    total = sum(by_area.values())
    print(f"\nProfile of one prod preview (cProfile, {total:.2f} s with profiling overhead), "
          "self time by package:")
    for name, seconds in sorted(by_area.items(), key=lambda item: -item[1])[:top]:
        print(f"  {seconds * 1000:7.0f} ms {seconds / total:5.1%}  {name}")
    print("The preview's steps (cumulative):")
    for (suffix, function), label in STEPS.items():
        for (filename, _, name), (_, _, _, cumtime, _) in stats.stats.items():
            if filename.endswith(suffix) and name == function:
                print(f"  {cumtime * 1000:7.0f} ms  {label}")
    print("Top functions by self time:")
    for tottime, cumtime, label in sorted(functions, reverse=True)[:top]:
        print(f"  {tottime * 1000:7.0f} ms self {cumtime * 1000:7.0f} ms cumulative  {label}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--ecs-only", action="store_true",
                        help="only the ECS cases (resources and time per database)")
    parser.add_argument("--floor-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_child:
        run_floor(args.floor_child)
        return 0
    preview = [sys.executable, "-m", "review.preview"]
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        if args.ecs_only:
            ecs_cases(args.repeat, scratch)
            return 0
        floor_dir = scratch / "floor"
        floor_dir.mkdir()
        (floor_dir / "__main__.py").write_text(textwrap.dedent(FLOOR_PROGRAM))
        cases = {
            "floor (one bucket)": [sys.executable, __file__, "--floor-child", str(floor_dir)],
            "prod": [*preview, "--stack", "prod", "--out", str(scratch / "out-prod")],
        }
        for count in (1, 50):
            project = project_with(scratch / f"runtime-{count}", "scaled", scaled_stack(count))
            cases[f"{count} database(s)"] = [*preview, "--stack", "scaled", "--project-dir",
                                              str(project), "--out", str(project / "out")]
        runs: dict[str, list[tuple[float, int]]] = {label: [] for label in cases}
        for _ in range(args.repeat):
            for label, command in cases.items():
                runs[label].append(timed(command))
        print(f"Whole process (fresh interpreter), median of {args.repeat} interleaved runs:")
        print(f"{'case':<22} {'wall (s)':>9} {'min (s)':>8} {'peak RSS (MiB)':>15}")
        wall = {}
        for label, measured in runs.items():
            wall[label] = statistics.median(seconds for seconds, _ in measured)
            peak = statistics.median(kib for _, kib in measured) / 1024
            print(f"{label:<22} {wall[label]:9.2f} {min(s for s, _ in measured):8.2f} "
                  f"{peak:15.1f}")
        print()
        print(f"prod / floor                 {wall['prod'] / wall['floor (one bucket)']:6.2f}")
        print(f"50 databases / 1 database    {wall['50 database(s)'] / wall['1 database(s)']:6.2f}")
        print()
        ecs_cases(args.repeat, scratch)
        profile(cases["prod"], args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
