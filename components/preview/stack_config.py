"""Read a Pulumi.<stack>.yaml into the config map the CLI would hand the program, and run the
stack program with it offline."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from components.layout import PROJECT
from components.settings import CONFIG_KEYS, StackSettings, check_known_keys, parse_settings

if TYPE_CHECKING:
    from components.preview.recording import StackRun


def load_stack_config(path: Path) -> tuple[dict[str, str], tuple[str, ...]]:
    """Config with full keys and string values (objects as JSON, as the CLI passes them).

    Encrypted values (`secure:`) cannot be decrypted offline: they become visible placeholders,
    so a rendered document shows where a secret goes without containing it.
    """
    document = yaml.safe_load(path.read_text()) or {}
    raw: dict[str, Any] = document.get("config") or {}
    config: dict[str, str] = {}
    secret_keys = []
    for key, value in raw.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[key] = f"[secret {key}: set with pulumi config set --secret]"
            secret_keys.append(key)
        else:
            config[key] = value if isinstance(value, str) else json.dumps(value)
    check_known_keys(key.removeprefix(f"{PROJECT}:") for key in config
                     if key.startswith(f"{PROJECT}:"))
    return config, tuple(secret_keys)


def stack_settings(config: dict[str, str], stack: str) -> StackSettings:
    """A config map (full keys, as `load_stack_config` returns it) parsed by the same
    `parse_settings` the stack program uses, from the same keys it reads."""
    raw = {name: config[f"{PROJECT}:{name}"] for name in CONFIG_KEYS
           if f"{PROJECT}:{name}" in config}
    return parse_settings(raw, stack=stack)


def run_stack(project_dir: Path, stack: str) -> tuple[StackRun, dict[str, str]]:
    """The stack program of `project_dir` under the recording mocks, with Pulumi.<stack>.yaml's
    config; returns the run and the config map. A ConfigError propagates."""
    # pulumi_aws.s3 re-exports deprecated V2 classes; importing it warns (facts §7).
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="pulumi_aws")
    from components.preview.recording import run_program

    config, secret_keys = load_stack_config(project_dir / f"Pulumi.{stack}.yaml")
    run = run_program(project_dir / "infra", stack=stack, config=config, secret_keys=secret_keys)
    return run, config
