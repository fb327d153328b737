"""The agent's settings, as `contract.agent_settings` defines them (the schema the components
render): a file on a Docker host, the `BACKUP_AGENT_SETTINGS` environment variable in an ECS
task (a task has no file the stack could upload). Every error is one line naming the file or
the variable and, inside it, the key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from contract.agent_settings import (
    SETTINGS_VARIABLE,
    AgentSettings,
    SettingsError,
    from_json,
    parse,
)

DEFAULT_PATH = "/etc/backup-agent/settings.json"


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
        raise _within(str(path), error) from None


def _within(source: str, error: SettingsError) -> SettingsError:
    return SettingsError(f"{source}: {error.key}" if error.key else source, error.problem)


def from_variable(text: str) -> AgentSettings:
    """The settings document of an ECS task's `BACKUP_AGENT_SETTINGS`; errors name the
    variable, then the key inside it."""
    if not text.strip():
        raise SettingsError(SETTINGS_VARIABLE, "is empty; allowed: the JSON settings document "
                            "the task definition sets")
    try:
        return from_json(text)
    except SettingsError as error:
        raise _within(SETTINGS_VARIABLE, error) from None


def resolve(path: str | None, environ: Mapping[str, str]) -> AgentSettings:
    """`--settings FILE` when given; else `BACKUP_AGENT_SETTINGS` when set (an ECS task); else
    the file the Docker placement mounts."""
    if path is not None:
        return load(path)
    if SETTINGS_VARIABLE in environ:
        return from_variable(environ[SETTINGS_VARIABLE])
    return load(DEFAULT_PATH)
