"""`backup-agent exporter`: Prometheus metrics from the real state of the backup repositories.

A refresh loop (decoupled from scrapes) reads S3 incrementally and the last drill's results, and
keeps a snapshot of values; a scrape only renders that snapshot, so no object in the bucket and
no file on disk can make `/metrics` fail. Every time exported is the backup's own time
(sentinel FinishTime, S3 LastModified), never the scrape time. When a refresh fails for any
reason — S3, an object the reader did not expect, an unreadable or malformed drill result — the
error is counted, `backup_exporter_s3_up` drops to 0, the last refresh time stops moving and the
last good values stay (alerts BackupExporterCannotReadBucket and BackupExporterRefreshStale).
A sentinel that does not parse, or has a missing or wrongly typed field, is counted as invalid
(`backup_postgres_invalid_sentinels`) and the newest valid one is reported.

S3 reads per refresh (the layouts: wal-g's docs/PostgreSQL.md and storage code; restic's
repository design, https://restic.readthedocs.io/en/stable/100_references.html):
- base backups: one `ListObjectsV2(Delimiter="/")` of basebackups_005/ (sentinels only, backup
  folders collapse), plus one GET of each sentinel not seen before (cached by ETag);
- WAL: `ListObjectsV2(StartAfter=<segment `margin` segments behind the newest seen>)`, so only
  new keys and a safety margin for out-of-order uploads are listed; every `full_relist_every`
  refreshes, or when the cluster's system identifier changes, a full relist;
- restic: the small snapshots/ and locks/ folders, one HEAD-like list of `config`;
- the last drill: where these settings list the drill job, its result file in the state
  directory; otherwise (the drill runs in an ECS task, or on the restore host while this
  exporter is a task) the newest drill outcomes in the bucket's outcome record
  (`evidence.LatestDrills`: a listing of the current month, and GETs only of new drill keys).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from backup_agent import evidence, records, s3, tools
from contract.agent_settings import DRILL_JOB, AgentSettings, Storage
from contract.layout import POSTGRES_PREFIX, RESTIC_PREFIX, segment_name, segment_position

log = logging.getLogger(__name__)

SENTINEL_SUFFIX = "_backup_stop_sentinel.json"

def parse_time(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class CountingClient:
    """Counts S3 requests by operation (for the benchmark and the requests metric)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.requests: dict[str, int] = {}
        client.meta.events.register("before-call.s3", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.requests[model.name] = self.requests.get(model.name, 0) + 1


@dataclass(frozen=True)
class DrilledBackup:
    """The last drill of one database or file set from one target."""

    kind: str  # postgres | files
    name: str
    success: bool
    finished: float
    duration_seconds: float


def from_state(results: records.DrillResults | None) -> tuple[DrilledBackup, ...]:
    """The drill's result file: one run, one finish time."""
    if results is None:
        return ()
    return tuple(DrilledBackup(o.kind, o.name, o.success, results.finished, o.duration_seconds)
                 for o in results.outcomes)


def from_record(outcomes: dict[tuple[str, str], evidence.Outcome]) -> tuple[DrilledBackup, ...]:
    """Outcome records, each with its own finish time."""
    return tuple(DrilledBackup(kind, name, o.success, o.finished, o.duration_seconds)
                 for (kind, name), o in outcomes.items())


@dataclass(frozen=True)
class Sentinel:
    finish_time: float
    system_identifier: int | None


def parse_sentinel(body: bytes) -> Sentinel | None:
    """The fields the exporter uses from a wal-g backup_stop_sentinel.json; None if the object
    is not JSON, is truncated, or lacks or mistypes them."""
    try:
        parsed = json.loads(body)
        finish = parse_time(parsed["FinishTime"])
        identifier = parsed.get("SystemIdentifier")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if identifier is not None and (isinstance(identifier, bool) or not isinstance(identifier,
                                                                                   int)):
        return None
    return Sentinel(finish, identifier)


@dataclass
class DatabaseState:
    base_backups: int = 0
    newest_base_backup: float | None = None  # sentinel FinishTime
    invalid_sentinels: int = 0
    system_identifier: int | None = None
    wal_newest_position: tuple[int, int] | None = None
    wal_newest_modified: float | None = None
    wal_listed: int = 0  # keys listed by the last WAL refresh
    # key -> (ETag, (FinishTime, SystemIdentifier) or None when invalid)
    sentinel_cache: dict[str, tuple[str, Sentinel | None]] = field(default_factory=dict)


@dataclass
class ResticState:
    present: bool | None = None
    snapshots: int = 0
    newest_snapshot: float | None = None
    locks: int = 0


class BucketReader:
    """Incremental reader of one bucket's wal-g and restic state."""

    def __init__(self, settings: AgentSettings, target: str, storage: Storage,
                 client: Any = None) -> None:
        self.settings = settings
        self.target = target
        self.storage = storage
        self.client = CountingClient(client or s3.client(storage, timeout=5, attempts=1))
        self.databases = {d.name: DatabaseState() for d in settings.databases}
        self.restic = ResticState()
        self.delete_markers: dict[str, int] = {}
        self.delete_markers_scanned: float | None = None
        self.delete_marker_errors = 0
        self.drill: tuple[DrilledBackup, ...] = ()  # the last drill from this target
        self.latest_drills = evidence.LatestDrills(self.client.client, storage.bucket)
        self.refreshes = 0
        self.up = False
        self.errors = 0
        self.last_error: str | None = None  # why the last refresh failed
        self.last_success: float | None = None

    def _list(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client.client.get_paginator("list_objects_v2")
        yield from paginator.paginate(Bucket=self.storage.bucket, **kwargs)

    def _sentinel(self, cache: dict[str, tuple[str, Sentinel | None]], key: str,
                  etag: str) -> Sentinel | None:
        cached = cache.get(key)
        if cached and cached[0] == etag:
            return cached[1]
        body = self.client.client.get_object(Bucket=self.storage.bucket, Key=key)["Body"].read()
        parsed = parse_sentinel(body)
        cache[key] = (etag, parsed)
        return parsed

    def refresh_database(self, name: str, state: DatabaseState) -> None:
        """Computes everything first and assigns at the end: a scrape never sees half a refresh."""
        root = self.storage.database_root(name)
        sentinels = []
        for page in self._list(Prefix=root + "basebackups_005/", Delimiter="/"):
            sentinels += [item for item in page.get("Contents", [])
                          if item["Key"].endswith(SENTINEL_SUFFIX)]
        # wal-g's order: ascending LastModified, ties in listing (name) order; newest last.
        sentinels.sort(key=lambda item: item["LastModified"])
        sentinels.reverse()
        cache = {item["Key"]: state.sentinel_cache[item["Key"]]
                 for item in sentinels if item["Key"] in state.sentinel_cache}
        invalid, newest, identifier = 0, None, state.system_identifier
        for item in sentinels:  # the newest valid sentinel; newer invalid ones are counted
            parsed = self._sentinel(cache, item["Key"], item["ETag"])
            if parsed is None:
                invalid += 1
                continue
            newest, identifier = parsed.finish_time, parsed.system_identifier
            break
        # A new cluster (new system identifier) starts WAL names again: relist from scratch.
        position = (state.wal_newest_position if identifier == state.system_identifier
                    else None)
        position, modified, listed = self._refresh_wal(root + "wal_005/", position,
                                                       state.wal_newest_modified)
        state.sentinel_cache = cache
        state.base_backups = len(sentinels)
        state.invalid_sentinels = invalid
        state.newest_base_backup = newest
        state.system_identifier = identifier
        state.wal_newest_position, state.wal_newest_modified, state.wal_listed = (
            position, modified, listed)

    def _refresh_wal(self, prefix: str, position: tuple[int, int] | None,
                     modified: float | None) -> tuple[tuple[int, int] | None, float | None, int]:
        kwargs: dict[str, Any] = {"Prefix": prefix}
        if position is not None and self.refreshes % max(self.settings.full_relist_every, 1):
            timeline, number = position
            kwargs["StartAfter"] = prefix + segment_name(
                timeline, number - self.settings.wal_relist_margin)
        else:
            position, modified = None, None
        listed = 0
        for page in self._list(**kwargs):
            for item in page.get("Contents", []):
                listed += 1
                found = segment_position(item["Key"][len(prefix):])
                if found is None:
                    continue
                position = found if position is None else max(position, found)
                stamp = item["LastModified"].timestamp()
                modified = stamp if modified is None else max(modified, stamp)
        return position, modified, listed

    def refresh_restic(self) -> None:
        prefix = RESTIC_PREFIX
        config = next(self._list(Prefix=prefix + "config", MaxKeys=1)).get("Contents", [])
        count, newest = 0, None
        for page in self._list(Prefix=prefix + "snapshots/"):
            for item in page.get("Contents", []):
                count += 1
                modified = item["LastModified"].timestamp()
                newest = modified if newest is None else max(newest, modified)
        locks = sum(len(page.get("Contents", [])) for page in self._list(Prefix=prefix + "locks/"))
        self.restic = ResticState(present=bool(config), snapshots=count, newest_snapshot=newest,
                                  locks=locks)

    def scan_delete_markers(self) -> None:
        """Current delete markers per backup prefix (restic's own lock files excluded: every
        restic run deletes its lock). A full version listing, so it runs on its own, slower
        interval; it needs s3:ListBucketVersions."""
        counts = {}
        paginator = self.client.client.get_paginator("list_object_versions")
        for prefix in (POSTGRES_PREFIX, RESTIC_PREFIX):
            counts[prefix] = sum(
                1 for page in paginator.paginate(Bucket=self.storage.bucket, Prefix=prefix)
                for marker in page.get("DeleteMarkers", [])
                if marker["IsLatest"] and not marker["Key"].startswith(RESTIC_PREFIX + "locks/"))
        self.delete_markers = counts
        self.delete_markers_scanned = time.monotonic()

    def read_drills(self) -> tuple[DrilledBackup, ...]:
        """The last drill from this target: from the state directory where the drill runs
        with these settings, else from the outcome record in this bucket (replication brings
        the outcomes a drill records in the primary)."""
        if DRILL_JOB in self.settings.jobs:
            return from_state(records.read_drill(self.settings, self.target))
        backups = [("postgres", d.name) for d in self.settings.databases] + [
            ("files", f.name) for f in self.settings.file_sets]
        return from_record(self.latest_drills.newest(self.target, backups,
                                                     dt.datetime.now(dt.UTC)))

    def read_bucket(self) -> None:
        """The wal-g and restic state of the bucket (raises what S3 raises)."""
        for name, state in self.databases.items():
            self.refresh_database(name, state)
        if self.settings.file_sets:
            self.refresh_restic()

    def refresh(self) -> bool:
        """Refresh everything exported for this target. Nothing raises out of here: a failure
        keeps the last good values, counts an error and sets `up` to 0 (the loop goes on)."""
        try:
            self.read_bucket()
            self.drill = self.read_drills()
        except Exception as error:  # S3, an unexpected object, the drill's result file
            self.up = False
            self.errors += 1
            self.last_error = tools.describe_failure(error)
            log.warning("refreshing %s (%s) failed, keeping the last known values: %s",
                        self.target, self.storage.bucket, self.last_error)
            return False
        finally:
            self.refreshes += 1
        self.up, self.last_error = True, None
        self.last_success = time.time()
        interval = self.settings.delete_marker_scan_seconds
        if interval and (self.delete_markers_scanned is None
                         or time.monotonic() - self.delete_markers_scanned >= interval):
            try:
                self.scan_delete_markers()
            except Exception as error:  # e.g. no s3:ListBucketVersions
                self.delete_marker_errors += 1
                self.delete_markers_scanned = time.monotonic()
                log.warning("delete-marker scan of %s failed: %s", self.storage.bucket,
                            tools.describe_failure(error))
        return True


class BackupCollector(Collector):
    """Renders the readers' last state, drill results included; reads neither S3 nor files."""

    def __init__(self, settings: AgentSettings, readers: list[BucketReader]) -> None:
        self.settings = settings
        self.readers = readers

    def collect(self) -> Iterator[Any]:
        yield from self._bucket_metrics()
        yield from self._drill_metrics()

    def _bucket_metrics(self) -> Iterator[Any]:
        labels = ["target", "bucket"]
        up = GaugeMetricFamily("backup_exporter_s3_up",
                               "1 if the last refresh of this target succeeded (bucket read, "
                               "drill results parsed), 0 if it failed", labels=labels)
        errors = CounterMetricFamily("backup_exporter_s3_errors",
                                     "Refreshes of this target that failed, for any reason",
                                     labels=labels)
        refreshed = GaugeMetricFamily("backup_exporter_last_refresh_timestamp_seconds",
                                      "When this target was last refreshed successfully",
                                      labels=labels)
        requests = CounterMetricFamily("backup_exporter_s3_requests",
                                       "S3 requests made by the exporter",
                                       labels=[*labels, "operation"])
        db_labels = [*labels, "database"]
        base = GaugeMetricFamily("backup_postgres_base_backup_timestamp_seconds",
                                 "FinishTime of the newest valid wal-g base backup",
                                 labels=db_labels)
        count = GaugeMetricFamily("backup_postgres_base_backups",
                                  "wal-g base backups (sentinels) in the bucket", labels=db_labels)
        invalid = GaugeMetricFamily("backup_postgres_invalid_sentinels",
                                    "Newer-than-the-newest-valid sentinels that cannot be parsed",
                                    labels=db_labels)
        wal = GaugeMetricFamily("backup_postgres_wal_archived_timestamp_seconds",
                                "LastModified of the newest archived WAL segment",
                                labels=db_labels)
        restic_present = GaugeMetricFamily("backup_restic_repository_present",
                                           "1 if the restic repository's config exists",
                                           labels=labels)
        snapshots = GaugeMetricFamily("backup_restic_snapshots",
                                      "Snapshot objects in the restic repository", labels=labels)
        snapshot_time = GaugeMetricFamily("backup_restic_snapshot_timestamp_seconds",
                                          "LastModified of the newest restic snapshot object",
                                          labels=labels)
        locks = GaugeMetricFamily("backup_restic_locks", "Lock objects in the restic repository",
                                  labels=labels)
        markers = GaugeMetricFamily("backup_s3_delete_markers",
                                    "Objects whose current version is a delete marker",
                                    labels=[*labels, "prefix"])
        marker_errors = CounterMetricFamily("backup_exporter_delete_marker_scan_errors",
                                            "Delete-marker scans that failed", labels=labels)
        for reader in self.readers:
            values = [reader.target, reader.storage.bucket]
            up.add_metric(values, 1.0 if reader.up else 0.0)
            errors.add_metric(values, reader.errors)
            if reader.last_success is not None:
                refreshed.add_metric(values, reader.last_success)
            for operation, number in sorted(reader.client.requests.items()):
                requests.add_metric([*values, operation], number)
            for name, state in reader.databases.items():
                if reader.last_success is None:
                    continue
                db_values = [*values, name]
                count.add_metric(db_values, state.base_backups)
                invalid.add_metric(db_values, state.invalid_sentinels)
                if state.newest_base_backup is not None:
                    base.add_metric(db_values, state.newest_base_backup)
                if state.wal_newest_modified is not None:
                    wal.add_metric(db_values, state.wal_newest_modified)
            marker_errors.add_metric(values, reader.delete_marker_errors)
            for prefix, number in sorted(reader.delete_markers.items()):
                markers.add_metric([*values, prefix], number)
            if reader.restic.present is not None and self.settings.file_sets:
                restic_present.add_metric(values, 1.0 if reader.restic.present else 0.0)
                snapshots.add_metric(values, reader.restic.snapshots)
                locks.add_metric(values, reader.restic.locks)
                if reader.restic.newest_snapshot is not None:
                    snapshot_time.add_metric(values, reader.restic.newest_snapshot)
        yield from (up, errors, refreshed, requests, base, count, invalid, wal, restic_present,
                    snapshots, snapshot_time, locks, markers, marker_errors)

    def _drill_metrics(self) -> Iterator[Any]:
        labels = ["target", "kind", "name"]
        success = GaugeMetricFamily("backup_drill_success",
                                    "1 if the last restore drill of this backup passed",
                                    labels=labels)
        finished = GaugeMetricFamily("backup_drill_timestamp_seconds",
                                     "When the last restore drill finished", labels=labels)
        duration = GaugeMetricFamily("backup_drill_duration_seconds",
                                     "How long the last restore drill took", labels=labels)
        for reader in self.readers:
            for drilled in reader.drill:
                values = [reader.target, drilled.kind, drilled.name]
                success.add_metric(values, 1.0 if drilled.success else 0.0)
                finished.add_metric(values, drilled.finished)
                duration.add_metric(values, drilled.duration_seconds)
        yield from (success, finished, duration)


def readers_for(settings: AgentSettings) -> list[BucketReader]:
    readers = [BucketReader(settings, "primary", settings.primary)]
    if settings.replica is not None:
        readers.append(BucketReader(settings, "replica", settings.replica))
    return readers


class RefreshLoop(threading.Thread):
    def __init__(self, collector: BackupCollector, interval: float) -> None:
        super().__init__(daemon=True, name="exporter-refresh")
        self.collector = collector
        self.interval = interval
        self.stopped = threading.Event()

    def refresh_once(self) -> None:
        for reader in self.collector.readers:
            reader.refresh()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.refresh_once()
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
