"""The one reader of stack configuration and its one error.

Every value of the project's config namespace is read through `ConfigReader` (contract.reader's
checks: type, range, null = absent), and every refusal is a `ConfigError` naming the full key,
what is wrong and what is allowed.
"""

from __future__ import annotations

from typing import Any

from pulumi.errors import RunError

from components.layout import PROJECT
from contract.agent_settings import MAX_RETENTION_DAYS
from contract.reader import InvalidSetting, Reader


class ConfigError(InvalidSetting, RunError):
    """Invalid stack configuration; `key` is the full config key (`project:path`, or as given
    with `full_key`, e.g. `aws:region`). A RunError, so the Pulumi language host prints the one
    line without a traceback."""

    def __init__(self, key: str, message: str, *, full_key: bool = False) -> None:
        super().__init__(key if full_key else f"{PROJECT}:{key}", message)


class ConfigReader(Reader):
    """`contract.reader.Reader` raising ConfigError; paths are inside the project namespace.
    No period here (lifecycle, logs, retention) may exceed S3 Object Lock's 100 years."""

    def __init__(self, path: str, data: Any, error: type[InvalidSetting] = ConfigError) -> None:
        super().__init__(path, data, error)

    def days(self, name: str, default: int | None = None, *, required: bool = False,
             maximum: int | None = MAX_RETENTION_DAYS) -> Any:
        return super().days(name, default, required=required, maximum=maximum)
