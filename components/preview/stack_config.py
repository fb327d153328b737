"""Read a Pulumi.<stack>.yaml into the config map the CLI would hand the program."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from components.layout import PROJECT
from components.settings import check_known_keys


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
