"""The bucket layout both sides rely on: where wal-g and restic write, how wal-g names WAL
segments, the retention tag, the storage classes a restore cannot read at once, and the labels
the stack puts on the agent's containers."""

from __future__ import annotations

import re
from typing import Final

# wal-g writes under postgres/<database>/ (WALG_S3_PREFIX=s3://<bucket>/postgres/<database>),
# so one bucket holds many databases and the WAL of each lives under .../wal_005/ (wal-g's
# folder for WAL, named after its storage format version).
POSTGRES_PREFIX: Final = "postgres/"
RESTIC_PREFIX: Final = "restic/"
WAL_DIRECTORY: Final = "wal_005/"
WAL_KEY_PATTERN: Final = f"{POSTGRES_PREFIX}*/{WAL_DIRECTORY}*"

# The marker the user's delete-deny was about. Objects carrying it cannot lose it (policy
# DenyRetentionTagChange); `backup-agent keep` sets it together with a legal hold.
RETENTION_TAG_KEY: Final = "Retention"
RETENTION_TAG_ACTIVE: Final = "active"

# Storage classes whose objects must be restored (hours) before they can be read.
COLD_STORAGE_CLASSES: Final = ("GLACIER", "DEEP_ARCHIVE")

# Docker labels of the agent's containers: the host profile a container runs on, and how many
# days apart its base backups are (the compliance controls read both from the declared inputs).
HOST_LABEL: Final = "biometrics-backup.host"
FULL_BACKUP_INTERVAL_LABEL: Final = "biometrics-backup.full-backup-interval-days"

# PostgreSQL WAL file names: timeline, log and segment as 8 hex digits each; 256 segments of
# 16 MiB per log id. wal-g appends its compression suffix; `.partial` marks a timeline's end.
WAL_SEGMENT: Final = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?"
                                r"(\.(lz4|zst|br|lzma|gz|lzo))?\.?$")
SEGMENTS_PER_XLOGID: Final = 256


def database_root(database: str) -> str:
    """The key prefix of one database's base backups and WAL."""
    return f"{POSTGRES_PREFIX}{database}/"


def wal_prefix(database: str) -> str:
    return f"{database_root(database)}{WAL_DIRECTORY}"


def walg_prefix(bucket: str, database: str) -> str:
    """WALG_S3_PREFIX for one database (`database` may be a placeholder such as <database>)."""
    return f"s3://{bucket}/{POSTGRES_PREFIX}{database}"


def restic_repository(bucket: str, region: str, endpoint: str | None = None) -> str:
    """restic's repository URL for the bucket (`endpoint`: a local S3, in tests)."""
    base = endpoint or f"https://s3.{region}.amazonaws.com"
    return f"s3:{base}/{bucket}/{RESTIC_PREFIX.rstrip('/')}"


def segment_position(name: str) -> tuple[int, int] | None:
    """(timeline, segment number) of a WAL file name; None for anything else."""
    match = WAL_SEGMENT.match(name)
    if not match:
        return None
    return int(match.group(1), 16), int(match.group(2), 16) * SEGMENTS_PER_XLOGID + int(
        match.group(3), 16)


def segment_name(timeline: int, number: int) -> str:
    number = max(number, 0)
    return f"{timeline:08X}{number // SEGMENTS_PER_XLOGID:08X}{number % SEGMENTS_PER_XLOGID:08X}"

# The outcome record (`backup-agent report`): one object per job or drill outcome, never
# rewritten; the roles may only create objects here (PutObject), Object Lock keeps each version.
EVIDENCE_PREFIX: Final = "evidence/"

# What a bucket or a role is for, as a tag the stack sets on it. The compliance controls, offline
# and in the CrossGuard policy pack (which sees the same inputs), recognise resources by these
# tags, never by their resource names.
BUCKET_ROLE_TAG: Final = "biometrics-backup:bucket"
BUCKET_ROLES: Final = ("backup", "log")
ROLE_PURPOSE_TAG: Final = "biometrics-backup:purpose"
ROLE_PURPOSES: Final = ("backup", "wal-archiver", "restore", "replication")
# The ECS placement's roles: a task role per task kind, the execution role, the scheduler's.
TASK_ROLE_PURPOSES: Final = ("task-postgres", "task-files", "task-drill", "task-exporter")
ECS_ROLE_PURPOSES: Final = (*TASK_ROLE_PURPOSES, "task-execution", "scheduler")
