"""Recorded resources → the documents a reviewer reads, in the shapes AWS prints them.

Policies are the exact JSON text Pulumi would send. Bucket configuration is converted back
from the recorded pulumi-aws inputs into the S3 API's shape (`aws s3api get-bucket-*`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from components.bucket_config import from_pulumi_inputs
from components.organization_guard import RCP_COMPONENT, SCP_COMPONENT
from review.recording import RecordedResource, StackRun

Renderer = Callable[[dict[str, Any]], Any]
# The stack outputs as the preview shows them (`pulumi stack output --json` with placeholders):
# the smoke check pairs them with the live outputs to replace what only AWS can name.
OUTPUTS_DOCUMENT: Final = "outputs.json"


def _policy(field: str) -> Renderer:
    return lambda inputs: json.loads(inputs[field])


def _picked(wrapper: str, fields: tuple[str, ...]) -> Renderer:
    return lambda inputs: {wrapper: from_pulumi_inputs({f: inputs[f] for f in fields})}


def _renamed(document: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {names.get(key, key): value for key, value in document.items()}


def _notification(inputs: dict[str, Any]) -> dict[str, Any]:
    # S3 spells this member "Id" here, unlike the "ID" of lifecycle and replication rules.
    return {"TopicConfigurations": [_renamed(topic, {"ID": "Id"})
                                    for topic in from_pulumi_inputs(inputs["topics"])]}


def _alarm(inputs: dict[str, Any]) -> dict[str, Any]:
    # As `aws cloudwatch describe-alarms` prints it.
    document = from_pulumi_inputs({k: v for k, v in inputs.items() if k != "region"})
    return _renamed(document, {"Name": "AlarmName", "OkActions": "OKActions"})


def _as_recorded(value: Any) -> Any:
    """Recorded inputs in the API's own camelCase (ECS), whole numbers as ints."""
    if isinstance(value, dict):
        return {key: _as_recorded(item) for key, item in value.items() if key != "region"}
    if isinstance(value, list):
        return [_as_recorded(item) for item in value]
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _task_definition(inputs: dict[str, Any]) -> dict[str, Any]:
    # As `aws ecs describe-task-definition` prints its `taskDefinition`: containerDefinitions is
    # JSON text in the inputs, and the API spells pulumi-aws's sizeInGib "sizeInGiB".
    document = _as_recorded(inputs)
    storage = document.pop("ephemeralStorage")
    return {**document, "containerDefinitions": json.loads(inputs["containerDefinitions"]),
            "ephemeralStorage": {"sizeInGiB": storage["sizeInGib"]}}


def _cluster(inputs: dict[str, Any]) -> dict[str, Any]:
    # As `aws ecs describe-clusters --include SETTINGS` prints the cluster's configuration.
    return {"clusterName": inputs["name"], "settings": inputs["settings"]}


def _schedule(inputs: dict[str, Any]) -> dict[str, Any]:
    """As `aws scheduler get-schedule` prints it: Scheduler's PascalCase names, the ECS target's
    network configuration under `awsvpcConfiguration` and its public IP as DISABLED/ENABLED."""
    document = from_pulumi_inputs({k: v for k, v in inputs.items() if k != "region"})
    parameters = document["Target"]["EcsParameters"]
    network = parameters.pop("NetworkConfiguration")
    public_ip = "ENABLED" if network.pop("AssignPublicIp") else "DISABLED"
    parameters["NetworkConfiguration"] = {
        "awsvpcConfiguration": {**network, "AssignPublicIp": public_ip}}
    return document


# pulumi-aws `aws.sqs.Queue` arguments → SQS attribute names (`get-queue-attributes`).
QUEUE_ATTRIBUTES: Final = {
    "kmsMasterKeyId": "KmsMasterKeyId",
    "kmsDataKeyReusePeriodSeconds": "KmsDataKeyReusePeriodSeconds",
    "messageRetentionSeconds": "MessageRetentionPeriod",
}


def _queue_attributes(inputs: dict[str, Any]) -> dict[str, str]:
    # SQS answers every attribute as a string.
    return {QUEUE_ATTRIBUTES[key]: str(_as_recorded(value)) for key, value in inputs.items()
            if key not in ("name", "region")}


def _event_target(inputs: dict[str, Any]) -> dict[str, Any]:
    # As `aws events list-targets-by-rule` prints each target.
    return {"Id": inputs["targetId"], "Arn": inputs["arn"]}


RENDERERS: Final[dict[str, tuple[str, Renderer]]] = {
    "aws:kms/key:Key": ("policy", _policy("policy")),
    "aws:s3/bucketPolicy:BucketPolicy": ("", _policy("policy")),
    "aws:iam/role:Role": ("trust-policy", _policy("assumeRolePolicy")),
    "aws:iam/rolePolicy:RolePolicy": ("", _policy("policy")),
    "aws:sns/topicPolicy:TopicPolicy": ("", _policy("policy")),
    "aws:s3/bucketVersioning:BucketVersioning": (
        "", lambda inputs: from_pulumi_inputs(inputs["versioningConfiguration"])),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "", _picked("ServerSideEncryptionConfiguration", ("rules",))),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (
        "", _picked("PublicAccessBlockConfiguration", (
            "blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets"))),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": (
        "", lambda inputs: {"OwnershipControls": {"Rules": [from_pulumi_inputs(inputs["rule"])]}}),
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": (
        "", _picked("ObjectLockConfiguration", ("objectLockEnabled", "rule"))),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
        "", lambda inputs: from_pulumi_inputs(
            {f: inputs[f] for f in ("transitionDefaultMinimumObjectSize", "rules")})),
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": (
        "", _picked("ReplicationConfiguration", ("role", "rules"))),
    "aws:s3/bucketLogging:BucketLogging": (
        "", _picked("LoggingEnabled", ("targetBucket", "targetPrefix"))),
    "aws:s3/bucketNotification:BucketNotification": ("", _notification),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("", _alarm),
    # The ECS placement (components/ecs_runtime.py). Secret versions are never rendered.
    "aws:ecs/cluster:Cluster": ("", _cluster),
    "aws:ecs/taskDefinition:TaskDefinition": ("", _task_definition),
    "aws:scheduler/schedule:Schedule": ("", _schedule),
    "aws:cloudwatch/eventRule:EventRule": ("event-pattern", _policy("eventPattern")),
    "aws:cloudwatch/eventTarget:EventTarget": ("", _event_target),
    "aws:sqs/queue:Queue": ("attributes", _queue_attributes),
    "aws:sqs/queuePolicy:QueuePolicy": ("", _policy("policy")),
    # Rendered for the management account, not deployed (components/organization_guard.py).
    RCP_COMPONENT: ("", _policy("content")),
    SCP_COMPONENT: ("", _policy("content")),
}


def document_path(resource: RecordedResource, suffix: str) -> str:
    """`<component>/<child>[-suffix].json`: the child's name without its component's prefix."""
    component = resource.parent_name
    child = resource.name.removeprefix(f"{component}-")
    return f"{component}/{child}{'-' + suffix if suffix else ''}.json"


def render_documents(run: StackRun) -> dict[str, Any]:
    documents = {}
    for resource in run.resources:
        if resource.type in RENDERERS:
            suffix, renderer = RENDERERS[resource.type]
            documents[document_path(resource, suffix)] = renderer(resource.inputs)
    return dict(sorted(documents.items()))


def to_text(document: Any) -> str:
    """Pretty and stable. Policies keep the builders' order (Sid first, statements in review
    order); configuration recorded through Pulumi has no order of its own, so its keys are
    sorted."""
    is_policy = isinstance(document, dict) and "Statement" in document
    return json.dumps(document, indent=2, sort_keys=not is_policy) + "\n"


def summary(run: StackRun, stack: str) -> str:
    """A readable tree of what `pulumi up` would declare."""
    children: dict[str, list[RecordedResource]] = {}
    for resource in run.resources:
        children.setdefault(resource.parent_name, []).append(resource)
    lines = [f"# Offline preview of stack `{stack}`", "",
             f"{len(run.resources)} resources; AWS account shown as a placeholder.", ""]

    def walk(parent: str, depth: int) -> None:
        for resource in sorted(children.get(parent, []), key=lambda r: (r.type, r.name)):
            flags = [flag for flag, on in (("protected", resource.protect),
                                           ("retained on delete", resource.retain_on_delete))
                     if on]
            region = resource.inputs.get("region")
            details = ", ".join(([f"region {region}"] if region else []) + flags)
            lines.append(f"{'  ' * depth}- `{resource.type}` **{resource.name}**"
                         + (f" ({details})" if details else ""))
            walk(resource.name, depth + 1)

    roots = {r.parent_name for r in run.resources} - {r.name for r in run.resources}
    for root in sorted(roots):
        walk(root, 0)
    if run.warnings:
        lines += ["", "## Warnings", "", *(f"- {warning}" for warning in run.warnings)]
    lines += ["", "## Stack outputs", "", "```json", to_text(run.outputs).rstrip(), "```", ""]
    return "\n".join(lines)
