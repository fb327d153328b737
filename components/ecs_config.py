"""The ECS placement's stack config, read by key: `placement: ecs` and `runtime.ecs`.

`runtime_settings.parse_runtime` asks `placed_on_ecs` of every database, file set, the drill
and the exporter, reads an ECS file set's `efs` with `efs_volume`, and `runtime.ecs` with
`parse_ecs`; then checks what needs both the jobs and `runtime.ecs` (`check_schedule_names`,
`check_drill_fits`: the drill's restores against its task storage). Every refusal is a
ConfigError naming the key and what is allowed, raised before anything is declared; each limit
cites the AWS page it comes from.
"""

from __future__ import annotations

import functools
import math
import posixpath
import re
import zoneinfo
from collections.abc import Sequence
from typing import Final

from components.config_reader import ConfigError, ConfigReader
from components.ecs_settings import (
    SCHEDULE_NAME_MAX,
    TASK_KINDS,
    EcsSettings,
    EfsVolume,
    ServiceDiscovery,
    TaskSize,
    schedule_name,
)
from components.scheduler_cron import scheduler_cron
from contract import restic
from contract.jobs import Job
from contract.reader import describe
from contract.schedule import NotASchedule
from contract.tasks import SCRATCH_DIR

ECS: Final = "ecs"
PLACEMENT_ALLOWED: Final = ("exactly one of host: NAME (a Docker host of runtime.hosts) or "
                            "placement: ecs")

# Fargate's task CPU units and the memory (MiB) each allows: Amazon ECS Developer Guide,
# "Amazon ECS task definition parameters for Fargate", Task size
# (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html).
FARGATE_MEMORY_MIB: Final = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
# Task ephemeral storage: "The minimum supported value is 21 GiB and the maximum supported value
# is 200 GiB" (Amazon ECS API Reference, EphemeralStorage).
MIN_EPHEMERAL_GIB: Final = 21
MAX_EPHEMERAL_GIB: Final = 200
MAX_EXPECTED_MINUTES: Final = 31 * 24 * 60  # the longest schedule gap (runtime_settings)
DEFAULT_TASK_SIZES: Final = {
    "postgres": TaskSize(cpu=1024, memory_mib=2048, ephemeral_storage_gib=21, expected_minutes=30),
    "files": TaskSize(cpu=512, memory_mib=1024, ephemeral_storage_gib=21, expected_minutes=20),
    "drill": TaskSize(cpu=2048, memory_mib=8192, ephemeral_storage_gib=200, expected_minutes=60),
    # The exporter is a service: it runs all month (730 h).
    "exporter": TaskSize(cpu=256, memory_mib=512, ephemeral_storage_gib=21,
                         expected_minutes=43800),
}
# What a drill needs on its task storage besides `sizeGiB` (the data a restore writes): WAL
# replayed past the base backup grows the data directory and waits in pg_wal until a
# restartpoint, and restic keeps its cache beside the restored files (x 5/4); Fargate stores
# the pulled image compressed and unpacked on the same storage ("Fargate task ephemeral storage
# for Amazon ECS"), plus pg_wal's max_wal_size (1 GB by default) (+ 4 GiB). An allowance, not a
# measurement: no Docker engine here builds the image, no AWS runs the task.
RESTORE_GROWTH: Final = (5, 4)
RESTORE_RESERVE_GIB: Final = 4

# AWS CLI / EC2 IDs: subnet- or sg- and 8 (older) or 17 hex digits.
_SUBNET = re.compile(r"subnet-[0-9a-f]{8,17}")
_SECURITY_GROUP = re.compile(r"sg-[0-9a-f]{8,17}")
# Amazon ECS API Reference, AwsVpcConfiguration: "a limit of 16 subnets" and "a limit of 5
# security groups".
MAX_SUBNETS: Final = 16
MAX_SECURITY_GROUPS: Final = 5
# Amazon ECS API Reference, CreateCluster: "Up to 255 letters (uppercase and lowercase),
# numbers, underscores, and hyphens"; the task families add "-<kind>" to it.
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_-]{1,246}")
# Amazon ECR API Reference, CreateRepository: repositoryName, 2-256 characters.
_REPOSITORY = re.compile(r"(?=.{2,256}$)(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*"
                         r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# EventBridge Scheduler API Reference, RetryPolicy and FlexibleTimeWindow.
MAX_RETRY_ATTEMPTS: Final = 185
MIN_EVENT_AGE_SECONDS: Final = 60
MAX_EVENT_AGE_SECONDS: Final = 86400
MAX_FLEXIBLE_WINDOW_MINUTES: Final = 1440
# CloudWatch Logs API Reference, PutRetentionPolicy: "Possible values are: ...".
LOG_RETENTION_DAYS: Final = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
                             1096, 1827, 2192, 2557, 2922, 3288, 3653)
# Amazon CloudWatch User Guide, "Namespaces": up to 255 of 0-9 A-Z a-z . - _ / # : and space,
# not starting with "AWS/" (reserved) or ":" (the API's pattern [^:].*).
_METRICS_NAMESPACE = re.compile(r"(?!AWS/)[0-9A-Za-z._/#-][0-9A-Za-z._/#: -]{0,254}")
# AWS Cloud Map API Reference, Namespace: an Id of at most 64 characters ("ns-" and letters and
# digits); the namespace's DNS name and a service name as DNS labels.
_NAMESPACE_ID = re.compile(r"ns-[a-z0-9]{1,61}")
_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"(?=.{{1,253}}$){_DNS_LABEL}(?:\.{_DNS_LABEL})*")
_SERVICE_NAME = re.compile(_DNS_LABEL)
# Amazon EFS API Reference, DescribeAccessPoints: FileSystemId and AccessPointId patterns.
_FILE_SYSTEM_ID = re.compile(r"fs-[0-9a-f]{8,40}")
_ACCESS_POINT_ID = re.compile(r"fsap-[0-9a-f]{8,40}")


def placed_on_ecs(reader: ConfigReader) -> bool:
    """A database, file set, the drill or the exporter: `host: NAME` (False) or
    `placement: ecs` (True), exactly one of the two."""
    has_host, has_placement = reader.has("host"), reader.has("placement")
    if has_placement and reader.value("placement") != ECS:
        reader.fail("placement", f"got {describe(reader.value('placement'))}; allowed: ecs (a "
                                 "Docker host is named with host: NAME instead)")
    if has_host == has_placement:
        found = "sets both host and placement" if has_host else "sets neither host nor placement"
        reader.fail(None, f"{found}; allowed: {PLACEMENT_ALLOWED}")
    return has_placement


def ecs_only(reader: ConfigReader, name: str, *, on_ecs: bool, unused: str,
             missing: str) -> bool:
    """`name`, read only by the ECS placement: refused where it would change nothing
    (`unused`), required where it is needed (`missing`); whether to read it."""
    if reader.has(name) and not on_ecs:
        reader.fail(name, unused)
    if on_ecs and not reader.has(name):
        reader.fail(name, missing)
    return on_ecs


def efs_volume(reader: ConfigReader, paths: Sequence[str], *, on_ecs: bool) -> EfsVolume | None:
    """A file set's `efs`: required on ECS (the task mounts it read-only), refused on a host
    (which bind-mounts the paths); every path must lie under its mountPath."""
    if not ecs_only(reader, "efs", on_ecs=on_ecs,
                    unused="applies only to a file set with placement: ecs (a Docker host "
                           "bind-mounts its paths); allowed: no efs with host: NAME",
                    missing="is required with placement: ecs: a task reaches the file set's "
                            "paths only on an EFS access point it mounts read-only; allowed: "
                            "{fileSystemId: fs-..., accessPointId: fsap-..., mountPath: "
                            "/PATH}"):
        return None
    efs = reader.child("efs")
    efs.reject_unknown(("fileSystemId", "accessPointId", "mountPath"))
    volume = EfsVolume(
        file_system_id=efs.string("fileSystemId", required=True, pattern=_FILE_SYSTEM_ID,
                                  allowed="an EFS file system ID (fs- and 8-40 of 0-9 a-f)"),
        access_point_id=efs.string("accessPointId", required=True, pattern=_ACCESS_POINT_ID,
                                   allowed="an EFS access point ID (fsap- and 8-40 of 0-9 a-f)"),
        mount_path=_mount_path(efs),
    )
    for index, path in enumerate(paths):
        if not _inside(path, volume.mount_path):
            raise ConfigError(f"{reader.key('paths')}[{index}]", f"{path!r} is outside "
                              f"efs.mountPath ({volume.mount_path}), the only file system the "
                              f"task mounts; allowed: a path under {volume.mount_path}")
    return volume


def _mount_path(efs: ConfigReader) -> str:
    allowed = (f"an absolute, normalised path other than / and outside {SCRATCH_DIR} (the "
               "task's scratch volume)")
    path = efs.string("mountPath", required=True, allowed=allowed)
    if (not path.startswith("/") or posixpath.normpath(path) != path or path == "/"
            or _inside(path, SCRATCH_DIR)):
        efs.fail("mountPath", f"got {describe(path)}; allowed: {allowed}")
    return path


def _inside(path: str, directory: str) -> bool:
    path = posixpath.normpath(path)
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def check_mount_paths(readers: Sequence[ConfigReader], volumes: Sequence[EfsVolume | None]) -> None:
    """The files task mounts every ECS file set's volume: two different volumes may not share
    or nest mount paths (one volume may serve several file sets)."""
    seen: list[tuple[ConfigReader, EfsVolume]] = []
    for reader, volume in zip(readers, volumes, strict=True):
        if volume is None:
            continue
        for other_reader, other in seen:
            if other != volume and (_inside(volume.mount_path, other.mount_path)
                                    or _inside(other.mount_path, volume.mount_path)):
                raise ConfigError(reader.child("efs").key("mountPath"), f"{volume.mount_path!r} "
                                  f"overlaps {other_reader.child('efs').key('mountPath')} "
                                  f"({other.mount_path}) of another EFS volume, and the files "
                                  "task mounts both; allowed: a path outside "
                                  f"{other.mount_path}, or the same efs as that file set")
        seen.append((reader, volume))


def check_subset_on_ecs(reader: ConfigReader, value: str) -> None:
    if restic.rotation_groups(value) is not None:
        reader.fail("checkSubset", f"{value!r}: rotate:<t> keeps its position in the state "
                                   "directory, which a task loses when it stops; allowed with "
                                   "placement: ecs: a percentage, n/t or a size (5%, 1/7, 50M)")


def check_cron_on_ecs(reader: ConfigReader, name: str, expression: str) -> None:
    """The schedule must have an EventBridge Scheduler form (`scheduler_cron`): cron's "either
    day" rule, L, W and # have none."""
    try:
        scheduler_cron(expression)
    except NotASchedule as problem:
        reader.fail(name, f"{expression!r} {problem}")


@functools.cache
def time_zones() -> frozenset[str]:
    """IANA names zoneinfo can load (system data or the tzdata package), without `localtime`
    (this machine's own setting) and `Factory` (tzdata's placeholder zone)."""
    return frozenset(zoneinfo.available_timezones() - {"localtime", "Factory"})


def parse_ecs(runtime: ConfigReader, placed: Sequence[str], *,
              exporter_on_ecs: bool) -> EcsSettings | None:
    """`runtime.ecs`: required as soon as anything (`placed`: their keys) has placement: ecs,
    refused when nothing has (settings that would change nothing are a mistake, as elsewhere)."""
    if not ecs_only(runtime, "ecs", on_ecs=bool(placed),
                    unused="is set but nothing has placement: ecs; allowed: no runtime.ecs, or "
                           "placement: ecs on a database, file set, the drill or the exporter",
                    missing=f"is required: {placed[0] if placed else ''} has placement: ecs; "
                            "allowed: an object with subnets and securityGroups (the VPC the "
                            "tasks run in)"):
        return None
    reader = runtime.child("ecs")
    reader.reject_unknown(("clusterName", "subnets", "securityGroups", "imageRepository",
                           "imageDigest", "timezone", "retry", "flexibleWindowMinutes",
                           "logRetentionDays", "metricsNamespace", "serviceDiscovery", "tasks"))
    retry = reader.child("retry")
    retry.reject_unknown(("attempts", "maxEventAgeSeconds"))
    return EcsSettings(
        cluster_name=reader.string("clusterName", "biometrics-backup", pattern=_CLUSTER_NAME,
                                   allowed="1-246 of A-Z a-z 0-9 _ - (an ECS cluster name; "
                                           "task families add -<kind>)"),
        subnets=_ids(reader, "subnets", _SUBNET, MAX_SUBNETS, "a subnet ID (subnet- and 8 or 17 "
                     "of 0-9 a-f)"),
        security_groups=_ids(reader, "securityGroups", _SECURITY_GROUP, MAX_SECURITY_GROUPS,
                             "a security group ID (sg- and 8 or 17 of 0-9 a-f)"),
        image_repository=reader.string("imageRepository", "biometrics-backup-agent",
                                       pattern=_REPOSITORY,
                                       allowed="an ECR repository name (2-256 of a-z 0-9 . _ - "
                                               "/, e.g. team/backup-agent)"),
        image_digest=reader.string("imageDigest", pattern=_DIGEST,
                                   allowed="an image digest, sha256: and 64 of 0-9 a-f"),
        timezone=_timezone(reader),
        retry_attempts=retry.integer("attempts", 3, minimum=0, maximum=MAX_RETRY_ATTEMPTS),
        max_event_age_seconds=retry.integer("maxEventAgeSeconds", 3600,
                                            minimum=MIN_EVENT_AGE_SECONDS,
                                            maximum=MAX_EVENT_AGE_SECONDS, unit="seconds"),
        flexible_window_minutes=reader.integer("flexibleWindowMinutes",
                                               maximum=MAX_FLEXIBLE_WINDOW_MINUTES,
                                               unit="minutes"),
        task_sizes=_task_sizes(reader.child("tasks")),
        log_retention_days=_log_retention(reader),
        metrics_namespace=reader.string("metricsNamespace", "BiometricsBackup",
                                        pattern=_METRICS_NAMESPACE,
                                        allowed="a CloudWatch namespace (1-255 of 0-9 A-Z a-z "
                                                ". - _ / # : and space, not starting with AWS/ "
                                                "or :)"),
        service_discovery=_service_discovery(reader, exporter_on_ecs),
    )


def _ids(reader: ConfigReader, name: str, pattern: re.Pattern[str], maximum: int,
         allowed: str) -> tuple[str, ...]:
    ids = reader.strings(name, required=True, pattern=pattern, allowed=allowed)
    if len(ids) > maximum:
        reader.fail(name, f"lists {len(ids)}; allowed: 1 to {maximum} (awsvpcConfiguration), "
                          f"each {allowed}")
    return ids


def _timezone(reader: ConfigReader) -> str:
    allowed = "an IANA time zone name (Europe/Berlin, UTC) as zoneinfo knows it"
    name = reader.string("timezone", "UTC", allowed=allowed)
    if name not in time_zones():
        reader.fail("timezone", f"got {describe(name)}, which is no time zone; allowed: {allowed}")
    return name


def _log_retention(reader: ConfigReader) -> int:
    days = reader.integer("logRetentionDays", 365, unit="days")
    if days not in LOG_RETENTION_DAYS:
        reader.fail("logRetentionDays", f"got {days}, which CloudWatch Logs does not offer; "
                    "allowed: " + ", ".join(map(str, LOG_RETENTION_DAYS)))
    return days


def _task_sizes(reader: ConfigReader) -> dict[str, TaskSize]:
    reader.reject_unknown(TASK_KINDS)
    sizes = {}
    for kind in TASK_KINDS:
        task = reader.child(kind)
        task.reject_unknown(("cpu", "memoryMiB", "ephemeralStorageGiB", "expectedMinutes"))
        default = DEFAULT_TASK_SIZES[kind]
        cpu = task.integer("cpu", default.cpu)
        if cpu not in FARGATE_MEMORY_MIB:
            task.fail("cpu", f"got {cpu}, which is no Fargate task size; allowed: "
                      + ", ".join(map(str, FARGATE_MEMORY_MIB)) + " (CPU units)")
        memory = task.integer("memoryMiB", default.memory_mib, unit="MiB")
        if memory not in FARGATE_MEMORY_MIB[cpu]:
            task.fail("memoryMiB", f"got {memory}, which Fargate does not pair with cpu {cpu}; "
                                   f"allowed: {_memory_allowed(cpu)}")
        sizes[kind] = TaskSize(
            cpu=cpu,
            memory_mib=memory,
            ephemeral_storage_gib=task.integer("ephemeralStorageGiB",
                                               default.ephemeral_storage_gib,
                                               minimum=MIN_EPHEMERAL_GIB,
                                               maximum=MAX_EPHEMERAL_GIB, unit="GiB"),
            expected_minutes=task.integer("expectedMinutes", default.expected_minutes,
                                          maximum=MAX_EXPECTED_MINUTES, unit="minutes"),
        )
    return sizes


def _memory_allowed(cpu: int) -> str:
    values = FARGATE_MEMORY_MIB[cpu]
    if len(values) <= 4:
        return ", ".join(map(str, values)) + " (MiB)"
    return f"{values[0]} to {values[-1]} MiB in steps of {values[1] - values[0]}"


def _service_discovery(reader: ConfigReader, exporter_on_ecs: bool) -> ServiceDiscovery | None:
    if not ecs_only(reader, "serviceDiscovery", on_ecs=exporter_on_ecs,
                    unused="applies only to the exporter with placement: ecs; allowed: no "
                           "serviceDiscovery with exporter.host",
                    missing="is required with exporter.placement: ecs: Prometheus finds the "
                            "exporter's task through Cloud Map DNS; allowed: {namespaceId: "
                            "ns-..., namespaceName: backup.internal}"):
        return None
    discovery = reader.child("serviceDiscovery")
    discovery.reject_unknown(("namespaceId", "namespaceName", "serviceName"))
    return ServiceDiscovery(
        namespace_id=discovery.string("namespaceId", required=True, pattern=_NAMESPACE_ID,
                                      allowed="a Cloud Map namespace ID (ns- and 1-61 of a-z "
                                              "0-9)"),
        namespace_name=discovery.string("namespaceName", required=True, pattern=_DNS_NAME,
                                        allowed="the private DNS namespace's name (lower-case "
                                                "DNS labels, e.g. backup.internal)"),
        service_name=discovery.string("serviceName", ServiceDiscovery.service_name,
                                      pattern=_SERVICE_NAME,
                                      allowed="a DNS label (1-63 of a-z 0-9 -)"),
    )


def check_schedule_names(ecs: EcsSettings, jobs: Sequence[Job], cluster_key: str) -> None:
    """Every ECS job's schedule is named after the cluster and the job (`schedule_name`),
    which EventBridge Scheduler limits to 64 characters (API Reference, CreateSchedule)."""
    if not jobs:
        return
    longest = max(jobs, key=lambda job: len(schedule_name("", job)))
    name = schedule_name(ecs.cluster_name, longest)
    if len(name) > SCHEDULE_NAME_MAX:
        limit = SCHEDULE_NAME_MAX - len(schedule_name("", longest))
        raise ConfigError(cluster_key, f"{ecs.cluster_name!r} makes the schedule of "
                          f"{longest.id} {name!r}, {len(name)} characters; allowed: a cluster "
                          f"name of at most {limit} characters with these jobs (EventBridge "
                          f"Scheduler's schedule names: at most {SCHEDULE_NAME_MAX})")


def drill_storage_gib(size_gib: int) -> int:
    """What restoring `size_gib` takes of the drill task's ephemeral storage."""
    growth, base = RESTORE_GROWTH
    return math.ceil(size_gib * growth / base) + RESTORE_RESERVE_GIB


def largest_restore_gib(storage_gib: int) -> int:
    """The largest `sizeGiB` whose restore fits `storage_gib`."""
    growth, base = RESTORE_GROWTH
    return (storage_gib - RESTORE_RESERVE_GIB) * base // growth


def check_drill_fits(ecs: EcsSettings, restores: Sequence[tuple[ConfigReader, str, int | None]],
                     drill_key: str) -> None:
    """The drill on ECS restores every database and file set (reader, name, sizeGiB), one
    after the other, into its task's ephemeral storage (Fargate: at most 200 GiB): each needs
    `sizeGiB`, and the largest must fit."""
    storage = ecs.task_sizes["drill"].ephemeral_storage_gib
    storage_key = "runtime.ecs.tasks.drill.ephemeralStorageGiB"
    largest = largest_restore_gib(storage)
    for reader, name, size in restores:
        if size is None:
            reader.fail("sizeGiB", f"is required with {drill_key}: ecs: the drill restores "
                                   f"{name} into its task storage ({storage_key}: {storage}); "
                                   f"allowed: the GiB its restore writes, at most {largest}")
    if not restores:
        return
    reader, name, size = max(restores, key=lambda restore: restore[2] or 0)
    assert size is not None
    needed = drill_storage_gib(size)
    if needed > storage:
        remedy = (f"or {storage_key} of at least {needed}" if needed <= MAX_EPHEMERAL_GIB
                  else "or the drill on a restore host (runtime.drill.host: NAME)")
        reader.fail("sizeGiB", f"{name}: {size} GiB needs {needed} GiB of the drill task's "
                               f"storage (x {RESTORE_GROWTH[0]}/{RESTORE_GROWTH[1]} for WAL "
                               f"replay and restic's cache, + {RESTORE_RESERVE_GIB} GiB for the "
                               f"image and pg_wal), more than {storage_key} ({storage}); "
                               f"allowed: sizeGiB at most {largest}, {remedy}")
