"""`python -m delivery.smoke_check --outputs OUTPUTS.json --preview preview/<stack>`

After `pulumi up`: read each deployed bucket's configuration with boto3 and compare it with the
documents the offline preview rendered for the same stack (the S3 API shape of
`aws s3api get-bucket-*`). Exit status 0 when everything matches, 1 listing every difference,
2 when the inputs are unusable.

OUTPUTS.json is `pulumi stack output --json` (the `buckets` output names each bucket, its region
and key). The preview shows AWS's placeholder account and made-up key ARNs; they are replaced by
the live account and the live key ARNs before comparing.

Only configuration requests are sent (GetBucket*): no object request, so the buckets' TLS-only
Denies never matter, and the check needs no access to backup data. Bucket policies are compared
by their statement Sids (their conditions are what IAM evaluates, not what this check can test).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from review.recording import PLACEHOLDER_ACCOUNT_ID

STORE_COMPONENT: Final = "backup"  # infra/__main__.py: BackupStore("backup", ...)
REPLICATION_DOCUMENT: Final = f"{STORE_COMPONENT}-replication/configuration.json"
LOG_BUCKET_PREFIX: Final = "access-logs-"  # the log bucket's documents in its component's dir

# (aspect, preview document, boto3 S3 method, error codes that mean "not configured")
ASPECTS: Final = (
    ("versioning", "versioning.json", "get_bucket_versioning", ()),
    ("encryption", "encryption.json", "get_bucket_encryption",
     ("ServerSideEncryptionConfigurationNotFoundError",)),
    ("public access block", "public-access-block.json", "get_public_access_block",
     ("NoSuchPublicAccessBlockConfiguration",)),
    ("ownership", "ownership.json", "get_bucket_ownership_controls",
     ("OwnershipControlsNotFoundError",)),
    ("object lock", "object-lock.json", "get_object_lock_configuration",
     ("ObjectLockConfigurationNotFoundError",)),
    ("lifecycle", "lifecycle.json", "get_bucket_lifecycle_configuration",
     ("NoSuchLifecycleConfiguration",)),
    ("logging", "logging.json", "get_bucket_logging", ()),
    ("policy", "policy.json", "get_bucket_policy", ("NoSuchBucketPolicy",)),
)
REPLICATION_ASPECT: Final = ("replication", REPLICATION_DOCUMENT, "get_bucket_replication",
                             ("ReplicationConfigurationNotFoundError",))
# Members AWS adds to what it was given, meaning "off"/"unset" (e.g. `MFADelete: Disabled`,
# `BucketKeyEnabled: false`); any other member the preview does not have is a difference.
NEUTRAL_VALUES: Final = (None, False, 0, "", "Disabled", [], {}, {"Status": "Disabled"})


class SmokeCheckError(Exception):
    """The outputs or the preview directory cannot be used (exit status 2)."""


@dataclass(frozen=True)
class Check:
    bucket: str
    region: str
    aspect: str
    method: str
    not_found_codes: tuple[str, ...]
    expected: Any


def substitute(document: Any, replacements: Mapping[str, str]) -> Any:
    """Replace preview placeholders inside every string of `document`."""
    if isinstance(document, dict):
        return {key: substitute(value, replacements) for key, value in document.items()}
    if isinstance(document, list):
        return [substitute(item, replacements) for item in document]
    if isinstance(document, str):
        for placeholder, live in replacements.items():
            document = document.replace(placeholder, live)
    return document


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise SmokeCheckError(f"{path}: {error}") from None


def _preview_key_arn(encryption: Mapping[str, Any]) -> str:
    rule = encryption["ServerSideEncryptionConfiguration"]["Rules"][0]
    return rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]


def _live_account(key_arn: str) -> str:
    parts = key_arn.split(":")
    if len(parts) < 6 or parts[2] != "kms":
        raise SmokeCheckError(f"{key_arn!r} is not a KMS key ARN")
    return parts[4]


def planned_checks(outputs: Mapping[str, Any], preview: Path) -> list[Check]:
    """Every comparison to make, with the preview's placeholders replaced by live values."""
    buckets = outputs.get("buckets")
    if not isinstance(buckets, Mapping) or "primary" not in buckets:
        raise SmokeCheckError("the stack outputs have no `buckets.primary` (deployed from an "
                              "older version of this package?)")
    for purpose, live in buckets.items():
        missing = [key for key in ("bucket", "region", "keyArn", "logBucket") if key not in live]
        if missing:
            raise SmokeCheckError(f"stack output buckets.{purpose} lacks {', '.join(missing)}")
    replacements: dict[str, str] = {}
    for purpose, live in buckets.items():
        encryption = _read(preview / f"{STORE_COMPONENT}-{purpose}" / "encryption.json")
        replacements[_preview_key_arn(encryption)] = live["keyArn"]
    account = _live_account(buckets["primary"]["keyArn"])
    # Account ids appear only inside ARNs, always between colons.
    replacements[f":{PLACEHOLDER_ACCOUNT_ID}:"] = f":{account}:"

    checks = []
    for purpose, live in buckets.items():
        directory = preview / f"{STORE_COMPONENT}-{purpose}"
        for bucket, prefix in ((live["bucket"], ""), (live["logBucket"], LOG_BUCKET_PREFIX)):
            for aspect, document, method, not_found in ASPECTS:
                path = directory / f"{prefix}{document}"
                if path.exists():  # e.g. no object-lock.json when Object Lock is off
                    checks.append(Check(bucket, live["region"], aspect, method, not_found,
                                        substitute(_read(path), replacements)))
    replication = preview / REPLICATION_DOCUMENT
    if replication.exists():
        aspect, _, method, not_found = REPLICATION_ASPECT
        primary = buckets["primary"]
        checks.append(Check(primary["bucket"], primary["region"], aspect, method, not_found,
                            substitute(_read(replication), replacements)))
    return checks


def _rules_by_id(items: list[Any]) -> dict[str, Any] | None:
    if items and all(isinstance(item, dict) and "ID" in item for item in items):
        return {item["ID"]: item for item in items}
    return None


def differences(expected: Any, actual: Any, path: str = "") -> Iterator[str]:
    """What differs, as `path: ...` lines. Rules (lists of objects with an ID) are matched by
    ID, other lists by position; members the live side adds are fine only if neutral."""
    where = path or "(document)"
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            child = f"{path}.{key}" if path else key
            if key not in actual:
                yield f"{child}: missing, expected {json.dumps(value)}"
            else:
                yield from differences(value, actual[key], child)
        for key, value in actual.items():
            if key not in expected and value not in NEUTRAL_VALUES:
                child = f"{path}.{key}" if path else key
                yield f"{child}: unexpected {json.dumps(value)}"
    elif isinstance(expected, list) and isinstance(actual, list):
        expected_rules, actual_rules = _rules_by_id(expected), _rules_by_id(actual)
        if expected_rules is not None and actual_rules is not None:
            for rule_id, rule in expected_rules.items():
                if rule_id not in actual_rules:
                    yield f"{path}[{rule_id}]: rule missing"
                else:
                    yield from differences(rule, actual_rules[rule_id], f"{path}[{rule_id}]")
            for rule_id in actual_rules.keys() - expected_rules.keys():
                yield f"{path}[{rule_id}]: unexpected rule"
        elif len(expected) != len(actual):
            yield f"{where}: expected {json.dumps(expected)}, got {json.dumps(actual)}"
        else:
            for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
                yield from differences(want, got, f"{path}[{index}]")
    elif expected != actual or type(expected) is not type(actual):
        yield f"{where}: expected {json.dumps(expected)}, got {json.dumps(actual)}"


def policy_sid_differences(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    want = [statement.get("Sid") for statement in expected.get("Statement", [])]
    got = [statement.get("Sid") for statement in actual.get("Statement", [])]
    return ([f"Sid {sid}: missing" for sid in want if sid not in got]
            + [f"Sid {sid}: unexpected" for sid in got if sid not in want])


def compare(check: Check, live: Any) -> list[str]:
    if check.aspect == "policy":
        return policy_sid_differences(check.expected, json.loads(live["Policy"]))
    return list(differences(check.expected, live))


ClientFactory = Callable[[str], Any]


def run_checks(checks: list[Check], s3_client: ClientFactory) -> list[str]:
    """`s3_client(region)` returns a boto3 S3 client; the result lists every difference."""
    from botocore.exceptions import ClientError

    problems = []
    for check in checks:
        try:
            live = getattr(s3_client(check.region), check.method)(Bucket=check.bucket)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in check.not_found_codes:
                problems.append(f"{check.bucket} {check.aspect}: not configured")
            else:
                problems.append(f"{check.bucket} {check.aspect}: {code or error}")
            continue
        live.pop("ResponseMetadata", None)
        problems += [f"{check.bucket} {check.aspect}: {line}" for line in compare(check, live)]
    return problems


def boto3_clients(endpoint_url: str | None) -> ClientFactory:
    import boto3
    from botocore.config import Config

    clients: dict[str, Any] = {}
    # A local endpoint (moto) needs path-style addressing: bucket names are not DNS there.
    config = Config(s3={"addressing_style": "path"}) if endpoint_url else None

    def client(region: str) -> Any:
        if region not in clients:
            clients[region] = boto3.client("s3", region_name=region, endpoint_url=endpoint_url,
                                           config=config)
        return clients[region]

    return client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m delivery.smoke_check",
                                     description=__doc__.splitlines()[2])
    parser.add_argument("--outputs", type=Path, required=True,
                        help="JSON from `pulumi stack output --json`")
    parser.add_argument("--preview", type=Path, required=True,
                        help="the offline preview of the same stack (preview/<stack>)")
    parser.add_argument("--endpoint-url", help="S3 endpoint (a local moto server)")
    args = parser.parse_args(argv)
    try:
        checks = planned_checks(_read(args.outputs), args.preview)
    except SmokeCheckError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    problems = run_checks(checks, boto3_clients(args.endpoint_url))
    for problem in problems:
        print(problem)
    buckets = sorted({check.bucket for check in checks})
    if problems:
        print(f"FAILED: {len(problems)} differences in {len(buckets)} buckets", file=sys.stderr)
        return 1
    print(f"OK: {len(checks)} checks on {len(buckets)} buckets ({', '.join(buckets)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
