"""`backup-agent drill [--target primary|replica]`: restore the newest backups and check them."""

from __future__ import annotations

import argparse

from backup_agent import drill
from backup_agent.commands.host import JobFailed, UsageError, check_job
from backup_agent.picks import Pick
from contract.agent_settings import DRILL_JOB, TARGETS, AgentSettings


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("drill", help="restore the newest backups and check them")
    parser.add_argument("--target", choices=TARGETS, default="primary",
                        help="which bucket to restore from (replica = failover drill)")
    parser.add_argument("--pick", type=_pick, metavar="ID",
                        help="restore the points an earlier drill picked (its logged pick id) "
                             "for the file sets with drillPick random-within")
    parser.set_defaults(handler=handle)


def _pick(text: str) -> Pick:
    try:
        return Pick.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def handle(settings: AgentSettings, args: argparse.Namespace) -> int:
    if args.target not in settings.targets:
        raise UsageError(f"argument --target: no {args.target} bucket in the settings; "
                         "allowed: " + ", ".join(settings.targets))
    check_job(settings, DRILL_JOB)
    outcomes = drill.run_drill(settings, args.target, args.pick)
    for outcome in outcomes:
        picked = f" pick {outcome.pick}" if outcome.pick else ""
        print(f"{'PASS' if outcome.success else 'FAIL'} {outcome.kind} {outcome.name}{picked} "
              f"({outcome.duration_seconds:.1f} s): {outcome.detail}")
    failed = [o for o in outcomes if not o.success]
    if failed:
        raise JobFailed(f"drill from {args.target}: {len(failed)} of {len(outcomes)} restores "
                        "failed: " + ", ".join(f"{o.kind} {o.name}" for o in failed))
    return 0
