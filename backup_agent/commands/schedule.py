"""`backup-agent schedule`: the long-running container command, the jobs placed on this host on
their schedules (`backup_agent.schedule`)."""

from __future__ import annotations

import argparse

from prometheus_client import make_wsgi_app
from prometheus_client.registry import CollectorRegistry

from backup_agent import schedule
from backup_agent.commands.host import check_job, readable_file, serve
from contract.agent_settings import AgentSettings


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("schedule",
                                 help="run the jobs placed on this host on their schedules")
    parser.set_defaults(handler=handle)


def handle(settings: AgentSettings, args: argparse.Namespace) -> int:
    for job in settings.jobs:
        check_job(settings, job)
    if settings.webhook_url_file is not None:
        readable_file("webhookUrlFile", settings.webhook_url_file,
                      "the status webhook's URL (the Pulumi secret webhookUrl)")
    scheduler = schedule.Scheduler(settings)
    registry = CollectorRegistry()
    registry.register(schedule.SchedulerCollector(scheduler))
    stop = serve(make_wsgi_app(registry), settings.listen_address, settings.metrics_port,
                 "metricsPort")
    scheduler.serve_forever(stop)
    return 0
