"""The ECS placement's settings (`biometrics-backup:runtime.ecs`), typed.

A database base backup, a file set, the drill and the exporter are each placed either on a
Docker host (`host: NAME`, today's behaviour and prod's default) or on ECS (`placement: ecs`),
both in one stack. `runtime_settings.parse_runtime` (with `components.ecs_config`) parses
`runtime.ecs` into `EcsSettings` and refuses, by key, every combination Fargate, EventBridge
Scheduler or EFS would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from contract.jobs import KINDS as JOB_KINDS
from contract.jobs import Job

PLACEMENTS: Final = ("host", "ecs")
# One task definition (and one task role) per kind of work: the three job kinds and the
# exporter's service.
TASK_KINDS: Final = (*JOB_KINDS, "exporter")
# EventBridge Scheduler's schedule names: 1-64 of 0-9 A-Z a-z - _ . (API Reference,
# CreateSchedule).
SCHEDULE_NAME_MAX: Final = 64


def job_slug(job: Job) -> str:
    """A job id where AWS names allow no colon: postgres:db01 → postgres-db01."""
    return job.id.replace(":", "-")


def schedule_name(cluster_name: str, job: Job) -> str:
    """The EventBridge Scheduler schedule that starts an ECS job: `<cluster>-<job slug>`
    (the settings refuse a cluster name that makes one longer than SCHEDULE_NAME_MAX)."""
    return f"{cluster_name}-{job_slug(job)}"


@dataclass(frozen=True)
class TaskSize:
    """One task kind's Fargate size and the duration the cost model and the alarms assume."""

    cpu: int  # CPU units: 256, 512, 1024, 2048, 4096, 8192, 16384
    memory_mib: int  # one of Fargate's memory values for that CPU
    ephemeral_storage_gib: int  # 21-200 (Fargate's task ephemeral storage)
    expected_minutes: int  # how long one run is expected to take (cost model, alarm grace)


@dataclass(frozen=True)
class EfsVolume:
    """Where an ECS file set's paths live: an EFS access point mounted read-only, with
    transit encryption and IAM authorisation always on (not settable)."""

    file_system_id: str  # fs-...
    access_point_id: str  # fsap-...
    mount_path: str  # the file set's paths must lie under it


@dataclass(frozen=True)
class ServiceDiscovery:
    """The exporter on ECS registers in a Cloud Map private DNS namespace, which Prometheus
    discovers through `dns_sd_configs` (an A record per task)."""

    namespace_id: str  # ns-...
    namespace_name: str  # the namespace's DNS name, e.g. backup.internal
    service_name: str = "backup-exporter"


@dataclass(frozen=True)
class EcsSettings:
    cluster_name: str
    subnets: tuple[str, ...]  # subnet-... (1-16): the VPC is not managed here
    security_groups: tuple[str, ...]  # sg-... (1-5)
    image_repository: str  # the ECR repository the stack creates
    image_digest: str | None  # sha256:<64 hex>; required in prod
    timezone: str  # IANA name for every ECS schedule, e.g. Europe/Berlin
    retry_attempts: int  # Scheduler delivery retries, 0-185
    max_event_age_seconds: int  # 60-86400
    flexible_window_minutes: int | None  # None: OFF; 1-1440
    task_sizes: dict[str, TaskSize]  # by TASK_KINDS
    log_retention_days: int  # one of CloudWatch Logs' retention values
    metrics_namespace: str  # CloudWatch namespace of job outcomes (cloudwatch:namespace)
    service_discovery: ServiceDiscovery | None  # required when the exporter is on ECS
