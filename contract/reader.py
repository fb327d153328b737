"""Typed reading of plain data (parsed YAML or JSON) into settings: one reader for everything.

The stack config (`components.settings`) and the agent's settings file
(`contract.agent_settings`) are both read through `Reader`, so every value gets the same checks
where it is read: its type, its range, null counted as absent (the default applies, or "is
required"), and an error that names the full key path, what was found and what is allowed.
Callers give the error class: it says which namespace or file the key path belongs to.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

_SHOWN_TEXT = 60  # longer values are shortened in messages


class InvalidSetting(ValueError):
    """A value that is refused; `key` is the full key path, `problem` what is wrong with it."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}" if key else problem)


def describe(value: Any) -> str:
    """A value as a message shows it: its kind, and short scalars themselves."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        shown = value if len(value) <= _SHOWN_TEXT else value[:_SHOWN_TEXT] + "..."
        return f"the text {shown!r}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def number_range(minimum: float | None, maximum: float | None) -> str:
    if maximum is None:
        return f">= {minimum}"
    if minimum is None:
        return f"<= {maximum}"
    return f"from {minimum} to {maximum}"


class Reader:
    """Typed access to one object of settings; every error names `path` + the key."""

    def __init__(self, path: str, data: Any, error: type[InvalidSetting] = InvalidSetting) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise error(path, f"got {describe(data)}; allowed: an object (key: value, ...)")
        self.path = path
        self.data = data
        self.error = error

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str | None, problem: str) -> NoReturn:
        """Refuse `name` (None: this object itself)."""
        raise self.error(self.path if name is None else self.key(name), problem)

    def value(self, name: str) -> Any:
        """The raw value; None when absent or null."""
        return self.data.get(name)

    def has(self, name: str) -> bool:
        return self.value(name) is not None

    def reject_unknown(self, allowed: Sequence[str]) -> None:
        for name in self.data:
            if name not in allowed:
                self.fail(str(name), "unknown key; allowed: " + ", ".join(allowed))

    def child(self, name: str) -> Reader:
        """An object; absent or null reads as an empty object (every default applies)."""
        return type(self)(self.key(name), self.value(name), self.error)

    def items(self, name: str) -> list[Reader]:
        """A list of objects; absent or null is the empty list."""
        value = self.value(name)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(name, f"got {describe(value)}; allowed: a list of objects")
        readers = []
        for index, item in enumerate(value):
            path = f"{self.key(name)}[{index}]"
            if not isinstance(item, Mapping):
                raise self.error(path, f"got {describe(item)}; allowed: an object (key: value, "
                                       "...)")
            readers.append(type(self)(path, item, self.error))
        return readers

    def _required(self, name: str, allowed: str | None) -> NoReturn:
        self.fail(name, "is required" + (f"; allowed: {allowed}" if allowed else ""))

    def string(self, name: str, default: str | None = None, *, required: bool = False,
               pattern: re.Pattern[str] | None = None, allowed: str | None = None) -> Any:
        """Non-empty text; `pattern` (with `allowed` describing it) must match all of it."""
        value = self.value(name)
        if value is None:
            if required:
                self._required(name, allowed)
            return default
        if not isinstance(value, str) or not value:
            self.fail(name, f"got {describe(value)}; allowed: " + (allowed or "non-empty text"))
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(name, f"got {describe(value)}; allowed: {allowed or pattern.pattern}")
        return value

    def choice(self, name: str, allowed: Sequence[str], default: str | None = None) -> Any:
        value = self.value(name)
        if value is None:
            if default is None:
                self._required(name, ", ".join(allowed))
            return default
        if value not in allowed:
            self.fail(name, f"got {describe(value)}; allowed: " + ", ".join(allowed))
        return value

    def boolean(self, name: str, default: bool | None = None) -> bool:
        """true or false; without a default, required."""
        value = self.value(name)
        if value is None:
            if default is None:
                self._required(name, "true or false")
            return default
        # Top-level Pulumi config reaches a program as text.
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            self.fail(name, f"got {describe(value)}; allowed: true or false")
        return value

    def integer(self, name: str, default: int | None = None, *, required: bool = False,
                minimum: int | None = 1, maximum: int | None = None, unit: str = "") -> Any:
        """A whole number within [minimum, maximum]; `unit` ("days") names what it counts."""
        allowed = f"a whole number{f' of {unit}' if unit else ''} {number_range(minimum, maximum)}"
        value = self.value(name)
        if value is None:
            if required:
                self._required(name, allowed)
            return default
        if (isinstance(value, bool) or not isinstance(value, int)
                or (minimum is not None and value < minimum)
                or (maximum is not None and value > maximum)):
            self.fail(name, f"got {describe(value)}; allowed: {allowed}")
        return value

    def days(self, name: str, default: int | None = None, *, required: bool = False,
             maximum: int | None = None) -> Any:
        return self.integer(name, default, required=required, maximum=maximum, unit="days")

    def number(self, name: str, default: float | None = None, *, minimum: float = 0.0,
               maximum: float | None = None, unit: str = "") -> float:
        """A number (whole or not) within [minimum, maximum]; without a default, required."""
        allowed = f"a number{f' of {unit}' if unit else ''} {number_range(minimum, maximum)}"
        value = self.value(name)
        if value is None:
            if default is None:
                self._required(name, allowed)
            return default
        if (isinstance(value, bool) or not isinstance(value, int | float) or value != value
                or value < minimum or (maximum is not None and value > maximum)):
            self.fail(name, f"got {describe(value)}; allowed: {allowed}")
        return float(value)

    def strings(self, name: str, *, required: bool = False,
                pattern: re.Pattern[str] | None = None, allowed: str = "text") -> tuple[str, ...]:
        """A list of non-empty texts (a single text is refused: YAML `tables: users` is not the
        list [users]); `required` means at least one."""
        value = self.value(name)
        if value is None:
            value = []
        if not isinstance(value, list):
            self.fail(name, f"got {describe(value)}; allowed: a list, each {allowed}"
                      + (f" (write [{value}])" if isinstance(value, str) else ""))
        for index, item in enumerate(value):
            if (not isinstance(item, str) or not item
                    or (pattern is not None and not pattern.fullmatch(item))):
                raise self.error(f"{self.key(name)}[{index}]",
                                 f"got {describe(item)}; allowed: {allowed}")
        if required and not value:
            self.fail(name, f"is empty; allowed: a list of one or more, each {allowed}")
        return tuple(value)

    def ip_address(self, name: str, default: str, *, allowed: str) -> str:
        """An IPv4 or IPv6 address (text)."""
        value = self.string(name, default, allowed=allowed)
        try:
            ipaddress.ip_address(value)
        except ValueError:
            self.fail(name, f"got {describe(value)}; allowed: {allowed}")
        return value

    def unique_names(self, name: str, names: Sequence[str]) -> None:
        """The `name` of each item of the list `name` appears once."""
        for index, item in enumerate(names):
            if item in names[:index]:
                raise self.error(f"{self.key(name)}[{index}].name", f"{item!r} appears twice; "
                                 "allowed: each name once")
