"""The backup runtime's controls: no static credentials or plaintext secrets, no write
credentials on the restore host, and nothing a restore needs in a cold storage class."""

from __future__ import annotations

import re
from typing import Final

from compliance.controls.registry import (
    CONTAINERS,
    RESTORE_CONTAINERS,
    SCHEDULED_CONTAINERS,
    Verdict,
    control,
    failed,
    passed,
)
from compliance.inventory import (
    LIFECYCLE,
    BucketView,
    ContainerView,
    Inventory,
)
from contract.layout import (
    COLD_STORAGE_CLASSES,
    FULL_BACKUP_INTERVAL_LABEL,
    POSTGRES_PREFIX,
)

STATIC_KEY_NAMES: Final = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
ACCESS_KEY: Final = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
SECRET_NAME: Final = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIALS?)$")


def _credential_problems(container: ContainerView) -> list[str]:
    problems = []
    for name, value in container.env().items():
        if name in STATIC_KEY_NAMES:
            problems.append(f"env {name} (static AWS credentials)")
        elif ACCESS_KEY.search(value):
            problems.append(f"env {name} holds an AWS access key id")
        elif SECRET_NAME.search(name) and value:
            problems.append(f"env {name} holds a plaintext secret (use a *_FILE mount)")
    for index, _ in enumerate(container.resource.get("uploads", default=[]) or []):
        content = container.resource.get("uploads", index, "content") or ""
        if ACCESS_KEY.search(str(content)) or "aws_secret_access_key" in str(content):
            problems.append(f"upload {container.resource.get('uploads', index, 'file')} holds "
                            "AWS credentials")
    return problems


@control("container-no-static-credentials", "No static credentials or plaintext secrets in "
         "any container", severity="critical", scope=CONTAINERS)
def _no_static_credentials(container: ContainerView, inventory: Inventory) -> Verdict:
    problems = _credential_problems(container)
    if problems:
        return failed(f"{container.resource.name}: {'; '.join(problems)}")
    uploads = container.resource.get("uploads", default=[]) or []
    return passed(f"{container.resource.name}: {len(container.env())} env var(s) and "
                  f"{len(uploads)} uploaded file(s), no static AWS credentials, no secret in the "
                  "environment; AWS access comes from the host's instance profile")


@control("restore-host-no-write-credentials", "No write credentials on the restore host",
         severity="critical", scope=RESTORE_CONTAINERS)
def _restore_host_credentials(container: ContainerView, inventory: Inventory) -> Verdict:
    problems = _credential_problems(container)
    env = container.env()
    problems += [f"env {name} selects other credentials than the restore instance profile"
                 for name in ("AWS_ROLE_ARN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
                              "AWS_WEB_IDENTITY_TOKEN_FILE") if name in env]
    for kind, path in (("volumes", "containerPath"), ("mounts", "target")):
        for index, _ in enumerate(container.resource.get(kind, default=[]) or []):
            target = str(container.resource.get(kind, index, path) or "")
            source = str(container.resource.get(kind, index, "hostPath")
                         or container.resource.get(kind, index, "source") or "")
            if ".aws" in target or ".aws" in source:
                problems.append(f"{kind} {source or target} mounts AWS credentials")
    if problems:
        return failed(f"{container.resource.name}: {'; '.join(problems)}")
    return passed(f"{container.resource.name}: no AWS credentials of its own (env, mounts, "
                  "uploads); it can only use the host's instance profile")


def _first_cold_day(bucket: BucketView) -> tuple[int, str] | None:
    """The earliest day a lifecycle rule moves objects under postgres/ into a cold class."""
    lifecycle = bucket.one(LIFECYCLE)
    if lifecycle is None:
        return None
    earliest: tuple[int, str] | None = None
    for index, _ in enumerate(lifecycle.get("rules", default=[]) or []):
        if lifecycle.get("rules", index, "status") != "Enabled":
            continue
        prefix = str(lifecycle.get("rules", index, "filter", "prefix") or "")
        if not (POSTGRES_PREFIX.startswith(prefix) or prefix.startswith(POSTGRES_PREFIX)):
            continue
        for step, _ in enumerate(lifecycle.get("rules", index, "transitions", default=[]) or []):
            storage = lifecycle.get("rules", index, "transitions", step, "storageClass")
            days = lifecycle.get("rules", index, "transitions", step, "days")
            if storage in COLD_STORAGE_CLASSES and days is not None:
                candidate = (int(days), f"{lifecycle.name} rule "
                             f"{lifecycle.get('rules', index, 'id')!r} → {storage}")
                earliest = min(earliest, candidate) if earliest else candidate
    return earliest


@control("rto-restorable-backup-not-cold", "Nothing the newest restorable backup needs is in a "
         "class that cannot meet the database RTO", severity="critical",
         scope=SCHEDULED_CONTAINERS)
def _rto(container: ContainerView, inventory: Inventory) -> Verdict:
    interval = float(container.labels()[FULL_BACKUP_INTERVAL_LABEL])
    # The newest full base backup (and the WAL after it) can be this old before the next one.
    for bucket in inventory.buckets_of("backup"):
        cold = _first_cold_day(bucket)
        if cold is not None and cold[0] <= interval:
            return failed(f"{container.resource.name}: full base backups every {interval:g} "
                          f"day(s), but {cold[1]} after {cold[0]} days ({bucket.label}): Glacier "
                          "restores take hours")
    return passed(f"{container.resource.name}: full base backups every {interval:g} day(s); the "
                  "newest base backup and its WAL leave STANDARD only after that")
