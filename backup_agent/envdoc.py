"""Every environment variable the agent hands to a tool, with where the tool documents it.

Tests check that the agent's tool environments and the containers' `envs` use only these.
"""

from typing import Final

WALG_STORAGES = "wal-g v3.0.9 docs/STORAGES.md (S3 section)"
WALG_POSTGRES = "wal-g v3.0.9 docs/PostgreSQL.md (connection: libpq environment variables)"
LIBPQ = "PostgreSQL 15 docs, libpq-envars"
RESTIC_ENV = "restic 0.14 doc/040_backup.rst, 'Environment Variables'"

DOCUMENTED_ENV: Final = {
    "WALG_S3_PREFIX": WALG_STORAGES,
    "AWS_REGION": WALG_STORAGES,
    "AWS_ENDPOINT": WALG_STORAGES,
    "AWS_S3_FORCE_PATH_STYLE": WALG_STORAGES,
    "S3_ENABLE_VERSIONING": WALG_STORAGES,
    "WALG_COMPRESSION_METHOD": "wal-g v3.0.9 docs/README.md (compression); "
                               "internal/config/config.go",
    "PGHOST": WALG_POSTGRES + "; " + LIBPQ,
    "PGPORT": WALG_POSTGRES + "; " + LIBPQ,
    "PGUSER": WALG_POSTGRES + "; " + LIBPQ,
    "PGDATABASE": LIBPQ,
    "PGPASSFILE": WALG_POSTGRES + "; " + LIBPQ,
    "RESTIC_REPOSITORY": RESTIC_ENV,
    "RESTIC_PASSWORD_FILE": RESTIC_ENV,
    "RESTIC_CACHE_DIR": RESTIC_ENV,
    "AWS_DEFAULT_REGION": RESTIC_ENV,
}
