"""contract/: what the stack program and the agent share, checked against the real tools."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from contract import agent_settings, layout, restic, schedule
from contract.jobs import DRILL, Job, database_job, files_job
from contract.reader import InvalidSetting, Reader
from tests.support import required_tool

# Every value restic 0.14 was asked about; True = restic accepts it.
SUBSETS = {
    "5%": True, "100%": True, "100.0%": True, "0.5%": True, ".5%": True, "5.%": True,
    "5e1%": True, "0%": False, "150%": False, "101%": False, "-5%": False, "Inf%": False,
    "1e-400%": False, "100.00000000000001%": False, "0x10%": False, "5%%": False, " 5%": False,
    "1,5%": False,
    "1/7": True, "7/7": True, "01/07": True, "1/256": True, "256/256": True, "8/7": False,
    "0/7": False, "1/0": False, "1/257": False, "+1/7": False, "1 /7": False, "1/7/1": False,
    "50M": True, "50m": True, "1G": True, "1K": True, "5k": True, "2T": True, "5B": True,
    "+5M": True, "00001M": True, "0M": False, "0K": False, "-5M": False, "1P": False,
    "50MiB": False, "1.5M": False, "1_0M": False, "0": False, "5": False, "abc": False,
    "1x": False,
}
# Accepted by restic 0.14 but refused here, on purpose (contract/restic.py says why).
REFUSED_ON_PURPOSE = {"NaN%", "nan%", "0x1p4%", "9999999999999T"}


@pytest.mark.parametrize(("value", "accepted"), sorted(SUBSETS.items()))
def test_read_data_subset_is_validated_as_restic_does(value, accepted):
    assert (restic.read_data_subset_problem(value) is None) is accepted


# restic validates --read-data-subset before it opens the repository (restic 0.14
# cmd/restic/cmd_check.go: checkFlags runs in PreRunE): a refused value ends there with
# "check flag --read-data-subset...", an accepted one goes on to open the repository, which
# here does not exist. So each answer is one of exactly two outcomes, in about 10 ms.
REFUSED_BY_RESTIC = "Fatal: check flag --read-data-subset"
REACHED_THE_REPOSITORY = "Fatal: unable to open config file: stat {repository}/config"


def test_the_table_is_what_the_installed_restic_decides(tmp_path):
    """The cases above, asked of the real restic (Debian 0.14): the table is not made up."""
    binary = required_tool("restic", "restic")
    repository = tmp_path / "no-repository"
    env = {**os.environ, "RESTIC_REPOSITORY": str(repository), "RESTIC_PASSWORD": "contract"}

    def accepts(value: str) -> bool:
        result = subprocess.run([binary, "check", "-q", "--no-lock", "--no-cache",
                                 f"--read-data-subset={value}"],
                                env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 1, (value, result.stderr)
        if result.stderr.startswith(REFUSED_BY_RESTIC):
            return False
        assert result.stderr.startswith(REACHED_THE_REPOSITORY.format(repository=repository)), (
            value, result.stderr)
        return True

    values = [*SUBSETS, *REFUSED_ON_PURPOSE]
    with ThreadPoolExecutor(max_workers=4) as pool:
        decided = dict(zip(values, pool.map(accepts, values), strict=True))
    assert {v: ok for v, ok in decided.items() if v in SUBSETS} == SUBSETS
    assert all(decided[value] for value in REFUSED_ON_PURPOSE)
    assert all(restic.read_data_subset_problem(value) for value in REFUSED_ON_PURPOSE)


@pytest.mark.parametrize(("expression", "shortest", "longest"), [
    ("0 2 * * *", dt.timedelta(days=1), dt.timedelta(days=1)),
    ("0 2 * * 1-5", dt.timedelta(days=1), dt.timedelta(days=3)),
    ("0 2 1 * *", dt.timedelta(days=28), dt.timedelta(days=31)),
    ("0 2 31 * *", dt.timedelta(days=31), dt.timedelta(days=61)),
    ("0 0 29 2 *", dt.timedelta(days=1461), dt.timedelta(days=1461)),
    ("0 0,12 * * *", dt.timedelta(hours=12), dt.timedelta(hours=12)),
    ("0 0 * * *", dt.timedelta(days=1), dt.timedelta(days=1)),  # a run at the sample's start
    ("30 1,23 * * *", dt.timedelta(hours=2, minutes=0), dt.timedelta(hours=22)),
])
def test_schedule_gaps_are_exact(expression, shortest, longest):
    assert schedule.gaps(expression) == schedule.Gaps(shortest, longest)


@pytest.mark.parametrize(("value", "problem"), [
    ("0 0 30 2 *", "never fires (no such date, e.g. 30 February)"),
    ("every day", "is not a cron expression (minute hour day-of-month month day-of-week)"),
    (5, "is not a cron expression (minute hour day-of-month month day-of-week)"),
])
def test_schedules_that_cannot_run_are_named(value, problem):
    with pytest.raises(schedule.NotASchedule, match=re.escape(problem)):
        schedule.check(value)


@pytest.mark.parametrize(("data", "call", "problem"), [
    ({"n": None}, lambda r: r.integer("n", 7), None),  # null is absent: the default
    ({"n": "7"}, lambda r: r.integer("n", 7),
     "n: got the text '7'; allowed: a whole number >= 1"),
    ({"n": True}, lambda r: r.integer("n", 7), "n: got true; allowed: a whole number >= 1"),
    ({"n": 2.0}, lambda r: r.integer("n", 7), "n: got 2.0; allowed: a whole number >= 1"),
    ({"t": "users"}, lambda r: r.strings("t"),
     "t: got the text 'users'; allowed: a list, each text (write [users])"),
    ({"t": ["a", 5]}, lambda r: r.strings("t"), "t[1]: got 5; allowed: text"),
    ({"o": [1]}, lambda r: r.child("o"), "o: got a list; allowed: an object (key: value, ...)"),
    ({"l": [None]}, lambda r: r.items("l"),
     "l[0]: got null; allowed: an object (key: value, ...)"),
    ({"s": ""}, lambda r: r.string("s", "x"), "s: got the text ''; allowed: non-empty text"),
    ({"f": float("nan")}, lambda r: r.number("f", 1.0),
     "f: got nan; allowed: a number >= 0.0"),
    ({}, lambda r: r.string("s", required=True, allowed="a name"),
     "s: is required; allowed: a name"),
])
def test_the_reader_checks_every_value_where_it_is_read(data, call, problem):
    reader = Reader("", data)
    if problem is None:
        call(reader)
        return
    with pytest.raises(InvalidSetting) as error:
        call(reader)
    assert str(error.value) == problem


def test_agent_settings_render_and_parse_back_unchanged():
    settings = agent_settings.AgentSettings(
        role="restore", primary=agent_settings.Storage("b-backups", "eu-central-1"),
        replica=agent_settings.Storage("b-backups-replica", "eu-west-1"),
        databases=(agent_settings.Database(name="db", host="db.internal", dbname="d",
                                           tables=("users", "app.sessions"),
                                           schedule="0 2 * * *", rpo_seconds=300),),
        file_sets=(agent_settings.FileSet(name="app", paths=("/app",), hostname="app",
                                          schedule="0 3 * * *", rpo_seconds=86400,
                                          check_subset="50M"),),
        jobs=("drill",), drill_schedule="0 6 * * *", listen_address="127.0.0.1")
    assert agent_settings.parse(agent_settings.document(settings)) == settings
    text = agent_settings.to_json(settings)
    assert agent_settings.from_json(text) == settings
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True)


@pytest.mark.parametrize(("text", "problem"), [
    ("{", "is not JSON (line 1, column 2: Expecting property name enclosed in double quotes); "
          "allowed: a JSON object"),
    ("[]", "got a list; allowed: a JSON object"),
    ('{"role": "backup", "primary": {"bucket": "b-backups", "region": "eu-central-1"}, '
     '"colour": 1}', None),
])
def test_agent_settings_from_json_refuses_what_is_no_settings_object(text, problem):
    with pytest.raises(agent_settings.SettingsError) as error:
        agent_settings.from_json(text)
    if problem is None:
        assert error.value.key == "colour"
        assert error.value.problem.startswith("unknown key; allowed: role, primary, replica")
    else:
        assert error.value.problem == problem


@pytest.mark.parametrize("job", [Job("postgres", "main"), Job("files", "app"), DRILL])
def test_job_ids_parse_back(job):
    assert Job.parse(job.id) == job


def test_job_ids_are_built_one_way():
    assert (database_job("main").id, files_job("app").id, DRILL.id) == (
        "postgres:main", "files:app", "drill")


@pytest.mark.parametrize("text", ["postgres", "postgres:", "files", "drill:x", "backup:main",
                                  "", ":main"])
def test_text_that_is_no_job_id_is_refused(text):
    with pytest.raises(ValueError, match="is not a job id; allowed: postgres:<database>"):
        Job.parse(text)


@pytest.mark.parametrize(("kind", "name"), [("drill", "x"), ("postgres", None), ("wal", "x")])
def test_a_job_is_a_kind_with_a_name_except_the_drill(kind, name):
    with pytest.raises(ValueError):
        Job(kind, name)


def test_layout_names_the_keys_both_sides_use():
    assert layout.walg_prefix("b", "main") == "s3://b/postgres/main"
    assert layout.wal_prefix("main") == "postgres/main/wal_005/"
    assert layout.WAL_KEY_PATTERN == "postgres/*/wal_005/*"
    assert layout.restic_repository("b", "eu-west-1") == (
        "s3:https://s3.eu-west-1.amazonaws.com/b/restic")
    assert layout.restic_repository("b", "eu-west-1", "http://127.0.0.1:5000") == (
        "s3:http://127.0.0.1:5000/b/restic")


@pytest.mark.parametrize(("name", "position"), [
    ("000000010000000000000001", (1, 1)), ("0000000200000001000000FF.lz4", (2, 511)),
    ("000000010000000A00000000.partial", (1, 2560)), ("00000001.history", None),
    ("000000010000000000000001_backup_stop_sentinel.json", None)])
def test_wal_segment_names(name, position):
    assert layout.segment_position(name) == position
    if position is not None:
        assert layout.segment_name(*position) == name[:24]


# Both day fields, steps, lists, ranges, rare and leap days, every minute, names.
FIELD_CASES = ["0 2 * * *", "*/30 * * * *", "0 2 * * 1-5", "0 2 31 * *", "0 2 1 */3 *",
               "0 2 */2 * *", "0 2 * * 7", "0 2 1 * 1", "0 0 29 2 *", "30 1,23 * * *",
               "0 0,12 * * *", "* * * * *", "0 2 1,15 * 3", "15 3 * 2 1", "0 2 29 * *",
               "0 */6 1 1 *", "0 2 13 * 5", "59 23 31 12 *", "0 12 * 6-8 0,6", "0 2 * * sun"]


@pytest.mark.parametrize("expression", FIELD_CASES)
def test_gaps_from_the_fields_are_the_gaps_croniter_walks(expression):
    assert schedule.gaps_from_fields(expression) == schedule.walked_gaps(expression)


@pytest.mark.parametrize("expression", ["0 2 L * *", "0 2 * * 5#2", "0 2 * * * 30"])
def test_what_the_fields_do_not_read_is_walked(expression):
    assert schedule.gaps_from_fields(expression) is None
    assert schedule.gaps(expression) == schedule.walked_gaps(expression)


@pytest.mark.parametrize(("expression", "days"), [
    ("0 2 * * *", 1), ("*/30 * * * *", 1), ("0 2 * * 0", 7), ("0 2 31 * *", 61),
    ("0 2 1 */3 *", 92)])
def test_the_schedule_interval_is_the_longest_gap_rounded_up_to_days(expression, days):
    assert schedule.interval_days(expression) == days


@pytest.mark.parametrize(("expression", "runs"), [
    ("0 2 * * *", 365), ("0 */6 * * *", 1460), ("0 2 * * 0", 52), ("0 2 1 * *", 12),
    ("0 2 31 * *", 7), ("0 2 * * 1-5", 261), ("0 0 29 2 *", 0), ("0 2 L * *", 12),
    ("0 2 * * 5#2", 12)])
def test_yearly_runs_count_the_firings_in_365_days(expression, runs):
    # 2026 starts on a Thursday: 52 Sundays, 261 weekdays; 29 February is in 2028.
    assert schedule.yearly_runs(expression) == runs


# Every minute is left out: listing its half a million runs takes croniter seconds.
@pytest.mark.parametrize("expression", [c for c in FIELD_CASES if c != "* * * * *"])
def test_yearly_runs_from_the_fields_are_the_runs_croniter_lists(expression):
    from croniter import croniter

    end = schedule.SAMPLE_START + 365 * schedule.DAY
    runs = croniter(expression, schedule.SAMPLE_START - dt.timedelta(seconds=1))
    listed = 0
    while runs.get_next(dt.datetime) < end:
        listed += 1
    assert schedule.yearly_runs(expression) == listed
