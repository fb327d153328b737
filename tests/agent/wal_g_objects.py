"""What the exporter tests put into moto and read back from a collector: wal-g's objects
(sentinels, base backups) under postgres/biometrics/, and metric samples by name."""

from __future__ import annotations

import json

ROOT = "postgres/biometrics/"


def sentinel(finish: str, system_identifier: int = 7301234567890123456) -> bytes:
    return json.dumps({"LSN": 67108904, "FinishLSN": 67109160, "PgVersion": 150006,
                       "SystemIdentifier": system_identifier, "Version": 2,
                       "StartTime": "2026-01-01T00:00:00.000000Z", "FinishTime": finish,
                       "DateFmt": "%Y-%m-%dT%H:%M:%S.%fZ", "IsPermanent": False}).encode()


def put_backup(s3, bucket, name, finish, body=None):
    s3.put_object(Bucket=bucket, Key=f"{ROOT}basebackups_005/{name}/tar_partitions/part_001.tar",
                  Body=b"x")
    s3.put_object(Bucket=bucket, Key=f"{ROOT}basebackups_005/{name}_backup_stop_sentinel.json",
                  Body=body if body is not None else sentinel(finish))


def metric_values(collector) -> dict[str, dict[tuple, float]]:
    values: dict[str, dict[tuple, float]] = {}
    for family in collector.collect():
        for sample in family.samples:
            values.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return values


def only(values, name):
    [value] = values[name].values()
    return value
