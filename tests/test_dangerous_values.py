"""Values AWS, restic or Docker would accept or fail on later, and that would hurt: each is
refused by key, with its reason. Limits and where they come from are in docs/runtime.md."""

from __future__ import annotations

import re
from typing import Any

import pytest

from components import container_specs
from components.config_reader import ConfigError
from components.settings import parse_settings
from tests.support import changed as support_changed
from tests.support import project_config

PROJECT = "biometrics-backup"


def prod() -> dict[str, Any]:
    return project_config("prod")


def changed(**changes: Any) -> dict[str, Any]:
    """prod with values replaced; keys are paths like runtime__databases__0__port."""
    return support_changed(prod(), {path.replace("__", "."): value
                                    for path, value in changes.items()})


def refused(raw: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as error:
        parse_settings(raw, stack="prod")
    return error.value


def test_an_expiring_tier_on_restic_is_refused():
    raw = changed(lifecycle__tiers__1={"prefix": "restic/", "expirationDays": 400})
    error = refused(raw)
    assert error.key == f"{PROJECT}:lifecycle.tiers[1].prefix"
    assert "inside the restic repository (restic/), which no lifecycle tier may expire" \
        in error.problem
    deeper = refused(changed(lifecycle__tiers__1={"prefix": "restic/data/",
                                                  "expirationDays": 400}))
    assert deeper.key == f"{PROJECT}:lifecycle.tiers[1].prefix"


@pytest.mark.parametrize("prefix", ["postgres/biometrics/", "postgres/biometrics/wal_005/"])
def test_every_tier_covering_a_database_is_checked_against_its_retention(prefix):
    """The first tier (postgres/, 365 days) is fine; a second one that also covers
    postgres/biometrics/ expires it after 3 days, before wal-g's 7 daily backups are done."""
    tiers = [*prod()["lifecycle"]["tiers"], {"prefix": prefix, "expirationDays": 3}]
    error = refused(changed(lifecycle__tiers=tiers))
    assert error.key == f"{PROJECT}:runtime.databases[0].retainFull"
    assert error.problem.startswith(
        "wal-g keeps 7 full backups taken every 1 day(s), a window of 7 days, but "
        f"lifecycle.tiers[2].expirationDays expires {prefix} after 3 days")
    # A tier on another database's prefix does not cover this one.
    other = [*prod()["lifecycle"]["tiers"], {"prefix": "postgres/other/", "expirationDays": 3}]
    assert parse_settings(changed(lifecycle__tiers=other), stack="prod").runtime is not None


@pytest.mark.parametrize("value", ["150%", "0%", "8/7", "1/0", "0/7", "1/257", "0M", "5",
                                   "50MiB", "1.5M", "NaN%"])
def test_check_subsets_restic_refuses_are_refused(value):
    error = refused(changed(runtime__fileSets__0__checkSubset=value))
    assert error.key == f"{PROJECT}:runtime.fileSets[0].checkSubset"
    assert error.problem.endswith("allowed: a percentage above 0% and at most 100% (5%, 2.5%), "
                                  "n/t with 1 <= n <= t <= 256 (1/7), a size with a suffix "
                                  "b, k, m, g or t (50M), or rotate:<t> with 2 <= t <= 256 "
                                  "(rotate:20: the next twentieth each run)")


@pytest.mark.parametrize("value", ["50M", "1G", "2.5%", "100%", "1/7", "7/7", "256/256"])
def test_check_subsets_restic_accepts_are_accepted(value):
    settings = parse_settings(changed(runtime__fileSets__0__checkSubset=value), stack="prod")
    assert settings.runtime.file_sets[0].check_subset == value


@pytest.mark.parametrize(("key", "value"), [
    ("runtime__exporter__port", 0), ("runtime__exporter__port", 65536),
    ("runtime__databases__0__port", 70000), ("runtime__databases__0__port", -1),
])
def test_ports_outside_1_to_65535_are_refused(key, value):
    error = refused(changed(**{key: value}))
    assert error.key == f"{PROJECT}:{key.replace('__0__', '[0].').replace('__', '.')}"
    assert error.problem == f"got {value}; allowed: a whole number from 1 to 65535"


def test_a_tcp_docker_host_port_outside_the_range_is_refused():
    error = refused(changed(runtime__hosts__0__dockerHost="tcp://backup-1.internal:99999",
                            runtime__hosts__0__certPath="/etc/docker-tls"))
    assert error.key == f"{PROJECT}:runtime.hosts[0].dockerHost"
    assert "has no host and port 1-65535" in error.problem


@pytest.mark.parametrize("name", [
    "xn--backups", "sthree-backups", "sthree-configurator-x", "amzn-s3-demo-backups",
    "backups-s3alias", "backups--ol-s3", "backups--x-s3", "backups--table-s3",
])
def test_bucket_names_s3_reserves_are_refused(name):
    error = refused(changed(primary__bucketName=name))
    assert error.key == f"{PROJECT}:primary.bucketName"
    assert error.problem.startswith(f"{name!r} ")
    assert ", which S3 reserves; allowed: a name without the prefixes xn--, sthree-, " \
           "amzn-s3-demo- and the suffixes -s3alias, --ol-s3, .mrap, --x-s3, --table-s3" \
           in error.problem


def test_a_bucket_named_like_the_other_buckets_log_bucket_is_refused_by_name():
    error = refused(changed(replica__bucketName="biometrics-backups-access-logs"))
    assert str(error) == (
        f"{PROJECT}:replica.bucketName: 'biometrics-backups-access-logs' is already the "
        "access-log bucket of primary.bucketName ('biometrics-backups'); allowed: a name other "
        "than 'biometrics-backups' and 'biometrics-backups-access-logs'")
    error = refused(changed(primary__bucketName="biometrics-backups-replica-access-logs"))
    assert str(error) == (
        f"{PROJECT}:primary.bucketName: 'biometrics-backups-replica-access-logs' is already the "
        "access-log bucket of replica.bucketName ('biometrics-backups-replica'); allowed: a name "
        "other than 'biometrics-backups-replica-access-logs'")


def test_role_names_that_differ_only_in_case_are_refused():
    error = refused(changed(roles__restore="Backup-Server"))
    assert str(error) == (
        f"{PROJECT}:roles.restore: 'Backup-Server' differs only in case from roles.backup "
        "('backup-server'); IAM role names are unique regardless of case; allowed: distinct "
        "names")


def test_github_role_names_longer_than_iam_allows_are_refused():
    github = {"repository": "biometrics/backup"}
    longest = "e" * 31  # biometrics-backup-<env>-github-preview: 64 characters
    assert parse_settings(changed(github=github, environment=longest), stack="prod").github
    error = refused(changed(github=github, environment=longest + "x"))
    assert str(error) == (
        f"{PROJECT}:environment: '{longest}x' makes the GitHub role name "
        f"'biometrics-backup-{longest}x-github-preview' (65 characters); allowed: an environment "
        "of at most 31 characters (IAM role names: at most 64)")


def test_a_github_role_name_taken_by_a_store_role_is_refused():
    raw = changed(github={"repository": "biometrics/backup"},
                  roles__backup="Biometrics-Backup-prod-GitHub-Deploy")
    error = refused(raw)
    assert error.key == f"{PROJECT}:environment"
    assert "makes the GitHub role name 'biometrics-backup-prod-github-deploy', which a roles.* " \
           "name already takes" in error.problem


@pytest.mark.parametrize("key", ["scheduler", "drill", "exporter"])
def test_container_memory_below_dockers_minimum_is_refused(key):
    error = refused(changed(**{f"runtime__memoryMb__{key}": 5}))
    assert str(error) == (f"{PROJECT}:runtime.memoryMb.{key}: got 5; allowed: a whole number "
                          "of MB >= 6")
    settings = parse_settings(changed(**{f"runtime__memoryMb__{key}": 6}), stack="prod")
    assert getattr(settings.runtime, f"{key}_memory_mb") == 6


def test_an_object_lock_period_beyond_100_years_is_refused():
    error = refused(changed(objectLock__days=36501, lifecycle__noncurrentVersionDays=36501))
    assert str(error) == (f"{PROJECT}:objectLock.days: got 36501; allowed: a whole number of "
                          "days from 1 to 36500")
    # keep.maxDays must exceed the lock and is itself at most 36500 days.
    assert parse_settings(changed(objectLock__days=36499, lifecycle__noncurrentVersionDays=36499,
                                  keep={"maxDays": 36500}), stack="prod").object_lock.days == 36499


def test_a_tcp_docker_host_needs_tls_material():
    error = refused(changed(runtime__hosts__0__dockerHost="tcp://backup-1.internal:2376"))
    assert error.key == f"{PROJECT}:runtime.hosts[0].certPath"
    assert error.problem.startswith("is required for 'tcp://backup-1.internal:2376': the Docker "
                                    "API over tcp:// without TLS gives anyone on the network "
                                    "root on the host")
    settings = parse_settings(changed(runtime__hosts__0__dockerHost="tcp://backup-1.internal:2376",
                                      runtime__hosts__0__certPath="/etc/docker/tls/backup-1"),
                              stack="prod")
    assert settings.runtime.hosts[0].cert_path == "/etc/docker/tls/backup-1"
    error = refused(changed(runtime__hosts__0__certPath="/etc/docker/tls/backup-1"))
    assert error.key == f"{PROJECT}:runtime.hosts[0].certPath"
    assert error.problem.startswith("applies only to tcp:// hosts")


def test_the_tls_material_reaches_the_docker_provider(stack_run):
    run = stack_run("prod", {"runtime": {**prod()["runtime"], "hosts": [
        {**prod()["runtime"]["hosts"][0], "dockerHost": "tcp://backup-1.internal:2376",
         "certPath": "/etc/docker/tls/backup-1"},
        prod()["runtime"]["hosts"][1]]}})
    providers = {r.name: r.inputs for r in run.of_type("pulumi:providers:docker")}
    assert (providers["runtime-backup-1-docker"]["host"],
            providers["runtime-backup-1-docker"]["certPath"]) == (
        "tcp://backup-1.internal:2376", "/etc/docker/tls/backup-1")
    assert "certPath" not in providers["runtime-restore-1-docker"]


SCHEDULE_KEYS = ["runtime__databases__0__schedule", "runtime__fileSets__0__schedule",
                 "runtime__drill__schedule"]


def schedule_key(key: str) -> str:
    return f"{PROJECT}:" + key.replace("__0__", "[0].").replace("__", ".")


@pytest.mark.parametrize("key", SCHEDULE_KEYS)
@pytest.mark.parametrize(("expression", "problem"), [
    ("0 0 30 2 *", "the text '0 0 30 2 *' never fires (no such date, e.g. 30 February); allowed: "
     "a cron expression that fires every 1 h to 31 day(s)"),
    ("0 2 31 * *", "the text '0 2 31 * *' leaves 61 day(s) between two runs; allowed: runs at "
     "least 1 h and at most 31 day(s) apart"),
    ("0 0 29 2 *", "the text '0 0 29 2 *' leaves 1461 day(s) between two runs; allowed: runs at "
     "least 1 h and at most 31 day(s) apart"),
    ("*/15 * * * *", "the text '*/15 * * * *' runs again after 15 min; allowed: runs at least "
     "1 h and at most 31 day(s) apart"),
    ("0 2 * * * *", "the text '0 2 * * * *' has 6 fields; allowed: five (minute hour "
     "day-of-month month day-of-week; UTC on a host, runtime.ecs.timezone on ECS)"),
])
def test_schedules_that_never_or_rarely_or_too_often_fire_are_refused_alike(key, expression,
                                                                             problem):
    error = refused(changed(**{key: expression}))
    assert str(error) == f"{schedule_key(key)}: {problem}"


@pytest.mark.parametrize("key", SCHEDULE_KEYS)
def test_a_monthly_or_hourly_schedule_is_accepted(key):
    # (The database's cross-check with lifecycle refuses a monthly base backup on its own.)
    for expression in ("0 * * * *", "30 4 * * 1-5"):
        settings = parse_settings(changed(**{key: expression}), stack="prod")
        assert settings.runtime is not None


def test_the_agent_settings_carry_the_exporters_listen_address():
    settings = parse_settings(changed(runtime__exporter__listenAddress="10.0.3.7"), stack="prod")
    specs = {spec.name: spec for spec in container_specs.container_specs(settings)}
    assert specs["backup-exporter-restore-1"].host_address == "10.0.3.7"
    assert specs["backup-agent-restore-1"].host_address == "0.0.0.0"
    error = refused(changed(runtime__exporter__listenAddress="restore-1"))
    assert error.key == f"{PROJECT}:runtime.exporter.listenAddress"
    assert re.fullmatch(r"got the text 'restore-1'; allowed: an IP address .*", error.problem)
