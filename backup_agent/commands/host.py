"""What the commands share: their two refusals and what a command needs from the host (files it
reads, the state directory it writes, a port it listens on), checked before it starts."""

from __future__ import annotations

import errno
import os
import signal
import tempfile
import threading
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from backup_agent import status_page
from contract.agent_settings import AgentSettings
from contract.jobs import DRILL, Job


class UsageError(Exception):
    """A refused argument or host precondition: exit 2 with this one line."""


class JobFailed(Exception):
    """A job, tool or check failed: exit 1 with this one line."""


class JobSkipped(Exception):
    """Another run of the job is still running (an ECS task's overlap guard): this one did
    nothing; exit `contract.tasks.SKIPPED_EXIT` with this one line."""


def readable_file(setting: str, path: str | None, what: str) -> None:
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


def writable_state_dir(settings: AgentSettings) -> None:
    """Drill results, the drill's work space and restic's cache live there."""
    allowed = f"allowed: a directory the agent's user (uid {os.getuid()}) can write"
    try:
        Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=settings.state_dir):
            pass
    except OSError as error:
        raise UsageError(f"stateDir {settings.state_dir}: not writable "
                         f"({error.strerror}); {allowed}") from None


def check_job(settings: AgentSettings, job: str) -> None:
    """The files a job reads and the directory it writes, before it starts."""
    parsed = Job.parse(job)
    if parsed.kind == "postgres":
        database = settings.database(parsed.name)
        readable_file(f"databases[{settings.databases.index(database)}].passwordFile",
                      database.password_file,
                      f"the password of {database.user}@{database.host} (the Pulumi secret "
                      f"databasePasswords.{parsed.name}, mounted by BackupContainers); no database "
                      "job runs on a restore host")
    if parsed.kind == "files" or (parsed == DRILL and settings.file_sets):
        readable_file("resticPasswordFile", settings.restic_password_file,
                      "the restic password (the Pulumi secret resticPassword, mounted by "
                      "BackupContainers)")
    if parsed.kind in ("files", "drill"):
        writable_state_dir(settings)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *_: object) -> None:  # scrapes every few seconds: not worth a line
        pass


def serve(app: status_page.WsgiApp, address: str, port_number: int,
          setting: str) -> threading.Event:
    """Serve `app` on a daemon thread; the returned event is set by SIGTERM or SIGINT."""
    # Before the port listens: a SIGTERM as soon as it answers must stop it cleanly, not kill it.
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set())
                for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        server = make_server(address, port_number, app, _ThreadingServer,
                             handler_class=_QuietHandler)
    except OSError as error:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        reason = "is in use" if error.errno == errno.EADDRINUSE else "cannot be listened on"
        raise UsageError(f"{setting}: {address}:{port_number} {reason} ({error.strerror}); "
                         "allowed: a free port on an address of this host") from None
    threading.Thread(target=server.serve_forever, daemon=True, name="http").start()
    return stop


def wait(stop: threading.Event) -> None:
    """Until SIGTERM/SIGINT. With a timeout: a signal the kernel delivers to another thread only
    runs its Python handler when the main thread next runs, which an untimed wait never does."""
    while not stop.wait(1.0):
        pass

