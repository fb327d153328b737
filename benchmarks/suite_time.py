"""Benchmark of the test suite's time (prints figures; asserts none).

Runs the suite --repeat times in each checkout and with each worker count given (interleaved,
so that a busy machine weighs on each alike) and prints the medians of what the suite itself
prints: the wall time of pytest's last line and the "time by test folder" summary
(tests/conftest.py).

    python benchmarks/suite_time.py [--repeat 3] [--checkout DIR ...] [--workers N ...]
                                    [--tests-of DIR] [-- PYTEST_ARGS]

Defaults: this checkout, 2 workers (`make test`: `pytest -n 2`; pyproject.toml adds how files
are distributed); `--workers 0` runs in one process. Every run uses this interpreter, so another
checkout (e.g. a clone of an earlier commit) is measured with the same packages; pytest reads
that checkout's own pyproject.toml. `--tests-of DIR` (e.g. a clone of the commit an issue was
filed at) runs, in each checkout, only the tests of the test functions DIR collects that the
checkout still has (every parametrization of each), and says how many those are.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER_LINE = re.compile(r"^\s*(?P<seconds>[\d.]+) s\s+(?P<tests>\d+) tests\s+(?P<area>\S.*)$")
WORKER_LINE = re.compile(r"^\s*(?P<seconds>[\d.]+) s\s+on (?P<worker>worker \S+)$")
LAST_LINE = re.compile(r"^=* ?(?P<outcome>.*) in (?P<seconds>[\d.]+)s\b")


def run_suite(checkout: Path, pytest_args: list[str]) -> dict[str, float | str]:
    """One run: wall seconds, seconds by folder, and pytest's outcome line."""
    completed = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                *pytest_args], cwd=checkout, capture_output=True, text=True,
                               check=False)
    figures: dict[str, float | str] = {}
    for line in completed.stdout.splitlines():
        if match := FOLDER_LINE.match(line):
            figures[match["area"]] = float(match["seconds"])
        elif match := WORKER_LINE.match(line):
            figures[match["worker"]] = float(match["seconds"])
        elif match := LAST_LINE.match(line):
            figures["wall"] = float(match["seconds"])
            figures["outcome"] = match["outcome"].strip()
    failed = [line.split()[1] for line in completed.stdout.splitlines()
              if line.startswith(("FAILED ", "ERROR "))]
    if failed:  # a figure of a failing suite is still a figure, but not a silent one
        print(f"{checkout}: {', '.join(failed)}", file=sys.stderr)
    if "wall" not in figures:
        raise SystemExit(f"{checkout}: pytest printed no summary (exit {completed.returncode}):\n"
                         + completed.stdout[-2000:] + completed.stderr[-2000:])
    return figures


def test_functions(checkout: Path) -> list[str]:
    """`file::function` of every test the checkout collects, parametrizations folded."""
    completed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p",
                                "no:cacheprovider"], cwd=checkout, capture_output=True,
                               text=True, check=True)
    return list(dict.fromkeys(line.split("[")[0] for line in completed.stdout.splitlines()
                              if "::" in line))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--checkout", type=Path, action="append",
                        help="a checkout to run the suite in (repeatable; default: this one)")
    parser.add_argument("--workers", type=int, action="append",
                        help="pytest-xdist workers, 0 for one process (repeatable; default: 2)")
    parser.add_argument("--tests-of", type=Path,
                        help="only the test functions this checkout collects")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments")
    args = parser.parse_args(argv)
    checkouts = args.checkout or [ROOT]
    selected: dict[Path, list[str]] = {checkout: [] for checkout in checkouts}
    if args.tests_of:
        wanted = test_functions(args.tests_of)
        for checkout in checkouts:
            present = set(test_functions(checkout))
            selected[checkout] = [function for function in wanted if function in present]
            print(f"{checkout}: {len(selected[checkout])} of the {len(wanted)} test functions "
                  f"of {args.tests_of} (the tests run are counted in 'in all' below)")
    setups = [(checkout, ["-n", str(workers), *args.pytest_args])
              for checkout in checkouts for workers in args.workers or [2]]
    runs: list[list[dict[str, float | str]]] = [[] for _ in setups]
    for number in range(args.repeat):
        for (checkout, pytest_args), results in zip(setups, runs, strict=True):
            figures = run_suite(checkout, [*pytest_args, *selected[checkout]])
            results.append(figures)
            print(f"run {number + 1}/{args.repeat} {checkout} {' '.join(pytest_args)}: "
                  f"{figures['wall']:.1f} s wall, {figures['outcome']}", file=sys.stderr)
    print(f"medians of {args.repeat} runs; wall from pytest's last line, the rest from its time "
          "by test folder (sums of the tests' own times)")
    for (checkout, pytest_args), results in zip(setups, runs, strict=True):
        print(f"\n{checkout}: python -m pytest {' '.join(pytest_args)}"
              + (f" <{len(selected[checkout])} test functions>" if selected[checkout] else ""))
        areas = [key for key in results[0] if key not in ("wall", "outcome")]
        for area in ["wall", *areas]:
            values = [float(result[area]) for result in results if area in result]
            print(f"  {statistics.median(values):7.1f} s  {area}  "
                  f"({', '.join(f'{value:.1f}' for value in values)})")
        print(f"  outcomes: {'; '.join(sorted({str(result['outcome']) for result in results}))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
