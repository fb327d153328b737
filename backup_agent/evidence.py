"""The outcome record: every backup job run and every drill outcome, one JSON object each under
`evidence/<YYYY>/<MM>/` in the bucket, for `backup-agent report`.

The backup and restore roles may only create objects there (s3:PutObject on evidence/*, no
delete, no retention or tag change); the bucket's default Object Lock (COMPLIANCE) keeps every
version, and nobody may delete a version. An outcome is never rewritten: each has its own key,
and a key with more than one version (someone wrote it again) is reported as rewritten.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import re
import socket
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from backup_agent import s3, tools
from contract.agent_settings import AgentSettings, Storage
from contract.layout import EVIDENCE_PREFIX
from contract.reader import InvalidSetting, Reader

log = logging.getLogger(__name__)
KINDS = ("backup", "drill")


class EvidenceError(InvalidSetting):
    """An object under evidence/ is not an outcome this agent wrote; `key` names it."""


@dataclass(frozen=True)
class Outcome:
    kind: str  # backup | drill
    job: str  # postgres:<db>, files:<set> (backups); postgres:<db>, files:<set> drilled
    target: str  # the bucket it used: primary | replica
    started: float
    finished: float
    success: bool
    detail: str
    restore_point: str = ""  # the base backup or snapshot taken or restored
    pick: str = ""  # a drill's random-within pick id
    tool_version: str = ""
    host: str = ""

    @property
    def duration_seconds(self) -> float:
        return self.finished - self.started


def key_of(outcome: Outcome) -> str:
    finished = dt.datetime.fromtimestamp(outcome.finished, dt.UTC)
    job = outcome.job.replace(":", "-")
    return (f"{EVIDENCE_PREFIX}{finished:%Y/%m}/{finished:%Y-%m-%dT%H-%M-%SZ}-{outcome.kind}-"
            f"{job}-{uuid.uuid4().hex[:8]}.json")


@functools.cache
def tool_version(binary: str) -> str:
    """`<tool> --version`'s first line, once per process; "unknown" if it cannot say."""
    try:
        result = tools.run([binary, "version" if "restic" in binary else "--version"], {},
                           check=False, timeout=30)
    except OSError:
        return "unknown"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if result.returncode == 0 and lines else "unknown"


@functools.cache
def _recording_client(storage: Storage) -> Any:
    """One client per bucket for the process: the scheduler records every job's outcome, and
    building a boto3 client (its service model, endpoint rules, a new connection pool) costs
    more than the PutObject it sends."""
    return s3.client(storage)


def record(settings: AgentSettings, outcome: Outcome) -> str | None:
    """Append the outcome to the record in the primary bucket (replication copies it; the
    replica accepts writes from replication only), also for a drill from the replica; the key,
    or None if it could not be written (logged as an error: the job's own result stands, the
    report shows the gap)."""
    outcome = Outcome(**{**asdict(outcome), "host": outcome.host or socket.gethostname()})
    key = key_of(outcome)
    try:
        _recording_client(settings.primary).put_object(
            Bucket=settings.primary.bucket, Key=key,
            # Empty texts are left out: `parse` reads an absent one as "".
            Body=json.dumps({k: v for k, v in asdict(outcome).items() if v != ""},
                            sort_keys=True).encode(),
            ContentType="application/json")
    except Exception as error:  # S3 down or access denied: never hide the job's own outcome
        log.error("outcome of %s %s not recorded: %s", outcome.kind, outcome.job,
                  tools.describe_failure(error))
        return None
    return key


def parse(key: str, data: Any) -> Outcome:
    if not isinstance(data, dict):
        raise EvidenceError(key, "is not a JSON object")
    reader = Reader(key, data, EvidenceError)
    reader.reject_unknown(tuple(Outcome.__dataclass_fields__))
    return Outcome(kind=reader.choice("kind", KINDS), job=reader.string("job", required=True),
                   target=reader.choice("target", ("primary", "replica")),
                   started=reader.number("started"), finished=reader.number("finished"),
                   success=reader.boolean("success"), detail=reader.string("detail", ""),
                   restore_point=reader.string("restore_point", ""),
                   pick=reader.string("pick", ""),
                   tool_version=reader.string("tool_version", ""),
                   host=reader.string("host", ""))


@dataclass(frozen=True)
class Month:
    outcomes: tuple[Outcome, ...]
    rewritten: tuple[str, ...]  # keys written more than once
    unreadable: tuple[str, ...]  # keys that are not an outcome, with the reason


def read_month(storage: Storage, year: int, month: int) -> Month:
    """Every outcome recorded in the bucket for that month (by finish time)."""
    client = s3.client(storage)
    prefix = f"{EVIDENCE_PREFIX}{year:04d}/{month:02d}/"
    versions: dict[str, int] = {}
    for page in client.get_paginator("list_object_versions").paginate(
            Bucket=storage.bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            versions[version["Key"]] = versions.get(version["Key"], 0) + 1
        for marker in page.get("DeleteMarkers", []):
            versions[marker["Key"]] = versions.get(marker["Key"], 0) + 1
    outcomes, unreadable = [], []
    for key in sorted(versions):
        try:
            body = client.get_object(Bucket=storage.bucket, Key=key)["Body"].read()
            outcomes.append(parse(key, json.loads(body)))
        except (EvidenceError, ValueError) as error:
            unreadable.append(f"{key}: {error}")
        except Exception as error:  # a deleted (marked) key cannot be read: say so
            unreadable.append(f"{key}: {tools.describe_failure(error)}")
    return Month(tuple(sorted(outcomes, key=lambda o: o.finished)),
                 tuple(key for key, count in sorted(versions.items()) if count > 1),
                 tuple(unreadable))


# --- the newest drill outcomes, where the drill's state directory is out of reach ----------

# key_of's drill keys: `<finished>-drill-<kind>-<name>-<8 hex>.json` (the job's ":" as "-").
_DRILL_KEY = re.compile(r"[^/]+-drill-(?P<kind>postgres|files)-(?P<name>[a-z0-9-]+)"
                        r"-[0-9a-f]{8}\.json")
# How far back the newest drill of a backup is looked for: a year and the month it began.
MONTHS_SEARCHED = 13
# A month's listing is kept once no outcome can land there any more (the record is written
# right after the outcome's finish time, which names the month).
_MONTH_SETTLED = dt.timedelta(days=1)


def _month_before(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def _month_start(year: int, month: int) -> dt.datetime:
    return dt.datetime(year, month, 1, tzinfo=dt.UTC)


class LatestDrills:
    """The newest drill outcome of each backup from one target, read from the outcome record
    in one bucket: where the drill ran elsewhere (an ECS task's scratch storage is gone when it
    stops, the restore host's state volume is not the exporter task's). The keys sort by
    finish time, so each month is read newest first and stops at the first match; settled
    months are listed once, outcomes (never rewritten) fetched once."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket
        self._settled: dict[tuple[int, int], list[str]] = {}
        self._outcomes: dict[str, Outcome | None] = {}  # None: not an outcome (logged once)

    def _keys(self, year: int, month: int, now: dt.datetime) -> list[str]:
        if (year, month) in self._settled:
            return self._settled[(year, month)]
        keys = [item["Key"] for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=f"{EVIDENCE_PREFIX}{year:04d}/{month:02d}/")
                for item in page.get("Contents", [])]
        following = _month_start(year + 1, 1) if month == 12 else _month_start(year, month + 1)
        if now >= following + _MONTH_SETTLED:
            self._settled[(year, month)] = keys
        return keys

    def _outcome(self, key: str) -> Outcome | None:
        if key not in self._outcomes:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            try:
                self._outcomes[key] = parse(key, json.loads(body))
            except (EvidenceError, ValueError) as error:  # it stays there: Object Lock
                log.warning("%s in %s is not a drill outcome, skipped: %s", key, self.bucket,
                            error)
                self._outcomes[key] = None
        return self._outcomes[key]

    def newest(self, target: str, backups: Sequence[tuple[str, str]],
               now: dt.datetime) -> dict[tuple[str, str], Outcome]:
        """For each (kind, name) of `backups`, its newest drill outcome from `target` within
        MONTHS_SEARCHED months; backups never drilled there are absent."""
        wanted, found = set(backups), {}
        year, month = now.year, now.month
        for _ in range(MONTHS_SEARCHED):
            if len(found) == len(wanted):
                break
            for key in sorted(self._keys(year, month, now), reverse=True):
                match = _DRILL_KEY.fullmatch(key.rsplit("/", 1)[-1])
                backup = (match["kind"], match["name"]) if match else None
                if backup is None or backup in found or backup not in wanted:
                    continue
                outcome = self._outcome(key)
                if (outcome is not None and outcome.kind == "drill"
                        and outcome.target == target and outcome.job == ":".join(backup)):
                    found[backup] = outcome
            year, month = _month_before(year, month)
        return found
