"""The cost model: steady-state figures from the declared lifecycle, lock and the price table."""

from __future__ import annotations

import pytest

from compliance.costs import Volumes, cost_model, load_prices
from compliance.inventory import build_inventory
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
