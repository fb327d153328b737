"""The cost model: steady-state figures from the declared lifecycle, lock and the price table."""

from __future__ import annotations

import dataclasses

import pytest

from compliance import costs
from compliance.costs import Volumes, cost_model, load_prices
from compliance.inventory import build_inventory
from components.ecs_settings import EcsSettings, TaskSize
from review.costs import main
from tests.support.resources import edit


def lines_of(model, bucket="biometrics-backups"):
    return {line.item: (round(line.quantity, 1), line.unit_price)
            for line in model.lines if line.bucket == bucket}


def test_price_table_gives_a_source_for_every_price():
    prices = load_prices()
    for entry in (*prices["storage_gb_month"].values(),
                  *prices["lifecycle_transition_per_1000_objects"].values(),
                  prices["put_requests_per_1000"], prices["inter_region_transfer_per_gb"],
                  prices["replication_time_control_per_gb"]):
        assert entry["source"]
        assert entry["price"] is None or entry["price"] > 0
    assert prices["inter_region_transfer_per_gb"]["price"] is None  # not found: said so


def test_prod_primary_bucket_at_the_default_volumes(prod_inventory):
    model = cost_model(prod_inventory)
    assert lines_of(model) == {
        "postgres/: STANDARD storage (days 0-30)": (1500.0, 0.023),
        "postgres/: GLACIER storage (days 30-90)": (3000.0, 0.0036),
        # The seed's tiers leave GLACIER after 60 of its 90 minimum days.
        "postgres/: GLACIER early deletion (60 of 90 days)": (1500.0, 0.0036),
        "postgres/: GLACIER metadata (32 KB per object)": (5.9, 0.0036),
        "postgres/: STANDARD metadata of GLACIER objects (8 KB)": (1.5, 0.023),
        "postgres/: transitions to GLACIER": (97.3, 0.05),
        # Expired at 365 days, then kept 30 days as a noncurrent version.
        "postgres/: DEEP_ARCHIVE storage (days 90-365 + 30 kept)": (15250.0, 0.00099),
        "postgres/: DEEP_ARCHIVE metadata (32 KB per object)": (29.8, 0.00099),
        "postgres/: STANDARD metadata of DEEP_ARCHIVE objects (8 KB)": (7.4, 0.023),
        "postgres/: transitions to DEEP_ARCHIVE": (97.3, 0.05),
        # Pruned after 180 days, each pruned pack kept 30 more days (noncurrent expiry).
        "restic/: STANDARD storage (days 0-180 + 30 kept)": (1050.0, 0.023),
        "PUT requests (uploads)": (107.1, 0.005),
        "replication transfer": (1672.9, None),
        "Replication Time Control": (1672.9, None),
    }
    assert round(model.total("biometrics-backups"), 2) == 100.47
    assert round(model.total(), 2) == 200.41
    assert [line.item for line in model.unpriced()] == [
        "replication transfer", "Replication Time Control"]


def test_lock_longer_than_a_short_life_keeps_pruned_data_until_it_ends(prod_declared):
    # As objectLock.days 90, noncurrentVersionDays 90 and no tiers would declare them.
    resources = edit(prod_declared, "backup-primary-object-lock",
                     lambda inputs: inputs["rule"]["defaultRetention"].update(days=90.0))

    def lifecycle(inputs):
        inputs["rules"] = [rule for rule in inputs["rules"] if not rule["id"].startswith("tier-")]
        next(rule for rule in inputs["rules"] if rule["id"] == "expire-noncurrent-versions")[
            "noncurrentVersionExpiration"]["noncurrentDays"] = 90.0

    resources = edit(resources, "backup-primary-lifecycle", lifecycle)
    model = cost_model(build_inventory(resources), Volumes(restic_retention_days=30))
    lines = lines_of(model)
    # restic prunes after 30 days; the lock (90 days from upload) keeps each pack 60 more days,
    # then noncurrent expiry (90 days after the delete) removes it: max(90, 60) = 90.
    assert lines["restic/: STANDARD storage (days 0-30 + 90 kept)"] == (600.0, 0.023)
    # No postgres/ tier: objects live postgres_retention_days (365) in STANDARD.
    assert lines["postgres/: STANDARD storage (days 0-365 + 90 kept)"] == (22750.0, 0.023)


def test_volumes_from_the_command_line(capsys):
    assert main(["--stack", "prod", "--postgres-gb-per-day", "10", "--files-gb-per-day", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Volumes: 10 GB/day under postgres/ (base backups and WAL), 1 GB/day "
                          "under restic/ (kept 180 days by prune), 16 MB objects.")
    assert "| biometrics-backups | postgres/: STANDARD storage (days 0-30) | 300.0 GB-month | " \
           "0.023 | 6.90 |" in out


@pytest.mark.parametrize("stream", ["postgres/", "restic/"])
def test_every_stream_is_priced_for_both_buckets(prod_inventory, stream):
    model = cost_model(prod_inventory)
    buckets = {line.bucket for line in model.lines if line.item.startswith(stream)}
    assert buckets == {"biometrics-backups", "biometrics-backups-replica"}


# --- Fargate: the ECS placement's tasks, from settings built directly ----------------------


def ecs_runtime(runtime, *, drill=True, exporter=True):
    """prod's runtime with its database and file set (plus a weekly one) on ECS."""
    weekly = dataclasses.replace(runtime.databases[0], name="archive", schedule="0 4 * * 0")
    sizes = {"postgres": TaskSize(1024, 2048, 21, 30), "files": TaskSize(512, 1024, 21, 20),
             "drill": TaskSize(2048, 8192, 200, 60), "exporter": TaskSize(256, 512, 21, 43800)}
    ecs = EcsSettings(cluster_name="biometrics-backup", subnets=("subnet-0123456789abcdef0",),
                      security_groups=("sg-0123456789abcdef0",),
                      image_repository="biometrics-backup-agent", image_digest=None,
                      timezone="Europe/Berlin", retry_attempts=3, max_event_age_seconds=3600,
                      flexible_window_minutes=None, task_sizes=sizes, log_retention_days=365,
                      metrics_namespace="BiometricsBackup", service_discovery=None)
    return dataclasses.replace(
        runtime, ecs=ecs,
        databases=tuple(dataclasses.replace(db, host=None)
                        for db in (*runtime.databases, weekly)),
        file_sets=tuple(dataclasses.replace(f, host=None) for f in runtime.file_sets),
        drill_host=None if drill else runtime.drill_host,
        exporter_host=None if exporter else runtime.exporter_host)


def fargate_of(model):
    return {(line.bucket, line.item): (round(line.quantity, 2), line.unit_price)
            for line in model.fargate}


def test_fargate_hours_per_task_kind_from_sizes_schedules_and_expected_minutes(
        prod_inventory, prod_settings):
    model = cost_model(prod_inventory, runtime=ecs_runtime(prod_settings.runtime))
    # Daily (365 runs a year) and weekly (52 Sundays in 2026) base backups: 417 / 12 runs a
    # month of 30 min on 1 vCPU / 2 GB; the daily file set 20 min on 0.5 vCPU / 1 GB; the daily
    # drill 60 min on 2 vCPU / 8 GB with 200 GiB, 180 above the 20 GB included; the exporter
    # 730 hours on 0.25 vCPU / 0.5 GB. 21 GiB (Fargate's smallest setting) bills 1 GB extra.
    postgres, files = ("postgres (2 job(s), 34.8 runs/month x 30 min)",
                       "files (1 job(s), 30.4 runs/month x 20 min)")
    assert fargate_of(model) == {
        (postgres, "vCPU (1 vCPU per task)"): (17.38, 0.04656),
        (postgres, "memory (2 GB per task)"): (34.75, 0.00511),
        (postgres, "ephemeral storage (21 GiB per task, 20 GB included)"): (17.38, None),
        (files, "vCPU (0.5 vCPU per task)"): (5.07, 0.04656),
        (files, "memory (1 GB per task)"): (10.14, 0.00511),
        (files, "ephemeral storage (21 GiB per task, 20 GB included)"): (10.14, None),
        ("drill (1 job(s), 30.4 runs/month x 60 min)", "vCPU (2 vCPU per task)"):
            (60.83, 0.04656),
        ("drill (1 job(s), 30.4 runs/month x 60 min)", "memory (8 GB per task)"):
            (243.33, 0.00511),
        ("drill (1 job(s), 30.4 runs/month x 60 min)",
         "ephemeral storage (200 GiB per task, 20 GB included)"): (5475.0, None),
        ("exporter (one task, all month)", "vCPU (0.25 vCPU per task)"): (182.5, 0.04656),
        ("exporter (one task, all month)", "memory (0.5 GB per task)"): (365.0, 0.00511),
        ("exporter (one task, all month)",
         "ephemeral storage (21 GiB per task, 20 GB included)"): (730.0, None),
    }
    assert model.fargate_region == "eu-central-1"
    assert model.caveats[-1].startswith(
        "Fargate is priced with eu-central-1 Linux/x86 on-demand prices where prices.json has "
        "one (the other lines are quantities); each run is assumed to take its task kind's "
        "expectedMinutes")
    assert round(model.fargate_total(), 2) == round(
        (17.375 + 5.0694 + 60.8333 + 182.5) * 0.04656
        + (34.75 + 10.1389 + 243.3333 + 365.0) * 0.00511, 2)
    assert round(model.total(), 2) == round(200.41 + model.fargate_total(), 2)
    assert [line.item for line in model.unpriced()][2:] == [
        "ephemeral storage (21 GiB per task, 20 GB included)"] * 2 + [
        "ephemeral storage (200 GiB per task, 20 GB included)",
        "ephemeral storage (21 GiB per task, 20 GB included)"]


def test_only_what_is_placed_on_ecs_is_counted(prod_inventory, prod_settings):
    hosts_only = cost_model(prod_inventory, runtime=prod_settings.runtime)
    assert hosts_only.fargate == () and hosts_only == cost_model(prod_inventory)
    model = cost_model(prod_inventory, runtime=ecs_runtime(
        prod_settings.runtime, drill=False, exporter=False))
    assert {line.bucket.split(" ")[0] for line in model.fargate} == {"postgres", "files"}


def test_a_region_without_a_fargate_price_shows_quantities(prod_declared, prod_settings):
    # The same stack with its primary bucket in eu-west-1 (no Fargate price there).
    resources = edit(prod_declared, "backup-primary-bucket",
                     lambda inputs: inputs.update(region="eu-west-1"))
    model = cost_model(build_inventory(resources), runtime=ecs_runtime(prod_settings.runtime))
    assert model.fargate and all(line.unit_price is None for line in model.fargate)
    assert model.fargate[0].source == ("not found: no Fargate price for eu-west-1 in "
                                       "compliance/prices.json")
    assert model.caveats[-1].startswith("No Fargate price for eu-west-1 was found: Fargate is "
                                        "shown as quantities; each run is assumed")


def test_fargate_in_the_report_only_with_ecs(prod_inventory, prod_settings):
    hosts = costs.as_json(cost_model(prod_inventory))
    assert "fargate" not in hosts and "fargateRegion" not in hosts
    model = cost_model(prod_inventory, runtime=ecs_runtime(prod_settings.runtime))
    twin = costs.as_json(model)
    assert twin["fargateRegion"] == "eu-central-1"
    assert twin["fargate"][0] == {
        "taskKind": "postgres (2 job(s), 34.8 runs/month x 30 min)",
        "item": "vCPU (1 vCPU per task)", "quantity": 17.375, "unit": "vCPU-hour",
        "unitPrice": 0.04656, "monthly": 0.81,
        "source": load_prices()["fargate_linux_x86"]["regions"]["eu-central-1"]["vcpu_hour"][
            "source"]}
    markdown = "\n".join(costs.as_markdown(model))
    assert ("| exporter (one task, all month) | vCPU (0.25 vCPU per task) | 182.5 vCPU-hour | "
            "0.04656 | 8.50 |") in markdown
    assert f"- **Fargate**: {model.fargate_total():,.2f} USD/month priced" in markdown


def test_fargate_prices_name_their_source():
    table = load_prices()["fargate_linux_x86"]
    assert table["included_ephemeral_storage_gb"] == {
        "value": 20, "source": table["included_ephemeral_storage_gb"]["source"]}
    for region in table["regions"].values():
        assert set(region) == {"vcpu_hour", "gb_hour", "ephemeral_storage_gb_hour"}
        for entry in region.values():
            assert entry["source"] and (entry["price"] is None or entry["price"] > 0)
