"""The agent's state directory (backup_agent.records): the rotating check's position."""

from __future__ import annotations

import json

import pytest

from backup_agent import records


@pytest.fixture
def settings(agent_settings):
    return agent_settings(fileSets=[{"name": "app", "paths": ["/app"], "hostname": "app",
                                     "schedule": "0 3 * * *", "rpoSeconds": 86400,
                                     "checkSubset": "rotate:3"}], jobs=["files:app"])


def test_a_rotation_reads_every_part_once_per_cycle_and_survives_a_restart(settings):
    assert records.rotation(settings, "app", 3) == records.Rotation(3)  # nothing recorded yet
    read = []
    for now in (100.0, 200.0, 300.0, 400.0):
        position = records.rotation(settings, "app", 3)  # read back from the file every time
        read.append(position.next)
        records.write_rotation(settings, "app", position.advanced(now))
    assert read == [1, 2, 3, 1]
    # Part 3 at 300 closed the cycle that started with part 1 at 100; the next one began then.
    assert records.read_rotations(settings) == {"app": records.Rotation(3, 2, 300.0, 300.0)}
    assert json.loads(records.rotation_path(settings).read_text()) == {
        "app": {"groups": 3, "next": 2, "cycleStarted": 300.0, "lastFullCycle": 300.0}}


def test_a_changed_t_starts_a_new_cycle(settings):
    records.write_rotation(settings, "app", records.Rotation(3, 3, 100.0, None))
    assert records.rotation(settings, "app", 5) == records.Rotation(5)


@pytest.mark.parametrize(("text", "problem"), [
    ("[]", "is not a JSON object of file sets"),
    ('{"app": {"groups": 3, "next": 4}}', "app.next: got 4; allowed: a whole number from 1 to 3"),
    ('{"app": {"next": 1}}', "app.groups: is required"),
    ('{"app": {"groups": 3, "next": 1, "cycleStarted": "x"}}', "app.cycleStarted: got the text"),
    ("{", "is not JSON"),
])
def test_a_damaged_rotation_file_is_refused_naming_the_field(settings, text, problem):
    path = records.rotation_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    with pytest.raises(records.StateFileError) as error:
        records.rotation(settings, "app", 3)
    assert str(error.value).startswith(f"{path}: ") and problem in str(error.value)
