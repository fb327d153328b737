"""The ECS placement's settings: `placement: ecs` beside `host:`, `runtime.ecs`, and every
refusal by key, with the exact message, before anything is declared."""

from __future__ import annotations

from typing import Any

import pytest

from components import container_specs, ecs_config
from components.config_reader import ConfigError
from components.ecs_settings import EcsSettings, EfsVolume, ServiceDiscovery, TaskSize
from components.settings import StackSettings, parse_settings
from review.stack_config import stack_settings
from tests.support import DELETE, changed, project_config, stack_config

DIGEST = "sha256:" + "ab" * 32
SUBNET = "subnet-0123456789abcdef0"
SECURITY_GROUP = "sg-0123456789abcdef0"
UPLOADS_EFS = {"fileSystemId": "fs-0123456789abcdef0", "accessPointId": "fsap-0123456789abcdef0",
               "mountPath": "/mnt/uploads"}
# Both placements in one stack: a database and a file set on backup-1, one of each on ECS, the
# drill and the exporter on ECS, restore-1 idle.
MIXED_RUNTIME: dict[str, Any] = {
    "hosts": [
        {"name": "backup-1", "dockerHost": "ssh://deploy@backup-1.internal",
         "instanceProfile": "backup"},
        {"name": "restore-1", "dockerHost": "ssh://deploy@restore-1.internal",
         "instanceProfile": "restore"},
    ],
    "databases": [
        {"name": "biometrics", "host": "backup-1", "address": "db.internal", "dbname": "biometrics",
         "tables": ["users"], "schedule": "0 2 * * *", "sizeGiB": 40},
        {"name": "tenant01", "placement": "ecs", "address": "pg-tenant01.internal",
         "dbname": "tenant01", "tables": ["users"], "schedule": "30 1 * * *", "sizeGiB": 150},
    ],
    "fileSets": [
        {"name": "app", "host": "backup-1", "paths": ["/app/uploads"], "hostname": "app",
         "schedule": "0 3 * * *", "sizeGiB": 10},
        {"name": "uploads", "placement": "ecs", "efs": UPLOADS_EFS,
         "paths": ["/mnt/uploads/app"], "hostname": "uploads", "schedule": "0 4 * * *",
         "sizeGiB": 80},
    ],
    "drill": {"placement": "ecs", "schedule": "0 6 * * *"},
    "exporter": {"placement": "ecs"},
    "ecs": {"subnets": [SUBNET], "securityGroups": [SECURITY_GROUP], "imageDigest": DIGEST,
            "serviceDiscovery": {"namespaceId": "ns-abcdefgh12345678",
                                 "namespaceName": "backup.internal"}},
}
DEFAULT_SIZES = {
    "postgres": TaskSize(cpu=1024, memory_mib=2048, ephemeral_storage_gib=21, expected_minutes=30),
    "files": TaskSize(cpu=512, memory_mib=1024, ephemeral_storage_gib=21, expected_minutes=20),
    "drill": TaskSize(cpu=2048, memory_mib=8192, ephemeral_storage_gib=200, expected_minutes=60),
    "exporter": TaskSize(cpu=256, memory_mib=512, ephemeral_storage_gib=21,
                         expected_minutes=43800),
}
PLACEMENT_ALLOWED = ("allowed: exactly one of host: NAME (a Docker host of runtime.hosts) or "
                     "placement: ecs")
STORAGE_KEY = "runtime.ecs.tasks.drill.ephemeralStorageGiB"


def mixed(**changes: Any) -> dict[str, Any]:
    """prod's store with MIXED_RUNTIME; `changes` by path under runtime ("ecs.subnets")."""
    return changed({**project_config("prod"), "runtime": MIXED_RUNTIME},
                   {f"runtime.{path}": value for path, value in changes.items()})


def refusal(raw: dict[str, Any], stack: str = "prod") -> tuple[str, str]:
    with pytest.raises(ConfigError) as error:
        parse_settings(raw, stack=stack)
    return error.value.key.removeprefix("biometrics-backup:"), error.value.problem


def test_both_placements_in_one_stack_with_the_documented_defaults():
    runtime = parse_settings(mixed(), stack="prod").runtime
    assert [(d.name, d.host, d.size_gib) for d in runtime.databases] == [
        ("biometrics", "backup-1", 40), ("tenant01", None, 150)]
    assert [(f.name, f.host, f.efs) for f in runtime.file_sets] == [
        ("app", "backup-1", None),
        ("uploads", None, EfsVolume("fs-0123456789abcdef0", "fsap-0123456789abcdef0",
                                    "/mnt/uploads"))]
    assert (runtime.drill_host, runtime.exporter_host) == (None, None)
    assert runtime.ecs == EcsSettings(
        cluster_name="biometrics-backup", subnets=(SUBNET,), security_groups=(SECURITY_GROUP,),
        image_repository="biometrics-backup-agent", image_digest=DIGEST, timezone="UTC",
        retry_attempts=3, max_event_age_seconds=3600, flexible_window_minutes=None,
        task_sizes=DEFAULT_SIZES, log_retention_days=365, metrics_namespace="BiometricsBackup",
        service_discovery=ServiceDiscovery("ns-abcdefgh12345678", "backup.internal",
                                           "backup-exporter"))


def test_the_scale_stack_parses_into_its_ecs_settings():
    settings = stack_settings(stack_config("scale"), "scale")
    runtime = settings.runtime
    assert settings.environment == "prod"
    assert runtime.hosts == () and runtime.drill_host is None and runtime.exporter_host is None
    assert len(runtime.databases) == 50 and all(d.host is None for d in runtime.databases)
    starts = [d.schedule for d in runtime.databases] + [f.schedule for f in runtime.file_sets]
    assert len({*starts, runtime.drill_schedule}) == 52  # no two jobs start together
    assert max(d.size_gib for d in runtime.databases) == 150
    [uploads] = runtime.file_sets
    assert (uploads.host, uploads.efs) == (None, EfsVolume(
        "fs-0a1b2c3d4e5f60718", "fsap-0a1b2c3d4e5f60719", "/mnt/uploads"))
    assert runtime.ecs == EcsSettings(
        cluster_name="biometrics-backup",
        subnets=("subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002",
                 "subnet-0a1b2c3d4e5f60003"),
        security_groups=("sg-0a1b2c3d4e5f60010",),
        image_repository="biometrics-backup-agent",
        image_digest="sha256:108b673dd9a788b7deb4e5e33c6ac6ea32a5ce6ff34714fdbb7693851407fc5e",
        timezone="Europe/Berlin", retry_attempts=3, max_event_age_seconds=3600,
        flexible_window_minutes=5,
        task_sizes={
            "postgres": TaskSize(cpu=1024, memory_mib=4096, ephemeral_storage_gib=21,
                                 expected_minutes=30),
            "files": TaskSize(cpu=512, memory_mib=2048, ephemeral_storage_gib=21,
                              expected_minutes=25),
            "drill": TaskSize(cpu=4096, memory_mib=16384, ephemeral_storage_gib=200,
                              expected_minutes=600),
            "exporter": TaskSize(cpu=256, memory_mib=512, ephemeral_storage_gib=21,
                                 expected_minutes=43800),
        },
        log_retention_days=365, metrics_namespace="BiometricsBackup",
        service_discovery=ServiceDiscovery("ns-0a1b2c3d4e5f6071", "backup.internal",
                                           "backup-exporter"))


def test_prod_stays_on_its_hosts(prod_settings: StackSettings):
    runtime = prod_settings.runtime
    assert runtime.ecs is None
    assert [(d.name, d.host, d.size_gib) for d in runtime.databases] == [
        ("biometrics", "backup-1", None)]
    assert [(f.name, f.host, f.efs, f.size_gib) for f in runtime.file_sets] == [
        ("app", "backup-1", None, None)]
    assert (runtime.drill_host, runtime.exporter_host) == ("restore-1", "restore-1")


def test_hosts_may_be_left_out_only_when_nothing_is_on_a_host():
    on_ecs = {"databases.0.host": DELETE, "databases.0.placement": "ecs",
              "fileSets.0.host": DELETE, "fileSets.0.placement": "ecs",
              "fileSets.0.paths": ["/mnt/uploads/web"], "fileSets.0.efs": UPLOADS_EFS}
    runtime = parse_settings(mixed(hosts=DELETE, **on_ecs), stack="prod").runtime
    assert runtime.hosts == ()
    assert refusal(mixed(hosts=[])) == (
        "runtime.hosts", "needs at least one host: runtime.databases[0] is placed on a host; "
        "allowed: a list of {name, dockerHost, instanceProfile}, or placement: ecs for every "
        "database, file set, the drill and the exporter")


@pytest.mark.parametrize("item", ["databases.1", "fileSets.1", "drill", "exporter"])
def test_each_job_has_exactly_one_placement(item):
    key = "runtime." + item.replace(".1", "[1]")
    assert refusal(mixed(**{f"{item}.host": "restore-1"})) == (
        key, f"sets both host and placement; {PLACEMENT_ALLOWED}")
    assert refusal(mixed(**{f"{item}.placement": DELETE})) == (
        key, f"sets neither host nor placement; {PLACEMENT_ALLOWED}")


def test_a_placement_other_than_ecs_is_refused():
    assert refusal(mixed(**{"drill.placement": "host"})) == (
        "runtime.drill.placement", "got the text 'host'; allowed: ecs (a Docker host is named "
        "with host: NAME instead)")


def test_runtime_ecs_is_required_with_an_ecs_placement_and_refused_without_one():
    assert refusal(mixed(ecs=DELETE)) == (
        "runtime.ecs", "is required: runtime.databases[1] has placement: ecs; allowed: an "
        "object with subnets and securityGroups (the VPC the tasks run in)")
    prod_with_ecs = changed(project_config("prod"), {"runtime.ecs": MIXED_RUNTIME["ecs"]})
    assert refusal(prod_with_ecs) == (
        "runtime.ecs", "is set but nothing has placement: ecs; allowed: no runtime.ecs, or "
        "placement: ecs on a database, file set, the drill or the exporter")


def test_the_image_digest_is_required_in_prod_only():
    assert refusal(mixed(**{"ecs.imageDigest": DELETE})) == (
        "runtime.ecs.imageDigest", "is required in environment prod when anything has "
        "placement: ecs: the task definitions pin the image by digest; allowed: sha256: and 64 "
        "of 0-9 a-f, as aws ecr describe-images prints it (imageDetails[].imageDigest)")
    staging = {**mixed(**{"ecs.imageDigest": DELETE}), "environment": "staging"}
    assert parse_settings(staging, stack="staging").runtime.ecs.image_digest is None


MEMORY_2048 = "4096 to 16384 MiB in steps of 1024"


BOTH_DAYS = ("restricts both day-of-month and day-of-week (cron fires on days matching "
             "either; EventBridge Scheduler needs one of them to be ?); allowed: one of the two "
             "day fields *")
ECS_REFUSALS = [
    ({"ecs.tasks.postgres.cpu": 300}, "ecs.tasks.postgres.cpu",
     "got 300, which is no Fargate task size; allowed: 256, 512, 1024, 2048, 4096, 8192, 16384 "
     "(CPU units)"),
    ({"ecs.tasks.drill.memoryMiB": 2048}, "ecs.tasks.drill.memoryMiB",
     f"got 2048, which Fargate does not pair with cpu 2048; allowed: {MEMORY_2048}"),
    ({"ecs.tasks.drill.memoryMiB": 16896}, "ecs.tasks.drill.memoryMiB",
     f"got 16896, which Fargate does not pair with cpu 2048; allowed: {MEMORY_2048}"),
    ({"ecs.tasks.exporter.memoryMiB": 4096}, "ecs.tasks.exporter.memoryMiB",
     "got 4096, which Fargate does not pair with cpu 256; allowed: 512, 1024, 2048 (MiB)"),
    ({"ecs.tasks.files": {"cpu": 8192, "memoryMiB": 18432}}, "ecs.tasks.files.memoryMiB",
     "got 18432, which Fargate does not pair with cpu 8192; allowed: 16384 to 61440 MiB in "
     "steps of 4096"),
    ({"ecs.tasks.files": {"cpu": 16384, "memoryMiB": 36864}}, "ecs.tasks.files.memoryMiB",
     "got 36864, which Fargate does not pair with cpu 16384; allowed: 32768 to 122880 MiB in "
     "steps of 8192"),
    ({"ecs.tasks.postgres.ephemeralStorageGiB": 20}, "ecs.tasks.postgres.ephemeralStorageGiB",
     "got 20; allowed: a whole number of GiB from 21 to 200"),
    ({"ecs.tasks.drill.ephemeralStorageGiB": 201}, "ecs.tasks.drill.ephemeralStorageGiB",
     "got 201; allowed: a whole number of GiB from 21 to 200"),
    ({"ecs.tasks.postgres.expectedMinutes": 44641}, "ecs.tasks.postgres.expectedMinutes",
     "got 44641; allowed: a whole number of minutes from 1 to 44640"),
    ({"ecs.tasks.scheduler": {"cpu": 256}}, "ecs.tasks.scheduler",
     "unknown key; allowed: postgres, files, drill, exporter"),
    ({"ecs.subnets": DELETE}, "ecs.subnets",
     "is empty; allowed: a list of one or more, each a subnet ID (subnet- and 8 or 17 of 0-9 "
     "a-f)"),
    ({"ecs.subnets": ["subnet-xyz"]}, "ecs.subnets[0]",
     "got the text 'subnet-xyz'; allowed: a subnet ID (subnet- and 8 or 17 of 0-9 a-f)"),
    ({"ecs.subnets": [f"subnet-{n:017x}" for n in range(17)]}, "ecs.subnets",
     "lists 17; allowed: 1 to 16 (awsvpcConfiguration), each a subnet ID (subnet- and 8 or 17 "
     "of 0-9 a-f)"),
    ({"ecs.securityGroups": []}, "ecs.securityGroups",
     "is empty; allowed: a list of one or more, each a security group ID (sg- and 8 or 17 of "
     "0-9 a-f)"),
    ({"ecs.securityGroups": ["sg-0123"]}, "ecs.securityGroups[0]",
     "got the text 'sg-0123'; allowed: a security group ID (sg- and 8 or 17 of 0-9 a-f)"),
    ({"ecs.securityGroups": [f"sg-{n:08x}" for n in range(6)]}, "ecs.securityGroups",
     "lists 6; allowed: 1 to 5 (awsvpcConfiguration), each a security group ID (sg- and 8 or "
     "17 of 0-9 a-f)"),
    ({"ecs.imageDigest": "sha256:abc"}, "ecs.imageDigest",
     "got the text 'sha256:abc'; allowed: an image digest, sha256: and 64 of 0-9 a-f"),
    ({"ecs.imageDigest": "sha512:" + "ab" * 32}, "ecs.imageDigest",
     f"got the text '{('sha512:' + 'ab' * 32)[:60]}...'; allowed: an image digest, sha256: and "
     "64 of 0-9 a-f"),
    ({"ecs.timezone": "Europe/Atlantis"}, "ecs.timezone",
     "got the text 'Europe/Atlantis', which is no time zone; allowed: an IANA time zone name "
     "(Europe/Berlin, UTC) as zoneinfo knows it"),
    ({"ecs.timezone": "localtime"}, "ecs.timezone",
     "got the text 'localtime', which is no time zone; allowed: an IANA time zone name "
     "(Europe/Berlin, UTC) as zoneinfo knows it"),
    ({"ecs.timezone": "Factory"}, "ecs.timezone",
     "got the text 'Factory', which is no time zone; allowed: an IANA time zone name "
     "(Europe/Berlin, UTC) as zoneinfo knows it"),
    ({"ecs.retry.attempts": 186}, "ecs.retry.attempts",
     "got 186; allowed: a whole number from 0 to 185"),
    ({"ecs.retry.attempts": -1}, "ecs.retry.attempts",
     "got -1; allowed: a whole number from 0 to 185"),
    ({"ecs.retry.maxEventAgeSeconds": 59}, "ecs.retry.maxEventAgeSeconds",
     "got 59; allowed: a whole number of seconds from 60 to 86400"),
    ({"ecs.retry.maxEventAgeSeconds": 86401}, "ecs.retry.maxEventAgeSeconds",
     "got 86401; allowed: a whole number of seconds from 60 to 86400"),
    ({"ecs.flexibleWindowMinutes": 0}, "ecs.flexibleWindowMinutes",
     "got 0; allowed: a whole number of minutes from 1 to 1440"),
    ({"ecs.flexibleWindowMinutes": 1441}, "ecs.flexibleWindowMinutes",
     "got 1441; allowed: a whole number of minutes from 1 to 1440"),
    ({"ecs.logRetentionDays": 366}, "ecs.logRetentionDays",
     "got 366, which CloudWatch Logs does not offer; allowed: 1, 3, 5, 7, 14, 30, 60, 90, 120, "
     "150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653"),
    ({"ecs.clusterName": "backup cluster"}, "ecs.clusterName",
     "got the text 'backup cluster'; allowed: 1-246 of A-Z a-z 0-9 _ - (an ECS cluster name; "
     "task families add -<kind>)"),
    ({"ecs.clusterName": "c" * 47}, "ecs.clusterName",
     f"{'c' * 47!r} makes the schedule of postgres:tenant01 '{'c' * 47}-postgres-tenant01', "
     "65 characters; allowed: a cluster name of at most 46 characters with these jobs "
     "(EventBridge Scheduler's schedule names: at most 64)"),
    ({"ecs.imageRepository": "Backup/Agent"}, "ecs.imageRepository",
     "got the text 'Backup/Agent'; allowed: an ECR repository name (2-256 of a-z 0-9 . _ - /, "
     "e.g. team/backup-agent)"),
    ({"ecs.metricsNamespace": "AWS/Backup"}, "ecs.metricsNamespace",
     "got the text 'AWS/Backup'; allowed: a CloudWatch namespace (1-255 of 0-9 A-Z a-z . - _ / "
     "# : and space, not starting with AWS/ or :)"),
    ({"ecs.cluster": "biometrics"}, "ecs.cluster",
     "unknown key; allowed: clusterName, subnets, securityGroups, imageRepository, imageDigest, "
     "timezone, retry, flexibleWindowMinutes, logRetentionDays, metricsNamespace, "
     "serviceDiscovery, tasks"),
    ({"ecs.serviceDiscovery": DELETE}, "ecs.serviceDiscovery",
     "is required with exporter.placement: ecs: Prometheus finds the exporter's task through "
     "Cloud Map DNS; allowed: {namespaceId: ns-..., namespaceName: backup.internal}"),
    ({"ecs.serviceDiscovery.namespaceId": "namespace-1"}, "ecs.serviceDiscovery.namespaceId",
     "got the text 'namespace-1'; allowed: a Cloud Map namespace ID (ns- and 1-61 of a-z 0-9)"),
    ({"ecs.serviceDiscovery.namespaceName": "backup_internal"},
     "ecs.serviceDiscovery.namespaceName",
     "got the text 'backup_internal'; allowed: the private DNS namespace's name (lower-case "
     "DNS labels, e.g. backup.internal)"),
    ({"ecs.serviceDiscovery.serviceName": "Backup_Exporter"},
     "ecs.serviceDiscovery.serviceName",
     "got the text 'Backup_Exporter'; allowed: a DNS label (1-63 of a-z 0-9 -)"),
    ({"exporter.placement": DELETE, "exporter.host": "restore-1"}, "ecs.serviceDiscovery",
     "applies only to the exporter with placement: ecs; allowed: no serviceDiscovery with "
     "exporter.host"),
    ({"exporter.listenAddress": "10.0.0.5"}, "exporter.listenAddress",
     "applies only to a Docker host, and this is placed on ECS (the task listens on its own "
     "network interface); allowed: no listenAddress with placement: ecs"),
    ({"memoryMb": {"drill": 8192}}, "memoryMb.drill",
     "applies only to a Docker host, and this is placed on ECS (the drill task's size is "
     "runtime.ecs.tasks.drill); allowed: no drill with placement: ecs"),
    ({"memoryMb": {"exporter": 512}}, "memoryMb.exporter",
     "applies only to a Docker host, and this is placed on ECS (the exporter task's size is "
     "runtime.ecs.tasks.exporter); allowed: no exporter with placement: ecs"),
    ({"databases.1.schedule": "0 2 1 * 1"}, "databases[1].schedule",
     "'0 2 1 * 1' " + BOTH_DAYS),
    ({"drill.schedule": "0 6 1-7 * 0"}, "drill.schedule",
     "'0 6 1-7 * 0' " + BOTH_DAYS),
]
FILE_SET_REFUSALS = [
    ({"fileSets.1.efs": DELETE}, "fileSets[1].efs",
     "is required with placement: ecs: a task reaches the file set's paths only on an EFS "
     "access point it mounts read-only; allowed: {fileSystemId: fs-..., accessPointId: "
     "fsap-..., mountPath: /PATH}"),
    ({"fileSets.0.efs": UPLOADS_EFS}, "fileSets[0].efs",
     "applies only to a file set with placement: ecs (a Docker host bind-mounts its paths); "
     "allowed: no efs with host: NAME"),
    ({"fileSets.1.paths": ["/mnt/uploads/app", "/srv/media"]}, "fileSets[1].paths[1]",
     "'/srv/media' is outside efs.mountPath (/mnt/uploads), the only file system the task "
     "mounts; allowed: a path under /mnt/uploads"),
    ({"fileSets.1.paths": ["/mnt/uploads-old"]}, "fileSets[1].paths[0]",
     "'/mnt/uploads-old' is outside efs.mountPath (/mnt/uploads), the only file system the "
     "task mounts; allowed: a path under /mnt/uploads"),
    ({"fileSets.1.paths": ["/mnt/uploads/../etc"]}, "fileSets[1].paths[0]",
     "'/mnt/uploads/../etc' is outside efs.mountPath (/mnt/uploads), the only file system the "
     "task mounts; allowed: a path under /mnt/uploads"),
    ({"fileSets.1.checkSubset": "rotate:20"}, "fileSets[1].checkSubset",
     "'rotate:20': rotate:<t> keeps its position in the state directory, which a task loses "
     "when it stops; allowed with placement: ecs: a percentage, n/t or a size (5%, 1/7, 50M)"),
    ({"fileSets.1.efs.fileSystemId": "fs-xyz"}, "fileSets[1].efs.fileSystemId",
     "got the text 'fs-xyz'; allowed: an EFS file system ID (fs- and 8-40 of 0-9 a-f)"),
    ({"fileSets.1.efs.accessPointId": "fs-0123456789abcdef0"}, "fileSets[1].efs.accessPointId",
     "got the text 'fs-0123456789abcdef0'; allowed: an EFS access point ID (fsap- and 8-40 of "
     "0-9 a-f)"),
    ({"fileSets.1.efs.readOnly": False}, "fileSets[1].efs.readOnly",
     "unknown key; allowed: fileSystemId, accessPointId, mountPath"),
]


@pytest.mark.parametrize(("changes", "key", "problem"), ECS_REFUSALS + FILE_SET_REFUSALS)
def test_ecs_settings_are_refused_by_key(changes, key, problem):
    assert refusal(mixed(**changes)) == (f"runtime.{key}", problem)


MOUNT_ALLOWED = ("allowed: an absolute, normalised path other than / and outside /scratch (the "
                 "task's scratch volume)")


@pytest.mark.parametrize("mount_path", ["/", "mnt/uploads", "/mnt/uploads/", "/scratch",
                                        "/scratch/uploads"])
def test_an_efs_mount_path_must_leave_the_task_its_own_paths(mount_path):
    assert refusal(mixed(**{"fileSets.1.efs.mountPath": mount_path})) == (
        "runtime.fileSets[1].efs.mountPath", f"got the text {mount_path!r}; {MOUNT_ALLOWED}")


def test_ecs_file_sets_share_a_volume_but_never_nest_two():
    second = {"name": "media", "placement": "ecs", "efs": UPLOADS_EFS,
              "paths": ["/mnt/uploads/media"], "hostname": "uploads", "schedule": "0 5 * * *",
              "sizeGiB": 20}
    file_sets = MIXED_RUNTIME["fileSets"]
    shared = parse_settings(mixed(fileSets=[*file_sets, second]), stack="prod").runtime
    assert shared.file_sets[1].efs == shared.file_sets[2].efs
    other = {**second, "efs": {**UPLOADS_EFS, "accessPointId": "fsap-00000000000000001",
                               "mountPath": "/mnt/uploads/media"}}
    assert refusal(mixed(fileSets=[*file_sets, other])) == (
        "runtime.fileSets[2].efs.mountPath", "'/mnt/uploads/media' overlaps "
        "runtime.fileSets[1].efs.mountPath (/mnt/uploads) of another EFS volume, and the files "
        "task mounts both; allowed: a path outside /mnt/uploads, or the same efs as that file "
        "set")
    around = {**second, "paths": ["/mnt/media"], "efs": {**other["efs"], "mountPath": "/mnt"}}
    assert refusal(mixed(fileSets=[*file_sets, around])) == (
        "runtime.fileSets[2].efs.mountPath", "'/mnt' overlaps runtime.fileSets[1].efs.mountPath "
        "(/mnt/uploads) of another EFS volume, and the files task mounts both; allowed: a path "
        "outside /mnt/uploads, or the same efs as that file set")


def test_rotate_and_both_day_fields_stay_allowed_on_a_host():
    runtime = parse_settings(mixed(**{"fileSets.0.checkSubset": "rotate:20",
                                      "databases.0.schedule": "0 2 1 * 1"}),
                             stack="prod").runtime
    assert runtime.file_sets[0].check_subset == "rotate:20"
    assert runtime.databases[0].schedule == "0 2 1 * 1"


def test_every_fargate_size_of_the_aws_table_is_accepted():
    # AWS's table: 256: 512, 1024, 2048; 512: 1-4 GB; 1024: 2-8 GB; 2048: 4-16 GB and 4096:
    # 8-30 GB in 1 GB steps; 8192: 16-60 GB in 4 GB steps; 16384: 32-120 GB in 8 GB steps.
    rows = {256: [512, 1024, 2048], 512: [1024, 4096], 1024: [2048, 8192], 2048: [4096, 16384],
            4096: [8192, 30720], 8192: [16384, 61440], 16384: [32768, 122880]}
    counts = {256: 3, 512: 4, 1024: 7, 2048: 13, 4096: 23, 8192: 12, 16384: 12}
    assert {cpu: len(memory) for cpu, memory in ecs_config.FARGATE_MEMORY_MIB.items()} == counts
    for cpu, memories in rows.items():
        for memory in memories:
            raw = mixed(**{"ecs.tasks.drill": {"cpu": cpu, "memoryMiB": memory}})
            assert parse_settings(raw, stack="prod").runtime.ecs.task_sizes["drill"] == \
                TaskSize(cpu, memory, 200, 60)


def test_time_zones_and_retention_at_the_edges_are_accepted():
    ecs = parse_settings(mixed(**{"ecs.timezone": "Europe/Berlin", "ecs.logRetentionDays": 3653,
                                  "ecs.retry": {"attempts": 0, "maxEventAgeSeconds": 86400},
                                  "ecs.flexibleWindowMinutes": 1440}),
                         stack="prod").runtime.ecs
    assert (ecs.timezone, ecs.log_retention_days, ecs.retry_attempts, ecs.max_event_age_seconds,
            ecs.flexible_window_minutes) == ("Europe/Berlin", 3653, 0, 86400, 1440)


# --- the drill's restores against its task storage -------------------------------------------


def test_the_largest_restore_must_fit_the_drill_task():
    assert ecs_config.drill_storage_gib(156) == 199
    assert parse_settings(mixed(**{"databases.1.sizeGiB": 156}), stack="prod").runtime
    assert refusal(mixed(**{"databases.1.sizeGiB": 157})) == (
        "runtime.databases[1].sizeGiB", "tenant01: 157 GiB needs 201 GiB of the drill task's "
        "storage (x 5/4 for WAL replay and restic's cache, + 4 GiB for the image and pg_wal), "
        f"more than {STORAGE_KEY} (200); allowed: sizeGiB at most 156, or the drill on a "
        "restore host (runtime.drill.host: NAME)")
    assert refusal(mixed(**{"ecs.tasks.drill.ephemeralStorageGiB": 100})) == (
        "runtime.databases[1].sizeGiB", "tenant01: 150 GiB needs 192 GiB of the drill task's "
        "storage (x 5/4 for WAL replay and restic's cache, + 4 GiB for the image and pg_wal), "
        f"more than {STORAGE_KEY} (100); allowed: sizeGiB at most 76, or {STORAGE_KEY} of at "
        "least 192")


def test_a_host_placed_database_or_file_set_counts_too():
    """The drill restores everything, whatever its placement."""
    assert refusal(mixed(**{"fileSets.0.sizeGiB": 170})) == (
        "runtime.fileSets[0].sizeGiB", "app: 170 GiB needs 217 GiB of the drill task's storage "
        "(x 5/4 for WAL replay and restic's cache, + 4 GiB for the image and pg_wal), more "
        f"than {STORAGE_KEY} (200); allowed: sizeGiB at most 156, or the drill on a restore "
        "host (runtime.drill.host: NAME)")
    assert refusal(mixed(**{"fileSets.0.sizeGiB": DELETE})) == (
        "runtime.fileSets[0].sizeGiB", "is required with runtime.drill.placement: ecs: the "
        f"drill restores app into its task storage ({STORAGE_KEY}: 200); allowed: the GiB its "
        "restore writes, at most 156")


def test_an_ecs_drill_with_nothing_to_restore_needs_no_size():
    raw = mixed(databases=[], fileSets=[], hosts=DELETE)
    assert parse_settings(raw, stack="prod").runtime.ecs.task_sizes == DEFAULT_SIZES


def test_sizes_are_not_needed_for_a_drill_on_a_host():
    sizes = {f"{item}.sizeGiB": DELETE for item in ("databases.0", "fileSets.0", "fileSets.1")}
    raw = mixed(**sizes, **{"drill.placement": DELETE, "drill.host": "restore-1",
                            "databases.1.sizeGiB": 900})
    assert parse_settings(raw, stack="prod").runtime.drill_host == "restore-1"


# --- what runs on the Docker hosts ---------------------------------------------------------


def containers(raw: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Container name -> the jobs its settings list (the exporter's: its command)."""
    stack = parse_settings(raw, stack="prod")
    hosts = {host.name: host for host in stack.runtime.hosts}
    return {spec.name: (container_specs.agent_settings_for(stack, hosts[spec.host]).jobs
                        if spec.command == ("schedule",) else spec.command)
            for spec in container_specs.container_specs(stack)}


def test_hosts_run_only_what_is_placed_on_them():
    assert containers(mixed()) == {"backup-agent-backup-1": ("postgres:biometrics", "files:app")}


def test_a_restore_host_drills_everything_whatever_its_placement():
    raw = mixed(**{"drill.placement": DELETE, "drill.host": "restore-1"})
    assert containers(raw) == {"backup-agent-backup-1": ("postgres:biometrics", "files:app"),
                               "backup-agent-restore-1": ("drill",)}
    stack = parse_settings(raw, stack="prod")
    drill = container_specs.agent_settings_for(stack, stack.runtime.host("restore-1"))
    assert [d.name for d in drill.databases] == ["biometrics", "tenant01"]
    assert [f.name for f in drill.file_sets] == ["app", "uploads"]


def test_the_exporter_runs_on_a_host_only_when_placed_there():
    raw = mixed(**{"exporter.placement": DELETE, "exporter.host": "restore-1",
                   "ecs.serviceDiscovery": DELETE})
    assert containers(raw) == {"backup-agent-backup-1": ("postgres:biometrics", "files:app"),
                               "backup-exporter-restore-1": ("exporter",)}
