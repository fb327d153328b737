"""The inventory of a recorded stack: the offline preview's resources as the compliance
controls see them (`compliance.inventory.Declared`, secrets unwrapped)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from compliance.inventory import Declared, Inventory, build_inventory
from review.recording import RecordedResource

# How Pulumi's wire format marks a secret value: {SIG_KEY: SECRET_SIG, "value": ...}
# (pulumi/runtime/rpc.py). The recording keeps the marker; controls read the value: a secret
# is still plaintext inside the container that receives it.
_SIG_KEY: Final = "4dabf18193072939515e22adb298388d"
_SECRET_SIG: Final = "1b47061264138c4ac30d75fd1eb44270"


def _unwrap_secrets(value: Any, path: str = "", found: set[str] | None = None) -> Any:
    """The value with every secret marker replaced by its value; the markers' paths (dotted,
    `[i]` for list items) are added to `found`."""
    if isinstance(value, Mapping):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            if found is not None:
                found.add(path)
            return _unwrap_secrets(value.get("value"), path, found)
        return {key: _unwrap_secrets(item, f"{path}.{key}".lstrip("."), found)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(item, f"{path}[{index}]", found)
                for index, item in enumerate(value)]
    return value


def declared(resource: RecordedResource) -> Declared:
    secrets: set[str] = set()
    inputs = _unwrap_secrets(resource.inputs, found=secrets)
    return Declared(urn=resource.urn, type=resource.type, name=resource.name, inputs=inputs,
                    parent=resource.parent, secret_inputs=frozenset(secrets))


def from_recorded(recorded: Iterable[RecordedResource]) -> Inventory:
    """The inventory of a recorded run: what the controls see of the resources it declared."""
    return build_inventory(declared(r) for r in recorded)
