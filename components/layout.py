"""The one place that names prefixes, tags and fixed identifiers of the backup store.

Everything else (policies, lifecycle, the runtime that writes backups) refers to these.
"""

from typing import Final

# What the backup agent relies on too lives in the package both sides import.
from contract.layout import POSTGRES_PREFIX as POSTGRES_PREFIX
from contract.layout import RESTIC_PREFIX as RESTIC_PREFIX
from contract.layout import RETENTION_TAG_ACTIVE as RETENTION_TAG_ACTIVE
from contract.layout import RETENTION_TAG_KEY as RETENTION_TAG_KEY

PROJECT: Final = "biometrics-backup"
TYPE_PREFIX: Final = "biometrics:backup"

WAL_KEY_PATTERN: Final = "postgres/*/wal_005/*"
BACKUP_PREFIXES: Final = (POSTGRES_PREFIX, RESTIC_PREFIX)

# GitHub Actions OIDC roles (components.github_oidc), one pair per stack environment so stacks
# can share an account.
GITHUB_ROLE_PURPOSES: Final = ("preview", "deploy")


def github_role_name(environment: str, purpose: str) -> str:
    return f"{PROJECT}-{environment}-github-{purpose}"


# Set on every KMS key the stack creates, to the stack's environment: the deploy role may create
# and manage only keys carrying it (components.oidc_policies).
STACK_TAG_KEY: Final = "biometrics-backup-stack"

ALL_OBJECTS_PREFIX: Final = ""  # lifecycle/replication filter that matches the whole bucket
