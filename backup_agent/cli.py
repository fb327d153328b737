"""The `backup-agent` command.

Every refusal is one line on stderr, `error: <setting or argument>: <what is wrong>; allowed:
...`, with a non-zero exit: 2 for a bad argument, settings file or host (a password file, the
state directory, a port), 1 when a job, a tool or a check fails. `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import NoReturn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.registry import CollectorRegistry

from backup_agent import config, drill, exporter, postgres, schedule, status, status_page, tools
from contract.agent_settings import DRILL_JOB, MAX_PORT, AgentSettings
from contract.reader import InvalidSetting

DEFAULT_SETTINGS = "/etc/backup-agent/settings.json"
BACKUP_NAME = re.compile(r"base_[0-9A-F]{24}(_D_[0-9A-F]{24})?")


class UsageError(Exception):
    """A refused argument or host precondition: exit 2 with this one line."""


class JobFailed(Exception):
    """A job, tool or check failed: exit 1 with this one line."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (argparse would print the usage first)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message if "allowed" in message
                         else f"{message}; allowed: see {self.prog} --help")


def port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a port from 1 to {MAX_PORT}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="backup-agent", description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default=DEFAULT_SETTINGS,
                        help="the settings file rendered by the BackupContainers component")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one backup job now")
    run.add_argument("kind", choices=("postgres", "files"))
    run.add_argument("name", nargs="?", help="database or file set (default: all placed here)")
    drill_parser = commands.add_parser("drill", help="restore the newest backups and check them")
    drill_parser.add_argument("--target", choices=("primary", "replica"), default="primary",
                              help="which bucket to restore from (replica = failover drill)")
    commands.add_parser("schedule", help="run the jobs placed on this host on their schedules")
    export = commands.add_parser("exporter", help="serve repository state as Prometheus metrics")
    export.add_argument("--port", type=port, help="default: metricsPort from the settings")
    export.add_argument("--address", help="default: listenAddress from the settings")
    status_parser = commands.add_parser("status", help="the newest backups and drills; exit 1 "
                                        "if any is late, failed or unreadable")
    status_parser.add_argument("--json", action="store_true",
                               help="the same rows as JSON (what the exporter's / shows)")
    keep = commands.add_parser("keep", help="keep a base backup past the lock window "
                               "(permanent for wal-g, tagged Retention=active, COMPLIANCE "
                               "retention or a legal hold: keep.protection)")
    keep.add_argument("database")
    keep.add_argument("backup", help="a backup_name from wal-g backup-list")
    keep.add_argument("--until", type=_date, metavar="YYYY-MM-DD",
                      help="retain until this date, 00:00 UTC (compliance-retention; at most "
                           "keep.maxDays ahead; cannot be shortened afterwards)")
    return parser


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: a date YYYY-MM-DD") from None


# --- what a command needs from the host, checked before it starts -------------------------

def _readable_file(setting: str, path: str | None, what: str) -> None:
    allowed = f"allowed: a readable file with {what}"
    if path is None:
        raise UsageError(f"{setting}: is not set on this host; {allowed}")
    target = Path(path)
    if not target.is_file():
        raise UsageError(f"{setting} {path}: no such file; {allowed}")
    if not os.access(target, os.R_OK):
        raise UsageError(f"{setting} {path}: cannot be read (permission denied); {allowed}")
    if target.stat().st_size == 0:
        raise UsageError(f"{setting} {path}: is empty; {allowed}")


def _writable_state_dir(settings: AgentSettings) -> None:
    """Drill results, the drill's work space and restic's cache live there."""
    allowed = f"allowed: a directory the agent's user (uid {os.getuid()}) can write"
    try:
        Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=settings.state_dir):
            pass
    except OSError as error:
        raise UsageError(f"stateDir {settings.state_dir}: not writable "
                         f"({error.strerror}); {allowed}") from None


def _check_job(settings: AgentSettings, job: str) -> None:
    """The files a job reads and the directory it writes, before it starts."""
    kind, _, name = job.partition(":")
    if kind == "postgres":
        database = settings.database(name)
        _readable_file(f"databases[{settings.databases.index(database)}].passwordFile",
                       database.password_file,
                       f"the password of {database.user}@{database.host} (the Pulumi secret "
                       f"databasePasswords.{name}, mounted by BackupContainers); no database "
                       "job runs on a restore host")
    if kind == "files" or (kind == DRILL_JOB and settings.file_sets):
        _readable_file("resticPasswordFile", settings.restic_password_file,
                       "the restic password (the Pulumi secret resticPassword, mounted by "
                       "BackupContainers)")
    if kind in ("files", DRILL_JOB):
        _writable_state_dir(settings)


def _jobs_to_run(settings: AgentSettings, kind: str, name: str | None) -> list[str]:
    names = [d.name for d in settings.databases] if kind == "postgres" else \
        [f.name for f in settings.file_sets]
    if name is not None:
        if name not in names:
            what = "database" if kind == "postgres" else "file set"
            raise UsageError(f"argument name: no {what} {name!r} in the settings; allowed: "
                             + (", ".join(names) or f"none (no {what} here)"))
        return [f"{kind}:{name}"]
    jobs = [job for job in settings.jobs if job.startswith(f"{kind}:")]
    if not jobs:
        raise UsageError(f"argument kind: no {kind} job is placed on this host (jobs: "
                         f"{', '.join(settings.jobs) or 'none'}); allowed: run it on the host "
                         "whose settings list it")
    return jobs


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *_: object) -> None:  # scrapes every few seconds: not worth a line
        pass


def _serve(app: status_page.WsgiApp, address: str, port_number: int,
           setting: str) -> threading.Event:
    try:
        server = make_server(address, port_number, app, _ThreadingServer,
                             handler_class=_QuietHandler)
    except OSError as error:
        reason = "is in use" if error.errno == errno.EADDRINUSE else "cannot be listened on"
        raise UsageError(f"{setting}: {address}:{port_number} {reason} ({error.strerror}); "
                         "allowed: a free port on an address of this host") from None
    threading.Thread(target=server.serve_forever, daemon=True, name="http").start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _wait(stop: threading.Event) -> None:
    """Until SIGTERM/SIGINT. With a timeout: a signal the kernel delivers to another thread only
    runs its Python handler when the main thread next runs, which an untimed wait never does."""
    while not stop.wait(1.0):
        pass


# --- the commands -------------------------------------------------------------------------

def _run(settings: AgentSettings, args: argparse.Namespace) -> int:
    jobs = _jobs_to_run(settings, args.kind, args.name)
    for job in jobs:
        _check_job(settings, job)
    for job in jobs:
        try:
            print(schedule.job_runner(settings, job)())
        except Exception as error:  # reported as one line naming the job
            raise JobFailed(f"{job}: {tools.describe_failure(error)}") from error
    return 0


def _drill(settings: AgentSettings, args: argparse.Namespace) -> int:
    if args.target not in settings.targets:
        raise UsageError(f"argument --target: no {args.target} bucket in the settings; "
                         "allowed: " + ", ".join(settings.targets))
    _check_job(settings, DRILL_JOB)
    outcomes = drill.run_drill(settings, args.target)
    for outcome in outcomes:
        print(f"{'PASS' if outcome.success else 'FAIL'} {outcome.kind} {outcome.name} "
              f"({outcome.duration_seconds:.1f} s): {outcome.detail}")
    failed = [o for o in outcomes if not o.success]
    if failed:
        raise JobFailed(f"drill from {args.target}: {len(failed)} of {len(outcomes)} restores "
                        "failed: " + ", ".join(f"{o.kind} {o.name}" for o in failed))
    return 0


def _keep(settings: AgentSettings, args: argparse.Namespace) -> int:
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


def _status(settings: AgentSettings, args: argparse.Namespace) -> int:
    text, problems = status.render(settings, exporter.readers_for(settings), as_json=args.json)
    print(text)
    if problems:
        raise JobFailed("status: " + "; ".join(problems))
    return 0


def _exporter(settings: AgentSettings, args: argparse.Namespace) -> int:
    collector = exporter.BackupCollector(settings, exporter.readers_for(settings))
    registry = CollectorRegistry()
    registry.register(collector)
    registry.register(status.MaxAgeCollector(settings, collector.readers))
    setting = "--port" if args.port else "metricsPort"
    stop = _serve(status_page.exporter_app(settings, collector.readers, registry),
                  args.address or settings.listen_address, args.port or settings.metrics_port,
                  setting)
    loop = exporter.RefreshLoop(collector, settings.refresh_seconds)
    loop.start()
    _wait(stop)
    loop.stop()
    return 0


def _schedule(settings: AgentSettings, args: argparse.Namespace) -> int:
    for job in settings.jobs:
        _check_job(settings, job)
    if settings.webhook_url_file is not None:
        _readable_file("webhookUrlFile", settings.webhook_url_file,
                       "the status webhook's URL (the Pulumi secret webhookUrl)")
    scheduler = schedule.Scheduler(settings)
    registry = CollectorRegistry()
    registry.register(schedule.SchedulerCollector(scheduler))
    stop = _serve(make_wsgi_app(registry), settings.listen_address, settings.metrics_port,
                  "metricsPort")
    scheduler.serve_forever(stop)
    return 0


COMMANDS: dict[str, Callable[[AgentSettings, argparse.Namespace], int]] = {
    "run": _run, "drill": _drill, "keep": _keep, "status": _status, "exporter": _exporter,
    "schedule": _schedule,
}


def main(argv: Sequence[str] | None = None) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
        logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
        if not args.debug:  # "Found credentials in ..." on every start is not news
            logging.getLogger("botocore").setLevel(logging.WARNING)
        settings = config.load(args.settings)
        return COMMANDS[args.command](settings, args)
    except (UsageError, InvalidSetting) as error:
        return _refuse(2, str(error), debug)
    except JobFailed as error:
        return _refuse(1, str(error), debug)
    except Exception as error:  # anything else is still one line; --debug shows where
        return _refuse(1, tools.describe_failure(error), debug)


def _refuse(code: int, message: str, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
