"""Helpers the tests share (not test modules, not fixtures): paths, stack configs, tools."""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from review.stack_config import load_stack_config

ROOT = Path(__file__).resolve().parents[2]
PROJECT_KEY = "biometrics-backup"


def required_tool(name: str, package: str) -> str:
    """The path of a tool the test needs; a missing one fails the test (never skips it)."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: apt-get install {package} (.ci/run installs it)")
    return found


def stack_config(stack: str, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """A stack file's config with some project keys replaced (None removes the key)."""
    config, _ = load_stack_config(ROOT / f"Pulumi.{stack}.yaml")
    for key, value in (overrides or {}).items():
        full = f"{PROJECT_KEY}:{key}"
        if value is None:
            config.pop(full, None)
        else:
            config[full] = value if isinstance(value, str) else json.dumps(value)
    return config


def project_config(stack: str) -> dict[str, Any]:
    """A stack file's keys of this project (without the prefix), values as the file holds them:
    what `components.settings.parse_settings` takes."""
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key.removeprefix(f"{PROJECT_KEY}:"): value for key, value in document.items()
            if key.startswith(f"{PROJECT_KEY}:")}


DELETE: Final = object()  # as a value in `changed`: remove the key


def changed(document: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of `document` with values replaced (DELETE removes one); paths like
    "lifecycle.tiers[0].transitions[1].days" (objects missing on the way are created)."""
    result = copy.deepcopy(dict(document))
    for path, value in changes.items():
        *parents, last = re.findall(r"[^.\[\]]+", path)
        target: Any = result
        for part in parents:
            target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
        if value is DELETE:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return result


def test_folder(nodeid: str) -> str:
    """The folder a test is counted under: tests/agent/test_x.py::t → tests/agent,
    tests/test_y.py::t → tests."""
    parts = nodeid.split("::")[0].split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


test_folder.__test__ = False  # a helper, not a test pytest should collect


def test_file(nodeid: str) -> str:
    """tests/agent/test_x.py::t[a] → tests/agent/test_x.py"""
    return nodeid.split("::")[0]


test_file.__test__ = False


def _test_reports(reports: Iterable[Any]) -> Iterator[Any]:
    return (report for report in reports
            if getattr(report, "when", None) in ("setup", "call", "teardown"))


def time_summary(reports: Iterable[Any]) -> list[str]:
    """The lines of the suite's "time by test folder": each folder's tests (setup + call +
    teardown, summed), all of them, and under pytest-xdist each worker's share (the sums then
    exceed the wall time pytest prints last). Reports of other kinds are ignored."""
    seconds: dict[str, float] = {}
    tests: dict[str, set[str]] = {}
    workers: dict[str, float] = {}
    for report in _test_reports(reports):
        area = test_folder(report.nodeid)
        seconds[area] = seconds.get(area, 0.0) + report.duration
        tests.setdefault(area, set()).add(report.nodeid)
        node = getattr(report, "node", None)  # the worker, set by xdist on the controller
        if node is not None:
            workers[node.gateway.id] = workers.get(node.gateway.id, 0.0) + report.duration
    if not seconds:
        return []
    lines = [f"{seconds[area]:8.1f} s  {len(tests[area]):4d} tests  {area}"
             for area in sorted(seconds, key=seconds.get, reverse=True)]
    lines.append(f"{sum(seconds.values()):8.1f} s  {sum(map(len, tests.values())):4d} tests  "
                 "in all")
    lines += [f"{busy:8.1f} s  on worker {worker}" for worker, busy in sorted(workers.items())]
    return lines


time_summary.__test__ = False

# Each test file's seconds in a recent run (`make test-file-seconds` rewrites it): the order
# `make test`'s workers take whole files in, longest first, so that no long file starts last.
FILE_SECONDS: Final = ROOT / "tests" / "file_seconds.json"


def file_seconds(reports: Iterable[Any]) -> dict[str, float]:
    """Each test file's tests (setup + call + teardown, summed), rounded to 0.1 s."""
    seconds: dict[str, float] = {}
    for report in _test_reports(reports):
        name = test_file(report.nodeid)
        seconds[name] = seconds.get(name, 0.0) + report.duration
    return {name: round(seconds[name], 1) for name in sorted(seconds)}


def longest_files_first(nodeids: list[str], seconds: Mapping[str, float]) -> list[int]:
    """The positions of `nodeids` in the order to run them: whole files, longest first; a file
    not measured yet first of all (a long new one must not start last); ties as collected."""
    return sorted(range(len(nodeids)),
                  key=lambda index: -seconds.get(test_file(nodeids[index]), math.inf))
