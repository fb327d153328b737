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
from review.recording import StackRun, run_program  # noqa: E402
from review.render import render_documents  # noqa: E402
from review.stack_config import stack_settings  # noqa: E402

# tests/agent imports ROOT, required_tool and stack_config from here too.
from tests.support import ROOT, required_tool, stack_config, test_folder, time_summary  # noqa: E402, F401


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


# The order pytest-xdist hands whole files to `make test`'s two workers in (pyproject: --dist
# loadfile --no-loadscope-reorder): the folders of long files first, the many short compliance
# tests last, so that the workers finish together. Other folders go with the top level's.
FOLDER_ORDER = {"tests/agent": 0, "tests": 1, "tests/delivery": 2, "tests/compliance": 3}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: FOLDER_ORDER.get(test_folder(item.nodeid), 1))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Time by test folder, so CI output shows where the suite's time goes (`time_summary`)."""
    lines = time_summary(report for reports in terminalreporter.stats.values()
                         for report in reports)
    if lines:
        terminalreporter.section("time by test folder")
        for line in lines:
            terminalreporter.write_line(line)
