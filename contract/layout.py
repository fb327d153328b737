"""The bucket layout both sides rely on: where wal-g and restic write, and the retention tag."""

from typing import Final

# wal-g writes under postgres/<database>/ (WALG_S3_PREFIX=s3://<bucket>/postgres/<database>),
# so one bucket holds many databases and the WAL of each lives under .../wal_005/.
POSTGRES_PREFIX: Final = "postgres/"
RESTIC_PREFIX: Final = "restic/"

# The marker the user's delete-deny was about. Objects carrying it cannot lose it (policy
# DenyRetentionTagChange); `backup-agent keep` sets it together with a legal hold.
RETENTION_TAG_KEY: Final = "Retention"
RETENTION_TAG_ACTIVE: Final = "active"

# The outcome record (`backup-agent report`): one object per job or drill outcome, never
# rewritten; the roles may only create objects here (PutObject), Object Lock keeps each version.
EVIDENCE_PREFIX: Final = "evidence/"
