"""Pure builders for the backup runtime's containers and the agent settings file each host gets.

Plain data from typed settings; `BackupContainers` only wires it to pulumi-docker. Secrets
appear here only as the *names* of `pulumi config set --secret` keys and the paths their files
are mounted at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from components.runtime_settings import DockerHost, RuntimeDatabase, RuntimeFileSet
from components.settings import BucketSettings, StackSettings
from contract import agent_settings, schedule
from contract.agent_settings import AgentSettings
from contract.jobs import DRILL, database_job, files_job
from contract.layout import FULL_BACKUP_INTERVAL_LABEL, HOST_LABEL

SETTINGS_PATH: Final = "/etc/backup-agent/settings.json"
STATE_DIR: Final = AgentSettings.state_dir
SECRETS_DIR: Final = "/run/secrets"
AGENT_UID: Final = 10001  # the image's non-root user (docker/backup-agent/Dockerfile)
CONTAINER_METRICS_PORT: Final = AgentSettings.metrics_port
SCHEDULER_HOST_PORT: Final = 9101
LOG_OPTIONS: Final = {"max-size": "10m", "max-file": "5"}


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
    host_address: str = "0.0.0.0"  # the host interface the published port listens on
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def healthcheck(self) -> list[str]:
        return ["CMD", "python3", "-c", "import urllib.request as r; r.urlopen("
                f"'http://127.0.0.1:{CONTAINER_METRICS_PORT}/metrics', timeout=5)"]


def restic_secret(directory: str = SECRETS_DIR) -> SecretFile:
    """`directory`: where the files are (the ECS placement writes them on its scratch space)."""
    return SecretFile(f"{directory}/restic-password", "resticPassword")


def database_secret(database: str, directory: str = SECRETS_DIR) -> SecretFile:
    return SecretFile(f"{directory}/db-{database}-password", f"databasePasswords.{database}")


def webhook_secret(directory: str = SECRETS_DIR) -> SecretFile:
    return SecretFile(f"{directory}/webhook-url", "webhookUrl")


def storage(bucket: BucketSettings) -> agent_settings.Storage:
    return agent_settings.Storage(bucket=bucket.bucket_name, region=bucket.region)


def agent_database(database: RuntimeDatabase, password_file: str | None) -> agent_settings.Database:
    """A database as the agent's settings name it (`password_file` None where nothing connects
    to it: the drill and the exporter)."""
    d = database
    return agent_settings.Database(
        name=d.name, host=d.address, port=d.port, user=d.user, dbname=d.dbname,
        tables=d.tables, retain_full=d.retain_full, schedule=d.schedule,
        rpo_seconds=d.rpo_seconds, compression=d.compression, password_file=password_file)


def agent_file_set(file_set: RuntimeFileSet) -> agent_settings.FileSet:
    f = file_set
    return agent_settings.FileSet(
        name=f.name, paths=f.paths, tags=f.tags, hostname=f.hostname,
        keep=agent_settings.Keep(daily=f.keep.daily, weekly=f.keep.weekly,
                                 monthly=f.keep.monthly),
        check_subset=f.check_subset, schedule=f.schedule, rpo_seconds=f.rpo_seconds,
        drill_pick=f.drill_pick, drill_window_days=f.drill_window_days)


def agent_settings_for(stack: StackSettings, host: DockerHost) -> AgentSettings:
    """What `backup-agent` on `host` runs with; rendered by `contract.agent_settings.to_json`
    and read back by the agent with `contract.agent_settings.from_json`."""
    runtime = stack.runtime
    assert runtime is not None
    backup_host = host.profile == "backup"
    databases = [d for d in runtime.databases if d.host == host.name or not backup_host]
    file_sets = [f for f in runtime.file_sets if f.host == host.name or not backup_host]
    jobs = [database_job(d.name) for d in databases] + [files_job(f.name) for f in file_sets]
    if not backup_host:
        jobs = [DRILL] if host.name == runtime.drill_host else []
    return AgentSettings(
        role=host.profile,
        primary=storage(stack.primary),
        replica=storage(stack.replica) if stack.replica is not None and not backup_host
        else None,
        databases=tuple(agent_database(d, database_secret(d.name).path if backup_host else None)
                        for d in databases),
        file_sets=tuple(agent_file_set(f) for f in file_sets),
        jobs=tuple(job.id for job in jobs),
        drill_schedule=runtime.drill_schedule,
        restic_password_file=restic_secret().path if file_sets else None,
        webhook_url_file=webhook_secret().path if runtime.webhook else None,
        retry=agent_settings.Retry(attempts=runtime.retry_attempts,
                                   delay_seconds=runtime.retry_delay_seconds),
        # `backup-agent keep` runs where the backup role's credentials are.
        kept_backups=agent_settings.KeptBackups(protection=stack.keep.protection,
                                                max_days=stack.keep.max_days)
        if backup_host else None,
    )


def container_specs(stack: StackSettings) -> list[ContainerSpec]:
    """Per host: a scheduler for the jobs placed there; on the exporter's host the exporter."""
    runtime = stack.runtime
    assert runtime is not None
    specs = []
    for host in runtime.hosts:
        agent = agent_settings_for(stack, host)
        settings_json = agent_settings.to_json(agent)
        secrets: list[SecretFile] = []
        if agent.restic_password_file:
            secrets.append(restic_secret())
        secrets += [database_secret(d.name) for d in agent.databases if d.password_file]
        if agent.webhook_url_file:
            secrets.append(webhook_secret())
        labels = [(HOST_LABEL, host.profile)]
        intervals = [schedule.interval_days(d.schedule) for d in runtime.databases
                     if d.host == host.name]
        if intervals:
            labels.append((FULL_BACKUP_INTERVAL_LABEL, str(max(intervals))))
        if agent.jobs:
            specs.append(ContainerSpec(
                name=f"backup-agent-{host.name}",
                host=host.name,
                command=("schedule",),
                settings_json=settings_json,
                secret_files=tuple(secrets),
                read_only_binds=tuple(sorted({p for f in agent.file_sets for p in f.paths}
                                             if host.profile == "backup" else ())),
                state_read_only=False,
                host_port=SCHEDULER_HOST_PORT,
                memory_mb=(runtime.drill_memory_mb if agent_settings.DRILL_JOB in agent.jobs
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
                host_address=runtime.exporter_address,
                memory_mb=runtime.exporter_memory_mb,
                labels=((HOST_LABEL, host.profile),),
            ))
    return specs
