"""The on-call view against a live exporter and scheduler: the Grafana dashboard's queries and
the alert rules name exactly the metrics the two processes serve, and the exporter's status page
works in a real (headless) Chromium.

One exporter (restore host: the primary and the replica bucket in moto) and one scheduler
(backup host) run as `backup-agent` processes for the whole module. The scheduler's database
is not reachable (no PostgreSQL is started here), so its pg_stat_archiver families are served
without samples and its read errors count: the names are what this module checks.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import boto3
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from backup_agent import config, records, status, status_page
from backup_agent.exporter import BucketReader
from contract import agent_settings
from contract.agent_settings import AgentSettings, SettingsError
from contract.layout import segment_name
from tests.conftest import required_tool

from .chromium import Chromium
from .conftest import REGION, free_port, stop_process, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
DASHBOARD = MONITORING / "backup-dashboard.json"
RULES = MONITORING / "backup-alerts.yml"
NOT_CHARTED = MONITORING / "metrics-not-charted.yml"
# Series Prometheus makes itself for every target, not served by the agent.
PROMETHEUS_SERIES = {"up"}
# What Grafana substitutes before it sends a query; anything else is an unknown variable.
GRAFANA_VARIABLES = {"$target": ".*", "$database": ".*", "$__rate_interval": "5m",
                     "$__range": "7d"}
HOSTILE = '<img src=x onerror="document.title=1">&\'"'
RED, GREEN = "rgb(198, 40, 40)", "rgb(46, 125, 50)"


def sentinel(finish: dt.datetime) -> bytes:
    return json.dumps({"FinishTime": finish.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                       "SystemIdentifier": 7301234567890123456}).encode()


@dataclass(frozen=True)
class Live:
    exporter: str  # base URL
    scheduler: str
    settings_path: Path
    settings: AgentSettings
    buckets: dict[str, str]  # target -> bucket


@pytest.fixture(scope="module")
def live(moto_endpoint: str) -> Iterator[Live]:
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    buckets = {target: f"{target}-{uuid.uuid4().hex[:12]}" for target in ("primary", "replica")}
    for name in buckets.values():
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    now = dt.datetime.now(dt.UTC)
    primary = buckets["primary"]
    # biometrics: fresh base backup and WAL; reports: a base backup three days old (overdue);
    # archive: nothing at all; file set app: a fresh snapshot. The replica is empty.
    for database, finish in (("biometrics", now - dt.timedelta(hours=1)),
                             ("reports", now - dt.timedelta(days=3))):
        root = f"postgres/{database}/"
        s3.put_object(Bucket=primary, Key=f"{root}basebackups_005/base_000000010000000000000002"
                      "_backup_stop_sentinel.json", Body=sentinel(finish))
        s3.put_object(Bucket=primary, Key=f"{root}wal_005/{segment_name(1, 3)}.lz4", Body=b"w")
    s3.put_object(Bucket=primary, Key="restic/config", Body=b"c")
    s3.put_object(Bucket=primary, Key="restic/snapshots/" + "a" * 64, Body=b"s")

    directory = Path(tempfile.mkdtemp(prefix="monitoring-test-"))
    password = directory / "db-password"
    password.write_text("not-a-real-password\n")
    databases = [{"name": name, "host": "127.0.0.1", "port": free_port(), "user": "backup",
                  "dbname": "x", "tables": ["users"], "retainFull": 7, "schedule": "0 2 * * *",
                  "rpoSeconds": 3600, "passwordFile": str(password)}
                 for name in ("biometrics", "reports", "archive")]
    common = {
        "primary": {"bucket": primary, "region": REGION, "endpoint": moto_endpoint},
        "databases": databases,
        "fileSets": [{"name": "app", "paths": ["/app"], "hostname": "app",
                      "schedule": "0 3 * * *", "rpoSeconds": 86400, "checkSubset": "rotate:4"}],
        "stateDir": str(directory / "state"),
        "resticPasswordFile": str(password),
    }
    exporter_port, scheduler_port = free_port(), free_port()
    exporter_settings = directory / "exporter.json"
    exporter_settings.write_text(json.dumps({
        **common, "role": "restore", "jobs": ["drill"], "drillSchedule": "0 6 * * *",
        "replica": {"bucket": buckets["replica"], "region": REGION, "endpoint": moto_endpoint},
        # One refresh at start, then none while the module runs: every request below must be
        # answered from that state.
        "refreshSeconds": 3600, "metricsPort": exporter_port,
    }))
    scheduler_settings = directory / "scheduler.json"
    scheduler_settings.write_text(json.dumps({
        **common, "role": "backup", "jobs": ["postgres:biometrics", "files:app"],
        "metricsPort": scheduler_port, "refreshSeconds": 1,
    }))
    settings = config.load(exporter_settings)
    records.write_drill(settings, "primary", [
        records.DrillOutcome("postgres", "biometrics", True, 42.0, "counts equal"),
        records.DrillOutcome("files", "app", False, 3.0, "hash mismatch: /app/secret-name.txt")])
    # The backup host's rotating check of app: two of four parts read since the last cycle.
    records.write_rotation(settings, "app", records.Rotation(
        4, 3, (now - dt.timedelta(days=2)).timestamp(), (now - dt.timedelta(days=2)).timestamp()))
    processes = []
    for path, command in ((exporter_settings, "exporter"), (scheduler_settings, "schedule")):
        with (directory / f"{command}.log").open("wb") as log:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "backup_agent.cli", "--settings", str(path), command],
                stdout=subprocess.DEVNULL, stderr=log))
    try:
        for port in (exporter_port, scheduler_port):
            wait_for_port(port)
        live = Live(f"http://127.0.0.1:{exporter_port}", f"http://127.0.0.1:{scheduler_port}",
                    exporter_settings, settings, buckets)
        # The first refresh of both buckets has finished once both delete-marker scans (which
        # follow each bucket's refresh) are served.
        scanned = [f'backup_s3_delete_markers{{bucket="{bucket}"' for bucket in buckets.values()]
        deadline = time.monotonic() + 20
        while not all(marker in get(live.exporter + "/metrics") for marker in scanned):
            assert time.monotonic() < deadline, (directory / "exporter.log").read_text()
            time.sleep(0.1)
        yield live
    finally:
        for process in processes:
            stop_process(process)
        shutil.rmtree(directory, ignore_errors=True)


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def exposed_metrics(text: str) -> set[str]:
    """Sample names a scrape of `text` yields: counters as <family>_total."""
    return {family.name + "_total" if family.type == "counter" else family.name
            for family in text_string_to_metric_families(text)}


def metric_names(expression: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers outside strings, label matchers and
    grouping clauses that are neither functions nor keywords."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    bare = re.sub(r"\{[^}]*\}", "{}", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "[]", bare)
    names = set(re.findall(r"(?<![\w$])([a-zA-Z_:][\w:]*)\b(?!\s*\()", bare))
    keywords = {"and", "or", "unless", "bool", "offset", "inf", "nan", "group_left",
                "group_right"}
    return {name for name in names - keywords if not re.fullmatch(r"\d+\w*", name)}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def panel_queries() -> dict[str, str]:
    return {f"panel {panel['id']} {target['refId']}": target["expr"]
            for panel in panels() for target in panel["targets"]}


def variable_queries() -> dict[str, str]:
    """The selector inside each `label_values(<selector>, <label>)` variable query."""
    queries = {}
    for variable in dashboard()["templating"]["list"]:
        match = re.fullmatch(r"label_values\((.+), *\w+\)", variable["query"]["query"])
        assert match, variable["query"]
        queries[f"variable {variable['name']}"] = match.group(1)
    return queries


def substituted(expression: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    assert "$" not in expression, f"unknown Grafana variable in {expression!r}"
    return expression


def alert_expressions() -> dict[str, str]:
    return {rule["alert"]: rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"]
            for rule in group["rules"]}


# --- the dashboard, by Grafana's dashboard JSON model -------------------------------------------


def test_metric_names_are_found_in_promql():
    assert metric_names('sum by (target, operation) (rate(backup_a_total{target=~"x|y"}[5m]))'
                        ' / on(bucket) group_left backup_b > 3000 and time() - backup_c') == {
        "backup_a_total", "backup_b", "backup_c"}


def test_dashboard_is_importable_by_its_model():
    model = dashboard()
    assert model["uid"] == "biometrics-backup" and model["title"]
    assert model["__inputs"] == [{
        "name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
        "pluginId": "prometheus", "pluginName": "Prometheus",
        "description": model["__inputs"][0]["description"]}]
    source = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert set(variables) == {"target", "database"}
    for variable in variables.values():
        assert (variable["type"], variable["datasource"], variable["includeAll"]) == (
            "query", source, True)
    assert "$target" in variables["database"]["query"]["query"]  # databases of the chosen bucket
    ids = [panel["id"] for panel in model["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in model["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
    for panel in panels():
        assert panel["datasource"] == source and panel["description"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == source and target["expr"].strip()
        required = {"type": "panel", "id": panel["type"]}
        assert any(required.items() <= r.items() for r in model["__requires"]), panel["type"]


def test_dashboard_covers_what_the_on_call_person_needs():
    used = {name for expression in panel_queries().values() for name in metric_names(expression)}
    for needed in ("backup_postgres_base_backup_max_age_seconds",  # ages against the limits
                   "backup_restic_snapshot_max_age_seconds",
                   "backup_postgres_wal_archived_timestamp_seconds",  # WAL archiving
                   "backup_postgres_archiver_failed_total",
                   "backup_drill_success", "backup_drill_duration_seconds",  # drills
                   "backup_job_runs_total", "backup_job_skipped_total",  # jobs
                   "backup_exporter_s3_up", "backup_exporter_last_refresh_timestamp_seconds",
                   "backup_exporter_s3_errors_total",  # exporter health
                   "backup_s3_delete_markers"):
        assert needed in used
    assert any("delta(backup_s3_delete_markers" in e and "[1h]" in e
               for e in panel_queries().values())


def test_every_dashboard_query_is_valid_promql(tmp_path):
    promtool = required_tool("promtool", "prometheus")
    queries = {**panel_queries(), **variable_queries()}
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": "dashboard:" + re.sub(r"\W", "_", name), "expr": substituted(expression)}
        for name, expression in queries.items()]}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    check = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(queries)} rules found" in check.stdout


def test_promtool_refuses_an_invalid_query(tmp_path):
    promtool = required_tool("promtool", "prometheus")
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "x:y", "expr": "sum by (target (backup_x)"}]}]}))
    assert subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                          check=False).returncode != 0


# --- metric names against the live exporter and scheduler -----------------------------------


def test_dashboard_and_alerts_name_exactly_the_metrics_the_agent_serves(live):
    exposed = exposed_metrics(get(live.exporter + "/metrics"))
    exposed |= exposed_metrics(get(live.scheduler + "/metrics"))
    charted = {name for expression in {**panel_queries(), **variable_queries()}.values()
               for name in metric_names(expression)}
    alerted = {name for expression in alert_expressions().values()
               for name in metric_names(expression)}
    reasons = yaml.safe_load(NOT_CHARTED.read_text()) or {}
    assert charted - exposed - PROMETHEUS_SERIES == set(), "dashboard names unserved metrics"
    assert alerted - exposed - PROMETHEUS_SERIES == set(), "alerts name unserved metrics"
    assert exposed - charted - alerted - set(reasons) == set(), (
        f"served but in no panel or alert: chart them or give a reason in {NOT_CHARTED.name}")
    assert set(reasons) <= exposed - charted - alerted, f"stale entries in {NOT_CHARTED.name}"
    assert all(isinstance(reason, str) and reason.strip() for reason in reasons.values())


# --- the status page --------------------------------------------------------------------------


def expected_rows(live: Live) -> set[tuple[str, str]]:
    names = [d.name for d in live.settings.databases] + [f.name for f in live.settings.file_sets]
    return {(target, name) for target in live.buckets for name in names}


def s3_requests(live: Live) -> float:
    return sum(sample.value
               for family in text_string_to_metric_families(get(live.exporter + "/metrics"))
               if family.name == "backup_exporter_s3_requests" for sample in family.samples)


def test_status_page_is_rendered_from_the_last_refresh_without_reading_s3(live):
    before = s3_requests(live)
    pages = [get(live.exporter + "/") for _ in range(3)]
    assert s3_requests(live) == before > 0
    assert all('<a href="/metrics">' in page for page in pages)


def test_status_page_is_safe_to_expose(live):
    with urllib.request.urlopen(live.exporter + "/", timeout=10) as response:
        headers, page = response.headers, response.read().decode()
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Security-Policy"].startswith("default-src 'none';")
    assert headers["X-Content-Type-Options"] == "nosniff"
    # Prefixes, never object keys; verdicts, never a drill's detail or a setting.
    assert "postgres/biometrics/" in page and "basebackups_005" not in page
    assert "secret-name" not in page and "hash mismatch" not in page
    assert "db-password" not in page and "not-a-real-password" not in page
    for path, method, code in (("/settings.json", "GET", 404), ("/", "POST", 405)):
        request = urllib.request.Request(live.exporter + path, method=method, data=None)
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=10)
        error.value.close()
        assert error.value.code == code


def test_status_json_gives_scripts_the_page_rows(live):
    result = subprocess.run([sys.executable, "-m", "backup_agent.cli", "--settings",
                             str(live.settings_path), "status", "--json"],
                            capture_output=True, text=True, check=False)
    # Rows are overdue here, so the check fails; the rows are printed all the same.
    assert result.returncode == 1
    assert result.stderr.startswith("error: status: primary database reports: backup ")
    rows = json.loads(result.stdout)
    assert {(row["target"], row["name"]) for row in rows} == expected_rows(live)
    overdue = {(row["target"], row["name"]) for row in rows if row["overdue"]}
    assert overdue == expected_rows(live) - {("primary", "biometrics"), ("primary", "app")}


ROWS_SCRIPT = """JSON.stringify({
  title: document.title,
  images: document.images.length,
  links: Array.from(document.querySelectorAll("a"), a => a.getAttribute("href")),
  rows: Array.from(document.querySelectorAll("tbody tr.target"), tr => ({
    target: tr.dataset.target, name: tr.dataset.name, overdue: tr.classList.contains("overdue"),
    bar: getComputedStyle(tr.querySelector(".bar")).backgroundColor,
    age: getComputedStyle(tr.querySelector(".track + span")).color,
    drill: tr.cells[7].innerText}))
})"""


def test_status_page_in_headless_chromium(live, tmp_path_factory, capsys):
    browser = Chromium(required_tool("chromium", "chromium"))
    try:
        browser.open(live.exporter + "/")
        page = json.loads(browser.evaluate(ROWS_SCRIPT))
        screenshot = browser.screenshot(
            tmp_path_factory.getbasetemp() / "artifacts" / "status-page.png")
    finally:
        browser.close()
    with capsys.disabled():
        print(f"\nstatus page screenshot: {screenshot}")
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    assert page["title"] == "Backup status"
    assert page["images"] == 0 and page["links"] == ["/metrics"]
    rows = {(row["target"], row["name"]): row for row in page["rows"]}
    assert len(page["rows"]) == len(rows) == 8 and set(rows) == expected_rows(live)
    # reports: its base backup is three days old; archive and the replica: no backup.
    fresh = {("primary", "biometrics"), ("primary", "app")}
    for key, row in rows.items():
        colour = GREEN if key in fresh else RED
        assert (row["overdue"], row["bar"], row["age"]) == (key not in fresh, colour, colour), key
    assert rows[("primary", "biometrics")]["drill"].startswith("passed ")
    assert rows[("primary", "app")]["drill"].startswith("failed ")
    assert rows[("replica", "app")]["drill"] == "never"


def test_a_hostile_name_is_refused_by_the_settings_and_escaped_by_the_page(live, tmp_path):
    """The settings reader refuses a database named like markup (names are path parts and
    labels); should one reach the page anyway, it is text: escaped, and in a real browser its
    handler does not run."""
    document = json.loads(live.settings_path.read_text())
    document["databases"][2]["name"] = HOSTILE
    with pytest.raises(SettingsError, match=re.escape("databases[2].name: got the text")):
        agent_settings.parse(document)
    database = replace(live.settings.databases[2], name=HOSTILE)
    settings = replace(live.settings, databases=(*live.settings.databases[:2], database))
    now = time.time()
    page = status_page.render_page(
        status.rows(settings, BucketReader(settings, "primary", settings.primary), now), now)
    assert "<img" not in page and "&lt;img src=x onerror=&quot;document.title=1&quot;&gt;" in page
    saved = tmp_path / "page.html"
    saved.write_text(page)
    browser = Chromium(required_tool("chromium", "chromium"))
    try:
        browser.open(saved.as_uri())
        rendered = json.loads(browser.evaluate(ROWS_SCRIPT))
    finally:
        browser.close()
    assert rendered["title"] == "Backup status"  # the handler did not run
    assert rendered["images"] == 0
    assert HOSTILE in {row["name"] for row in rendered["rows"]}

