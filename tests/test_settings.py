"""Configuration is refused by name, before any resource is declared."""

from __future__ import annotations

import re
from typing import Any

import pytest

from components.settings import (
    BucketSettings,
    ConfigError,
    KeepSettings,
    LifecycleTier,
    ObjectLockSettings,
    RoleSettings,
    Subscriber,
    Transition,
    parse_settings,
)
from review.recording import StackRun, run_program
from tests.support import DELETE, ROOT, changed, stack_config

PROD: dict[str, Any] = {
    "environment": "prod",
    "protect": True,
    "primary": {"bucketName": "biometrics-backups", "region": "eu-central-1"},
    "replica": {"enabled": True, "bucketName": "biometrics-backups-replica",
                "region": "eu-west-1"},
    "objectLock": {"enabled": True, "mode": "COMPLIANCE", "days": 30},
    "lifecycle": {
        "tiers": [
            {"prefix": "postgres/", "transitions": [
                {"days": 30, "storageClass": "GLACIER"},
                {"days": 90, "storageClass": "DEEP_ARCHIVE"}], "expirationDays": 365},
            {"prefix": "temp/", "expirationDays": 90},
        ],
    },
}


def with_change(path: str, value: Any) -> dict[str, Any]:
    """PROD with one value replaced; `path` like "lifecycle.tiers[0].transitions[1].days"."""
    return changed(PROD, {path: value})


def test_prod_values_parse_into_typed_settings():
    settings = parse_settings(PROD, stack="prod")
    assert settings.primary == BucketSettings("biometrics-backups", "eu-central-1")
    assert settings.replica == BucketSettings("biometrics-backups-replica", "eu-west-1")
    assert settings.object_lock == ObjectLockSettings(enabled=True, mode="COMPLIANCE", days=30)
    assert settings.lifecycle.tiers == (
        LifecycleTier("postgres/", (Transition(30, "GLACIER"), Transition(90, "DEEP_ARCHIVE")),
                      365),
        LifecycleTier("temp/", (), 90),
    )
    assert settings.lifecycle.noncurrent_version_days == 30
    assert settings.lifecycle.abort_incomplete_upload_days == 7
    assert settings.roles == RoleSettings("backup-server", "restore-server", "wal-archiver",
                                          "backup-replication", None)
    assert settings.protect is True
    assert settings.access_log_days == 365


def test_secure_defaults_when_only_the_bucket_is_given():
    settings = parse_settings(
        {"primary": {"bucketName": "b-backups", "region": "eu-central-1"},
         "replica": {"bucketName": "b-backups-replica", "region": "eu-north-1"}},
        stack="dev",
    )
    assert settings.environment == "dev"
    assert settings.object_lock == ObjectLockSettings(enabled=True, mode="COMPLIANCE", days=30)
    assert settings.replica is not None
    assert settings.protect is False
    assert settings.data_residency == "eu"


def test_structured_values_arrive_as_json_text_from_pulumi():
    settings = parse_settings(
        {"primary": '{"bucketName": "b-backups", "region": "eu-central-1"}',
         "replica": '{"enabled": false}', "protect": "true"},
        stack="dev",
    )
    assert settings.primary.bucket_name == "b-backups"
    assert settings.replica is None
    assert settings.protect is True


def test_subscribers_and_break_glass_are_parsed():
    raw = with_change("alerts", {"subscribers": [{"protocol": "email", "endpoint": "a@b.example"}]})
    raw["roles"] = {"breakGlassArn": "arn:aws:iam::123456789012:role/break-glass"}
    settings = parse_settings(raw, stack="prod")
    assert settings.alerts.subscribers == (Subscriber("email", "a@b.example"),)
    assert settings.roles.break_glass_arn == "arn:aws:iam::123456789012:role/break-glass"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("replica.region", "eu-central-1",
         "biometrics-backup:replica.region: must differ from primary.region (eu-central-1): "
         "cross-region replication needs a second region; allowed: an AWS region other than "
         "eu-central-1"),
        ("primary.region", "eu-middle-7",
         "biometrics-backup:primary.region: got the text 'eu-middle-7'; allowed: af-south-1, "),
        ("lifecycle.tiers[0].transitions[0].storageClass", "GLACIERR",
         "biometrics-backup:lifecycle.tiers[0].transitions[0].storageClass: got the text "
         "'GLACIERR'; allowed: STANDARD_IA, INTELLIGENT_TIERING, ONEZONE_IA, GLACIER_IR, "
         "GLACIER, DEEP_ARCHIVE"),
        ("lifecycle.tiers[0].transitions[1].days", 20,
         "biometrics-backup:lifecycle.tiers[0].transitions[1].days: 20 must be later than the "
         "previous transition (30 days); allowed: > 30"),
        ("lifecycle.tiers[0].transitions[1].storageClass", "STANDARD_IA",
         "biometrics-backup:lifecycle.tiers[0].transitions[1].storageClass: STANDARD_IA cannot "
         "follow GLACIER; allowed after it: DEEP_ARCHIVE"),
        ("lifecycle.tiers[0].expirationDays", 60,
         "biometrics-backup:lifecycle.tiers[0].expirationDays: 60 must be later than the last "
         "transition (90 days); allowed: > 90"),
        ("lifecycle.tiers[0].transitions[0].days", 0,
         "biometrics-backup:lifecycle.tiers[0].transitions[0].days: got 0; allowed: a whole "
         "number of days from 1 to 36500"),
        ("lifecycle.tiers[1].expirationDays", -5,
         "biometrics-backup:lifecycle.tiers[1].expirationDays: got -5; allowed: a whole number "
         "of days from 1 to 36500"),
        ("objectLock.days", 0,
         "biometrics-backup:objectLock.days: got 0; allowed: a whole number of days from 1 to "
         "36500"),
        ("objectLock.mode", "STRICT",
         "biometrics-backup:objectLock.mode: got the text 'STRICT'; allowed: COMPLIANCE, "
         "GOVERNANCE"),
        ("primary.bucketName", DELETE,
         "biometrics-backup:primary.bucketName: is required; allowed: 3-51 characters of a-z, "
         "0-9 and '-' (no dots: "),
        ("replica.bucketName", "Biometrics_Backups",
         "biometrics-backup:replica.bucketName: 'Biometrics_Backups' is not allowed: 3-51 "
         "characters of a-z, 0-9 and '-' (no dots: they break TLS for virtual-hosted requests; "
         "12 characters are kept for the '-access-logs' log bucket)"),
        ("replica.bucketName", "biometrics-backups",
         "biometrics-backup:replica.bucketName: 'biometrics-backups' is already "
         "primary.bucketName; allowed: a name other than 'biometrics-backups' and "
         "'biometrics-backups-access-logs'"),
        ("lifecycle.tiers[1]", {"prefix": "restic/", "transitions": [
            {"days": 30, "storageClass": "GLACIER"}]},
         "biometrics-backup:lifecycle.tiers[1].prefix: 'restic/' is inside the restic "
         "repository (restic/), which no lifecycle tier may expire or transition; allowed: a "
         "prefix outside restic/"),
        ("lifecycle.tiers[1]", {"prefix": "temp", "expirationDays": 9},
         "biometrics-backup:lifecycle.tiers[1].prefix: 'temp' must end with '/'; allowed: a key "
         "prefix ending with '/'"),
        ("lifecycle.tiers[1]", {"prefix": "temp/", "transitions": [
            {"days": 10, "storageClass": "STANDARD_IA"}]},
         "biometrics-backup:lifecycle.tiers[1].transitions[0].days: 10 is too early for "
         "STANDARD_IA; allowed: >= 30"),
        ("lifecycle.tiers[1]", {"prefix": "postgres/", "expirationDays": 9},
         "biometrics-backup:lifecycle.tiers[1].prefix: 'postgres/' appears twice; allowed: one "
         "tier per prefix"),
        ("lifecycle.tiers[1]", {"prefix": "temp/"},
         "biometrics-backup:lifecycle.tiers[1].transitions: a tier needs transitions or "
         "expirationDays; allowed: either or both"),
        ("lifecycle.noncurrentVersionDays", 10,
         "biometrics-backup:lifecycle.noncurrentVersionDays: 10 is shorter than objectLock.days "
         "(30); S3 cannot expire a locked version, allowed: >= objectLock.days"),
        ("objectLock.enabled", "yes",
         "biometrics-backup:objectLock.enabled: got the text 'yes'; allowed: true or false"),
        ("primary.bucket", "x",
         "biometrics-backup:primary.bucket: unknown key; allowed: bucketName, region"),
        ("roles.backup", "backup server",
         "biometrics-backup:roles.backup: got the text 'backup server'; allowed: an IAM role "
         "name (1-64 of A-Z a-z 0-9 +=,.@_-)"),
        ("roles.restore", "backup-server",
         "biometrics-backup:roles.restore: 'backup-server' is the same as roles.backup "
         "('backup-server'); IAM role names are unique regardless of case; allowed: distinct "
         "names"),
        ("roles.breakGlassArn", "arn:aws:iam::123:user/x",
         "biometrics-backup:roles.breakGlassArn: got the text 'arn:aws:iam::123:user/x'; "
         "allowed: an IAM role ARN (arn:aws:iam::<12 digits>:role/NAME)"),
        ("alerts.subscribers", [{"protocol": "pager", "endpoint": "x"}],
         "biometrics-backup:alerts.subscribers[0].protocol: got the text 'pager'; allowed: "
         "email, email-json, https, sqs, lambda, sms"),
    ],
)
def test_invalid_config_is_refused_by_key(path, value, message):
    raw = with_change(path, value)
    with pytest.raises(ConfigError) as error:
        parse_settings(raw, stack="prod")
    assert str(error.value).startswith(message)
    if not message.endswith((": ", ", ")):
        assert str(error.value) == message


def test_glacier_accepts_any_transition_day():
    settings = parse_settings(with_change("lifecycle.tiers[0].transitions[0].days", 10),
                              stack="prod")
    assert settings.lifecycle.tiers[0].transitions[0] == Transition(10, "GLACIER")


def test_a_config_value_that_is_not_an_object_is_refused_by_key():
    with pytest.raises(ConfigError) as error:
        parse_settings({**PROD, "replica": ["eu-west-1"]}, stack="prod")
    assert str(error.value) == ("biometrics-backup:replica: got a list; allowed: an object "
                                "(key: value, ...)")


def test_structured_key_holding_plain_text_is_refused_by_key():
    with pytest.raises(ConfigError) as error:
        parse_settings({**PROD, "replica": "eu-west-1"}, stack="prod")
    assert str(error.value) == (
        "biometrics-backup:replica: got the text 'eu-west-1'; allowed: an object (structured "
        "config)")


def test_unknown_top_level_key_is_refused():
    with pytest.raises(ConfigError) as error:
        parse_settings({**PROD, "bucketName": "x"}, stack="prod")
    assert str(error.value).startswith(
        "biometrics-backup:bucketName: unknown key; allowed: environment, protect, dataResidency,"
    )


GUARD_WARNING = (
    "biometrics-backup: the organization guard exempts no principal (neither github nor "
    "roles.breakGlassArn is set): once the management account attaches it, changing a bucket "
    "policy, Object Lock, replication, lifecycle or a key policy needs the management account "
    "to detach it first (docs/compliance.md)")
LEGAL_HOLD_WARNING = (
    "biometrics-backup:keep.protection: legal-hold: an account administrator who may "
    "s3:PutBucketPolicy can remove DenyLegalHoldRemoval, lift the hold of a kept backup, and "
    "lifecycle then expires its versions; compliance-retention cannot be shortened by anyone "
    "(docs/runtime.md, GDPR)")
GLASS = "arn:aws:iam::111122223333:role/break-glass"


def test_early_deletion_fees_are_warnings_not_errors():
    settings = parse_settings(PROD, stack="prod")
    assert settings.warnings == (
        "biometrics-backup:lifecycle.tiers[0] (postgres/): objects stay 60 days in GLACIER, "
        "below its 90-day minimum; each object is billed an early-deletion fee for 30 more days",
        GUARD_WARNING,
    )
    cheaper = with_change("lifecycle.tiers[0].transitions[1].days", 120)
    assert parse_settings(cheaper, stack="prod").warnings == (GUARD_WARNING,)


def test_keep_defaults_to_compliance_retention_for_a_year():
    assert parse_settings(PROD, stack="prod").keep == KeepSettings("compliance-retention", 365)
    settings = parse_settings({**PROD, "keep": {"protection": "legal-hold", "maxDays": 3650}},
                              stack="prod")
    assert settings.keep == KeepSettings("legal-hold", 3650)


@pytest.mark.parametrize(("keep", "key", "message"), [
    ({"protection": "governance"}, "keep.protection",
     "got the text 'governance'; allowed: compliance-retention, legal-hold"),
    ({"maxDays": 30}, "keep.maxDays",
     "30 is not allowed; allowed: more than objectLock.days (30), so a kept backup can outlive "
     "the lock window, and at most 36500 (S3's 100-year limit)"),
    ({"maxDays": 36501}, "keep.maxDays",
     "got 36501; allowed: a whole number of days from 1 to 36500"),
    ({"maxDays": "a year"}, "keep.maxDays",
     "got the text 'a year'; allowed: a whole number of days from 1 to 36500"),
    ({"until": "2030-01-01"}, "keep.until", "unknown key; allowed: protection, maxDays"),
])
def test_invalid_keep_settings_name_the_key(keep, key, message):
    with pytest.raises(ConfigError) as error:
        parse_settings({**PROD, "keep": keep}, stack="prod")
    assert error.value.key == f"biometrics-backup:{key}"
    assert message in str(error.value)


def test_legal_hold_and_an_unexempted_guard_warn_in_protected_stacks_only():
    legal_hold = {**PROD, "keep": {"protection": "legal-hold"},
                  "roles": {"breakGlassArn": GLASS}}
    assert parse_settings(legal_hold, stack="prod").warnings[1:] == (LEGAL_HOLD_WARNING,)
    assert parse_settings({**legal_hold, "protect": False}, stack="dev").warnings[1:] == ()
    assert parse_settings({**PROD, "roles": {"breakGlassArn": GLASS}},
                          stack="prod").warnings[1:] == ()


def test_safeguards_may_be_switched_off_by_config():
    raw = {**PROD, "replica": {"enabled": False}, "objectLock": {"enabled": False}}
    settings = parse_settings(raw, stack="dev")
    assert settings.replica is None
    assert settings.object_lock.enabled is False


def test_prod_warnings_reach_the_engine_log(prod):
    assert prod.warnings == [
        "biometrics-backup:lifecycle.tiers[0] (postgres/): objects stay 60 days in GLACIER, "
        "below its 90-day minimum; each object is billed an early-deletion fee for 30 more days",
        GUARD_WARNING,
        # Pulumi.prod.yaml holds no secrets: the offline preview shows placeholders instead.
        "biometrics-backup: 3 runtime secret(s) not set, the preview uses a placeholder for "
        "each: databasePasswords.biometrics, resticPassword, webhookUrl (pulumi config set "
        "--secret before pulumi up)",
    ]


def test_missing_secrets_are_one_warning_naming_each(stack_run):
    """The scale stack (50 databases, no secrets in its file): one line, keys sorted."""
    keys = sorted([*(f"databasePasswords.tenant{i:02d}" for i in range(1, 51)),
                   "resticPassword", "webhookUrl"])
    assert [w for w in stack_run("scale").warnings if "secret" in w] == [
        "biometrics-backup: 52 runtime secret(s) not set, the preview uses a placeholder for "
        f"each: {', '.join(keys)} (pulumi config set --secret before pulumi up)"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("replica", {"bucketName": "biometrics-backups-replica", "region": "eu-central-1"},
         "biometrics-backup:replica.region: must differ from primary.region"),
        ("objectLock", {"mode": "LOCKED"},
         "biometrics-backup:objectLock.mode: got the text 'LOCKED'"),
        ("primary", {"region": "eu-central-1"},
         "biometrics-backup:primary.bucketName: is required"),
    ],
)
def test_program_declares_nothing_when_config_is_invalid(key, value, message):
    run = StackRun()
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_program(ROOT / "infra", stack="prod", config=stack_config("prod", {key: value}),
                    run=run)
    assert run.resources == []


def test_pulumi_up_refuses_a_missing_secret_before_declaring_anything():
    run = StackRun()
    with pytest.raises(ConfigError, match=re.escape(
            "biometrics-backup:resticPassword: is required by runtime and not set; allowed: an "
            "encrypted value, set with: pulumi config set --secret resticPassword")):
        run_program(ROOT / "infra", stack="prod", config=stack_config("prod"), run=run,
                    preview=False)
    assert run.resources == []
