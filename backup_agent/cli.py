"""The `backup-agent` command.

Every refusal is one line on stderr, `error: <setting or argument>: <what is wrong>; allowed:
...`, with a non-zero exit: 2 for a bad argument, settings file or host (a password file, the
state directory, a port, a secret variable of an ECS task), 1 when a job, a tool or a check
fails. A run an ECS task skips because another run of its job still runs exits 75
(`contract.tasks.SKIPPED_EXIT`) with one line `skipped: ...`. `--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from backup_agent import config, task, tools
from backup_agent.commands import drill, exporter, keep, report, run, schedule, status
from backup_agent.commands.host import JobFailed, JobSkipped, UsageError
from contract.agent_settings import SETTINGS_VARIABLE
from contract.reader import InvalidSetting
from contract.tasks import SKIPPED_EXIT

COMMANDS = (run, drill, schedule, exporter, status, keep, report)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (argparse would print the usage first)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message if "allowed" in message
                         else f"{message}; allowed: see {self.prog} --help")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="backup-agent", description=__doc__.splitlines()[0])
    parser.add_argument("--settings", metavar="FILE",
                        help="the settings file rendered by the BackupContainers component "
                             f"(default: ${SETTINGS_VARIABLE} when set, as in an ECS task, "
                             f"else {config.DEFAULT_PATH})")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
        logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
        if not args.debug:  # "Found credentials in ..." on every start is not news
            logging.getLogger("botocore").setLevel(logging.WARNING)
        settings = config.resolve(args.settings, os.environ)
        task.prepare(settings)
        return args.handler(settings, args)
    except JobSkipped as error:
        print(f"skipped: {error}", file=sys.stderr)
        return SKIPPED_EXIT
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
