"""Fixtures of the compliance tests: prod's resources as the controls see them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from compliance.inventory import Declared, Inventory, build_inventory
from tests.support.ecs_resources import ecs_stack
from tests.support.resources import FIXTURES, declared_of


@pytest.fixture(scope="session")
def prod_declared(prod) -> list[Declared]:
    return declared_of(prod)


@pytest.fixture(scope="session")
def prod_inventory(prod_declared) -> Inventory:
    return build_inventory(prod_declared)


@pytest.fixture(scope="session")
def seed_policy() -> dict[str, Any]:
    return json.loads((FIXTURES / "seed_bucket_policy.json").read_text())


@pytest.fixture(scope="session")
def ecs_declared(prod_declared) -> list[Declared]:
    """prod with every kind of work also placed on ECS (tests.support.ecs_resources)."""
    return ecs_stack(prod_declared)
