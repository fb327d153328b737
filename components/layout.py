"""The one place that names prefixes, tags and fixed identifiers of the backup store.

Everything else (policies, lifecycle, the runtime that writes backups) refers to these.
"""

from typing import Final

# What the backup agent relies on too (prefixes, WAL naming, tags, labels) is defined in
# `contract.layout`, the package both sides import; this module holds the stack's own names.
from contract.layout import POSTGRES_PREFIX, RESTIC_PREFIX

PROJECT: Final = "biometrics-backup"
TYPE_PREFIX: Final = "biometrics:backup"

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
