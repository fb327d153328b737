"""Run the stack program without the Pulumi CLI or AWS, recording every declared resource.

The program runs under `pulumi.runtime.set_mocks` exactly as the language host would run it
(`runpy` on the program path). The mocks return realistic ARNs for a placeholder account, so the
recorded policy documents are the ones `pulumi up` would send.
"""

from __future__ import annotations

import logging
import runpy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import ROOT, reset_options
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await

from components.layout import PROJECT

# AWS's documentation placeholder account: never a real one.
PLACEHOLDER_ACCOUNT_ID: Final = "111122223333"
STACK_TYPE: Final = "pulumi:pulumi:Stack"
# The ECS placement's resources, by type: their ARN's service and resource part (from the name,
# or a task definition's family at revision 1), as AWS forms them.
NAMED_ARNS: Final = {
    "aws:ecs/cluster:Cluster": ("ecs", "cluster/{name}"),
    "aws:ecs/taskDefinition:TaskDefinition": ("ecs", "task-definition/{name}:1"),
    "aws:cloudwatch/eventRule:EventRule": ("events", "rule/{name}"),
    "aws:cloudwatch/logGroup:LogGroup": ("logs", "log-group:{name}"),
    "aws:ecr/repository:Repository": ("ecr", "repository/{name}"),
    "aws:secretsmanager/secret:Secret": ("secretsmanager", "secret:{name}-AbCdEf"),
    "aws:sqs/queue:Queue": ("sqs", "{name}"),
    "aws:scheduler/scheduleGroup:ScheduleGroup": ("scheduler", "schedule-group/{name}"),
    "aws:servicediscovery/service:Service": ("servicediscovery", "service/srv-{name}"),
}


@dataclass(frozen=True)
class RecordedResource:
    urn: str
    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    parent: str
    protect: bool
    retain_on_delete: bool
    dependencies: tuple[str, ...]

    @property
    def parent_name(self) -> str:
        return self.parent.rsplit("::", 1)[-1] if self.parent else ""


@dataclass
class StackRun:
    resources: list[RecordedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> RecordedResource:
        matches = [r for r in self.resources if r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]


class PlaceholderCloud(pulumi.runtime.Mocks):
    """Outputs a real provider would compute (ids, ARNs) for the placeholder account."""

    def __init__(self, default_region: str) -> None:
        self.default_region = default_region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        region = inputs.get("region") or self.default_region
        outputs = {**inputs}
        resource_id = f"{args.name}-id"
        if args.typ == "aws:s3/bucket:Bucket":
            resource_id = inputs["bucket"]
            outputs.update(arn=f"arn:aws:s3:::{resource_id}", region=region)
        elif args.typ == "aws:kms/key:Key":
            resource_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{region}/{args.name}"))
            outputs.update(
                keyId=resource_id,
                arn=f"arn:aws:kms:{region}:{PLACEHOLDER_ACCOUNT_ID}:key/{resource_id}",
            )
        elif args.typ == "aws:iam/role:Role":
            resource_id = inputs["name"]
            outputs["arn"] = f"arn:aws:iam::{PLACEHOLDER_ACCOUNT_ID}:role/{resource_id}"
        elif args.typ == "aws:iam/instanceProfile:InstanceProfile":
            resource_id = inputs["name"]
            outputs["arn"] = (
                f"arn:aws:iam::{PLACEHOLDER_ACCOUNT_ID}:instance-profile/{resource_id}")
        elif args.typ == "aws:sns/topic:Topic":
            outputs["arn"] = f"arn:aws:sns:{region}:{PLACEHOLDER_ACCOUNT_ID}:{inputs['name']}"
        elif args.typ in NAMED_ARNS:
            service, resource = NAMED_ARNS[args.typ]
            name = inputs.get("family") or inputs["name"]
            outputs["arn"] = (f"arn:aws:{service}:{region}:{PLACEHOLDER_ACCOUNT_ID}:"
                              + resource.format(name=name))
            if args.typ == "aws:ecs/taskDefinition:TaskDefinition":
                outputs["arnWithoutRevision"] = outputs["arn"].removesuffix(":1")
            elif args.typ == "aws:ecr/repository:Repository":
                outputs["repositoryUrl"] = (f"{PLACEHOLDER_ACCOUNT_ID}.dkr.ecr.{region}"
                                            f".amazonaws.com/{name}")
            elif args.typ == "aws:sqs/queue:Queue":
                outputs["url"] = (f"https://sqs.{region}.amazonaws.com/{PLACEHOLDER_ACCOUNT_ID}"
                                  f"/{name}")
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": PLACEHOLDER_ACCOUNT_ID,
                "arn": f"arn:aws:iam::{PLACEHOLDER_ACCOUNT_ID}:user/offline-preview",
                "userId": "offline-preview",
                "id": PLACEHOLDER_ACCOUNT_ID,
            }, []
        raise NotImplementedError(f"the offline preview does not mock {args.token}")


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks, run: StackRun) -> None:
        super().__init__(mocks)
        self.run = run

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != STACK_TYPE:
            self.run.resources.append(
                RecordedResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    inputs=rpc.deserialize_properties(request.object),
                    custom=request.custom,
                    parent=request.parent,
                    protect=request.protect,
                    retain_on_delete=request.retainOnDelete,
                    dependencies=tuple(request.dependencies),
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        if request.urn.endswith(f"{STACK_TYPE}::{PROJECT}-{pulumi.get_stack()}"):
            self.run.outputs.update(rpc.deserialize_properties(request.outputs))
        return super().RegisterResourceOutputs(request)


class _WarningCollector(logging.Handler):
    def __init__(self, run: StackRun) -> None:
        super().__init__(logging.WARNING)
        self.run = run

    def emit(self, record: logging.LogRecord) -> None:
        self.run.warnings.append(record.getMessage())


def run_program(program: Path, *, stack: str, config: Mapping[str, str],
                secret_keys: tuple[str, ...] = (), run: StackRun | None = None,
                preview: bool = True) -> StackRun:
    """Run `program` (a directory with __main__.py, as in Pulumi.yaml's `main`) under mocks.

    `config` uses full keys (`project:key`, `aws:region`) with string values, as the CLI passes
    them. Exceptions from the program (e.g. a ConfigError) propagate after the run settles;
    pass `run` to inspect what was declared before it failed. `preview=False` runs it as
    `pulumi up` would (e.g. missing secrets are refused instead of replaced by placeholders).
    """
    run = run if run is not None else StackRun()
    logger = logging.getLogger(f"offline-preview.{stack}")
    logger.propagate = False
    logger.handlers = [_WarningCollector(run)]
    cloud = PlaceholderCloud(config.get("aws:region", "us-east-1"))
    reset_options(project=PROJECT, stack=stack, preview=preview)
    pulumi.runtime.set_mocks(cloud, project=PROJECT, stack=stack, preview=preview, logger=logger,
                             monitor=RecordingMonitor(cloud, run))
    set_all_config(dict(config), list(secret_keys))
    # set_mocks finishes a root stack at once; the language host's own path (run_in_stack)
    # creates it around the program instead, so stack exports are registered as in a real run.
    ROOT.set(None)
    _sync_await(run_in_stack(lambda: runpy.run_path(str(program), run_name="__main__")))
    return run
