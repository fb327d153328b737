"""`drillPick: random-within`: which snapshot a drill restores, reproducible from the pick id."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from backup_agent import files
from backup_agent.picks import Pick, Point
from components import container_specs
from components.settings import parse_settings
from contract import agent_settings

from .conftest import with_runtime

END = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)
DAY = 86400.0
# One snapshot a day for 90 days before END, a fixed sample of ids.
_IDS = random.Random(14)
POINTS = [Point(f"{_IDS.getrandbits(256):064x}", END.timestamp() - day * DAY - 3600)
          for day in range(90)]
SEEDS = random.Random(1497).sample(range(1 << 32), 200)


def test_a_pick_is_reproducible_from_its_id_and_stays_inside_the_window():
    start = END.timestamp() - 30 * DAY
    chosen = set()
    for seed in SEEDS:
        pick = Pick(END, seed)
        point = pick.choose("app", POINTS, 30)
        assert start <= point.time <= END.timestamp()
        again = Pick.parse(pick.id)
        assert again == pick
        assert again.choose("app", list(reversed(POINTS)), 30) == point  # order does not matter
        chosen.add(point.id)
    # Random over the window, not the newest: 200 seeds reach most of its 30 snapshots.
    assert len(chosen) >= 25
    assert Pick(END, SEEDS[0]).id == f"20261130T060000Z-{SEEDS[0]:08x}"


def test_each_file_set_draws_its_own_point_from_the_same_pick():
    pick = Pick(END, SEEDS[0])
    draws = {name: pick.choose(name, POINTS, 30).id for name in ("app", "config", "logs", "db")}
    assert len(set(draws.values())) > 1


def test_a_window_without_a_snapshot_is_a_failed_drill_naming_the_pick():
    pick = Pick(END, 7)
    old = [{"id": p.id, "time": dt.datetime.fromtimestamp(p.time, dt.UTC).isoformat()}
           for p in POINTS[40:]]
    file_set = agent_settings.FileSet(name="app", paths=("/app",), hostname="app",
                                      schedule="0 3 * * *", rpo_seconds=86400,
                                      drill_pick="random-within", drill_window_days=30)
    assert pick.choose("app", [Point(s["id"], POINTS[40 + i].time) for i, s in enumerate(old)],
                       30) is None
    with pytest.raises(RuntimeError) as error:
        files.choose_snapshot(file_set, old, pick)
    assert str(error.value) == (
        f"file set app: pick {pick.id}: no snapshot with recorded hashes in the 30 days before "
        "2026-11-30T06:00:00+00:00")


def test_latest_restores_the_newest_whatever_the_pick():
    listing = [{"id": p.id, "time": dt.datetime.fromtimestamp(p.time, dt.UTC).isoformat()}
               for p in POINTS]
    file_set = agent_settings.FileSet(name="app", paths=("/app",), hostname="app",
                                      schedule="0 3 * * *", rpo_seconds=86400)
    assert files.choose_snapshot(file_set, listing, Pick(END, 1))["id"] == POINTS[0].id


@pytest.mark.parametrize("text", ["20261130T060000Z-1234567", "20261130T060000-12345678",
                                  "2026-11-30-12345678", "20261130T060000Z-1234567G"])
def test_a_malformed_pick_id_is_refused(text):
    with pytest.raises(ValueError) as error:
        Pick.parse(text)
    assert str(error.value) == (f"got {text!r}; allowed: a pick id as a drill logged it: "
                                "YYYYMMDDTHHMMSSZ-<8 hex digits>")


def test_the_stack_renders_the_choice_and_the_rotation_into_the_agent_settings():
    settings = parse_settings(with_runtime(**{
        "fileSets.0.drillPick": "random-within", "fileSets.0.drillWindowDays": 30,
        "fileSets.0.checkSubset": "rotate:20"}), stack="prod")
    [file_set] = settings.runtime.file_sets
    assert (file_set.drill_pick, file_set.drill_window_days, file_set.check_subset) == (
        "random-within", 30, "rotate:20")
    host = settings.runtime.host(file_set.host)
    agent = container_specs.agent_settings_for(settings, host)
    document = agent_settings.document(agent)
    assert document["fileSets"][0]["drillPick"] == "random-within"
    assert document["fileSets"][0]["drillWindowDays"] == 30
    assert agent_settings.parse(document) == agent
    # latest leaves the window out of the file.
    latest = container_specs.agent_settings_for(parse_settings(with_runtime(), stack="prod"), host)
    assert "drillWindowDays" not in agent_settings.document(latest)["fileSets"][0]
