"""The one place that names prefixes, tags and fixed identifiers of the backup store.

Everything else (policies, lifecycle, the runtime that writes backups) refers to these.
"""

from typing import Final

PROJECT: Final = "biometrics-backup"
TYPE_PREFIX: Final = "biometrics:backup"

# wal-g writes under postgres/<database>/ (WALG_S3_PREFIX=s3://<bucket>/postgres/<database>),
# so one bucket holds many databases and the WAL of each lives under .../wal_005/.
POSTGRES_PREFIX: Final = "postgres/"
WAL_KEY_PATTERN: Final = "postgres/*/wal_005/*"
RESTIC_PREFIX: Final = "restic/"
TEMP_PREFIX: Final = "temp/"
BACKUP_PREFIXES: Final = (POSTGRES_PREFIX, RESTIC_PREFIX)

# The marker the user's delete-deny was about. Objects carrying it cannot lose it (policy
# DenyRetentionTagChange); the backup runtime sets it together with a legal hold.
RETENTION_TAG_KEY: Final = "Retention"
RETENTION_TAG_ACTIVE: Final = "active"

# Set on every KMS key the stack creates, to the stack's environment: the deploy role may create
# and manage only keys carrying it (components.oidc_policies).
STACK_TAG_KEY: Final = "biometrics-backup-stack"

ALL_OBJECTS_PREFIX: Final = ""  # lifecycle/replication filter that matches the whole bucket
