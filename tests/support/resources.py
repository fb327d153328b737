"""The prod run as `Declared` resources, and edits of them (the compliance tests' helpers).

Edits copy the recorded resources and change one input, so each failing case differs from the
passing prod stack in exactly one place.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compliance.inventory import Declared
from review.inventory import from_recorded

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ACCOUNT = "111122223333"


def declared_of(run: Any) -> list[Declared]:
    """The run's resources as the controls see them (secret markers unwrapped)."""
    return [dataclasses.replace(r, inputs=copy.deepcopy(dict(r.inputs)))
            for r in from_recorded(run.resources).resources]


def edit(resources: list[Declared], name: str,
         change: Callable[[dict[str, Any]], None]) -> list[Declared]:
    """A copy of `resources` where `change` mutated the inputs of the resource called `name`."""
    result, found = [], False
    for resource in resources:
        if resource.name == name:
            inputs = copy.deepcopy(dict(resource.inputs))
            change(inputs)
            resource = dataclasses.replace(resource, inputs=inputs)
            found = True
        result.append(resource)
    assert found, name
    return result


def edit_policy(resources: list[Declared], name: str,
                change: Callable[[dict[str, Any]], None], field: str = "policy",
                ) -> list[Declared]:
    def apply(inputs: dict[str, Any]) -> None:
        document = json.loads(inputs[field])
        change(document)
        inputs[field] = json.dumps(document)

    return edit(resources, name, apply)


def without_sid(sid: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        before = len(document["Statement"])
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != sid]
        assert len(document["Statement"]) == before - 1, sid

    return change


def sibling(resources: list[Declared], of: str, type_: str, name: str,
            inputs: dict[str, Any]) -> Declared:
    """A new resource next to `of` (same parent), as a component would declare it."""
    parent = next(r for r in resources if r.name == of)
    parent_type = parent.urn.split("::")[2].rsplit("$", 1)[0]
    urn = f"urn:pulumi:prod::biometrics-backup::{parent_type}${type_}::{name}"
    return Declared(urn, type_, name, inputs, parent.parent)
