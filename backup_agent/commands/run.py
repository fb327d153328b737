"""`backup-agent run postgres|files [name]`: one backup job now."""

from __future__ import annotations

import argparse

from backup_agent import schedule, task, tools
from backup_agent.commands.host import JobFailed, UsageError, check_job
from contract.agent_settings import AgentSettings
from contract.jobs import Job


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("run", help="run one backup job now")
    parser.add_argument("kind", choices=("postgres", "files"))
    parser.add_argument("name", nargs="?", help="database or file set (default: all placed here)")
    parser.set_defaults(handler=handle)


def jobs_to_run(settings: AgentSettings, kind: str, name: str | None) -> list[str]:
    names = [d.name for d in settings.databases] if kind == "postgres" else \
        [f.name for f in settings.file_sets]
    if name is not None:
        if name not in names:
            what = "database" if kind == "postgres" else "file set"
            raise UsageError(f"argument name: no {what} {name!r} in the settings; allowed: "
                             + (", ".join(names) or f"none (no {what} here)"))
        return [Job(kind, name).id]
    jobs = [job for job in settings.jobs if Job.parse(job).kind == kind]
    if not jobs:
        raise UsageError(f"argument kind: no {kind} job is placed on this host (jobs: "
                         f"{', '.join(settings.jobs) or 'none'}); allowed: run it on the host "
                         "whose settings list it")
    return jobs


def handle(settings: AgentSettings, args: argparse.Namespace) -> int:
    jobs = jobs_to_run(settings, args.kind, args.name)
    for job in jobs:
        check_job(settings, job)
    for job in jobs:
        with task.job_run(settings, job) as run:
            try:
                run.summary = schedule.job_runner(settings, job)()
            except Exception as error:  # reported as one line naming the job
                raise JobFailed(f"{job}: {tools.describe_failure(error)}") from error
            print(run.summary)
    return 0
