"""restic 0.14's own rules for the values the agent hands it, so a stack or settings file that
restic would refuse is refused when it is read, by key, instead of failing every night.

`check --read-data-subset` (restic 0.14 `cmd/restic/cmd_check.go`, restic-check(1): "n/t for
specific part, or either x% or x.y% or a size in bytes with suffixes k/K, m/M, g/G, t/T"), as
the Debian restic 0.14.0 binary was measured to decide (tests/test_contract.py lists the cases).
Two values that binary accepts are refused here: `NaN%` (reads no data) and hexadecimal
percentages such as `0x1p4%`; and a size too large for a 64-bit count.
"""

from __future__ import annotations

import re
from typing import Final

MAX_SUBSET_GROUPS: Final = 256  # "check flag --read-data-subset=n/t t must be at most 256"
# The agent's own form, `rotate:<t>`: each run reads the next of t groups (n/t), so t runs read
# every pack once.
ROTATE_PREFIX: Final = "rotate:"
SUBSET_ALLOWED: Final = (f"a percentage above 0% and at most 100% (5%, 2.5%), n/t with "
                         f"1 <= n <= t <= {MAX_SUBSET_GROUPS} (1/7), a size with a suffix "
                         f"b, k, m, g or t (50M), or rotate:<t> with 2 <= t <= "
                         f"{MAX_SUBSET_GROUPS} (rotate:20: the next twentieth each run)")
_GROUP = re.compile(r"\d+(/\d+)*")
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SIZE = re.compile(r"([+-]?\d+)([bBkKmMgGtT])")
_UNITS: Final = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def rotation_groups(value: str) -> int | None:
    """t of a valid `rotate:<t>`, None for any other value."""
    if value.startswith(ROTATE_PREFIX) and check_subset_problem(value) is None:
        return int(value.removeprefix(ROTATE_PREFIX))
    return None


def check_subset_problem(value: str) -> str | None:
    """None if `value` is a `checkSubset` the agent accepts: what restic accepts for
    --read-data-subset, or `rotate:<t>`; else what is wrong."""
    if value.startswith(ROTATE_PREFIX):
        groups = value.removeprefix(ROTATE_PREFIX)
        if not groups.isdigit() or not 2 <= int(groups) <= MAX_SUBSET_GROUPS:
            return (f"{value!r}: rotate:<t> needs a whole number t from 2 to "
                    f"{MAX_SUBSET_GROUPS}")
        return None
    return read_data_subset_problem(value)


def read_data_subset_problem(value: str) -> str | None:
    """None if `restic check --read-data-subset=<value>` is accepted, else what is wrong."""
    if _GROUP.fullmatch(value):
        parts = [int(part) for part in value.split("/")]
        if len(parts) != 2:
            return f"{value!r} is neither n/t, x% nor a size"
        part, total = parts
        if part == 0 or total == 0 or part > total:
            return f"{value!r}: n/t needs 1 <= n <= t"
        if total > MAX_SUBSET_GROUPS:
            return f"{value!r}: t must be at most {MAX_SUBSET_GROUPS}"
        return None
    if value.endswith("%"):
        number = value[:-1]
        if not _DECIMAL.fullmatch(number):
            return f"{value!r} is not a decimal percentage"
        percent = float(number)
        if not 0.0 < percent <= 100.0:
            return f"{value!r}: the percentage must be above 0% and at most 100%"
        return None
    size = _SIZE.fullmatch(value)
    if size is None:
        return f"{value!r} is neither n/t, x% nor a size"
    count = int(size.group(1)) * _UNITS[size.group(2).lower()]
    if count <= 0:
        return f"{value!r}: the size must be above 0"
    if count >= 1 << 63:
        return f"{value!r}: the size is larger than restic can count"
    return None
