"""The Prometheus alert rules: valid, unit-tested with promtool, each with a severity, a
description and a runbook section that exists; the Alertmanager routing example routes every
severity. (That the rules use only metrics the agent really exposes:
tests/agent/test_monitoring.py.)
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import required_tool

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "backup-alerts.yml"
ALERTMANAGER = ROOT / "monitoring" / "alertmanager.yml"
RUNBOOK = "docs/runtime.md"
RECEIVERS = {"page": "backup-pager", "ticket": "backup-tickets"}


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"]
            for rule in group["rules"]]


def github_anchors(markdown: str) -> set[str]:
    """The ids GitHub gives a document's headings: lower case, punctuation dropped, spaces as
    hyphens, a repeated id suffixed -1, -2, ..."""
    anchors: set[str] = set()
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)
    for heading in re.findall(r"^#{1,6} +(.+?) *$", text, flags=re.MULTILINE):
        anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        candidate, number = anchor, 0
        while candidate in anchors:
            number += 1
            candidate = f"{anchor}-{number}"
        anchors.add(candidate)
    return anchors


@pytest.fixture(scope="module")
def promtool() -> str:
    return required_tool("promtool", "prometheus")


def test_rules_pass_promtool_unit_tests(promtool):
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 15 rules found" in check.stdout
    test = subprocess.run([promtool, "test", "rules", "backup-alerts.test.yml"],
                          cwd=RULES.parent, capture_output=True, text=True, check=False)
    assert test.returncode == 0, test.stdout + test.stderr


def test_every_rule_is_unit_tested():
    rules = {rule["alert"] for rule in alert_rules()}
    tests = yaml.safe_load((RULES.parent / "backup-alerts.test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"]
             if case["exp_alerts"]}
    assert fired == rules


def test_github_anchors_follow_githubs_rules():
    assert github_anchors("# A title\n## `backup-agent` (x), y\n### Same\n### Same\n"
                          "```sh\n# a comment, not a heading\n```\n") == {
        "a-title", "backup-agent-x-y", "same", "same-1"}


def test_every_alert_has_severity_description_and_a_runbook_section_that_exists():
    anchors = github_anchors((ROOT / RUNBOOK).read_text())
    problems = []
    for rule in alert_rules():
        name, annotations = rule["alert"], rule.get("annotations", {})
        if rule.get("labels", {}).get("severity") not in RECEIVERS:
            problems.append(f"{name}: severity must be one of {sorted(RECEIVERS)}")
        if len(annotations.get("description", "").split()) < 12:
            problems.append(f"{name}: no description (what it means, what to check first)")
        if "Check first:" not in annotations.get("description", ""):
            problems.append(f"{name}: the description does not say what to check first")
        path, _, anchor = annotations.get("runbook_url", "").partition("#")
        if path != RUNBOOK or anchor not in anchors:
            problems.append(f"{name}: runbook_url {annotations.get('runbook_url')!r} is not a "
                            f"section of {RUNBOOK}")
    assert problems == []


def test_a_runbook_link_to_a_missing_section_is_caught():
    anchors = github_anchors((ROOT / RUNBOOK).read_text())
    assert "postgresbasebackuptooold" in anchors
    assert "postgresbasebackuptooold-typo" not in anchors


@pytest.fixture(scope="module")
def amtool() -> str:
    return required_tool("amtool", "prometheus-alertmanager")


def test_alertmanager_example_is_valid_and_routes_every_severity(amtool):
    check = subprocess.run([amtool, "check-config", str(ALERTMANAGER)], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout
    for rule in alert_rules():
        severity = rule["labels"]["severity"]
        routed = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}",
             f"--verify.receivers={RECEIVERS[severity]}", f"alertname={rule['alert']}",
             f"severity={severity}"], capture_output=True, text=True, check=False)
        assert routed.returncode == 0, (rule["alert"], routed.stdout + routed.stderr)
        assert routed.stdout.split() == [RECEIVERS[severity]]
