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
    restore_point: str = ""  # the base backup or snapshot restored ("" if none was found)
    pick: str = ""  # the pick id of a random-within choice (`backup-agent drill --pick`)


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
                        detail=reader.string("detail", ""),
                        restore_point=reader.string("restore_point", ""),
                        pick=reader.string("pick", ""))


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
        "target": target, "finished": time.time(),
        # Empty texts are left out: the reader reads an absent one as "".
        "outcomes": [{k: v for k, v in asdict(o).items() if v != ""} for o in outcomes]})


# --- rotating data checks (`checkSubset: rotate:<t>`) ---------------------------------------

@dataclass(frozen=True)
class Rotation:
    """Where a file set's rotating check stands: `next` of `groups` is read by the next run;
    the current cycle started at `cycle_started` (its first part, or the end of the cycle
    before); `last_full_cycle` is when the last of all `groups` parts was read."""

    groups: int
    next: int = 1
    cycle_started: float | None = None
    last_full_cycle: float | None = None

    def advanced(self, now: float) -> Rotation:
        """After part `next` was read without damage."""
        started = now if self.cycle_started is None else self.cycle_started
        if self.next < self.groups:
            return Rotation(self.groups, self.next + 1, started, self.last_full_cycle)
        return Rotation(self.groups, 1, now, now)


def _optional_time(reader: Reader, name: str) -> float | None:
    return reader.number(name) if reader.has(name) else None


def rotation_path(settings: AgentSettings) -> Path:
    return Path(settings.state_dir, "check-rotation.json")


def read_rotations(settings: AgentSettings) -> dict[str, Rotation]:
    """Every file set's rotation on this host, by file set name."""
    path = rotation_path(settings)
    try:
        data = _read_json(path)
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict):
        raise StateFileError(str(path), "is not a JSON object of file sets")
    try:
        reader = Reader("", data, StateFileError)
        rotations = {}
        for name in data:
            item = reader.child(name)
            groups = item.integer("groups", required=True, minimum=2)
            rotations[name] = Rotation(
                groups=groups, next=item.integer("next", required=True, maximum=groups),
                cycle_started=_optional_time(item, "cycleStarted"),
                last_full_cycle=_optional_time(item, "lastFullCycle"))
        return rotations
    except StateFileError as error:
        raise StateFileError(f"{path}: {error.key}" if error.key else str(path),
                             error.problem) from None


def rotation(settings: AgentSettings, file_set: str, groups: int) -> Rotation:
    """The file set's rotation; a new one at part 1 if none is recorded or t changed."""
    found = read_rotations(settings).get(file_set)
    return found if found is not None and found.groups == groups else Rotation(groups)


def write_rotation(settings: AgentSettings, file_set: str, value: Rotation) -> None:
    rotations = read_rotations(settings) | {file_set: value}
    _write_json(rotation_path(settings), {name: {
        "groups": r.groups, "next": r.next, "cycleStarted": r.cycle_started,
        "lastFullCycle": r.last_full_cycle} for name, r in sorted(rotations.items())})
