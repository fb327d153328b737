"""Every bad input to `backup-agent`, one class at a time: one line naming the setting or
argument and what is allowed, a non-zero exit, no traceback (`--debug` shows one)."""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from backup_agent import cli, tools
from backup_agent.commands import host

from .conftest import REGION, free_port, write_secret

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def write(tmp_path: Path):
    """Write a settings file (a valid backup host's, with `changes` merged in) and return a
    function that runs the CLI on it in-process: (exit code, stderr)."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    base: dict[str, Any] = {
        "role": "backup",
        "primary": {"bucket": "b-backups", "region": REGION,
                    "endpoint": f"http://127.0.0.1:{free_port()}"},  # nothing listens there
        "databases": [{"name": "biometrics", "host": "127.0.0.1", "port": free_port(),
                       "user": "backup", "dbname": "biometrics",
                       "passwordFile": write_secret(secrets, "db", "pw"),
                       "tables": ["users"], "schedule": "0 2 * * *", "rpoSeconds": 300}],
        "fileSets": [{"name": "app", "paths": [str(tmp_path)], "hostname": "app",
                      "schedule": "0 3 * * *", "rpoSeconds": 86400}],
        "jobs": ["postgres:biometrics", "files:app"],
        "resticPasswordFile": write_secret(secrets, "restic", "correct horse"),
        "stateDir": str(tmp_path / "state"),
        "retry": {"attempts": 1, "delaySeconds": 0},
    }
    path = tmp_path / "settings.json"

    def run(*argv: str, text: str | None = None, **changes: Any) -> tuple[int, str]:
        path.write_text(text if text is not None else json.dumps({**base, **changes}))
        return invoke("--settings", str(path), *argv)

    run.path = path
    run.base = base
    return run


def invoke(*argv: str) -> tuple[int, str]:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(list(argv))
    return code, stderr.getvalue()


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


# --- the settings file ----------------------------------------------------------------------

def test_a_missing_settings_file(tmp_path):
    code, stderr = invoke("--settings", str(tmp_path / "nope.json"), "status")
    assert code == 2
    assert one_line(stderr) == (f"error: {tmp_path / 'nope.json'}: no such file; allowed: the "
                                "JSON settings file the BackupContainers component renders")


def test_an_unreadable_settings_file(write, monkeypatch):
    write.path.write_text("{}")

    def denied(self: pathlib.Path, *args: Any, **kwargs: Any) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(pathlib.Path, "read_text", denied)
    code, stderr = invoke("--settings", str(write.path), "status")
    assert code == 2
    assert one_line(stderr) == (f"error: {write.path}: cannot be read (permission denied); "
                                "allowed: a file readable by the agent's user")


def test_a_directory_as_settings_file(tmp_path):
    code, stderr = invoke("--settings", str(tmp_path), "status")
    assert (code, one_line(stderr)) == (2, f"error: {tmp_path}: is a directory; allowed: the "
                                           "JSON settings file the BackupContainers component "
                                           "renders")


@pytest.mark.parametrize(("text", "problem"), [
    ("", "is empty"),
    ("  \n", "is empty"),
    ('{"role": "backup",', "is not JSON (line 1, column 19: Expecting property name enclosed "
     "in double quotes)"),
    ("[1, 2]", "got a list; allowed: a JSON object"),
])
def test_an_empty_or_malformed_settings_file(write, text, problem):
    code, stderr = write("status", text=text)
    assert code == 2
    assert one_line(stderr).startswith(f"error: {write.path}: {problem}")


@pytest.mark.parametrize(("changes", "key", "problem"), [
    ({"metricsPort": "8080"}, "metricsPort",
     "got the text '8080'; allowed: a whole number from 1 to 65535"),
    ({"retry": {"attempts": 1.5}}, "retry.attempts",
     "got 1.5; allowed: a whole number from 1 to 100"),
    ({"refreshSeconds": None, "walRelistMargin": -1}, "walRelistMargin",
     "got -1; allowed: a whole number >= 0"),
    ({"fileSets": [{"name": "app", "paths": "/app", "hostname": "app",
                    "schedule": "0 3 * * *", "rpoSeconds": 1}]}, "fileSets[0].paths",
     "got the text '/app'; allowed: a list, each an absolute path (write [/app])"),
    ({"fileSets": [{"name": "app", "paths": ["/app"], "hostname": "app", "checkSubset": "150%",
                    "schedule": "0 3 * * *", "rpoSeconds": 1}]}, "fileSets[0].checkSubset",
     "'150%': the percentage must be above 0% and at most 100%; allowed: "),
    ({"databases": [{"name": "biometrics", "host": "db", "dbname": "d", "tables": ["users"],
                     "schedule": "0 0 30 2 *", "rpoSeconds": 1}]}, "databases[0].schedule",
     "the text '0 0 30 2 *' never fires (no such date, e.g. 30 February)"),
    *[({"fileSets": [{"name": "app", "paths": ["/app"], "hostname": "app", "checkSubset": value,
                      "schedule": "0 3 * * *", "rpoSeconds": 1}]}, "fileSets[0].checkSubset",
       f"{value!r}: rotate:<t> needs a whole number t from 2 to 256; allowed: ")
      for value in ("rotate:1", "rotate:257", "rotate:x", "rotate:")],
    ({"fileSets": [{"name": "app", "paths": ["/app"], "hostname": "app", "drillPick": "oldest",
                    "schedule": "0 3 * * *", "rpoSeconds": 1}]}, "fileSets[0].drillPick",
     "got the text 'oldest'; allowed: latest, random-within"),
    ({"fileSets": [{"name": "app", "paths": ["/app"], "hostname": "app",
                    "drillPick": "random-within", "schedule": "0 3 * * *", "rpoSeconds": 1}]},
     "fileSets[0].drillWindowDays", "is required; allowed: a whole number of days >= 1"),
    ({"fileSets": [{"name": "app", "paths": ["/app"], "hostname": "app", "drillWindowDays": 7,
                    "schedule": "0 3 * * *", "rpoSeconds": 1}]}, "fileSets[0].drillWindowDays",
     "applies only to drillPick random-within; allowed: no drillWindowDays with drillPick "
     "latest"),
    ({"fileSets": [{"name": "app", "paths": ["/app"], "hostname": "app",
                    "drillPick": "random-within", "drillWindowDays": 29,
                    "keep": {"daily": 7, "weekly": 4, "monthly": 1},
                    "schedule": "0 3 * * *", "rpoSeconds": 1}]}, "fileSets[0].drillWindowDays",
     "29 reaches past what keep keeps (28 days: daily 7, weekly 4 x 7, monthly 1 x 28); "
     "allowed: 1 to 28 days, or longer keep rules"),
    ({"listenAddress": "localhost"}, "listenAddress",
     "got the text 'localhost'; allowed: an IP address to listen on"),
    ({"bogus": 1}, "bogus", "unknown key; allowed: role, primary, "),
    ({"retry": {"attempts": 1, "delay": 5}}, "retry.delay",
     "unknown key; allowed: attempts, delaySeconds"),
    ({"role": None}, "role", "is required; allowed: backup, restore"),
    ({"jobs": ["files:other"]}, "jobs[0]",
     "'files:other' is unknown; allowed: postgres:biometrics, files:app, drill"),
])
def test_wrong_types_and_unknown_keys_are_named(write, changes, key, problem):
    code, stderr = write("status", **changes)
    assert code == 2
    assert one_line(stderr).startswith(f"error: {write.path}: {key}: {problem}")


# --- arguments ------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "line"), [
    (("run", "postgres", "other"),
     "error: argument name: no database 'other' in the settings; allowed: biometrics"),
    (("run", "files", "other"),
     "error: argument name: no file set 'other' in the settings; allowed: app"),
    (("drill", "--target", "replica"),
     "error: argument --target: no replica bucket in the settings; allowed: primary, all"),
    (("keep", "other", "base_000000010000000000000002"),
     "error: argument database: no database 'other' in the settings; allowed: biometrics"),
    (("keep", "biometrics", "latest"),
     "error: argument backup: got 'latest'; allowed: a backup_name from wal-g backup-list "
     "(base_<24 hex digits>)"),
    (("drill", "--pick", "yesterday"),
     "error: argument --pick: got 'yesterday'; allowed: a pick id as a drill logged it: "
     "YYYYMMDDTHHMMSSZ-<8 hex digits>"),
    (("exporter", "--port", "70000"),
     "error: argument --port: got '70000'; allowed: a port from 1 to 65535"),
    (("exporter", "--port", "0"),
     "error: argument --port: got '0'; allowed: a port from 1 to 65535"),
])
def test_unknown_names_and_bad_arguments_are_named(write, argv, line):
    code, stderr = write(*argv)
    assert (code, one_line(stderr)) == (2, line)


@pytest.mark.parametrize(("argv", "start", "end"), [
    (("run", "tables"), "error: argument kind: invalid choice: 'tables' (choose from ",
     "); allowed: see backup-agent run --help"),
    (("frobnicate",), "error: argument command: invalid choice: 'frobnicate' (choose from ",
     "); allowed: see backup-agent --help"),
])
def test_usage_errors_are_one_line_without_the_usage(write, argv, start, end):
    code, stderr = write(*argv)
    line = one_line(stderr)
    assert (code, line.startswith(start), line.endswith(end)) == (2, True, True), line


def test_a_job_not_placed_on_this_host(write):
    code, stderr = write("run", "postgres", role="restore", jobs=[])
    assert (code, one_line(stderr)) == (
        2, "error: argument kind: no postgres job is placed on this host (jobs: none); allowed: "
           "run it on the host whose settings list it")


def test_a_port_in_use(write):
    handlers = [signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, stderr = write("exporter", "--port", str(port), "--address", "127.0.0.1",
                             role="restore", jobs=[])
    assert (code, one_line(stderr)) == (
        2, f"error: --port: 127.0.0.1:{port} is in use (Address already in use); allowed: a "
           "free port on an address of this host")
    # The refused server leaves the process's signal handlers as they were.
    assert [signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)] == handlers


def test_sigterm_stops_a_server_cleanly_from_the_moment_its_port_listens(monkeypatch):
    """The handler is in place before the socket listens: a SIGTERM sent as soon as the port
    answers (a supervisor stopping a container just started) sets the stop event, not the
    default action that kills the process."""
    at_listen = []

    def listening(*args, **kwargs):
        at_listen.append(signal.getsignal(signal.SIGTERM))
        return make_server(*args, **kwargs)

    make_server = host.make_server
    monkeypatch.setattr(host, "make_server", listening)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        # Its daemon thread serves until this worker exits, as the agent's does until it exits.
        stop = host.serve(lambda environ, start: [], "127.0.0.1", free_port(), "metricsPort")
        [handler] = at_listen
        assert callable(handler) and not stop.is_set()
        handler(signal.SIGTERM, None)
        assert stop.is_set()
    finally:
        for signum, previous in handlers.items():
            signal.signal(signum, previous)


# --- the host: password files, state directory ----------------------------------------------

def test_a_missing_password_file(write):
    base = write.base
    database = {**base["databases"][0], "passwordFile": "/run/secrets/db-biometrics-password"}
    code, stderr = write("run", "postgres", "biometrics", databases=[database])
    assert (code, one_line(stderr)) == (
        2, "error: databases[0].passwordFile /run/secrets/db-biometrics-password: no such file; "
           "allowed: a readable file with the password of backup@127.0.0.1 (the Pulumi secret "
           "databasePasswords.biometrics, mounted by BackupContainers); no database job runs on "
           "a restore host")
    code, stderr = write("run", "files", resticPasswordFile="/run/secrets/restic-password")
    assert (code, one_line(stderr)) == (
        2, "error: resticPasswordFile /run/secrets/restic-password: no such file; allowed: a "
           "readable file with the restic password (the Pulumi secret resticPassword, mounted "
           "by BackupContainers)")


def test_an_empty_password_file(write, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("")
    code, stderr = write("schedule", resticPasswordFile=str(empty))
    assert code == 2
    assert one_line(stderr).startswith(f"error: resticPasswordFile {empty}: is empty; allowed: ")


def test_a_state_directory_that_cannot_be_written(write, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, stderr = write("run", "files", stateDir=str(blocker / "state"))
    assert code == 2
    assert re.fullmatch(rf"error: stateDir {re.escape(str(blocker))}/state: not writable \(Not a "
                        r"directory\); allowed: a directory the agent's user \(uid \d+\) can "
                        "write", one_line(stderr))


# --- failures: what failed, its exit code, its last stderr lines ----------------------------

def test_a_tool_failure_names_the_command_its_exit_code_and_its_stderr(
        write, restic_binary, moto_endpoint, restic_repository):
    """A real restic: the repository in the bucket was written with another password (the
    template's, conftest.RESTIC_PASSWORD, not these settings' "correct horse")."""
    primary = {"bucket": restic_repository, "region": REGION, "endpoint": moto_endpoint}
    code, stderr = write("run", "files", primary=primary, resticBinary=restic_binary)
    assert (code, one_line(stderr)) == (
        1, f"error: files:app: `{restic_binary} cat config` exited 1: Fatal: wrong password or "
           "no key found")


def test_a_postgresql_failure_is_one_line_naming_postgresql():
    with pytest.raises(psycopg.OperationalError) as raised:
        psycopg.connect(host="127.0.0.1", port=free_port(), user="backup", dbname="x",
                        connect_timeout=2)
    assert re.fullmatch(r"PostgreSQL: connection failed: .*127\.0\.0\.1.*",
                        tools.describe_failure(raised.value))


def test_an_unreadable_bucket_fails_status_in_one_line(write):
    code, stderr = write("status")
    assert code == 1
    assert re.fullmatch(r"error: status: primary: refreshing b-backups failed \(S3: Could not "
                        r"connect to the endpoint URL: .+\); .+", one_line(stderr))


def test_debug_shows_the_traceback(write):
    base = write.base
    write.path.write_text(json.dumps({**base, "metricsPort": "x"}))
    result = subprocess.run([sys.executable, "-m", "backup_agent.cli", "--settings",
                             str(write.path), "--debug", "status"], capture_output=True,
                            text=True, check=False, cwd=ROOT)
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"error: {write.path}: metricsPort: ")
    plain = subprocess.run([sys.executable, "-m", "backup_agent.cli", "--settings",
                            str(write.path), "status"], capture_output=True, text=True,
                           check=False, cwd=ROOT)
    assert (plain.returncode, plain.stderr.count("\n")) == (2, 1)
    assert "Traceback" not in plain.stderr


def test_the_exporter_listens_on_the_address_its_settings_name(write):
    """listenAddress is a setting: on 127.0.0.2 the exporter is not reachable on 127.0.0.1."""
    port = free_port()
    write.path.write_text(json.dumps({**write.base, "role": "restore", "jobs": [],
                                      "listenAddress": "127.0.0.2", "metricsPort": port}))
    process = subprocess.Popen([sys.executable, "-m", "backup_agent.cli", "--settings",
                                str(write.path), "exporter"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.2", port)) == 0:
                    break
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
    finally:
        process.terminate()
        process.communicate(timeout=20)
    assert process.returncode == 0


def test_the_scheduler_refuses_a_missing_webhook_file(write):
    code, stderr = write("schedule", webhookUrlFile="/run/secrets/webhook-url")
    assert (code, one_line(stderr)) == (
        2, "error: webhookUrlFile /run/secrets/webhook-url: no such file; allowed: a readable "
           "file with the status webhook's URL (the Pulumi secret webhookUrl)")
