"""`backup-agent report --month YYYY-MM [--json]`: a month of the outcome record."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re

from backup_agent import evidence, report
from backup_agent.commands.host import JobFailed
from contract.agent_settings import AgentSettings

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


def _month(text: str) -> tuple[int, int]:
    found = _MONTH.fullmatch(text)
    if found is None:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a month YYYY-MM")
    return int(found.group(1)), int(found.group(2))


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("report", help="a month's backups and drills from the outcome "
                                 "record, as Markdown (or JSON); exit 1 on a finding")
    parser.add_argument("--month", type=_month, required=True, metavar="YYYY-MM")
    parser.add_argument("--json", action="store_true", help="the report as JSON")
    parser.set_defaults(handler=handle)


def handle(settings: AgentSettings, args: argparse.Namespace) -> int:
    now = dt.datetime.now(dt.UTC)
    year, month = args.month
    if (year, month) > (now.year, now.month):
        raise JobFailed(f"argument --month: {year:04d}-{month:02d} has not begun")
    before = (year - 1, 12) if month == 1 else (year, month - 1)
    built = report.build(settings, year, month, evidence.read_month(settings.primary, *before),
                         evidence.read_month(settings.primary, year, month), now)
    print(json.dumps(built, indent=2) if args.json else report.markdown(built))
    found = report.problems(built)
    if found:
        raise JobFailed(f"report {built['month']}: " + "; ".join(found))
    return 0
