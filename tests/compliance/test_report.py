"""The compliance report: verdict, waivers, parliament inside it, the preview's exit status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from compliance.controls import REGISTRY
from compliance.inventory import build_inventory
from compliance.report import build_report, lint_documents, to_json, to_markdown
from components.config_reader import ConfigError
from components.settings import Waiver, parse_settings
from review.preview import main as preview_main
from tests.support import ROOT
from tests.support.resources import declared_of, edit

REPLICATION = "s3-cross-region-replication"
NO_REPLICA = {"replica": {"enabled": False}}
NO_REPLICA_WAIVER = Waiver(REPLICATION, "a local stack has no second region")


@pytest.fixture(scope="session")
def prod_report(prod_inventory):
    return build_report("prod", prod_inventory)


@pytest.fixture(scope="session")
def single_region(stack_run):
    return build_inventory(declared_of(stack_run("prod", NO_REPLICA)))


def test_prod_passes_without_waivers(prod_report):
    assert prod_report.passed
    assert prod_report.mandatory_failures() == []
    assert prod_report.waivers == {}
    markdown = to_markdown(prod_report)
    assert "**Verdict: PASS** — 25 pass, 0 fail, 0 unknown, 24 not applicable, 0 waived, 1 " \
           "manual (rendered for someone else to apply), of 50 controls. Mandatory controls " \
           "failing: none." in markdown
    guard = next(line for line in markdown.splitlines() if line.startswith(
        "| `org-guard-rendered` | "))
    assert "| manual | critical | yes |" in guard
    assert "- manual: **organization-guard-resource-control-policy** — rendered, apply in the " \
           "management account: " in markdown
    assert "## Waivers\n\nNone: every control is enforced for this stack.\n" in markdown


def test_json_twin_holds_every_control_with_the_markdown_status(prod_report):
    twin = to_json(prod_report)
    assert [c["id"] for c in twin["controls"]] == [c.id for c in REGISTRY]
    assert twin["verdict"] == "pass" and twin["waivers"] == []
    markdown = to_markdown(prod_report)
    for control in twin["controls"]:
        assert f"| `{control['id']}` | " in markdown
        row = next(line for line in markdown.splitlines()
                   if line.startswith(f"| `{control['id']}` | "))
        assert f"| {control['status']} |" in row
    ssl = next(c for c in twin["controls"] if c["id"] == "s3-ssl-only")
    assert ssl["frameworks"] == ["SecurityHub S3.5"]
    assert ssl["findings"][0] == {
        "subject": "biometrics-backups (backup-primary-bucket)", "status": "pass",
        "evidence": "bucket and object requests with aws:SecureTransport=false are explicitly "
                    "denied", "sids": ["EnforceSSL"]}


def test_replication_off_without_waiver_fails_naming_the_control(single_region):
    report = build_report("single-region", single_region)
    assert report.mandatory_failures() == [REPLICATION]
    assert "Mandatory controls failing: s3-cross-region-replication." in to_markdown(report)


def test_replication_off_with_waiver_passes_and_lists_it(single_region):
    report = build_report("single-region", single_region, [NO_REPLICA_WAIVER])
    assert report.passed
    assert report.effective(next(r for r in report.results if r.id == REPLICATION)) == "waived"
    markdown = to_markdown(report)
    assert ("| Control | Reason (from the stack config) | Control result |\n|---|---|---|\n"
            "| s3-cross-region-replication | a local stack has no second region | fail |\n"
            ) in markdown
    assert to_json(report)["waivers"] == [
        {"control": REPLICATION, "reason": "a local stack has no second region"}]


def test_object_lock_off_needs_a_waiver(stack_run):
    inventory = build_inventory(declared_of(stack_run("prod", {"objectLock": {"enabled": False}})))
    assert build_report("x", inventory).mandatory_failures() == [
        "s3-object-lock-default-retention"]
    waiver = Waiver("s3-object-lock-default-retention", "throwaway test bucket")
    assert build_report("x", inventory, [waiver]).passed


def test_encryption_off_needs_a_waiver(prod_declared):
    # No config key turns encryption off: the recorded configuration is edited instead.
    resources = edit(prod_declared, "backup-replica-encryption", lambda inputs: inputs.update(
        rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]))
    inventory = build_inventory(resources)
    assert build_report("x", inventory).mandatory_failures() == [
        "s3-kms-encryption-with-rotation"]
    waiver = Waiver("s3-kms-encryption-with-rotation", "SSE-S3 accepted for this stack")
    assert build_report("x", inventory, [waiver]).passed


def test_unknown_waiver_id_is_refused_naming_the_key(prod_inventory):
    with pytest.raises(ConfigError) as raised:
        build_report("prod", prod_inventory, [Waiver("s3-replication", "typo")])
    assert raised.value.key == "biometrics-backup:waivers[0].control"
    assert "'s3-replication' is not a control id; allowed: " in str(raised.value)


@pytest.mark.parametrize(("waivers", "key", "message"), [
    ([{"control": "s3-versioning"}], "waivers[0].reason",
     "is required; allowed: why the stack does not meet the control"),
    ([{"control": "s3-versioning", "reason": "r", "until": "2027"}], "waivers[0].until",
     "unknown key; allowed: control, reason"),
    ([{"control": "s3-versioning", "reason": "a"}, {"control": "s3-versioning", "reason": "b"}],
     "waivers[1].control", "'s3-versioning' is waived twice; allowed: one waiver per control"),
    ({"control": "s3-versioning"}, "waivers", "got an object; allowed: a list of objects"),
])
def test_waiver_config_errors_name_the_key(waivers, key, message):
    raw = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    project = {k.removeprefix("biometrics-backup:"): v for k, v in raw.items()
               if k.startswith("biometrics-backup:")}
    with pytest.raises(ConfigError) as raised:
        parse_settings({**project, "waivers": json.dumps(waivers)}, stack="prod")
    assert raised.value.key == f"biometrics-backup:{key}"
    assert str(raised.value) == f"biometrics-backup:{key}: {message}"


def test_waivers_parse_into_dataclasses():
    raw = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    project = {k.removeprefix("biometrics-backup:"): v for k, v in raw.items()
               if k.startswith("biometrics-backup:")}
    settings = parse_settings({**project, "waivers": [
        {"control": REPLICATION, "reason": "a local stack has no second region"}]}, stack="x")
    assert settings.waivers == (NO_REPLICA_WAIVER,)
    assert parse_settings(project, stack="prod").waivers == ()


def test_stack_settings_reads_the_waivers_the_program_reads():
    from review.stack_config import load_stack_config, stack_settings

    config, _ = load_stack_config(ROOT / "Pulumi.prod.yaml")
    secret = "[secret resticPassword: set with pulumi config set --secret]"
    waivers = json.dumps([{"control": REPLICATION, "reason": "a local stack has no second region"}])
    assert stack_settings({**config, "biometrics-backup:resticPassword": secret,
                           "biometrics-backup:waivers": waivers},
                          "prod").waivers == (NO_REPLICA_WAIVER,)


def test_parliament_lints_every_document_inside_the_report(prod_report, prod_inventory):
    assert [row["resource"] for row in prod_report.lint] == [
        p.resource.name for p in prod_inventory.policies]
    assert all(row["findings"] == [] for row in prod_report.lint)
    bucket_policy = next(row for row in prod_report.lint
                         if row["resource"] == "backup-primary-policy")
    assert {a["rule"] for a in bucket_policy["accepted"]} == {
        "canonical-transport-deny", "decimal-tls-version"}
    trust = next(row for row in prod_report.lint if row["resource"] == "backup-roles-backup-server")
    assert trust["accepted"] == [{"code": "MALFORMED", "sid": "AllowEc2InstanceProfile",
                                  "rule": "trust-policy-has-no-resource"}]


def test_seed_policy_is_flagged_through_the_report_path(prod_declared, seed_policy):
    resources = edit(prod_declared, "backup-primary-policy",
                     lambda inputs: inputs.update(policy=json.dumps(seed_policy)))
    row = next(r for r in lint_documents(build_inventory(resources))
               if r["resource"] == "backup-primary-policy")
    assert row["findings"] == [{
        "code": "UNKNOWN_CONDITION_FOR_ACTION", "severity": "MEDIUM", "sid": "DenyDeleteBackup",
        "detail": "Unknown condition s3:ObjectTag/Retention for action s3:DeleteObject"}]


# --- the offline preview's exit status -----------------------------------------------------


def _project(tmp_path: Path, stack: str, overrides: dict) -> Path:
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    document["config"].update({f"biometrics-backup:{k}": v for k, v in overrides.items()})
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))
    (tmp_path / "infra").symlink_to(ROOT / "infra")
    return tmp_path


def test_preview_exits_3_naming_the_failing_control(tmp_path, capsys):
    project = _project(tmp_path, "single", NO_REPLICA)
    code = preview_main(["--stack", "single", "--project-dir", str(project),
                         "--out", str(tmp_path / "out")])
    assert code == 3
    error = capsys.readouterr().err
    assert "error: mandatory compliance controls fail: s3-cross-region-replication" in error
    assert (tmp_path / "out" / "compliance.md").read_text().startswith(
        "# Compliance review of stack `single`\n\n**Verdict: FAIL**")
    twin = json.loads((tmp_path / "out" / "compliance.json").read_text())
    assert twin["mandatoryFailures"] == [REPLICATION]


def test_preview_exits_0_with_the_waiver(tmp_path, capsys):
    project = _project(tmp_path, "single", {
        **NO_REPLICA, "waivers": [{"control": REPLICATION,
                                   "reason": "a local stack has no second region"}]})
    code = preview_main(["--stack", "single", "--project-dir", str(project),
                         "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    assert "| s3-cross-region-replication | a local stack has no second region | fail |" in (
        tmp_path / "out" / "compliance.md").read_text()
    # The same waiver for CrossGuard: that control's policy is advisory for this stack.
    assert json.loads((tmp_path / "out" / "policy-pack-config.json").read_text()) == {
        REPLICATION: "advisory"}
