"""The ECS placement's controls over the hand-built ECS stack (tests.support.ecs_resources):
the shape of the design passes every control; one edit makes each case fail."""

from __future__ import annotations

import pytest

from compliance.controls import REGISTRY, controls_by_id, run_control
from compliance.inventory import build_inventory
from tests.support.control_cases import drop_condition, unknown_outputs
from tests.support.ecs_cases import DRILL_ROLE, ECS_FAILING_EDITS, ECS_STATUSES
from tests.support.ecs_resources import CLUSTER, NAMESPACE, REGION
from tests.support.resources import edit_policy


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
    assert len(ecs_controls) == 21
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
        "ecr-kms-encrypted")},
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


def test_list_tasks_on_star_is_accepted_only_scoped_to_the_cluster(ecs_declared):
    scoped = next(f for f in result(ecs_declared, "iam-no-wildcard-allow").findings
                  if f.subject == "ecs-role-task-drill-task (identity)")
    assert scoped.evidence == (
        "3 Allow statement(s) name actions and resources (Resource \"*\" in "
        "AllowJobOutcomeMetrics: actions AWS cannot scope to a resource) (Resource \"*\" scoped "
        "by condition: AllowOverlapGuardList by ecs:cluster)")
    unscoped = edit_policy(ecs_declared, "ecs-role-task-drill-task",
                           drop_condition("AllowOverlapGuardList", "ArnEquals"))
    outcome = result(unscoped, "iam-no-wildcard-allow")
    assert [(f.subject, f.evidence) for f in outcome.findings if f.status == "fail"] == [
        ("ecs-role-task-drill-task (identity)", "AllowOverlapGuardList: wildcard resource '*'")]


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
    from review.inventory import from_recorded
    from review.recording import run_program

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
