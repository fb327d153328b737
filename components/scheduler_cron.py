"""A job's five-field cron expression in EventBridge Scheduler's six-field syntax.

Scheduler's cron (EventBridge User Guide, "Cron expressions reference") has minutes, hours,
day-of-month, month, day-of-week and year; day-of-week counts 1-7 from Sunday (or SUN-SAT),
takes no `/`, and one of the two day fields must be `?`. A cron expression that restricts both
day fields fires on days matching either (cron's rule, and croniter's), which Scheduler cannot
express: it is refused. Every restricted field is written out as the list of values croniter
expands it to, so steps and ranges mean exactly what they meant in the five-field form.
"""

from __future__ import annotations

from typing import Final

from croniter import croniter

from contract.schedule import NotASchedule, check

WEEKDAY_NAMES: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # croniter's 0-6


def _values(field: list[object], names: tuple[str, ...] | None = None) -> str:
    if field == ["*"]:
        return "*"
    if not all(isinstance(value, int) for value in field):
        raise NotASchedule("uses L, W or # (not converted to EventBridge Scheduler's cron); "
                           "allowed: values, ranges, lists and steps")
    return ",".join(names[value] if names else str(value) for value in field)


def scheduler_cron(expression: str) -> str:
    """`cron(...)` for EventBridge Scheduler; NotASchedule (a ValueError) says what it cannot
    take: a seconds field, L/W/#, or both day-of-month and day-of-week restricted."""
    check(expression)
    runs = croniter(expression)
    if len(expression.split()) != 5 or runs.nth_weekday_of_month:
        raise NotASchedule("is not a five-field cron expression of values, ranges, lists and "
                           "steps; allowed: minute hour day-of-month month day-of-week")
    minutes, hours, days, months, weekdays = runs.expanded
    day_of_month, day_of_week = _values(days), _values(weekdays, WEEKDAY_NAMES)
    if day_of_month != "*" and day_of_week != "*":
        raise NotASchedule("restricts both day-of-month and day-of-week (cron fires on days "
                           "matching either; EventBridge Scheduler needs one of them to be ?); "
                           "allowed: one of the two day fields *")
    if day_of_week == "*":
        day_of_week = "?"
    else:
        day_of_month = "?"
    return (f"cron({_values(minutes)} {_values(hours)} {day_of_month} {_values(months)} "
            f"{day_of_week} *)")
