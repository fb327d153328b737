"""The ECS placement's controls over the hand-built ECS stack (tests.support.ecs_resources):
the shape of the design passes every control; one edit makes each case fail."""

from __future__ import annotations

import dataclasses

import pytest

from compliance.controls import REGISTRY, controls_by_id, run_control
from compliance.inventory import SCHEDULE, build_inventory
from compliance.report import build_report
from review.inventory import from_recorded
from review.recording import run_program
from review.stack_config import stack_settings
from tests.support import stack_config
from tests.support.control_cases import drop_condition, unknown_outputs
from tests.support.ecs_cases import DRILL_ROLE, ECS_FAILING_EDITS, ECS_STATUSES
from tests.support.ecs_resources import CLUSTER, NAMESPACE, REGION
from tests.support.resources import declared_of, edit_policy


def result(resources, control_id):
    return run_control(controls_by_id()[control_id], build_inventory(resources))


def test_the_designed_shape_passes_every_control(ecs_declared):
    inventory = build_inventory(ecs_declared)
    assert {c.id: run_control(c, inventory).status for c in REGISTRY} == ECS_STATUSES


@pytest.mark.parametrize(("control_id", "change", "expected"), ECS_FAILING_EDITS,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(ECS_FAILING_EDITS)])
def test_one_edit_fails_the_control(ecs_declared, control_id, change, expected):
    outcome = result(change(ecs_declared), control_id)
    assert outcome.status == "fail", outcome
    assert [(f.subject, f.evidence) for f in outcome.findings if f.status == "fail"] == expected


def test_every_ecs_control_has_a_failing_case():
    ecs_controls = {c.id for c in REGISTRY if c.check.__module__ == "compliance.controls.ecs"}
    assert len(ecs_controls) == 22
    assert ecs_controls <= {control for control, _, _ in ECS_FAILING_EDITS}


# What a first preview cannot know: ARNs and everything built from them.
ECS_UNKNOWN = {
    **{c: "unknown" for c in (
        "ecs-task-read-only-root", "ecs-task-not-privileged", "ecs-task-non-root-user",
        "ecs-task-no-added-capabilities", "ecs-task-logs-to-cloudwatch",
        "ecs-task-execution-role-separate", "ecs-task-efs-encrypted-in-transit",
        "ecs-task-no-plaintext-secret", "ecs-role-trust-scoped",
        "ecs-execution-role-least-privilege", "ecs-scheduler-role-least-privilege",
        "scheduler-failed-deliveries-dead-lettered", "scheduler-runs-in-job-task-group",
        "logs-log-group-kms-encrypted", "sqs-queue-kms-encrypted", "secrets-kms-encrypted",
        "ecr-kms-encrypted", "ecr-customer-managed-key")},
    # Read from values known at preview: settings, retention, tag mutability, scanning.
    **{c: "pass" for c in ("ecs-cluster-container-insights", "logs-log-group-retained",
                           "ecr-tags-immutable", "ecr-scan-on-push")},
}


def test_unknown_values_are_reported_unknown_never_pass_or_fail(ecs_declared):
    inventory = build_inventory(unknown_outputs(ecs_declared))
    statuses = {c.id: run_control(c, inventory).status for c in REGISTRY
                if c.check.__module__ == "compliance.controls.ecs"}
    assert statuses == ECS_UNKNOWN
    trust = run_control(controls_by_id()["ecs-role-trust-scoped"], inventory)
    assert trust.findings[0].evidence == "ecs-role-scheduler.assumeRolePolicy is unknown during " \
                                         "preview"


def test_the_scheduler_role_is_trusted_for_its_schedules_group(ecs_declared):
    """The schedules are in a group of their own, the trust scoped to that group's ARN: out of
    the group (Scheduler's default one), the trust would refuse them."""
    findings = {f.subject: f for f in result(ecs_declared, "ecs-role-trust-scoped").findings}
    assert findings[f"{CLUSTER}-scheduler"].evidence == (
        f"{CLUSTER}-scheduler: assumable by scheduler.amazonaws.com for account 111122223333 "
        "only (4 other requests refused)")
    ungrouped = [dataclasses.replace(r, inputs={k: v for k, v in r.inputs.items()
                                                if k != "groupName"})
                 if r.type == SCHEDULE else r for r in ecs_declared]
    assert [(f.subject, f.evidence) for f in result(ungrouped, "ecs-role-trust-scoped").findings
            if f.status == "fail"] == [(
                f"{CLUSTER}-scheduler", f"{CLUSTER}-scheduler: sts:AssumeRole by "
                f"scheduler.amazonaws.com from arn:aws:scheduler:{REGION}:111122223333:"
                "schedule-group/default is refused")]


def test_drill_and_exporter_task_roles_are_restore_roles_with_exactly_the_ecs_extras(
        ecs_declared):
    findings = {f.subject: f for f in result(ecs_declared, "iam-restore-role-read-only").findings}
    assert sorted(findings) == [DRILL_ROLE, f"{CLUSTER}-task-exporter", "restore-server"]
    drill = findings[DRILL_ROLE]
    assert (drill.status, drill.evidence) == ("pass", (
        "19 Allow statement(s) grant only cloudwatch:PutMetricData, ecs:DescribeTasks, "
        "ecs:ListTasks, kms:Decrypt, kms:GenerateDataKey, s3:GetObject, s3:ListBucket, "
        "s3:ListBucketVersions, s3:PutObject; its only writes create outcome records under "
        f"evidence/ and put job-outcome metrics in the namespace {NAMESPACE}"))
    assert {"AllowJobOutcomeMetrics", "AllowOverlapGuardList",
            "AllowOverlapGuardDescribe"} <= set(drill.sids)
    # The exporter only reads: no outcome record, no metric.
    assert findings[f"{CLUSTER}-task-exporter"].evidence == (
        "12 Allow statement(s) grant only kms:Decrypt, s3:GetObject, s3:ListBucket, "
        "s3:ListBucketVersions")


def test_backup_task_roles_are_judged_as_backup_roles(ecs_declared):
    """s3-retention-capped asks every role with backup access whether it can set GOVERNANCE
    retention: the jobs' task roles are among them."""
    resources = edit_policy(ecs_declared, "ecs-role-task-files-primary-backup-access",
                            drop_condition("AllowBackupServerKeepRetention", "StringEquals"))
    outcome = result(resources, "s3-retention-capped")
    assert [(f.subject, f.evidence) for f in outcome.findings if f.status == "fail"] == [(
        "biometrics-backups (backup-primary-bucket)",
        f"backup-primary-policy: {CLUSTER}-task-files may set a GOVERNANCE retention, which "
        "s3:BypassGovernanceRetention could shorten")]


SECRET_IN_TASK = '''
import json
import pulumi
import pulumi_aws as aws

password = pulumi.Output.secret("hunter2")  # as config.require_secret returns it
aws.ecs.TaskDefinition("leaky", family="leaky", container_definitions=password.apply(
    lambda value: json.dumps([{"name": "backup-agent", "image": "agent@sha256:0",
                               "environment": [{"name": "SETTINGS", "value": value}]}])))
aws.ecs.TaskDefinition("clean", family="clean", container_definitions=json.dumps(
    [{"name": "backup-agent", "image": "agent@sha256:0"}]))
'''


def test_a_secret_built_into_a_task_definition_is_seen_in_the_recorded_run(tmp_path):
    """Pulumi marks a value built from a secret as secret: the recording keeps the mark, the
    inventory names the input, and the control fails the task definition that holds it."""

    (tmp_path / "__main__.py").write_text(SECRET_IN_TASK)
    run = run_program(tmp_path, stack="probe", config={"aws:region": REGION})
    inventory = from_recorded(run.resources)
    assert {t.resource.name: t.resource.secret_inputs for t in inventory.task_definitions} == {
        "clean": frozenset(), "leaky": frozenset({"containerDefinitions"})}
    outcome = run_control(controls_by_id()["ecs-task-no-plaintext-secret"], inventory)
    assert [(f.subject, f.status) for f in outcome.findings] == [("clean", "pass"),
                                                                 ("leaky", "fail")]
    assert outcome.findings[1].evidence == (
        "leaky: containerDefinitions is built from a secret value (a secret config key): ECS "
        "would keep it in plaintext")


def test_the_scale_stack_passes_every_mandatory_control(stack_run):
    """Pulumi.scale.yaml as the runtime declares it: every ECS control judges its resources;
    only the advisory customer-managed ECR key fails (the runtime uses ECR's AWS managed key)."""
    settings = stack_settings(stack_config("scale"), "scale")
    inventory = build_inventory(declared_of(stack_run("scale")))
    report = build_report("scale", inventory, settings.waivers, runtime=settings.runtime)
    assert report.mandatory_failures() == []
    statuses = {r.id: r.status for r in report.results
                if r.control.check.__module__ == "compliance.controls.ecs"}
    assert statuses == {**dict.fromkeys(statuses, "pass"), "ecr-customer-managed-key": "fail"}
    assert {line.bucket.split(" ")[0] for line in report.cost.fargate} == {
        "postgres", "files", "drill", "exporter"}
