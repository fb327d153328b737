"""Read a Pulumi.<stack>.yaml into the config map the CLI would hand the program, and run the
stack program with it offline.

The Pulumi CLI parses the stack file itself; offline this module stands in for it, and refuses
what the CLI would refuse — a missing file, invalid YAML, a document or `config` that is not a
mapping, a key twice (YAML alone silently keeps the last one), a key without a namespace — as
one `StackFileError` naming the file and line. Scalars are read as YAML 1.2 reads them (the
CLI's parser): only true/false are booleans (`protect: yes` stays the text "yes") and dates
stay text.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml

from components.layout import PROJECT
from components.settings import CONFIG_KEYS, StackSettings, parse_settings
from contract.reader import InvalidSetting

if TYPE_CHECKING:
    from review.recording import StackRun

ROOT: Final = Path(__file__).resolve().parents[1]  # the checkout: Pulumi.yaml, infra/
STACK_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_BOOL: Final = "tag:yaml.org,2002:bool"
_TIMESTAMP: Final = "tag:yaml.org,2002:timestamp"
_MERGE: Final = "tag:yaml.org,2002:merge"


class StackFileError(InvalidSetting):
    """The stack file cannot be used; `key` is the file name."""


# libyaml's parser when PyYAML has it (the PyPI wheels do): the same documents, much faster.
_SafeLoader: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StackFileLoader(_SafeLoader):  # type: ignore[misc, valid-type]
    """SafeLoader with YAML 1.2's booleans, dates as text and duplicate keys refused."""

    file_name = ""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise StackFileError(self.file_name, f"line {line}: the key {key!r} is not "
                                     "text; allowed: text keys")
            if key in seen:
                raise StackFileError(self.file_name, f"line {line}: {key!r} appears twice in "
                                     "one mapping (YAML would keep only the last); allowed: "
                                     "each key once")
            seen.add(key)
        return super().construct_mapping(node, deep)


_StackFileLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP]
    for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _StackFileLoader.yaml_implicit_resolvers[_first] = [
        (tag, pattern) for tag, pattern in _StackFileLoader.yaml_implicit_resolvers[_first]
        if tag != _BOOL]
_StackFileLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
for _first in "yYnNoO":  # YAML 1.1's yes/no/on/off are text in YAML 1.2
    _StackFileLoader.yaml_implicit_resolvers[_first] = [
        (tag, pattern) for tag, pattern in _StackFileLoader.yaml_implicit_resolvers.get(_first, [])
        if tag != _BOOL]


def _placeholders(key: str, value: Any) -> tuple[Any, bool]:
    """Encrypted values (`secure:`) cannot be decrypted offline: each becomes a visible
    placeholder, so a rendered document shows where a secret goes without containing it.
    Returns the value and whether it held any encrypted value (the CLI then marks the whole
    key secret)."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return f"[secret {key}: set with pulumi config set --secret]", True
    if isinstance(value, dict):
        found = {name: _placeholders(f"{key}.{name}", item) for name, item in value.items()}
        return ({name: item for name, (item, _) in found.items()},
                any(secret for _, secret in found.values()))
    if isinstance(value, list):
        found_items = [_placeholders(f"{key}[{index}]", item) for index, item in enumerate(value)]
        return [item for item, _ in found_items], any(secret for _, secret in found_items)
    return value, False


def _text(file_name: str, key: str, value: Any) -> str:
    """Config values reach a program as text: objects and lists as JSON, scalars as written."""
    if isinstance(value, str):
        return value

    def refuse(item: object) -> Any:
        raise StackFileError(file_name, f"{key}: holds {type(item).__name__}, which JSON "
                             "cannot carry; allowed: text, numbers, booleans, lists, mappings")

    return json.dumps(value, default=refuse)


def load_stack_config(path: Path) -> tuple[dict[str, str], tuple[str, ...]]:
    """Config with full keys and string values (objects as JSON, as the CLI passes them), and
    the keys holding encrypted values. A key set to null is left out (unset)."""
    name = path.name
    try:
        text = path.read_text()
    except FileNotFoundError:
        stacks = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml")
                        for p in path.parent.glob("Pulumi.*.yaml"))
        raise StackFileError(name, f"no such stack file in {path.parent}; allowed: "
                             + (", ".join(stacks) or "no stack file here")) from None
    except (OSError, UnicodeDecodeError) as error:
        raise StackFileError(name, f"cannot be read ({error}); allowed: a readable UTF-8 "
                             "file") from None
    loader = type("Loader", (_StackFileLoader,), {"file_name": name})
    try:
        document = yaml.load(text, Loader=loader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise StackFileError(name, f"{where}not valid YAML ({error.problem}); allowed: a "
                             "YAML mapping with a config key") from None
    except yaml.YAMLError as error:
        raise StackFileError(name, f"not valid YAML ({error}); allowed: a YAML mapping with "
                             "a config key") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise StackFileError(name, f"is a YAML {type(document).__name__}; allowed: a mapping "
                             "with a config key")
    raw = document.get("config")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise StackFileError(name, f"config: is a YAML {type(raw).__name__}; allowed: a "
                             "mapping of <namespace>:<name> keys to values")
    config: dict[str, str] = {}
    secret_keys = []
    for key, value in raw.items():
        if value is None:
            continue
        value, secret = _placeholders(key.partition(":")[2] or key, value)
        config[key] = _text(name, key, value)
        if secret:
            secret_keys.append(key)
    return config, tuple(secret_keys)


def stack_file(project_dir: Path, stack: str) -> Path:
    if not STACK_NAME.fullmatch(stack):
        raise StackFileError("--stack", f"got {stack!r}; allowed: a stack name (A-Z a-z 0-9 _ . "
                             "-)")
    return project_dir / f"Pulumi.{stack}.yaml"


def stack_settings(config: dict[str, str], stack: str) -> StackSettings:
    """A config map (full keys, as `load_stack_config` returns it) parsed by the same
    `parse_settings` the stack program uses, from the same keys it reads."""
    raw = {name: config[f"{PROJECT}:{name}"] for name in CONFIG_KEYS
           if f"{PROJECT}:{name}" in config}
    return parse_settings(raw, stack=stack)


def run_stack(project_dir: Path, stack: str) -> tuple[StackRun, StackSettings]:
    """The stack program of `project_dir` under the recording mocks, with Pulumi.<stack>.yaml's
    config; returns the run and the settings (waivers and runtime included), parsed once here
    before the program runs. A StackFileError or ConfigError propagates."""
    # pulumi_aws.s3 re-exports deprecated V2 classes; importing it warns.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="pulumi_aws")
    from review.recording import run_program

    config, secret_keys = load_stack_config(stack_file(project_dir, stack))
    settings = stack_settings(config, stack)
    run = run_program(project_dir / "infra", stack=stack, config=config, secret_keys=secret_keys)
    return run, settings
