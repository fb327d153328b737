"""Shared fixtures: each stack configuration runs once per session under the recording mocks."""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

# pulumi_aws.s3 re-exports deprecated V2 classes and warns on import (pulumi-aws 7 upgrade guide).
warnings.filterwarnings("ignore", category=DeprecationWarning, module="pulumi_aws")

from components.preview.recording import StackRun, run_program  # noqa: E402
from components.preview.render import render_documents  # noqa: E402
from components.preview.stack_config import load_stack_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
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
def prod_documents(prod: StackRun) -> dict[str, Any]:
    return render_documents(prod)
