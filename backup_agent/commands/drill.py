"""`backup-agent drill [--target primary|replica|all]`: restore the newest backups and check
them."""

from __future__ import annotations

import argparse

from backup_agent import drill, task
from backup_agent.commands.host import JobFailed, UsageError, check_job
from backup_agent.picks import Pick
from contract.agent_settings import DRILL_JOB, TARGETS, AgentSettings

ALL_TARGETS = "all"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("drill", help="restore the newest backups and check them")
    parser.add_argument("--target", choices=(*TARGETS, ALL_TARGETS), default="primary",
                        help="which bucket to restore from (replica = failover drill; all = "
                             "each bucket of the settings in turn, as the scheduled drill does)")
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
    if args.target not in (*settings.targets, ALL_TARGETS):
        raise UsageError(f"argument --target: no {args.target} bucket in the settings; "
                         "allowed: " + ", ".join((*settings.targets, ALL_TARGETS)))
    check_job(settings, DRILL_JOB)
    targets = settings.targets if args.target == ALL_TARGETS else (args.target,)
    with task.job_run(settings, DRILL_JOB) as run:
        failed = [failure for target in targets for failure in _drill(settings, target, args)]
        if failed:
            raise JobFailed("drill: " + "; ".join(failed))
        run.summary = "drill passed on " + ", ".join(targets)
    return 0


def _drill(settings: AgentSettings, target: str, args: argparse.Namespace) -> list[str]:
    """Prints each restore's outcome; returns what failed, one phrase per target."""
    outcomes = drill.run_drill(settings, target, args.pick)
    for outcome in outcomes:
        picked = f" pick {outcome.pick}" if outcome.pick else ""
        print(f"{'PASS' if outcome.success else 'FAIL'} {target} {outcome.kind} "
              f"{outcome.name}{picked} ({outcome.duration_seconds:.1f} s): {outcome.detail}")
    failed = [o for o in outcomes if not o.success]
    return [f"from {target}: {len(failed)} of {len(outcomes)} restores failed: "
            + ", ".join(f"{o.kind} {o.name}" for o in failed)] if failed else []
