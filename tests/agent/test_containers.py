"""BackupContainers under the recording mocks, and the runtime settings' cross-validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import rpc

from backup_agent import tools
from backup_agent.envdoc import DOCUMENTED_ENV
from components import container_specs
from components.container_specs import SCHEDULER_HOST_PORT
from components.settings import ConfigError, parse_settings
from contract import agent_settings
from contract.schedule import interval_days as schedule_interval_days
from review.recording import run_program
from tests.conftest import ROOT, stack_config

from .conftest import raw_prod, with_runtime

SECRETS = {
    "biometrics-backup:resticPassword": "restic-password-for-the-test",
    "biometrics-backup:databasePasswords": json.dumps({"biometrics": "db-password-for-the-test"}),
    "biometrics-backup:webhookUrl": "https://hooks.example/secret-token-for-the-test",
}
SECRET_TEXTS = ("restic-password-for-the-test", "db-password-for-the-test",
                "secret-token-for-the-test")


@pytest.fixture(scope="module")
def run():
    return run_program(ROOT / "infra", stack="prod", config={**stack_config("prod"), **SECRETS},
                       secret_keys=tuple(SECRETS))


def containers(run) -> dict[str, dict[str, Any]]:
    return {r.name: r.inputs for r in run.of_type("docker:index/container:Container")}


def unwrap(value: Any) -> Any:
    if isinstance(value, dict) and rpc._special_sig_key in value:
        return value["value"]
    return value


def plaintext_outside_secrets(value: Any) -> list[str]:
    """Secret texts found anywhere not wrapped as a Pulumi secret."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return []
        return [t for v in value.values() for t in plaintext_outside_secrets(v)]
    if isinstance(value, list):
        return [t for v in value for t in plaintext_outside_secrets(v)]
    if isinstance(value, str):
        return [t for t in SECRET_TEXTS if t in value]
    return []


def settings_of(inputs: dict[str, Any]) -> dict[str, Any]:
    [upload] = [u for u in unwrap(inputs["uploads"]) if u["file"].endswith("settings.json")]
    return json.loads(upload["content"])


def test_containers_are_placed_per_host_with_their_commands(run):
    found = containers(run)
    assert {name: (inputs["command"], inputs["image"]) for name, inputs in found.items()} == {
        "runtime-backup-agent-backup-1": (["schedule"], "biometrics-backup-agent:0.1.0"),
        "runtime-backup-agent-restore-1": (["schedule"], "biometrics-backup-agent:0.1.0"),
        "runtime-backup-exporter-restore-1": (["exporter"], "biometrics-backup-agent:0.1.0"),
    }
    providers = {r.name: r.inputs["host"] for r in run.of_type("pulumi:providers:docker")}
    assert providers == {"runtime-backup-1-docker": "ssh://deploy@backup-1.internal",
                         "runtime-restore-1-docker": "ssh://deploy@restore-1.internal"}
    backup = settings_of(found["runtime-backup-agent-backup-1"])
    restore = settings_of(found["runtime-backup-agent-restore-1"])
    assert (backup["role"], backup["jobs"]) == ("backup", ["postgres:biometrics", "files:app"])
    assert (restore["role"], restore["jobs"]) == ("restore", ["drill"])
    assert restore["replica"] == {"bucket": "biometrics-backups-replica", "region": "eu-west-1"}
    images = run.of_type("docker:index/image:Image")
    assert {i.inputs["build"]["dockerfile"] for i in images} == {"docker/backup-agent/Dockerfile"}
    assert all(i.inputs["skipPush"] for i in images)


def test_rendered_settings_files_are_what_the_agent_parses(run):
    """One schema: the file each container gets parses back into exactly the settings the
    component built it from, with the defaults both sides share."""
    stack = parse_settings(raw_prod(), stack="prod")
    built = {host.name: container_specs.agent_settings_for(stack, host)
             for host in stack.runtime.hosts}
    for inputs in containers(run).values():
        host = inputs["name"].removeprefix("backup-agent-").removeprefix("backup-exporter-")
        assert agent_settings.parse(settings_of(inputs)) == built[host]
    assert built["backup-1"].retry == agent_settings.Retry(attempts=3, delay_seconds=300)
    assert built["backup-1"].primary == agent_settings.Storage("biometrics-backups",
                                                              "eu-central-1")
    assert built["restore-1"].jobs == ("drill",)


def test_the_backup_host_gets_the_keep_settings(run, stack_run):
    found = containers(run)
    backup = settings_of(found["runtime-backup-agent-backup-1"])
    assert backup["keep"] == {"protection": "compliance-retention", "maxDays": 365}
    assert "keep" not in settings_of(found["runtime-backup-agent-restore-1"])  # never keeps
    legal = containers(stack_run("prod", {"keep": {"protection": "legal-hold", "maxDays": 90}}))
    parsed = agent_settings.parse(settings_of(legal["runtime-backup-agent-backup-1"]))
    assert parsed.kept_backups == agent_settings.KeptBackups("legal-hold", 90)
    with pytest.raises(agent_settings.SettingsError,
                       match=r"keep\.protection: got the text 'forever'"):
        agent_settings.parse({**backup, "keep": {"protection": "forever"}})


def test_every_environment_name_is_a_documented_tool_setting(run, tmp_path):
    parsed = agent_settings.parse(settings_of(containers(run)["runtime-backup-agent-backup-1"]))
    database = parsed.database("biometrics")
    walg = set(tools.walg_env(parsed.primary, database)) | set(tools.libpq_env(database, "x"))
    restic = set(tools.restic_env(parsed, parsed.primary))
    assert walg | restic <= set(DOCUMENTED_ENV)
    assert not any(name.startswith(("AWS_ACCESS", "AWS_SECRET")) for name in walg | restic)


def test_secrets_are_secret_outputs_in_files_never_plaintext(run):
    for inputs in containers(run).values():
        assert plaintext_outside_secrets(inputs) == []
        assert "envs" not in inputs  # no environment at all: secrets are 0400 files
    backup = containers(run)["runtime-backup-agent-backup-1"]
    uploads = backup["uploads"]
    assert uploads[rpc._special_sig_key] == rpc._special_secret_sig
    files = {u["file"]: u for u in unwrap(uploads)}
    assert {path: (u["content"], u["permissions"]) for path, u in files.items()
            if path.startswith("/run/secrets/")} == {
        "/run/secrets/restic-password": ("restic-password-for-the-test", "0400"),
        "/run/secrets/db-biometrics-password": ("db-password-for-the-test", "0400"),
        "/run/secrets/webhook-url": ("https://hooks.example/secret-token-for-the-test", "0400"),
    }
    exporter = containers(run)["runtime-backup-exporter-restore-1"]
    assert [u["file"] for u in unwrap(exporter["uploads"])] == ["/etc/backup-agent/settings.json"]


def test_hardening_no_docker_sock_read_only_mounts_limits(run):
    for name, inputs in containers(run).items():
        text = json.dumps(inputs)
        assert "docker.sock" not in text
        assert inputs["privileged"] is False
        assert inputs["readOnly"] is True
        assert inputs["capabilities"] == {"drops": ["ALL"]}
        assert inputs["securityOpts"] == ["no-new-privileges:true"]
        assert inputs["user"] == "10001:10001"
        assert inputs["restart"] == "unless-stopped"
        assert (inputs["logDriver"], inputs["logOpts"]) == (
            "json-file", {"max-size": "10m", "max-file": "5"})
        assert inputs["healthcheck"]["tests"][:2] == ["CMD", "python3"]
        assert all(mount["readOnly"] for mount in inputs.get("mounts", [])), name
    found = containers(run)
    assert [m["source"] for m in found["runtime-backup-agent-backup-1"]["mounts"]] == [
        "/app/config", "/app/logs", "/app/uploads"]
    assert {name: inputs["memory"] for name, inputs in found.items()} == {
        "runtime-backup-agent-backup-1": 512, "runtime-backup-agent-restore-1": 4096,
        "runtime-backup-exporter-restore-1": 256}
    assert found["runtime-backup-exporter-restore-1"]["volumes"][0]["readOnly"] is True
    assert found["runtime-backup-exporter-restore-1"]["ports"] == [
        {"internal": 8080, "external": 8080, "ip": "0.0.0.0"}]
    assert found["runtime-backup-agent-backup-1"]["ports"] == [
        {"internal": 8080, "external": SCHEDULER_HOST_PORT, "ip": "0.0.0.0"}]


def test_preview_without_secrets_uses_placeholders_and_warns(stack_run):
    run = stack_run("prod")
    assert [w for w in run.warnings if "secret" in w] == [
        "biometrics-backup: 3 runtime secret(s) not set, the preview uses a placeholder for "
        "each: databasePasswords.biometrics, resticPassword, webhookUrl (pulumi config set "
        "--secret before pulumi up)"]
    backup = containers(run)["runtime-backup-agent-backup-1"]
    files = {u["file"]: u["content"] for u in unwrap(backup["uploads"])}
    assert files["/run/secrets/restic-password"] == (
        "[secret resticPassword: set with pulumi config set --secret]")


# --- cross-validation of the runtime settings -----------------------------------------------


def test_prod_runtime_is_valid():
    settings = parse_settings(raw_prod(), stack="prod")
    assert settings.runtime is not None
    assert [d.retain_full for d in settings.runtime.databases] == [7]
    assert schedule_interval_days("0 2 * * *") == 1
    assert schedule_interval_days("0 2 * * 0") == 7


@pytest.mark.parametrize(("changes", "key", "message"), [
    ({"exporter.host": "backup-1"}, "runtime.exporter.host",
     "'backup-1' has instance profile 'backup'; the exporter (read-only) needs a host with "
     "profile 'restore'"),
    ({"drill.host": "backup-1"}, "runtime.drill.host",
     "'backup-1' has instance profile 'backup'; the restore drill (read-only) needs a host "
     "with profile 'restore'"),
    ({"databases.0.host": "restore-1"}, "runtime.databases[0].host",
     "'restore-1' has instance profile 'restore'; a base backup job (writes to S3) needs a "
     "host with profile 'backup'"),
    ({"databases.0.retainFull": 400}, "runtime.databases[0].retainFull",
     "wal-g keeps 400 full backups taken every 1 day(s), a window of 400 days, but "
     "lifecycle.tiers[0].expirationDays expires postgres/ after 365 days"),
    ({"databases.0.schedule": "0 2 1 * *"}, "lifecycle.tiers[0].transitions[0].days",
     "30 moves postgres/ to GLACIER before the newest base backup of biometrics is superseded "
     "(runtime schedule '0 2 1 * *' = every 31 day(s))"),
    ({"fileSets.0.schedule": "every day"}, "runtime.fileSets[0].schedule",
     "the text 'every day' has 2 fields; allowed: five"),
    ({"fileSets.0.checkSubset": "rotate:300"}, "runtime.fileSets[0].checkSubset",
     "'rotate:300': rotate:<t> needs a whole number t from 2 to 256; allowed: "),
    ({"fileSets.0.drillPick": "random-within"}, "runtime.fileSets[0].drillWindowDays",
     "is required; allowed: a whole number of days >= 1"),
    ({"fileSets.0.drillPick": "random-within", "fileSets.0.drillWindowDays": 400},
     "runtime.fileSets[0].drillWindowDays", "400 reaches past what keep keeps"),
    ({"fileSets.0.drillWindowDays": 30}, "runtime.fileSets[0].drillWindowDays",
     "applies only to drillPick random-within"),
])
def test_runtime_settings_are_refused_with_the_key_named(changes, key, message):
    with pytest.raises(ConfigError) as error:
        parse_settings(with_runtime(**changes), stack="prod")
    assert error.value.key == f"biometrics-backup:{key}"
    assert message in str(error.value)


def test_prod_stack_file_holds_no_secret():
    text = (ROOT / "Pulumi.prod.yaml").read_text()
    for key in ("resticPassword", "databasePasswords", "webhookUrl"):
        assert f"biometrics-backup:{key}:" not in text
    assert "AWS_ACCESS_KEY" not in text and "AKIA" not in text
    assert Path(ROOT / "docker" / "backup-agent" / "Dockerfile").exists()


def test_labels_follow_the_compliance_contract(run):
    """The labels the compliance controls read, as contract.layout names them."""
    from contract.layout import FULL_BACKUP_INTERVAL_LABEL, HOST_LABEL

    labels = {name: {item["label"]: item["value"] for item in inputs["labels"]}
              for name, inputs in containers(run).items()}
    assert labels == {
        "runtime-backup-agent-backup-1": {HOST_LABEL: "backup", FULL_BACKUP_INTERVAL_LABEL: "1"},
        "runtime-backup-agent-restore-1": {HOST_LABEL: "restore"},
        "runtime-backup-exporter-restore-1": {HOST_LABEL: "restore"},
    }
