"""scripts/local-up, run for real except for the Pulumi CLI, which is a FAKE here
(tests/delivery/fake_pulumi.py): no Pulumi CLI can be installed on this machine."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys

import pytest
import yaml

from components.settings import parse_settings
from review.stack_config import load_stack_config
from tests.support.delivery import ROOT, free_port

LOCAL_BUCKETS = ("local-backups, local-backups-access-logs, local-backups-replica, "
                 "local-backups-replica-access-logs")


def test_local_config_parses_into_settings():
    config, secret_keys = load_stack_config(ROOT / "Pulumi.local.yaml")
    raw = {k.removeprefix("biometrics-backup:"): v for k, v in config.items()
           if k.startswith("biometrics-backup:")}
    settings = parse_settings(raw, stack="local")
    assert secret_keys == ()
    assert (settings.environment, settings.protect) == ("local", False)
    assert (settings.primary.region, settings.replica.region) == ("eu-central-1", "eu-west-1")
    assert (settings.object_lock.mode, settings.object_lock.days) == ("GOVERNANCE", 1)
    assert settings.warnings == ()
    assert settings.waivers == ()  # its compliance review passes without any
    assert (settings.github, settings.runtime) == (None, None)  # no OIDC roles, no containers


def test_local_config_points_every_service_at_one_local_port():
    config = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())["config"]
    assert config["aws:endpoints"] == [{service: "http://127.0.0.1:5055" for service in
                                        ("s3", "iam", "kms", "sts", "sns", "cloudwatch")}]
    assert {k: config[k] for k in ("aws:s3UsePathStyle", "aws:skipCredentialsValidation",
                                   "aws:skipRequestingAccountId")} == dict.fromkeys(
        ("aws:s3UsePathStyle", "aws:skipCredentialsValidation", "aws:skipRequestingAccountId"),
        "true")


def test_offline_preview_of_local_passes_its_compliance_review(tmp_path):
    from review.preview import main as offline_preview

    assert offline_preview(["--stack", "local", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "compliance.json").read_text())
    assert (report["verdict"], report["mandatoryFailures"], report["waivers"]) == (
        "pass", [], [])


@pytest.fixture
def project(tmp_path):
    """A copy of the project whose Pulumi.local.yaml points at a free port, with a stale salt
    from an earlier passphrase, and a FAKE pulumi first on PATH."""
    port = free_port()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "local-up").write_bytes((ROOT / "scripts" / "local-up").read_bytes())
    (tmp_path / "scripts" / "local-up").chmod(0o755)
    (tmp_path / "Pulumi.yaml").write_bytes((ROOT / "Pulumi.yaml").read_bytes())
    (tmp_path / "infra").symlink_to(ROOT / "infra")
    config = (ROOT / "Pulumi.local.yaml").read_text().replace("127.0.0.1:5055",
                                                               f"127.0.0.1:{port}")
    (tmp_path / "Pulumi.local.yaml").write_text(config + "encryptionsalt: v1:stale:salt\n")
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    fake = bin_dir / "pulumi"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} {ROOT / 'tests/delivery/fake_pulumi.py'} "
                    '"$@"\n')
    fake.chmod(0o755)
    return tmp_path, port, config


def run_local_up(project_dir, bin_dir, **extra_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG_PASSPHRASE")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", LOCAL_UP_PYTHON=sys.executable,
               FAKE_PULUMI_LOG=str(project_dir / "fake-pulumi.log"),
               PYTHONPATH=str(ROOT), **extra_env)
    return subprocess.run(["bash", "scripts/local-up"], cwd=project_dir, env=env,
                          capture_output=True, text=True, timeout=240, check=False)


def port_is_closed(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_local_up_deploys_into_moto_and_smoke_checks(project):
    project_dir, port, config = project
    result = run_local_up(project_dir, project_dir / "fake-bin")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"moto on http://127.0.0.1:{port} (pid ")
    assert lines[-1] == f"OK: 29 checks on 4 buckets ({LOCAL_BUCKETS})"
    calls = [json.loads(line) for line in (project_dir / "fake-pulumi.log").read_text()
             .splitlines()]
    assert [call["args"] for call in calls] == [
        ["stack", "rm", "local", "--yes", "--force", "--preserve-config"],
        ["stack", "init", "local", "--secrets-provider", "passphrase"],
        ["up", "--stack", "local", "--yes", "--skip-preview"],
        ["stack", "output", "--stack", "local", "--json"],
    ]
    local = project_dir / ".pulumi-local"
    assert {(c["backend"], c["passphraseFile"], c["awsAccessKeyId"]) for c in calls} == {
        (f"file://{local}/state", str(local / "passphrase"), "moto-fake-key")}
    assert stat.S_IMODE((local / "passphrase").stat().st_mode) == 0o600
    assert len((local / "passphrase").read_text().strip()) == 43
    # The salt of the earlier passphrase is gone; nothing else changed.
    assert (project_dir / "Pulumi.local.yaml").read_text() == config
    assert port_is_closed(port)  # moto was stopped


def test_local_up_fails_when_the_smoke_check_does(project):
    project_dir, port, _ = project
    result = run_local_up(project_dir, project_dir / "fake-bin",
                          FAKE_PULUMI_MISTAKE="versioning-suspended")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-2:] == [
        'local-backups-access-logs versioning: Status: expected "Enabled", got "Suspended"',
        'local-backups-replica-access-logs versioning: Status: expected "Enabled", '
        'got "Suspended"',
    ]
    assert result.stderr.splitlines()[-1] == "FAILED: 2 differences in 4 buckets"
    assert port_is_closed(port)


def test_local_up_needs_the_pulumi_cli(tmp_path):
    script = tmp_path / "scripts" / "local-up"
    script.parent.mkdir()
    script.write_bytes((ROOT / "scripts" / "local-up").read_bytes())
    result = subprocess.run(["bash", str(script)], env={"PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=30, check=False)
    assert (result.returncode, result.stderr) == (
        2, "error: the Pulumi CLI is needed: https://www.pulumi.com/docs/iac/download-install/\n")
