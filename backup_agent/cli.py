"""The `backup-agent` command."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.registry import CollectorRegistry

from backup_agent import config, drill, exporter, postgres, schedule, status, status_page


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backup-agent", description=__doc__)
    parser.add_argument("--settings", default="/etc/backup-agent/settings.json",
                        help="the settings file rendered by the BackupContainers component")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one backup job now")
    run.add_argument("kind", choices=("postgres", "files"))
    run.add_argument("name", nargs="?", help="database or file set (default: all placed here)")
    target_help = "which bucket to restore from (replica = failover drill)"
    drill_parser = commands.add_parser("drill", help="restore the newest backups and check them")
    drill_parser.add_argument("--target", choices=("primary", "replica"), default="primary",
                              help=target_help)
    commands.add_parser("schedule", help="run the jobs placed on this host on their schedules")
    export = commands.add_parser("exporter", help="serve repository state as Prometheus metrics")
    export.add_argument("--port", type=int, help="default: metricsPort from the settings")
    status_parser = commands.add_parser("status", help="a table of the newest backups and drills")
    status_parser.add_argument("--json", action="store_true",
                               help="the same rows as JSON (what the exporter's / shows)")
    keep = commands.add_parser("keep", help="keep a base backup past the lock window "
                               "(permanent for wal-g, tagged Retention=active, COMPLIANCE "
                               "retention or a legal hold: keep.protection)")
    keep.add_argument("database")
    keep.add_argument("backup", help="a backup_name from wal-g backup-list")
    keep.add_argument("--until", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                      help="retain until this date, 00:00 UTC (compliance-retention; at most "
                           "keep.maxDays ahead; cannot be shortened afterwards)")
    return parser


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *_: object) -> None:  # scrapes every few seconds: not worth a line
        pass


def _serve(app: status_page.WsgiApp, port: int) -> threading.Event:
    server = make_server("0.0.0.0", port, app, _ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True, name="http").start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = _parser().parse_args(argv)
    settings = config.load(args.settings)
    if args.command == "run":
        prefix = f"{args.kind}:"
        jobs = [f"{prefix}{args.name}"] if args.name else [
            job for job in settings.jobs if job.startswith(prefix)]
        if not jobs:
            print(f"no {args.kind} job is placed on this host", file=sys.stderr)
            return 2
        for job in jobs:
            print(schedule.job_runner(settings, job)())
        return 0
    if args.command == "drill":
        outcomes = drill.run_drill(settings, args.target)
        for outcome in outcomes:
            print(f"{'PASS' if outcome.success else 'FAIL'} {outcome.kind} {outcome.name} "
                  f"({outcome.duration_seconds:.1f} s): {outcome.detail}")
        return 0 if all(o.success for o in outcomes) else 1
    if args.command == "keep":
        try:
            keys = postgres.keep_backup(settings, settings.database(args.database), args.backup,
                                        args.until)
        except postgres.KeepError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"{args.backup}: {len(keys)} objects kept "
              + (f"until {args.until.isoformat()} (COMPLIANCE retention)" if args.until
                 else "(legal hold)"))
        return 0
    if args.command == "status":
        print(status.render(settings, exporter.readers_for(settings), as_json=args.json))
        return 0
    registry = CollectorRegistry()
    if args.command == "exporter":
        collector = exporter.BackupCollector(settings, exporter.readers_for(settings))
        registry.register(collector)
        registry.register(status.MaxAgeCollector(settings, collector.readers))
        loop = exporter.RefreshLoop(collector, settings.refresh_seconds)
        loop.start()
        stop = _serve(status_page.exporter_app(settings, collector.readers, registry),
                      args.port or settings.metrics_port)
        stop.wait()
        loop.stop()
        return 0
    scheduler = schedule.Scheduler(settings)
    registry.register(schedule.SchedulerCollector(scheduler))
    stop = _serve(make_wsgi_app(registry), settings.metrics_port)
    scheduler.serve_forever(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
