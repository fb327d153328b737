"""What the agent keeps in its state directory between runs, and the only code that reads or
writes it: the last drill's outcomes per target, written by `drill` and read by the exporter and
`status`. Files are replaced atomically (written beside, then renamed), so a reader never sees
half a file; anything else found there is refused with the file and field named.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from contract.agent_settings import AgentSettings
from contract.reader import InvalidSetting, Reader

DRILL_KINDS = ("postgres", "files")


class StateFileError(InvalidSetting):
    """A state file cannot be read or is malformed; `key` names the file and the field."""


@dataclass(frozen=True)
class DrillOutcome:
    kind: str
    name: str
    success: bool
    duration_seconds: float
    detail: str


@dataclass(frozen=True)
class DrillResults:
    target: str
    finished: float
    outcomes: tuple[DrillOutcome, ...]


def drill_path(settings: AgentSettings, target: str) -> Path:
    return Path(settings.state_dir, f"drill-{target}.json")


def _read_json(path: Path) -> Any:
    """The file's JSON value; FileNotFoundError passes through."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except OSError as error:
        raise StateFileError(str(path), f"cannot be read ({error.strerror})") from None
    except ValueError as error:
        raise StateFileError(str(path), f"is not JSON ({error})") from None


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(value, indent=2))
    os.replace(temporary, path)


def _outcome(reader: Reader) -> DrillOutcome:
    return DrillOutcome(kind=reader.choice("kind", DRILL_KINDS),
                        name=reader.string("name", required=True),
                        success=reader.boolean("success"),
                        duration_seconds=reader.number("duration_seconds"),
                        detail=reader.string("detail", ""))


def read_drill(settings: AgentSettings, target: str) -> DrillResults | None:
    """The last drill from `target`, None if none has run; StateFileError if the file cannot
    be read or is not what `write_drill` writes (another program wrote it, a disk filled up
    half way)."""
    path = drill_path(settings, target)
    try:
        data = _read_json(path)
    except FileNotFoundError:
        return None
    try:
        reader = Reader("", data, StateFileError)
        return DrillResults(target=reader.choice("target", (target,)),
                            finished=reader.number("finished"),
                            outcomes=tuple(_outcome(item) for item in reader.items("outcomes")))
    except StateFileError as error:
        raise StateFileError(f"{path}: {error.key}" if error.key else str(path),
                             error.problem) from None


def write_drill(settings: AgentSettings, target: str, outcomes: list[DrillOutcome]) -> None:
    _write_json(drill_path(settings, target), {
        "target": target, "finished": time.time(), "outcomes": [asdict(o) for o in outcomes]})
