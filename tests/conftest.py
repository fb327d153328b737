"""Shared fixtures: each stack configuration runs once per session under the recording mocks."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import pytest

# pulumi_aws.s3 re-exports deprecated V2 classes and warns on import.
warnings.filterwarnings("ignore", category=DeprecationWarning, module="pulumi_aws")

from components.settings import StackSettings  # noqa: E402
from review.preview import collect_less  # noqa: E402
from review.recording import StackRun, run_program  # noqa: E402
from review.render import render_documents  # noqa: E402
from review.stack_config import stack_settings  # noqa: E402

# tests/agent imports ROOT, required_tool and stack_config from here too.
from tests.support import (  # noqa: E402, F401
    FILE_SECONDS,
    ROOT,
    file_seconds,
    longest_files_first,
    required_tool,
    stack_config,
    time_summary,
)


@pytest.fixture(scope="session")
def stack_run() -> Callable[..., StackRun]:
    """`stack_run("prod", {"replica": {...}})` → the recorded run, evaluated once per config."""
    cache: dict[str, StackRun] = {}

    def run(stack: str = "prod", overrides: Mapping[str, Any] | None = None) -> StackRun:
        key = json.dumps([stack, overrides], sort_keys=True)
        if key not in cache:
            cache[key] = run_program(ROOT / "infra", stack=stack,
                                     config=stack_config(stack, overrides))
        return cache[key]

    return run


@pytest.fixture(scope="session")
def prod(stack_run: Callable[..., StackRun]) -> StackRun:
    return stack_run("prod")


@pytest.fixture(scope="session")
def prod_settings() -> StackSettings:
    return stack_settings(stack_config("prod"), "prod")


@pytest.fixture(scope="session")
def prod_documents(prod: StackRun) -> dict[str, Any]:
    return render_documents(prod)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--write-file-seconds", action="store_true",
                     help=f"rewrite {FILE_SECONDS.relative_to(ROOT)} from this run's times")


def pytest_configure(config: pytest.Config) -> None:
    collect_less()  # the preview's collector threshold: the tests run previews in-process


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """pytest-xdist hands `make test`'s two workers whole files in collection order (pyproject:
    --dist loadfile --no-loadscope-reorder): longest first, so that they finish together."""
    seconds = json.loads(FILE_SECONDS.read_text())
    order = longest_files_first([item.nodeid for item in items], seconds)
    items[:] = [items[index] for index in order]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Time by test folder, so CI output shows where the suite's time goes (`time_summary`)."""
    reports = [report for reports in terminalreporter.stats.values() for report in reports]
    lines = time_summary(reports)
    if terminalreporter.config.getoption("write_file_seconds") and lines:
        FILE_SECONDS.write_text(json.dumps(file_seconds(reports), indent=2) + "\n")
        terminalreporter.write_line(f"wrote {FILE_SECONDS.relative_to(ROOT)}")
    if lines:
        terminalreporter.section("time by test folder")
        for line in lines:
            terminalreporter.write_line(line)
