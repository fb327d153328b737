"""When a cron expression fires, and how far apart its runs are.

Jobs run on UTC cron expressions (croniter's syntax: five fields, or six with seconds last).
`gaps` measures the shortest and the longest time between two runs over more than a year from
a fixed start, so a preview is reproducible and month-length traps show: `0 2 31 * *` fires
in seven months only (61 days apart at worst), `0 0 29 2 *` every four years, `0 0 30 2 *`
never.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
from dataclasses import dataclass
from typing import Final

from croniter import CroniterBadDateError, CroniterError, croniter

SAMPLE_START: Final = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SAMPLE_DAYS: Final = 400
# Runs of one day are listed one by one; a schedule that fires more often than this per day
# (only possible with a seconds field) is measured on these runs alone.
MAX_RUNS_LISTED_PER_DAY: Final = 1440
DAY: Final = dt.timedelta(days=1)


class NotASchedule(ValueError):
    """The text is not a cron expression, or one that never fires; the message says which."""


_NOT_CRON: Final = "is not a cron expression (minute hour day-of-month month day-of-week)"


@dataclass(frozen=True)
class Gaps:
    shortest: dt.timedelta
    longest: dt.timedelta


def _next(runs: croniter) -> dt.datetime:
    try:
        return runs.get_next(dt.datetime)
    except CroniterBadDateError:
        raise NotASchedule("never fires (no such date, e.g. 30 February)") from None


def _runs(expression: object) -> croniter:
    """croniter's reading of `expression` (one parse: its expanded fields serve the day rule
    too); refuses what croniter cannot read or what never fires."""
    if not isinstance(expression, str):
        raise NotASchedule(_NOT_CRON)
    try:
        runs = croniter(expression, SAMPLE_START)
    except CroniterError:
        raise NotASchedule(_NOT_CRON) from None
    _next(runs)
    return runs


def check(expression: object) -> None:
    """Refuse what croniter cannot read or what never fires."""
    _runs(expression)


@functools.lru_cache(maxsize=512)
def gaps(expression: str) -> Gaps:
    """Shortest and longest gap between runs, over more than `SAMPLE_DAYS` from `SAMPLE_START`.
    Minute, hour and second fields do not depend on the day, so every day the expression fires
    on has the same times of day: the gaps are those between the times of one day and those
    from the last run of a firing day to the first run of the next one."""
    rule = _day_rule(_runs(expression))
    found = None if rule is None else _gaps_of(rule)
    return found if found is not None else walked_gaps(expression)


@dataclass(frozen=True)
class _DayRule:
    """When an expression fires, read from croniter's expanded fields: at the same times on
    every day it fires on."""

    times: tuple[dt.timedelta, ...]  # times of day, sorted
    days: frozenset[int] | None  # None: any (the field is *)
    months: frozenset[int] | None
    weekdays: frozenset[int] | None  # 0 = Sunday, as cron counts

    @property
    def every_day(self) -> bool:
        return self.days is None and self.months is None and self.weekdays is None

    def fires(self, day: dt.date) -> bool:
        if self.months is not None and day.month not in self.months:
            return False
        in_days = self.days is None or day.day in self.days
        in_weekdays = self.weekdays is None or (day.weekday() + 1) % 7 in self.weekdays
        # croniter's day rule: with both day fields restricted, a day matching either fires.
        if self.days is not None and self.weekdays is not None:
            return in_days or in_weekdays
        return in_days and in_weekdays


def _day_rule(runs: croniter) -> _DayRule | None:
    """None for what the fields do not show (a seconds field, L, #)."""
    fields = runs.expanded
    if len(fields) != 5 or runs.nth_weekday_of_month or not all(
            value == "*" or isinstance(value, int) for field in fields for value in field):
        return None
    minutes, hours, days, months, weekdays = (
        None if field == ["*"] else frozenset(field) for field in fields)
    times = tuple(sorted(dt.timedelta(hours=hour, minutes=minute)
                         for hour in (hours if hours is not None else range(24))
                         for minute in (minutes if minutes is not None else range(60))))
    return _DayRule(times, days, months, weekdays)


def gaps_from_fields(expression: str) -> Gaps | None:
    """`gaps` from croniter's expanded fields, walking days instead of runs; None for what this
    does not read (a seconds field, L, #) and for days that fire less than every 8 years."""
    rule = _day_rule(croniter(expression))
    return None if rule is None else _gaps_of(rule)


def _gaps_of(rule: _DayRule) -> Gaps | None:
    """None for days that fire less than every 8 years."""
    times, fires = rule.times, rule.fires
    found = [later - earlier for earlier, later in itertools.pairwise(times)]
    if len(times) == MAX_RUNS_LISTED_PER_DAY:
        return Gaps(min(found), max(found))
    span = times[-1] - times[0]
    if rule.every_day:  # one gap, overnight
        return Gaps(min([*found, DAY - span]), max([*found, DAY - span]))
    day, end, limit = SAMPLE_START.date(), SAMPLE_START + SAMPLE_DAYS * DAY, 8 * 366
    while not fires(day):
        day += DAY
        limit -= 1
        if limit == 0:
            return None
    while True:
        following = day + DAY
        while not fires(following):
            following += DAY
            limit -= 1
            if limit == 0:
                return None
        found.append((following - day) - span)
        if dt.datetime.combine(following, dt.time(), tzinfo=dt.UTC) + times[0] > end:
            return Gaps(min(found), max(found))
        day = following


def walked_gaps(expression: str) -> Gaps:
    """`gaps` by asking croniter for the runs: every day the expression fires on has the runs
    of the first one at the same times of day, so that day is listed run by run, later days
    only by their first run (one croniter per day: slow, but it reads every cron feature)."""
    check(expression)
    runs = croniter(expression, SAMPLE_START - dt.timedelta(seconds=1))
    first_day = [_next(runs)]
    midnight = dt.datetime.combine(first_day[0].date() + DAY, dt.time(), tzinfo=dt.UTC)
    following = _next(runs)
    while following < midnight and len(first_day) < MAX_RUNS_LISTED_PER_DAY:
        first_day.append(following)
        following = _next(runs)
    found = [later - earlier for earlier, later in itertools.pairwise(first_day)]
    if len(first_day) == MAX_RUNS_LISTED_PER_DAY:
        return Gaps(min(found), max(found))
    span = first_day[-1] - first_day[0]  # the first to the last run of a day
    last, end = first_day[-1], SAMPLE_START + SAMPLE_DAYS * DAY
    while True:
        found.append(following - last)
        if following > end:
            break
        last = following + span
        following = _next(croniter(expression, last))
    return Gaps(min(found), max(found))


def interval_days(expression: str) -> int:
    """How many days apart the runs are at worst: the longest gap in whole days, rounded up (a
    daily backup is 1, `0 2 31 * *` 61)."""
    return max(1, math.ceil(gaps(expression).longest / DAY))


def yearly_runs(expression: str) -> int:
    """How often the expression fires in the year (365 days) from `SAMPLE_START`: the days it
    fires on times its runs per day when croniter's fields show them, else run by run."""
    rule = _day_rule(_runs(expression))
    if rule is not None:
        start = SAMPLE_START.date()
        return len(rule.times) * sum(rule.fires(start + offset * DAY) for offset in range(365))
    runs = croniter(expression, SAMPLE_START - dt.timedelta(seconds=1))
    end = SAMPLE_START + 365 * DAY
    count = 0
    while _next(runs) < end:
        count += 1
    return count
