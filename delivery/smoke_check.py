"""`python -m delivery.smoke_check --outputs OUTPUTS.json --preview preview/<stack>`

After `pulumi up`: read the deployed stack's configuration with boto3 and compare it with the
documents the offline preview rendered for the same stack, in the shapes the AWS APIs answer
(`aws s3api get-bucket-*`, `aws ecs describe-task-definition`, `aws scheduler get-schedule`,
...). Exit status 0 when everything matches, 1 listing every difference, 2 when the inputs are
unusable.

OUTPUTS.json is `pulumi stack output --json`: `buckets` names each bucket, its region and key;
`ecs`, when the stack places jobs on ECS, the cluster, task definitions, runtime key, secrets,
dead-letter queue and paging rule. The preview shows AWS's placeholder account and values only
AWS can choose (key ARNs, secret ARN suffixes, task definition revisions, the queue URL); the
preview's own outputs (its outputs.json) name them at the same places as the live outputs, so
each is replaced by its live value, and the placeholder account by the live one, before
comparing.

Only configuration reads are sent (GetBucket*, Describe*, GetSchedule, GetQueueAttributes,
ListTargetsByRule): no object request, so the buckets' TLS-only Denies never matter, and the
check needs no access to backup data. Bucket and queue policies are compared by their statement
Sids (their conditions are what IAM evaluates, not what this check can test).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from review.recording import PLACEHOLDER_ACCOUNT_ID
from review.render import OUTPUTS_DOCUMENT

# infra/__main__.py: BackupStore("backup"), EcsCluster("ecs"), EcsJobs("ecs-jobs"); a document
# is <component>/<child>.json (review/render.py).
STORE_COMPONENT: Final = "backup"
CLUSTER_COMPONENT: Final = "ecs"
JOBS_COMPONENT: Final = "ecs-jobs"
REPLICATION_DOCUMENT: Final = f"{STORE_COMPONENT}-replication/configuration.json"
LOG_BUCKET_PREFIX: Final = "access-logs-"  # the log bucket's documents in its component's dir
CLUSTER_DOCUMENT: Final = f"{CLUSTER_COMPONENT}/cluster.json"
RULE_PATTERN_DOCUMENT: Final = f"{CLUSTER_COMPONENT}/task-failures-event-pattern.json"
RULE_TARGET_DOCUMENT: Final = f"{JOBS_COMPONENT}/task-failures-alert.json"
QUEUE_DOCUMENT: Final = f"{JOBS_COMPONENT}/dead-letters-attributes.json"
QUEUE_POLICY_DOCUMENT: Final = f"{JOBS_COMPONENT}/dead-letters-policy.json"
TASK_DEFINITION_SUFFIX: Final = "-task-definition.json"
SCHEDULE_SUFFIX: Final = "-schedule.json"
ECS_OUTPUTS: Final = ("clusterArn", "taskDefinitionArns", "keyArn", "secretArns",
                      "deadLetterQueueUrl", "taskFailuresRule")

# (aspect, preview document) of each bucket.
BUCKET_DOCUMENTS: Final = (
    ("versioning", "versioning.json"),
    ("encryption", "encryption.json"),
    ("public access block", "public-access-block.json"),
    ("ownership", "ownership.json"),
    ("object lock", "object-lock.json"),
    ("lifecycle", "lifecycle.json"),
    ("logging", "logging.json"),
    ("policy", "policy.json"),
)
# Members AWS adds to what it was given, meaning "off"/"unset" (e.g. `MFADelete: Disabled`,
# `BucketKeyEnabled: false`); any other member the preview does not have is a difference.
NEUTRAL_VALUES: Final = (None, False, 0, "", "Disabled", [], {}, {"Status": "Disabled"})
# What ECS and Scheduler add that is state, not configuration (counts, ARNs, revision, dates).
# `compatibilities` is what ECS computed the task definition fits; what the stack asks for is
# `requiresCompatibilities`, compared.
CLUSTER_STATE: Final = ("clusterArn", "registeredContainerInstancesCount", "runningTasksCount",
                        "pendingTasksCount", "activeServicesCount", "statistics", "attachments",
                        "attachmentsStatus")
TASK_DEFINITION_STATE: Final = ("taskDefinitionArn", "revision", "compatibilities",
                                "requiresAttributes", "registeredAt", "registeredBy",
                                "deregisteredAt")
SCHEDULE_STATE: Final = ("ResponseMetadata", "Arn", "CreationDate", "LastModificationDate")


class SmokeCheckError(Exception):
    """The outputs or the preview directory cannot be used (exit status 2)."""


@dataclass(frozen=True)
class Check:
    """One read of one resource, and the document it must answer."""

    resource: str
    region: str
    aspect: str
    request: Mapping[str, Any]
    expected: Any

    @property
    def is_bucket(self) -> bool:
        return ASPECTS[self.aspect].service == "s3"


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


def _live_account(key_arn: str) -> str:
    parts = key_arn.split(":")
    if len(parts) < 6 or parts[2] != "kms":
        raise SmokeCheckError(f"{key_arn!r} is not a KMS key ARN")
    return parts[4]


def paired_values(preview: Any, live: Any) -> Iterator[tuple[str, str]]:
    """(placeholder, live value): each string of the preview's outputs that the live outputs
    have otherwise at the same place."""
    if isinstance(preview, Mapping) and isinstance(live, Mapping):
        for key in preview.keys() & live.keys():
            yield from paired_values(preview[key], live[key])
    elif isinstance(preview, list) and isinstance(live, list) and len(preview) == len(live):
        for pair in zip(preview, live, strict=True):
            yield from paired_values(*pair)
    elif isinstance(preview, str) and isinstance(live, str) and preview != live:
        yield preview, live


def _replacements(outputs: Mapping[str, Any], preview_outputs: Mapping[str, Any],
                  account: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for output in ("buckets", "ecs"):
        for placeholder, live in paired_values(preview_outputs.get(output),
                                               outputs.get(output)):
            if pairs.setdefault(placeholder, live) != live:
                raise SmokeCheckError(f"stack output {output}: {placeholder} has two live "
                                      f"values, {pairs[placeholder]} and {live}")
    # Longest first: no placeholder is replaced inside a longer one. Account ids appear only
    # inside ARNs, always between colons.
    replacements = dict(sorted(pairs.items(), key=lambda pair: -len(pair[0])))
    replacements[f":{PLACEHOLDER_ACCOUNT_ID}:"] = f":{account}:"
    return replacements


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
    preview_outputs = _read(preview / OUTPUTS_DOCUMENT)
    replacements = _replacements(outputs, preview_outputs,
                                 _live_account(buckets["primary"]["keyArn"]))

    def document(relative: str) -> Any:
        return substitute(_read(preview / relative), replacements)

    checks = []
    for purpose, live in buckets.items():
        directory = f"{STORE_COMPONENT}-{purpose}"
        for bucket, prefix in ((live["bucket"], ""), (live["logBucket"], LOG_BUCKET_PREFIX)):
            for aspect, name in BUCKET_DOCUMENTS:
                relative = f"{directory}/{prefix}{name}"
                if (preview / relative).exists():  # e.g. no object-lock.json when it is off
                    checks.append(Check(bucket, live["region"], aspect, {"Bucket": bucket},
                                        document(relative)))
    if (preview / REPLICATION_DOCUMENT).exists():
        primary = buckets["primary"]
        checks.append(Check(primary["bucket"], primary["region"], "replication",
                            {"Bucket": primary["bucket"]}, document(REPLICATION_DOCUMENT)))
    if ("ecs" in outputs) != ("ecs" in preview_outputs):
        where = "the stack outputs" if "ecs" in outputs else "the preview's outputs"
        raise SmokeCheckError(f"only {where} have `ecs`: the preview is not of the deployed "
                              "stack")
    if "ecs" in outputs:
        checks += _ecs_checks(outputs["ecs"], preview, document)
    return checks


def _ecs_checks(ecs: Mapping[str, Any], preview: Path,
                document: Callable[[str], Any]) -> list[Check]:
    """The cluster, each task definition and schedule, the dead-letter queue and the paging
    rule, in the region of the cluster (the primary's)."""
    missing = [key for key in ECS_OUTPUTS if key not in ecs]
    if missing:
        raise SmokeCheckError(f"stack output ecs lacks {', '.join(missing)}")
    region = ecs["clusterArn"].split(":")[3]
    cluster = document(CLUSTER_DOCUMENT)
    checks = [Check(cluster["clusterName"], region, "cluster",
                    {"clusters": [ecs["clusterArn"]], "include": ["SETTINGS"]},
                    {**cluster, "status": "ACTIVE"})]
    jobs = preview / JOBS_COMPONENT
    rendered = {path.name.removesuffix(TASK_DEFINITION_SUFFIX)
                for path in jobs.glob(f"*{TASK_DEFINITION_SUFFIX}")}
    if rendered != set(ecs["taskDefinitionArns"]):
        raise SmokeCheckError(f"the preview renders task definitions of {sorted(rendered)}, "
                              f"stack output ecs.taskDefinitionArns names "
                              f"{sorted(ecs['taskDefinitionArns'])}")
    for kind, arn in sorted(ecs["taskDefinitionArns"].items()):
        task_definition = document(f"{JOBS_COMPONENT}/{kind}{TASK_DEFINITION_SUFFIX}")
        checks.append(Check(task_definition["family"], region, "task definition",
                            {"taskDefinition": arn}, {**task_definition, "status": "ACTIVE"}))
    for path in sorted(jobs.glob(f"*{SCHEDULE_SUFFIX}")):
        schedule = document(f"{JOBS_COMPONENT}/{path.name}")
        checks.append(Check(schedule["Name"], region, "schedule",
                            {"Name": schedule["Name"], "GroupName": schedule["GroupName"]},
                            schedule))
    url = ecs["deadLetterQueueUrl"]
    queue = url.rstrip("/").rsplit("/", 1)[-1]
    checks.append(Check(queue, region, "queue", {"QueueUrl": url, "AttributeNames": ["All"]},
                        document(QUEUE_DOCUMENT)))
    checks.append(Check(queue, region, "queue policy",
                        {"QueueUrl": url, "AttributeNames": ["Policy"]},
                        document(QUEUE_POLICY_DOCUMENT)))
    rule = ecs["taskFailuresRule"]
    checks.append(Check(rule, region, "rule", {"Name": rule},
                        {"EventPattern": document(RULE_PATTERN_DOCUMENT), "State": "ENABLED"}))
    checks.append(Check(rule, region, "rule targets", {"Rule": rule},
                        {"Targets": [document(RULE_TARGET_DOCUMENT)]}))
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


def _without(answer: Mapping[str, Any], members: Iterable[str]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key not in members}


def _configuration(answer: Mapping[str, Any]) -> dict[str, Any]:
    return _without(answer, ("ResponseMetadata",))


def _bucket_policy(answer: Mapping[str, Any]) -> Any:
    return json.loads(answer["Policy"])


def _cluster(answer: Mapping[str, Any]) -> dict[str, Any] | None:
    # DescribeClusters answers an unknown cluster with a failure, not an error.
    clusters = answer["clusters"]
    return _without(clusters[0], CLUSTER_STATE) if clusters else None


def _task_definition(answer: Mapping[str, Any]) -> dict[str, Any]:
    definition = _without(answer["taskDefinition"], TASK_DEFINITION_STATE)
    for volume in definition.get("volumes", []):
        efs = volume.get("efsVolumeConfiguration", {})
        # "Specifying / will have the same effect as omitting this parameter" (ECS API
        # reference, EFSVolumeConfiguration); moto answers it for every EFS volume.
        if efs.get("rootDirectory") == "/":
            del efs["rootDirectory"]
    return definition


def _schedule(answer: Mapping[str, Any]) -> dict[str, Any]:
    schedule = _without(answer, SCHEDULE_STATE)
    # NONE (keep the schedule after its last run) is Scheduler's default, which the stack keeps.
    if schedule.get("ActionAfterCompletion") == "NONE":
        del schedule["ActionAfterCompletion"]
    return schedule


def _queue_attributes(answer: Mapping[str, Any]) -> dict[str, Any]:
    return answer.get("Attributes", {})


def _set_attribute_differences(expected: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """SQS answers every attribute, each with a value (its default when never set): only the
    attributes the stack sets are compared."""
    return list(differences(expected, {key: live[key] for key in expected if key in live}))


def _queue_policy(answer: Mapping[str, Any]) -> Any:
    policy = answer.get("Attributes", {}).get("Policy")
    return json.loads(policy) if policy else None


def _rule(answer: Mapping[str, Any]) -> dict[str, Any]:
    pattern = answer.get("EventPattern")
    return {"EventPattern": json.loads(pattern) if pattern else None, "State": answer["State"]}


def _targets(answer: Mapping[str, Any]) -> dict[str, Any]:
    return {"Targets": answer["Targets"]}


@dataclass(frozen=True)
class Aspect:
    """How one aspect is read: the boto3 service and method, the error codes meaning "not
    there", the answer in the preview document's shape (None: not there) and how it is
    compared."""

    service: str
    method: str
    not_found_codes: tuple[str, ...] = ()
    answer: Callable[[Mapping[str, Any]], Any] = _configuration
    compare: Callable[[Any, Any], Iterable[str]] = differences
    missing: str = "not configured"


NO_QUEUE: Final = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
ASPECTS: Final[dict[str, Aspect]] = {
    "versioning": Aspect("s3", "get_bucket_versioning"),
    "encryption": Aspect("s3", "get_bucket_encryption",
                         ("ServerSideEncryptionConfigurationNotFoundError",)),
    "public access block": Aspect("s3", "get_public_access_block",
                                  ("NoSuchPublicAccessBlockConfiguration",)),
    "ownership": Aspect("s3", "get_bucket_ownership_controls",
                        ("OwnershipControlsNotFoundError",)),
    "object lock": Aspect("s3", "get_object_lock_configuration",
                          ("ObjectLockConfigurationNotFoundError",)),
    "lifecycle": Aspect("s3", "get_bucket_lifecycle_configuration",
                        ("NoSuchLifecycleConfiguration",)),
    "logging": Aspect("s3", "get_bucket_logging"),
    "policy": Aspect("s3", "get_bucket_policy", ("NoSuchBucketPolicy",), _bucket_policy,
                     policy_sid_differences),
    "replication": Aspect("s3", "get_bucket_replication",
                          ("ReplicationConfigurationNotFoundError",)),
    "cluster": Aspect("ecs", "describe_clusters", (), _cluster, missing="not found"),
    # ECS answers an unknown task definition with ClientException "Unable to describe task
    # definition".
    "task definition": Aspect("ecs", "describe_task_definition", ("ClientException",),
                              _task_definition, missing="not found"),
    "schedule": Aspect("scheduler", "get_schedule", ("ResourceNotFoundException",), _schedule,
                       missing="not found"),
    "queue": Aspect("sqs", "get_queue_attributes", NO_QUEUE, _queue_attributes,
                    _set_attribute_differences, missing="not found"),
    "queue policy": Aspect("sqs", "get_queue_attributes", NO_QUEUE, _queue_policy,
                           policy_sid_differences),
    "rule": Aspect("events", "describe_rule", ("ResourceNotFoundException",), _rule,
                   missing="not found"),
    "rule targets": Aspect("events", "list_targets_by_rule", ("ResourceNotFoundException",),
                           _targets),
}

ClientFactory = Callable[[str, str], Any]


def run_checks(checks: list[Check], client: ClientFactory) -> list[str]:
    """`client(service, region)` returns a boto3 client; the result lists every difference."""
    from botocore.exceptions import ClientError

    problems = []
    for check in checks:
        aspect = ASPECTS[check.aspect]
        where = f"{check.resource} {check.aspect}"
        try:
            answer = getattr(client(aspect.service, check.region), aspect.method)(
                **check.request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            problems.append(f"{where}: " + (aspect.missing if code in aspect.not_found_codes
                                             else code or str(error)))
            continue
        live = aspect.answer(answer)
        if live is None:
            problems.append(f"{where}: {aspect.missing}")
            continue
        problems += [f"{where}: {line}" for line in aspect.compare(check.expected, live)]
    return problems


def boto3_clients(endpoint_url: str | None) -> ClientFactory:
    import boto3
    from botocore.config import Config

    clients: dict[tuple[str, str], Any] = {}

    def client(service: str, region: str) -> Any:
        if (service, region) not in clients:
            # A local endpoint (moto) needs path-style addressing: bucket names are not DNS
            # there.
            config = Config(s3={"addressing_style": "path"}) \
                if endpoint_url and service == "s3" else None
            clients[service, region] = boto3.client(service, region_name=region,
                                                    endpoint_url=endpoint_url, config=config)
        return clients[service, region]

    return client


def _ecs_resources(checks: list[Check]) -> str:
    resources = {(ASPECTS[check.aspect].service, check.resource) for check in checks
                 if not check.is_bucket}
    return f" and {len(resources)} ECS resources" if resources else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m delivery.smoke_check",
                                     description=__doc__.splitlines()[2])
    parser.add_argument("--outputs", type=Path, required=True,
                        help="JSON from `pulumi stack output --json`")
    parser.add_argument("--preview", type=Path, required=True,
                        help="the offline preview of the same stack (preview/<stack>)")
    parser.add_argument("--endpoint-url", help="AWS endpoint for every service (a local moto "
                                               "server)")
    args = parser.parse_args(argv)
    try:
        checks = planned_checks(_read(args.outputs), args.preview)
    except SmokeCheckError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    problems = run_checks(checks, boto3_clients(args.endpoint_url))
    for problem in problems:
        print(problem)
    buckets = sorted({check.resource for check in checks if check.is_bucket})
    if problems:
        print(f"FAILED: {len(problems)} differences in {len(buckets)} buckets"
              f"{_ecs_resources(checks)}", file=sys.stderr)
        return 1
    print(f"OK: {len(checks)} checks on {len(buckets)} buckets ({', '.join(buckets)})"
          f"{_ecs_resources(checks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
