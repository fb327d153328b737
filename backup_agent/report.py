"""`backup-agent report --month YYYY-MM`: one month of the outcome record (backup_agent.evidence)
against the settings: per target, backups taken against the runs scheduled, whether each day
stayed within each backup's limit, every drill and its result, and the gaps.

A day meets the limit when, at every moment of it, the newest successful backup was at most the
limit old: a file set's `rpoSeconds`, a database's base backup interval + 2 h (its RPO proper is
WAL archiving's, watched by the alerts). The month before is read for the backup that was
newest when the month began. The record is the primary bucket's (drills from the replica are
recorded there too). Pure: `build` turns outcomes into the report, `markdown` renders it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from croniter import croniter

from backup_agent import evidence, status
from contract.agent_settings import AgentSettings
from contract.jobs import database_job, files_job

DAY = dt.timedelta(days=1)


def month_bounds(year: int, month: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
    return start, end


@dataclass(frozen=True)
class BackupJob:
    job: str
    schedule: str
    limit_seconds: int


def backup_jobs(settings: AgentSettings) -> list[BackupJob]:
    return ([BackupJob(database_job(d.name).id, d.schedule, status.base_backup_max_age(d))
             for d in settings.databases]
            + [BackupJob(files_job(f.name).id, f.schedule, f.rpo_seconds)
               for f in settings.file_sets])


def _iso(moment: float | dt.datetime) -> str:
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.fromtimestamp(moment, dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _breaches(successes: Sequence[float], limit: float, start: float,
              end: float) -> list[tuple[float, float]]:
    """The spans of [start, end) in which the newest success was older than `limit`."""
    spans, previous = [], None
    for moment in [*sorted(successes), end]:
        over = (previous + limit) if previous is not None else start
        if moment > over and over < end:
            spans.append((max(over, start), min(moment, end)))
        previous = moment if moment < end else previous
    return [(a, b) for a, b in spans if b > a]


def _backup_row(job: BackupJob, outcomes: Sequence[evidence.Outcome], start: dt.datetime,
                end: dt.datetime) -> dict[str, Any]:
    runs = [o for o in outcomes if o.kind == "backup" and o.job == job.job]
    successes = [o.finished for o in runs if o.success]
    scheduled = []
    moments = croniter(job.schedule, start - dt.timedelta(seconds=1))
    while (moment := moments.get_next(dt.datetime)) < end:
        scheduled.append(moment)
    missed = [moment for index, moment in enumerate(scheduled)
              if not any(moment.timestamp() <= o.started < (
                  scheduled[index + 1] if index + 1 < len(scheduled) else end).timestamp()
                  and o.success for o in runs)]
    breaches = _breaches(successes, job.limit_seconds, start.timestamp(), end.timestamp())
    days: dict[str, bool] = {}
    day = start
    while day < end:
        upper = min(day + DAY, end)
        days[day.date().isoformat()] = not any(a < upper.timestamp() and b > day.timestamp()
                                               for a, b in breaches)
        day += DAY
    in_month = [o for o in runs if start.timestamp() <= o.finished < end.timestamp()]
    return {
        "job": job.job, "schedule": job.schedule, "limit_seconds": job.limit_seconds,
        "scheduled": len(scheduled), "taken": sum(o.success for o in in_month),
        "failed_runs": sum(not o.success for o in in_month),
        "missed": [_iso(m) for m in missed],
        "days_met": sum(days.values()), "days": days,
        "gaps": [{"from": _iso(a), "to": _iso(b), "hours": round((b - a) / 3600, 1)}
                 for a, b in breaches],
    }


def build(settings: AgentSettings, year: int, month: int, before: evidence.Month,
          this: evidence.Month, now: dt.datetime) -> dict[str, Any]:
    """The report of `year-month` from the record of that month and of the month before, up
    to `now` for the current month."""
    start, end = month_bounds(year, month)
    end = min(end, now)
    targets = {}
    for target in settings.targets:
        outcomes = [o for o in (*before.outcomes, *this.outcomes) if o.target == target]
        drills = [o for o in this.outcomes if o.kind == "drill" and o.target == target]
        targets[target] = {
            "backups": [_backup_row(job, outcomes, start, end) for job in backup_jobs(settings)]
            if target == "primary" else [],
            "drills": [{"finished": _iso(o.finished), "job": o.job, "success": o.success,
                        "restore_point": o.restore_point, "pick": o.pick,
                        "duration_seconds": round(o.duration_seconds, 1),
                        "tool_version": o.tool_version, "host": o.host, "detail": o.detail}
                       for o in drills],
            "drills_run": len(drills), "drills_failed": sum(not o.success for o in drills),
        }
    return {"month": f"{year:04d}-{month:02d}", "from": _iso(start), "to": _iso(end),
            "generated": _iso(now),
            "record": {"bucket": settings.primary.bucket, "outcomes": len(this.outcomes),
                       "rewritten": list(this.rewritten), "unreadable": list(this.unreadable)},
            "targets": targets}


def problems(report: dict[str, Any]) -> list[str]:
    """What an auditor must not miss: missed backups, days past a limit, failed drills, a month
    without a passed drill, rewritten or unreadable outcomes."""
    found = []
    for target, part in report["targets"].items():
        for row in part["backups"]:
            if row["missed"]:
                found.append(f"{target} {row['job']}: {len(row['missed'])} scheduled backup(s) "
                             "missed")
            if row["days_met"] < len(row["days"]):
                found.append(f"{target} {row['job']}: limit not met on "
                             f"{len(row['days']) - row['days_met']} day(s)")
        if part["drills_failed"]:
            found.append(f"{target}: {part['drills_failed']} of {part['drills_run']} drill "
                         "restores failed")
        if target == "primary" and part["drills_run"] == part["drills_failed"]:
            found.append(f"{target}: no passed restore drill this month")
    found += [f"outcome {key} was written more than once" for key in report["record"]["rewritten"]]
    found += [f"unreadable outcome {line}" for line in report["record"]["unreadable"]]
    return found


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:g} h"


def markdown(report: dict[str, Any]) -> str:
    record = report["record"]
    lines = [f"# Backup evidence {report['month']}", "",
             f"From {report['from']} to {report['to']}, generated {report['generated']} by "
             f"`backup-agent report` from the outcome record (s3://{record['bucket']}/evidence/):"
             f" {record['outcomes']} outcomes, rewritten: {len(record['rewritten'])}, "
             f"unreadable: {len(record['unreadable'])}.", ""]
    found = problems(report)
    lines += ["## Findings", ""] + ([f"- {p}" for p in found] or ["- none"]) + [""]
    for target, part in report["targets"].items():
        lines += [f"## {target}", ""]
        if part["backups"]:
            lines += ["### Backups", "",
                      "| job | schedule | scheduled | taken | failed runs | days within limit "
                      "| limit |", "|---|---|---|---|---|---|---|"]
            lines += [f"| {r['job']} | `{r['schedule']}` | {r['scheduled']} | {r['taken']} | "
                      f"{r['failed_runs']} | {r['days_met']} of {len(r['days'])} | "
                      f"{_hours(r['limit_seconds'])} |" for r in part["backups"]]
            lines += ["", "### Gaps", ""]
            gaps = [f"- {r['job']}: missed the scheduled run at {m}" for r in part["backups"]
                    for m in r["missed"]]
            gaps += [f"- {r['job']}: past its limit from {g['from']} to {g['to']} "
                     f"({g['hours']} h); days not met: "
                     + ", ".join(d for d, met in r["days"].items() if not met)
                     for r in part["backups"] for g in r["gaps"][:1]]
            gaps += [f"- {r['job']}: {len(r['gaps']) - 1} more span(s) past its limit"
                     for r in part["backups"] if len(r["gaps"]) > 1]
            lines += (gaps or ["- none"]) + [""]
        lines += ["### Drills", "",
                  f"{part['drills_run']} restores, {part['drills_failed']} failed.", ""]
        if part["drills"]:
            lines += ["| finished | restored | restore point | pick | result | detail |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {d['finished']} | {d['job']} | {d['restore_point'][:12] or '-'} | "
                      f"{d['pick'] or '-'} | {'passed' if d['success'] else 'FAILED'} | "
                      f"{d['detail'].replace('|', '/')} |" for d in part["drills"]]
            lines.append("")
    return "\n".join(lines)
