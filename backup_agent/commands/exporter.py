"""`backup-agent exporter [--port N] [--address A]`: repository state as Prometheus metrics and
the status page, refreshed on a loop, until SIGTERM."""

from __future__ import annotations

import argparse

from prometheus_client.registry import CollectorRegistry

from backup_agent import exporter, status, status_page
from backup_agent.commands.host import serve, wait
from contract.agent_settings import MAX_PORT, AgentSettings


def port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a port from 1 to {MAX_PORT}")
    return int(text)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("exporter", help="serve repository state as Prometheus metrics")
    parser.add_argument("--port", type=port, help="default: metricsPort from the settings")
    parser.add_argument("--address", help="default: listenAddress from the settings")
    parser.set_defaults(handler=handle)


def handle(settings: AgentSettings, args: argparse.Namespace) -> int:
    collector = exporter.BackupCollector(settings, exporter.readers_for(settings))
    registry = CollectorRegistry()
    registry.register(collector)
    registry.register(status.MaxAgeCollector(settings, collector.readers))
    setting = "--port" if args.port else "metricsPort"
    stop = serve(status_page.exporter_app(settings, collector.readers, registry),
                 args.address or settings.listen_address, args.port or settings.metrics_port,
                 setting)
    loop = exporter.RefreshLoop(collector, settings.refresh_seconds)
    loop.start()
    wait(stop)
    loop.stop()
    return 0
