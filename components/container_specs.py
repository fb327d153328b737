"""Pure builders for the backup runtime's containers and the agent settings file each host gets.

Plain data from typed settings; `BackupContainers` only wires it to pulumi-docker. Secrets
appear here only as the *names* of `pulumi config set --secret` keys and the paths their files
are mounted at.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from components.runtime_settings import DockerHost, RuntimeSettings, schedule_interval_days
from components.settings import StackSettings

SETTINGS_PATH: Final = "/etc/backup-agent/settings.json"
STATE_DIR: Final = "/var/lib/backup-agent"
SECRETS_DIR: Final = "/run/secrets"
AGENT_UID: Final = 10001  # the image's non-root user (docker/backup-agent/Dockerfile)
CONTAINER_METRICS_PORT: Final = 8080
SCHEDULER_HOST_PORT: Final = 9101
LOG_OPTIONS: Final = {"max-size": "10m", "max-file": "5"}
# Labels the compliance controls read (compliance/controls.py keeps the same names).
HOST_LABEL: Final = "biometrics-backup.host"
FULL_BACKUP_INTERVAL_LABEL: Final = "biometrics-backup.full-backup-interval-days"


@dataclass(frozen=True)
class SecretFile:
    path: str
    secret: str  # resticPassword | webhookUrl | databasePasswords.<database>


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    host: str
    command: tuple[str, ...]
    settings_json: str
    secret_files: tuple[SecretFile, ...]
    read_only_binds: tuple[str, ...]  # host path == container path, mounted read-only
    state_read_only: bool
    host_port: int
    memory_mb: int
    labels: tuple[tuple[str, str], ...] = ()
    envs: tuple[str, ...] = ()

    @property
    def healthcheck(self) -> list[str]:
        return ["CMD", "python3", "-c", "import urllib.request as r; r.urlopen("
                f"'http://127.0.0.1:{CONTAINER_METRICS_PORT}/metrics', timeout=5)"]


def restic_secret() -> SecretFile:
    return SecretFile(f"{SECRETS_DIR}/restic-password", "resticPassword")


def database_secret(database: str) -> SecretFile:
    return SecretFile(f"{SECRETS_DIR}/db-{database}-password", f"databasePasswords.{database}")


def webhook_secret() -> SecretFile:
    return SecretFile(f"{SECRETS_DIR}/webhook-url", "webhookUrl")


def _storage(bucket: Any) -> dict[str, str]:
    return {"bucket": bucket.bucket_name, "region": bucket.region}


def agent_settings_document(stack: StackSettings, host: DockerHost) -> dict[str, Any]:
    """What `backup-agent` reads on `host` (backup_agent.config.parse)."""
    runtime = stack.runtime
    assert runtime is not None
    backup_host = host.profile == "backup"
    databases = [d for d in runtime.databases if d.host == host.name or not backup_host]
    file_sets = [f for f in runtime.file_sets if f.host == host.name or not backup_host]
    jobs = [f"postgres:{d.name}" for d in databases] + [f"files:{f.name}" for f in file_sets]
    if not backup_host:
        jobs = ["drill"] if host.name == runtime.drill_host else []
    document: dict[str, Any] = {
        "role": host.profile,
        "primary": _storage(stack.primary),
        "databases": [{
            "name": d.name, "host": d.address, "port": d.port, "user": d.user,
            "dbname": d.dbname, "tables": list(d.tables), "retainFull": d.retain_full,
            "schedule": d.schedule, "rpoSeconds": d.rpo_seconds, "compression": d.compression,
            **({"passwordFile": database_secret(d.name).path} if backup_host else {}),
        } for d in databases],
        "fileSets": [{
            "name": f.name, "paths": list(f.paths), "tags": list(f.tags), "hostname": f.hostname,
            "keep": {"daily": f.keep.daily, "weekly": f.keep.weekly, "monthly": f.keep.monthly},
            "checkSubset": f.check_subset, "schedule": f.schedule, "rpoSeconds": f.rpo_seconds,
        } for f in file_sets],
        "jobs": jobs,
        "drillSchedule": runtime.drill_schedule,
        "stateDir": STATE_DIR,
        "retry": {"attempts": runtime.retry_attempts,
                  "delaySeconds": runtime.retry_delay_seconds},
        "metricsPort": CONTAINER_METRICS_PORT,
    }
    if backup_host:
        document["keep"] = {"protection": stack.keep.protection, "maxDays": stack.keep.max_days}
    if file_sets:
        document["resticPasswordFile"] = restic_secret().path
    if runtime.webhook:
        document["webhookUrlFile"] = webhook_secret().path
    if not backup_host and stack.replica is not None:
        document["replica"] = _storage(stack.replica)
    return document


def container_specs(stack: StackSettings) -> list[ContainerSpec]:
    """Per host: a scheduler for the jobs placed there; on the exporter's host the exporter."""
    runtime = stack.runtime
    assert runtime is not None
    specs = []
    for host in runtime.hosts:
        document = agent_settings_document(stack, host)
        settings_json = json.dumps(document, indent=2, sort_keys=True)
        secrets: list[SecretFile] = []
        if document.get("resticPasswordFile"):
            secrets.append(restic_secret())
        if host.profile == "backup":
            secrets += [database_secret(d["name"]) for d in document["databases"]]
        if runtime.webhook:
            secrets.append(webhook_secret())
        labels = [(HOST_LABEL, host.profile)]
        intervals = [schedule_interval_days(d.schedule) for d in runtime.databases
                     if d.host == host.name]
        if intervals:
            labels.append((FULL_BACKUP_INTERVAL_LABEL, str(max(intervals))))
        if document["jobs"]:
            specs.append(ContainerSpec(
                name=f"backup-agent-{host.name}",
                host=host.name,
                command=("schedule",),
                settings_json=settings_json,
                secret_files=tuple(secrets),
                read_only_binds=tuple(sorted({p for f in document["fileSets"] for p in f["paths"]}
                                             if host.profile == "backup" else ())),
                state_read_only=False,
                host_port=SCHEDULER_HOST_PORT,
                memory_mb=(runtime.drill_memory_mb if "drill" in document["jobs"]
                           else runtime.scheduler_memory_mb),
                labels=tuple(labels),
            ))
        if host.name == runtime.exporter_host:
            specs.append(ContainerSpec(
                name=f"backup-exporter-{host.name}",
                host=host.name,
                command=("exporter",),
                settings_json=settings_json,
                secret_files=(),  # reads object listings and the drill's results only
                read_only_binds=(),
                state_read_only=True,
                host_port=runtime.metrics_port,
                memory_mb=runtime.exporter_memory_mb,
                labels=((HOST_LABEL, host.profile),),
            ))
    return specs


def required_secrets(runtime: RuntimeSettings) -> list[str]:
    """The secret config keys a stack with this runtime must have."""
    keys = ["resticPassword"] if runtime.file_sets else []
    if runtime.databases:
        keys.append("databasePasswords")
    if runtime.webhook:
        keys.append("webhookUrl")
    return keys
