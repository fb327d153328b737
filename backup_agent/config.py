"""The agent's settings file, as `contract.agent_settings` defines it (the schema the
BackupContainers component renders from), read from disk with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from contract.agent_settings import AgentSettings, SettingsError, parse


class SettingsFileError(SettingsError):
    """The settings file cannot be read or is not a JSON object; `key` is its path."""


def load(path: str | Path) -> AgentSettings:
    """Read and validate the settings file. Every error names the file and, inside it, the key:
    `SettingsFileError` for the file itself, `SettingsError` (key prefixed with the file) for a
    value."""
    path = Path(path)
    allowed = "the JSON settings file the BackupContainers component renders"
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SettingsFileError(str(path), f"no such file; allowed: {allowed}") from None
    except IsADirectoryError:
        raise SettingsFileError(str(path), f"is a directory; allowed: {allowed}") from None
    except PermissionError:
        raise SettingsFileError(str(path), "cannot be read (permission denied); allowed: a "
                                "file readable by the agent's user") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsFileError(str(path), f"cannot be read ({error}); allowed: {allowed}") \
            from None
    if not text.strip():
        raise SettingsFileError(str(path), f"is empty; allowed: {allowed}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsFileError(str(path), f"is not JSON (line {error.lineno}, column "
                                f"{error.colno}: {error.msg}); allowed: {allowed}") from None
    try:
        return parse(data)
    except SettingsError as error:
        raise SettingsError(f"{path}: {error.key}" if error.key else str(path),
                            error.problem) from None
