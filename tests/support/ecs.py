"""A stack with the ECS placement, built from prod's settings in code: prod's database and file
set stay on their Docker host; two databases, a file set on EFS, the drill and the exporter go
to ECS. The stack program runs with these settings in place of what it parsed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from unittest import mock

from components import program_config
from components.ecs_settings import EcsSettings, EfsVolume, ServiceDiscovery, TaskSize
from components.runtime_settings import Keep, RuntimeDatabase, RuntimeFileSet
from components.settings import StackSettings
from review.recording import StackRun, run_program
from tests.support import ROOT, stack_config

DIGEST = "sha256:" + "0123456789abcdef" * 4
TASK_SIZES = {
    "postgres": TaskSize(cpu=1024, memory_mib=2048, ephemeral_storage_gib=21, expected_minutes=30),
    "files": TaskSize(cpu=512, memory_mib=1024, ephemeral_storage_gib=21, expected_minutes=20),
    "drill": TaskSize(cpu=2048, memory_mib=8192, ephemeral_storage_gib=200, expected_minutes=60),
    "exporter": TaskSize(cpu=256, memory_mib=512, ephemeral_storage_gib=21,
                         expected_minutes=43800),
}
ECS = EcsSettings(
    cluster_name="biometrics-backup",
    subnets=("subnet-0123456789abcdef0", "subnet-0fedcba9876543210"),
    security_groups=("sg-0123456789abcdef0",),
    image_repository="biometrics-backup-agent",
    image_digest=DIGEST,
    timezone="Europe/Berlin",
    retry_attempts=3,
    max_event_age_seconds=3600,
    flexible_window_minutes=15,
    task_sizes=TASK_SIZES,
    log_retention_days=365,
    metrics_namespace="BiometricsBackup",
    service_discovery=ServiceDiscovery("ns-0123456789abcdef0", "backup.internal"),
)
UPLOADS_EFS = EfsVolume("fs-0123456789abcdef0", "fsap-0123456789abcdef0", "/mnt/uploads")


def ecs_database(name: str, schedule: str) -> RuntimeDatabase:
    return RuntimeDatabase(name=name, host=None, address=f"{name}.internal", port=5432,
                           user="backup", dbname=name.replace("-", "_"), tables=("users",),
                           schedule=schedule, retain_full=7, compression="lz4",
                           rpo_seconds=300, size_gib=40)


def ecs_settings(prod: StackSettings, *, databases: int = 2, ecs: EcsSettings = ECS,
                 weekly_drill: bool = False) -> StackSettings:
    """prod with `databases` more databases (db-1, db-2, ... staggered by minutes), the file
    set `uploads` on EFS, the drill (daily, or weekly: a window over CloudWatch's 7 days) and
    the exporter on ECS."""
    runtime = prod.runtime
    assert runtime is not None
    uploads = RuntimeFileSet(
        name="uploads", host=None, paths=("/mnt/uploads/app",), hostname="biometrics-uploads",
        tags=("production",), schedule="30 3 * * *", keep=Keep(daily=7, weekly=4, monthly=6),
        check_subset="5%", rpo_seconds=86400, efs=UPLOADS_EFS, size_gib=10)
    return dataclasses.replace(prod, runtime=dataclasses.replace(
        runtime,
        databases=(*runtime.databases,
                   *(ecs_database(f"db-{i + 1}", f"{i % 60} {1 + i // 60} * * *")
                     for i in range(databases))),
        file_sets=(*runtime.file_sets, uploads),
        drill_host=None,
        drill_schedule="0 6 * * 0" if weekly_drill else runtime.drill_schedule,
        exporter_host=None,
        ecs=ecs,
    ))


def run_with(settings: Callable[[StackSettings], StackSettings]) -> StackRun:
    """The prod stack program, as the offline preview runs it, with `settings(parsed)` in
    place of the settings it parsed (and a placeholder for every secret they need)."""
    real = program_config.read_config

    def read_config(*args, **kwargs) -> program_config.StackConfig:
        parsed = real(*args, **kwargs)
        changed = settings(parsed.settings)
        return program_config.StackConfig(changed, (),
                                          tuple(program_config._required_secrets(changed)))

    with mock.patch.object(program_config, "read_config", read_config):
        return run_program(ROOT / "infra", stack="prod", config=stack_config("prod"))
