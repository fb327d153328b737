"""How the agent calls wal-g, restic and PostgreSQL: environments and process runs.

Only documented settings of each tool go into its environment (`backup_agent.envdoc` lists them
with their sources). Secrets reach the tools as file paths (RESTIC_PASSWORD_FILE, PGPASSFILE),
never as values, so nothing secret is in an environment, an argument list or a log line.
No AWS keys are set: wal-g and restic take the instance profile's (on a Docker host) or the
task role's (in an ECS task) credentials.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from contract.agent_settings import AgentSettings, Database, Storage

log = logging.getLogger(__name__)

# restic >= 0.17 exits 10 when there is no repository; 0.14 (Debian bookworm) exits 1 and says so.
RESTIC_NO_REPOSITORY_EXIT = 10
_RESTIC_NO_REPOSITORY_TEXT = ("Is there a repository at the following location?",
                              "unable to open config file")
STDERR_LINES = 5  # of a failed tool's stderr, in its error message


class ToolError(RuntimeError):
    """A tool exited non-zero: the message is the command, its exit code and the last lines of
    its stderr (where restic, wal-g and PostgreSQL say what failed: a pack, a file, a segment).
    Commands carry no secret (secrets are files), so the whole command line is shown."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        super().__init__(f"`{shlex.join(self.argv)}` exited {returncode}"
                         + (": " + " | ".join(lines[-STDERR_LINES:]) if lines
                            else " (no output on stderr)"))


class RestoreFailed(RuntimeError):
    """A drill's restore of a chosen restore point failed; the message says what failed."""

    def __init__(self, restore_point: str, message: str) -> None:
        super().__init__(message)
        self.restore_point = restore_point


def describe_failure(error: BaseException, service: str = "S3") -> str:
    """One line for a failed step: what failed and what the tool or service (an AWS error:
    `service`) said."""
    if isinstance(error, psycopg.Error):
        first = str(error).strip().splitlines()
        return f"PostgreSQL: {first[0] if first else type(error).__name__}"
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return (f"{service} {error.operation_name}: {details.get('Code', '?')} "
                f"{details.get('Message', '')}".rstrip())
    if isinstance(error, BotoCoreError):
        return f"{service}: {error}"
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    text = " ".join(str(error).split())
    return text if isinstance(error, RuntimeError) and text else f"{type(error).__name__}: {text}"


@dataclass(frozen=True)
class Result:
    stdout: str
    stderr: str
    returncode: int
    argv: tuple[str, ...] = ()


def run(argv: Sequence[str], env: Mapping[str, str], *, check: bool = True,
        stdin: bytes | None = None, timeout: float | None = None) -> Result:
    log.info("running %s", " ".join(argv))
    completed = subprocess.run(
        list(argv), env={**os.environ, **env}, capture_output=True, input=stdin, timeout=timeout,
        check=False,
    )
    result = Result(completed.stdout.decode(errors="replace"),
                    completed.stderr.decode(errors="replace"), completed.returncode, tuple(argv))
    if check and result.returncode != 0:
        raise ToolError(argv, result.returncode, result.stderr)
    return result


def _quote_pgpass(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextlib.contextmanager
def pgpass_file(database: Database) -> Iterator[str]:
    """A private (0600) libpq password file built from the mounted secret, removed afterwards."""
    if database.password_file is None:
        raise RuntimeError(f"database {database.name}: no passwordFile on this host")
    password = Path(database.password_file).read_text().strip("\n")
    directory = tempfile.mkdtemp(prefix="backup-agent-")
    path = Path(directory, "pgpass")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(":".join(_quote_pgpass(part) for part in (
                database.host, str(database.port), "*", database.user, password)) + "\n")
        yield str(path)
    finally:
        path.unlink(missing_ok=True)
        os.rmdir(directory)


def libpq_env(database: Database, pgpass: str) -> dict[str, str]:
    return {
        "PGHOST": database.host,
        "PGPORT": str(database.port),
        "PGUSER": database.user,
        "PGDATABASE": database.dbname,
        "PGPASSFILE": pgpass,
    }


def walg_env(storage: Storage, database: Database) -> dict[str, str]:
    env = {
        "WALG_S3_PREFIX": storage.walg_prefix(database.name),
        "AWS_REGION": storage.region,
        "WALG_COMPRESSION_METHOD": database.compression,
        # Plain deletes (delete markers) on the Object Lock bucket: with version listing wal-g
        # would delete versions, which the bucket policy denies to everyone.
        "S3_ENABLE_VERSIONING": "disabled",
    }
    if storage.endpoint:
        # wal-g docs/STORAGES.md: a custom S3 endpoint and path-style addressing.
        env["AWS_ENDPOINT"] = storage.endpoint
        env["AWS_S3_FORCE_PATH_STYLE"] = "true"
    return env


def restic_env(settings: AgentSettings, storage: Storage) -> dict[str, str]:
    if settings.restic_password_file is None:
        raise RuntimeError("resticPasswordFile is not set on this host")
    return {
        "RESTIC_REPOSITORY": storage.restic_repository,
        "RESTIC_PASSWORD_FILE": settings.restic_password_file,
        "RESTIC_CACHE_DIR": str(Path(settings.state_dir, "restic-cache")),
        "AWS_DEFAULT_REGION": storage.region,
    }


def restic_read_only_flags(settings: AgentSettings) -> list[str]:
    """The restore role cannot write lock files: every restic call there runs without locks."""
    return ["--no-lock"] if settings.role == "restore" else []


def restic_repository_missing(result: Result) -> bool:
    if result.returncode == RESTIC_NO_REPOSITORY_EXIT:
        return True
    return result.returncode == 1 and any(text in result.stderr
                                          for text in _RESTIC_NO_REPOSITORY_TEXT)
