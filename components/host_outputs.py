"""What the hosts this package does not manage need from it (a stack output and README)."""

from __future__ import annotations

from typing import Any

from components.settings import StackSettings
from contract import layout

# RPO of continuous archiving: PostgreSQL switches WAL segments at least this often under load.
ARCHIVE_TIMEOUT_SECONDS = 60


def host_settings(settings: StackSettings) -> dict[str, Any]:
    primary = settings.primary
    roles = settings.roles
    walg_prefix = layout.walg_prefix(primary.bucket_name, "<database>")
    restic_repository = layout.restic_repository(primary.bucket_name, primary.region)
    result: dict[str, Any] = {
        "databaseHosts": {
            "instanceProfile": roles.wal_archiver,
            "environment": {"WALG_S3_PREFIX": walg_prefix, "AWS_REGION": primary.region},
            "postgresql.conf": {
                "archive_mode": "on",
                "archive_command": "wal-g wal-push %p",
                "archive_timeout": f"{ARCHIVE_TIMEOUT_SECONDS}s",
            },
        },
        "backupHosts": {
            "instanceProfile": roles.backup,
            "environment": {
                "WALG_S3_PREFIX": walg_prefix,
                "AWS_REGION": primary.region,
                "RESTIC_REPOSITORY": restic_repository,
                "AWS_DEFAULT_REGION": primary.region,
            },
        },
        "restoreHost": {"instanceProfile": roles.restore},
        # Containers reach IMDSv2 through one extra network hop.
        "imds": {"httpTokens": "required", "httpPutResponseHopLimit": 2},
    }
    if settings.replica is not None:
        result["restoreHost"]["replica"] = {
            "bucket": settings.replica.bucket_name,
            "region": settings.replica.region,
        }
    return result
