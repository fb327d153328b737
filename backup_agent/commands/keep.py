"""`backup-agent keep <database> <backup> [--until YYYY-MM-DD]`: keep a base backup past the
lock window."""

from __future__ import annotations

import argparse
import datetime as dt
import re

from backup_agent import postgres, tools
from backup_agent.commands.host import JobFailed, UsageError
from contract.agent_settings import AgentSettings

BACKUP_NAME = re.compile(r"base_[0-9A-F]{24}(_D_[0-9A-F]{24})?")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a date YYYY-MM-DD") from None


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("keep", help="keep a base backup past the lock window "
                                 "(permanent for wal-g, tagged Retention=active, COMPLIANCE "
                                 "retention or a legal hold: keep.protection)")
    parser.add_argument("database")
    parser.add_argument("backup", help="a backup_name from wal-g backup-list")
    parser.add_argument("--until", type=_date, metavar="YYYY-MM-DD",
                        help="retain until this date, 00:00 UTC (compliance-retention; at most "
                             "keep.maxDays ahead; cannot be shortened afterwards)")
    parser.set_defaults(handler=handle)


def handle(settings: AgentSettings, args: argparse.Namespace) -> int:
    if args.database not in [d.name for d in settings.databases]:
        raise UsageError(f"argument database: no database {args.database!r} in the settings; "
                         "allowed: " + (", ".join(d.name for d in settings.databases) or "none"))
    if not BACKUP_NAME.fullmatch(args.backup):
        raise UsageError(f"argument backup: got {args.backup!r}; allowed: a backup_name from "
                         "wal-g backup-list (base_<24 hex digits>)")
    try:
        keys = postgres.keep_backup(settings, settings.database(args.database), args.backup,
                                    args.until)
    except postgres.KeepError as error:  # refused before anything is written
        raise UsageError(str(error)) from None
    except Exception as error:
        raise JobFailed(f"keep {args.database} {args.backup}: "
                        f"{tools.describe_failure(error)}") from error
    print(f"{args.backup}: {len(keys)} objects kept "
          + (f"until {args.until.isoformat()} (COMPLIANCE retention)" if args.until
             else "(legal hold)"))
    return 0
