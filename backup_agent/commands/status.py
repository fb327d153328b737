"""`backup-agent status [--json]`: the newest backups and drills; exit 1 if any is late,
failed or unreadable."""

from __future__ import annotations

import argparse

from backup_agent import exporter, status
from backup_agent.commands.host import JobFailed
from contract.agent_settings import AgentSettings


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("status", help="the newest backups and drills; exit 1 if any "
                                 "is late, failed or unreadable")
    parser.add_argument("--json", action="store_true",
                        help="the same rows as JSON (what the exporter's / shows)")
    parser.set_defaults(handler=handle)


def handle(settings: AgentSettings, args: argparse.Namespace) -> int:
    text, problems = status.render(settings, exporter.readers_for(settings), as_json=args.json)
    print(text)
    if problems:
        raise JobFailed("status: " + "; ".join(problems))
    return 0
