"""The Prometheus alert rules: valid, unit-tested with promtool, and about metrics that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "backup-alerts.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: apt-get install prometheus (.ci/run does)")
    return found


def test_rules_pass_promtool_unit_tests(promtool):
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 14 rules found" in check.stdout
    test = subprocess.run([promtool, "test", "rules", "backup-alerts.test.yml"],
                          cwd=RULES.parent, capture_output=True, text=True, check=False)
    assert test.returncode == 0, test.stdout + test.stderr


def test_every_rule_is_unit_tested():
    rules = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"]
             for rule in group["rules"]}
    tests = yaml.safe_load((RULES.parent / "backup-alerts.test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"]
             if case["exp_alerts"]}
    assert fired == rules


def test_rules_use_only_metrics_the_agent_exports():
    source = "\n".join(path.read_text() for path in (ROOT / "backup_agent").glob("*.py"))
    exported = set(re.findall(r'GaugeMetricFamily\(\s*"(\w+)"', source))
    exported |= {name + "_total" for name in
                 re.findall(r'CounterMetricFamily\(\s*"(\w+)"', source)}
    used = set(re.findall(r"\bbackup_\w+", RULES.read_text()))
    assert used <= exported, used - exported
