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

# tests/agent imports these from here too.
from tests.support import ROOT, required_tool, stack_config  # noqa: E402, F401


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
