"""Steady-state monthly cost of each backup bucket, from the declared lifecycle and lock settings.

A stream of `rate` GB/day written under a prefix reaches a steady state in which each storage
class holds `rate * days the data spends in it`. An object lives in STANDARD until its first
transition, then in each class until the next one, until it expires (lifecycle) or is deleted
by the tool (restic prune, after `restic_retention_days`). Versioning and Object Lock then keep
the deleted version for max(noncurrent-version days, the rest of its lock) in its last class:
that is the lock window's churn. Leaving a class before its minimum duration bills the
remaining days (early deletion). Prices come from `prices.json` (source and date per number);
a price that could not be found is reported as a quantity without an amount.

Jobs placed on ECS add Fargate's dimensions per task kind (`fargate_use`): vCPU-hours and
memory GB-hours of each run (its task size, `expectedMinutes` long, times the runs its
schedules make in a month), ephemeral storage above the 20 GB Fargate includes, and the
exporter's service all month; priced where `prices.json` has a Fargate price for the stack's
region, quantities otherwise.

    python -m review.costs --stack prod --postgres-gb-per-day 50 --files-gb-per-day 5
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from compliance.inventory import LIFECYCLE, OBJECT_LOCK, BucketView, Inventory
from components.ecs_settings import TaskSize
from components.runtime_settings import RuntimeSettings
from contract import schedule
from contract.layout import COLD_STORAGE_CLASSES, POSTGRES_PREFIX, RESTIC_PREFIX

PRICES_PATH: Final = Path(__file__).with_name("prices.json")
DAYS_PER_MONTH: Final = 365 / 12
HOURS_PER_MONTH: Final = DAYS_PER_MONTH * 24


@dataclass(frozen=True)
class Volumes:
    postgres_gb_per_day: float = 50.0  # base backups and WAL
    files_gb_per_day: float = 5.0  # new restic data after deduplication
    object_mb: float = 16.0  # a WAL segment; drives request, transition and metadata counts
    restic_retention_days: int = 180  # forget --keep-monthly 6 (the runtime sets it)
    postgres_retention_days: int = 365  # used only when no lifecycle expiration is declared


@dataclass(frozen=True)
class Line:
    bucket: str
    item: str
    quantity: float
    unit: str
    unit_price: float | None
    source: str

    @property
    def monthly(self) -> float | None:
        return None if self.unit_price is None else self.quantity * self.unit_price


@dataclass(frozen=True)
class FargateUse:
    """A month of one task kind on Fargate: how many jobs, runs and hours."""

    kind: str  # a task kind (components.ecs_settings.TASK_KINDS)
    jobs: int
    runs_per_month: float
    hours_per_run: float
    size: TaskSize

    @property
    def task_hours(self) -> float:
        return self.runs_per_month * self.hours_per_run

    @property
    def label(self) -> str:
        if self.kind == "exporter":
            return "exporter (one task, all month)"
        return (f"{self.kind} ({self.jobs} job(s), {self.runs_per_month:,.1f} runs/month x "
                f"{self.size.expected_minutes} min)")


@dataclass(frozen=True)
class CostModel:
    volumes: Volumes
    lines: tuple[Line, ...]
    price_region: str
    price_date: str
    caveats: tuple[str, ...]
    fargate: tuple[Line, ...] = ()  # by task kind (Line.bucket); none without ECS
    fargate_region: str = ""

    def total(self, bucket: str | None = None) -> float:
        return sum(line.monthly or 0.0 for line in (*self.lines, *self.fargate)
                   if bucket is None or line.bucket == bucket)

    def fargate_total(self) -> float:
        return sum(line.monthly or 0.0 for line in self.fargate)

    def unpriced(self) -> list[Line]:
        return [line for line in (*self.lines, *self.fargate) if line.unit_price is None]


def load_prices(path: Path = PRICES_PATH) -> dict[str, Any]:
    return json.loads(path.read_text())


@dataclass(frozen=True)
class _Tier:
    transitions: tuple[tuple[int, str], ...]
    expiration: int | None


def _tier_for(bucket: BucketView, prefix: str) -> _Tier:
    lifecycle = bucket.one(LIFECYCLE)
    rules = lifecycle.get("rules", default=[]) if lifecycle else []
    for rule in rules or []:
        if rule.get("status") == "Enabled" and (rule.get("filter") or {}).get("prefix") == prefix:
            transitions = tuple((int(t["days"]), str(t["storageClass"]))
                                for t in rule.get("transitions") or [])
            expiration = (rule.get("expiration") or {}).get("days")
            return _Tier(transitions, int(expiration) if expiration else None)
    return _Tier((), None)


def _noncurrent_days(bucket: BucketView) -> int:
    lifecycle = bucket.one(LIFECYCLE)
    for rule in (lifecycle.get("rules", default=[]) if lifecycle else []) or []:
        days = (rule.get("noncurrentVersionExpiration") or {}).get("noncurrentDays")
        if rule.get("status") == "Enabled" and days and not (rule.get("filter") or {}).get(
                "prefix"):
            return int(days)
    return 0  # no expiry: noncurrent versions would stay forever; reported as a caveat


def _lock_days(bucket: BucketView) -> int:
    lock = bucket.one(OBJECT_LOCK)
    if lock is None:
        return 0
    days = lock.get("rule", "defaultRetention", "days")
    years = lock.get("rule", "defaultRetention", "years")
    return int(days or 0) + 365 * int(years or 0)


def _stream_lines(bucket: BucketView, stream: str, rate: float, tier: _Tier, lifetime: int,
                  volumes: Volumes, prices: dict[str, Any]) -> list[Line]:
    """Storage per class, early deletion, transitions and archive metadata of one stream."""
    lines: list[Line] = []
    storage = prices["storage_gb_month"]
    minimum = prices["minimum_storage_days"]
    # Kept after deletion: noncurrent expiry, but never before the version's lock ends.
    kept = max(_noncurrent_days(bucket), _lock_days(bucket) - lifetime, 0)
    starts = [0, *(days for days, _ in tier.transitions)]
    classes = ["STANDARD", *(storage_class for _, storage_class in tier.transitions)]
    ends = [*starts[1:], lifetime]
    objects_per_day = rate * 1024 / volumes.object_mb
    for index, (storage_class, start, end) in enumerate(zip(classes, starts, ends, strict=True)):
        last = index == len(classes) - 1
        days = max(end - start, 0) + (kept if last else 0)
        price = storage[storage_class]
        tail = f" + {kept} kept" if last and kept else ""
        lines.append(Line(bucket.label, f"{stream}: {storage_class} storage "
                          f"(days {start}-{end}{tail})", rate * days, "GB-month", price["price"],
                          price["source"]))
        shortfall = minimum.get(storage_class, 0) - days
        if shortfall > 0:
            lines.append(Line(bucket.label, f"{stream}: {storage_class} early deletion "
                              f"({days} of {minimum[storage_class]} days)", rate * shortfall,
                              "GB-month billed", price["price"],
                              "prorated storage for the remaining days; " + minimum["source"]))
        if storage_class in COLD_STORAGE_CLASSES:
            count = objects_per_day * days
            metadata = prices["glacier_metadata_kb_per_object"]
            lines.append(Line(bucket.label, f"{stream}: {storage_class} metadata "
                              f"({metadata['archive_kb']} KB per object)",
                              count * metadata["archive_kb"] / 1024 ** 2, "GB-month",
                              price["price"], metadata["source"]))
            lines.append(Line(bucket.label, f"{stream}: STANDARD metadata of {storage_class} "
                              f"objects ({metadata['standard_kb']} KB)",
                              count * metadata["standard_kb"] / 1024 ** 2, "GB-month",
                              storage["STANDARD"]["price"], metadata["source"]))
        if index > 0:
            fee = prices["lifecycle_transition_per_1000_objects"].get(storage_class)
            lines.append(Line(bucket.label, f"{stream}: transitions to {storage_class}",
                              objects_per_day * DAYS_PER_MONTH / 1000, "1000 objects",
                              fee["price"] if fee else None,
                              fee["source"] if fee else "not found"))
    return lines


def fargate_use(runtime: RuntimeSettings | None) -> list[FargateUse]:
    """Each task kind with work on ECS: its jobs' runs in a month (their schedules) of
    `expectedMinutes` each; the exporter's service runs one task all month."""
    if runtime is None or runtime.ecs is None:
        return []
    schedules = {
        "postgres": [db.schedule for db in runtime.databases if db.host is None],
        "files": [file_set.schedule for file_set in runtime.file_sets if file_set.host is None],
        "drill": [runtime.drill_schedule] if runtime.drill_host is None else [],
    }
    sizes = runtime.ecs.task_sizes
    uses = [FargateUse(kind, len(crons), sum(schedule.yearly_runs(c) for c in crons) / 12,
                       sizes[kind].expected_minutes / 60, sizes[kind])
            for kind, crons in schedules.items() if crons]
    if runtime.exporter_host is None:
        uses.append(FargateUse("exporter", 1, 1, HOURS_PER_MONTH, sizes["exporter"]))
    return uses


def fargate_lines(uses: list[FargateUse], region: str, prices: dict[str, Any]) -> list[Line]:
    """vCPU-hours, memory GB-hours and ephemeral storage above the included amount, per task
    kind; unpriced (a quantity) where prices.json has no Fargate price for `region`."""
    table = prices["fargate_linux_x86"]
    regional = table["regions"].get(region, {})
    included = table["included_ephemeral_storage_gb"]["value"]
    missing = {"price": None, "source": f"not found: no Fargate price for {region} in "
                                        "compliance/prices.json"}

    def line(use: FargateUse, item: str, quantity: float, unit: str, price: str) -> Line:
        entry = regional.get(price, missing)
        return Line(use.label, item, quantity, unit, entry["price"], entry["source"])

    lines: list[Line] = []
    for use in uses:
        lines.append(line(use, f"vCPU ({use.size.cpu / 1024:g} vCPU per task)",
                          use.task_hours * use.size.cpu / 1024, "vCPU-hour", "vcpu_hour"))
        lines.append(line(use, f"memory ({use.size.memory_mib / 1024:g} GB per task)",
                          use.task_hours * use.size.memory_mib / 1024, "GB-hour", "gb_hour"))
        extra = use.size.ephemeral_storage_gib - included
        if extra > 0:
            lines.append(line(use, f"ephemeral storage ({use.size.ephemeral_storage_gib} GiB "
                                   f"per task, {included} GB included)",
                              use.task_hours * extra, "GB-hour", "ephemeral_storage_gb_hour"))
    return lines


def _price_region(inventory: Inventory) -> str:
    """Where the ECS tasks run: the region of the backup bucket written directly (the
    provider's region)."""
    destinations = inventory.replication_destinations()
    return next((b.region for b in inventory.buckets_of("backup")
                 if b.label not in destinations and b.region), "")


def cost_model(inventory: Inventory, volumes: Volumes = Volumes(),
               prices: dict[str, Any] | None = None,
               runtime: RuntimeSettings | None = None) -> CostModel:
    prices = prices or load_prices()
    destinations = inventory.replication_destinations()
    lines: list[Line] = []
    caveats = [f"Every region is priced with {prices['region_priced']} list prices: "
               + "; ".join(f"{region}: {why}" for region, why in
                           prices["regions_not_found"].items())]
    for bucket in inventory.buckets_of("backup"):
        postgres = _tier_for(bucket, POSTGRES_PREFIX)
        lifetime = postgres.expiration or volumes.postgres_retention_days
        lines += _stream_lines(bucket, POSTGRES_PREFIX, volumes.postgres_gb_per_day, postgres,
                               lifetime, volumes, prices)
        restic = _tier_for(bucket, RESTIC_PREFIX)
        lines += _stream_lines(bucket, RESTIC_PREFIX, volumes.files_gb_per_day, restic,
                               min(volumes.restic_retention_days,
                                   restic.expiration or volumes.restic_retention_days),
                               volumes, prices)
        if _noncurrent_days(bucket) == 0:
            caveats.append(f"{bucket.label}: no NoncurrentVersionExpiration; deleted versions "
                           "stay billed forever (not in the figures)")
        if bucket.label not in destinations:
            put = prices["put_requests_per_1000"]
            objects = (volumes.postgres_gb_per_day + volumes.files_gb_per_day) * 1024 \
                / volumes.object_mb * DAYS_PER_MONTH
            lines.append(Line(bucket.label, "PUT requests (uploads)", objects / 1000,
                              "1000 requests", put["price"], put["source"]))
            if destinations:
                gb = (volumes.postgres_gb_per_day + volumes.files_gb_per_day) * DAYS_PER_MONTH
                for key, item in (("inter_region_transfer_per_gb", "replication transfer"),
                                  ("replication_time_control_per_gb",
                                   "Replication Time Control")):
                    entry = prices[key]
                    lines.append(Line(bucket.label, item, gb, "GB", entry["price"],
                                      entry["source"]))
    caveats += [
        "Not modelled: restic prune repacking partly used packs (more churn), restic lock files "
        "(a few bytes each, every version kept through the lock window), the temp/ prefix, "
        "the access-log buckets, GET/LIST requests and retrievals, replication PUTs in the "
        "replica, KMS requests (S3 Bucket Key keeps them few).",
        "wal-g's own retention (the runtime's retainFull: `wal-g delete retain FULL n`) is not "
        "read: postgres/ objects are assumed to live until their lifecycle expiration, an upper "
        "bound. With daily full backups and retainFull 7, wal-g deletes them after about a week "
        "and the lifecycle transitions never apply to them.",
    ]
    uses = fargate_use(runtime)
    region = _price_region(inventory)
    if uses:
        priced = (f"Fargate is priced with {region} Linux/x86 on-demand prices where "
                  "prices.json has one (the other lines are quantities)"
                  if region in prices["fargate_linux_x86"]["regions"] else
                  f"No Fargate price for {region} was found: Fargate is shown as quantities")
        caveats.append(
            f"{priced}; each run is assumed to take its task kind's expectedMinutes (Fargate "
            "bills per second, at least one minute); retries and runs started by hand are not "
            "counted, nor CloudWatch Logs ingestion, Container Insights metrics, ECR storage, "
            "Secrets Manager, KMS requests or network traffic (NAT, endpoints).")
    return CostModel(volumes, tuple(lines), prices["region_priced"], prices["compiled"],
                     tuple(caveats), tuple(fargate_lines(uses, region, prices)), region)


def _row(line: Line) -> str:
    price = "not found" if line.unit_price is None else f"{line.unit_price:g}"
    monthly = "—" if line.monthly is None else f"{line.monthly:,.2f}"
    return (f"| {line.bucket} | {line.item} | {line.quantity:,.1f} {line.unit} | {price} | "
            f"{monthly} |")


def as_markdown(model: CostModel) -> list[str]:
    v = model.volumes
    lines = [f"Volumes: {v.postgres_gb_per_day:g} GB/day under postgres/ (base backups and WAL), "
             f"{v.files_gb_per_day:g} GB/day under restic/ (kept {v.restic_retention_days} days "
             f"by prune), {v.object_mb:g} MB objects. Prices: {model.price_region} list prices "
             f"(compliance/prices.json, compiled {model.price_date}, a source per price); month "
             f"= {DAYS_PER_MONTH:.2f} days.", "",
             "| Bucket | Item | Quantity | Unit price (USD) | USD/month |",
             "|---|---|---:|---:|---:|"]
    lines += [_row(line) for line in model.lines]
    if model.fargate:
        lines += ["", f"Fargate ({model.fargate_region}, Linux/x86 on-demand), per task kind:",
                  "", "| Task kind | Item | Quantity | Unit price (USD) | USD/month |",
                  "|---|---|---:|---:|---:|", *(_row(line) for line in model.fargate)]
    buckets = dict.fromkeys(line.bucket for line in model.lines)
    lines += ["", *(f"- **{bucket}**: {model.total(bucket):,.2f} USD/month priced"
                    for bucket in buckets),
              *([f"- **Fargate**: {model.fargate_total():,.2f} USD/month priced"]
                if model.fargate else []),
              f"- **Total priced**: {model.total():,.2f} USD/month"
              + (f", plus {len(model.unpriced())} line(s) without a price (quantities above)"
                 if model.unpriced() else ""), "", "Caveats:", "",
              *(f"- {caveat}" for caveat in model.caveats)]
    return lines


def _line_json(line: Line, group: str) -> dict[str, Any]:
    return {group: line.bucket, "item": line.item, "quantity": round(line.quantity, 3),
            "unit": line.unit, "unitPrice": line.unit_price,
            "monthly": None if line.monthly is None else round(line.monthly, 2),
            "source": line.source}


def as_json(model: CostModel) -> dict[str, Any]:
    """The Fargate keys are there only when the stack places work on ECS."""
    fargate = {"fargateRegion": model.fargate_region,
               "fargate": [_line_json(line, "taskKind") for line in model.fargate]}
    return {
        "volumes": model.volumes.__dict__,
        "priceRegion": model.price_region,
        "priceDate": model.price_date,
        "lines": [_line_json(line, "bucket") for line in model.lines],
        **(fargate if model.fargate else {}),
        "totalPriced": round(model.total(), 2),
        "caveats": list(model.caveats),
    }
