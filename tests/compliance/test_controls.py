"""The control registry over recorded resources: prod passes; one edit makes each control fail."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from compliance.controls import REGISTRY, controls_by_id, run_control
from compliance.inventory import CONTAINER, Declared, build_inventory
from contract.layout import FULL_BACKUP_INTERVAL_LABEL, HOST_LABEL
from tests.support.control_cases import (
    FAILING_EDITS,
    PRIMARY,
    PRIMARY_LOGS,
    PROD_STATUSES,
    RCP,
    REPLICA,
    REPLICA_LOGS,
    SCP,
    TOPIC,
    change_statement,
    drop_condition,
    set_input,
    unknown_outputs,
)
from tests.support.resources import (
    ACCOUNT,
    declared_of,
    edit,
    edit_policy,
    sibling,
    without_sid,
)


def result(resources: list[Declared], control_id: str):
    return run_control(controls_by_id()[control_id], build_inventory(resources))


def failures(resources: list[Declared], control_id: str) -> list[tuple[str, str]]:
    outcome = result(resources, control_id)
    assert outcome.status == "fail", outcome
    return [(f.subject, f.evidence) for f in outcome.findings if f.status == "fail"]


def test_registry_ids_are_unique_and_every_control_is_described():
    assert len({c.id for c in REGISTRY}) == len(REGISTRY) == len(PROD_STATUSES)
    for control in REGISTRY:
        assert control.title and control.scope.name and control.severity in (
            "critical", "high", "medium", "low")


def test_prod_statuses(prod_inventory):
    statuses = {c.id: run_control(c, prod_inventory).status for c in REGISTRY}
    assert statuses == PROD_STATUSES


def test_prod_evidence_names_resources_and_sids(prod_inventory):
    ssl = run_control(controls_by_id()["s3-ssl-only"], prod_inventory)
    assert [(f.subject, f.sids) for f in ssl.findings] == [
        (PRIMARY, ("EnforceSSL",)), (PRIMARY_LOGS, ("EnforceSSL",)),
        (REPLICA, ("EnforceSSL",)), (REPLICA_LOGS, ("EnforceSSL",))]
    lock = run_control(controls_by_id()["s3-object-lock-default-retention"], prod_inventory)
    assert [(f.subject, f.evidence) for f in lock.findings] == [
        (PRIMARY, "backup-primary-object-lock: default retention COMPLIANCE 30 days"),
        (REPLICA, "backup-replica-object-lock: default retention COMPLIANCE 30 days")]
    version = run_control(controls_by_id()["s3-version-delete-break-glass-only"], prod_inventory)
    assert [f.sids for f in version.findings] == [
        ("DenyDeleteBackup",), ("DenyDeleteBackup", "DenyReplicaWritesExceptReplication")]
    assert version.findings[1].evidence == (
        "backup-replica-policy: s3:DeleteObjectVersion explicitly denied to the account root, "
        "every role of the stack and an administrator allowed *:*")  # no break-glass configured


def test_not_applicable_controls_give_their_reason(prod_inventory, stack_run):
    account = run_control(controls_by_id()["s3-account-public-access-block"], prod_inventory)
    assert account.reason == (
        "account-level setting (the account's S3 public access block); this package manages "
        "buckets, not the account, so it neither sets nor reads it")
    without_runtime = build_inventory(declared_of(stack_run("prod", {"runtime": None})))
    reasons = {c: run_control(controls_by_id()[c], without_runtime).reason for c in (
        "container-no-static-credentials", "restore-host-no-write-credentials",
        "rto-restorable-backup-not-cold")}
    no_containers = ("the stack declares no docker:index/container:Container (no backup "
                     "runtime configured)")
    assert reasons == {
        "container-no-static-credentials": no_containers,
        "restore-host-no-write-credentials":
            "no container carries the label biometrics-backup.host=restore",
        "rto-restorable-backup-not-cold": "no container declares its full base-backup interval "
        "(label biometrics-backup.full-backup-interval-days): " + no_containers,
    }


def test_prod_runtime_containers_are_judged(prod_inventory):
    evidence = {c: [(f.subject, f.evidence) for f in run_control(controls_by_id()[c],
                                                                  prod_inventory).findings]
                for c in ("container-no-static-credentials", "restore-host-no-write-credentials",
                          "rto-restorable-backup-not-cold")}
    assert evidence == {
        "container-no-static-credentials": [
            (name, f"{name}: 0 env var(s) and {uploads} uploaded file(s), no static AWS "
                   "credentials, no secret in the environment; AWS access comes from the host's "
                   "instance profile")
            for name, uploads in (("runtime-backup-agent-backup-1", 4),
                                  ("runtime-backup-agent-restore-1", 3),
                                  ("runtime-backup-exporter-restore-1", 1))],
        "restore-host-no-write-credentials": [
            (name, f"{name}: no AWS credentials of its own (env, mounts, uploads); it can only "
                   "use the host's instance profile")
            for name in ("runtime-backup-agent-restore-1", "runtime-backup-exporter-restore-1")],
        "rto-restorable-backup-not-cold": [(
            "runtime-backup-agent-backup-1", "runtime-backup-agent-backup-1: full base backups "
            "every 1 day(s); the newest base backup and its WAL leave STANDARD only after that")],
    }


@pytest.mark.parametrize(("control_id", "change", "expected"), FAILING_EDITS,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(FAILING_EDITS)])
def test_one_edit_fails_the_control(prod_declared, control_id, change, expected):
    assert failures(change(prod_declared), control_id) == expected


def test_resource_star_passes_only_for_actions_aws_cannot_scope(prod_declared):
    def grant(actions: list[str]):
        return lambda d: d["Statement"].append(
            {"Sid": "ListAliases", "Effect": "Allow", "Action": actions, "Resource": "*"})

    unscoped = result(edit_policy(prod_declared, "backup-primary-backup-access",
                                  grant(["kms:ListAliases", "kms:CreateKey"])),
                      "iam-no-wildcard-allow")
    assert unscoped.status == "pass"
    finding = next(f for f in unscoped.findings
                   if f.subject == "backup-primary-backup-access (identity)")
    assert finding.evidence == ("7 Allow statement(s) name actions and resources (Resource \"*\" "
                                "in ListAliases: actions AWS cannot scope to a resource, or "
                                "scoped by their condition key)")
    assert failures(edit_policy(prod_declared, "backup-primary-backup-access",
                                grant(["kms:ListAliases", "kms:Decrypt"])),
                    "iam-no-wildcard-allow") == [
        ("backup-primary-backup-access (identity)", "ListAliases: wildcard resource '*'")]


def test_a_wildcard_in_a_colon_resource_id_passes_only_after_a_name_prefix(prod_declared):
    """resource-type:resource-id ARNs (alarm:<name>): alarm:stack.* names the stack's alarms,
    alarm:* and log-group:* every one of the type."""
    def grant(resource: str):
        return lambda d: d["Statement"].append(
            {"Sid": "Alarms", "Effect": "Allow", "Action": ["cloudwatch:DescribeAlarms"],
             "Resource": resource})

    region = f"arn:aws:cloudwatch:eu-central-1:{ACCOUNT}"
    assert result(edit_policy(prod_declared, "backup-primary-backup-access",
                              grant(f"{region}:alarm:biometrics-backup.*")),
                  "iam-no-wildcard-allow").status == "pass"
    for resource in (f"{region}:alarm:*", f"{region}:alarm:?ackup",
                     f"arn:aws:logs:eu-central-1:{ACCOUNT}:log-group:*",
                     f"arn:aws:cloudwatch:*:{ACCOUNT}:alarm:biometrics-backup.*"):
        assert failures(edit_policy(prod_declared, "backup-primary-backup-access",
                                    grant(resource)), "iam-no-wildcard-allow") == [
            ("backup-primary-backup-access (identity)",
             f"Alarms: wildcard resource {resource!r}")], resource


def test_list_tasks_on_star_passes_only_scoped_by_its_cluster(prod_declared):
    def grant(condition: dict[str, Any] | None):
        return lambda d: d["Statement"].append(
            {"Sid": "AllowOverlapGuardList", "Effect": "Allow", "Action": ["ecs:ListTasks"],
             "Resource": "*", **({"Condition": condition} if condition else {})})

    cluster = {"ArnEquals": {"ecs:cluster": f"arn:aws:ecs:eu-central-1:{ACCOUNT}:cluster/c"}}
    scoped = result(edit_policy(prod_declared, "backup-primary-backup-access", grant(cluster)),
                    "iam-no-wildcard-allow")
    assert scoped.status == "pass"
    for condition in (None, {"StringEquals": {"aws:RequestedRegion": "eu-central-1"}},
                      {"ArnLike": {"ecs:cluster": f"arn:aws:ecs:eu-central-1:{ACCOUNT}:cluster/*"}},
                      {"ArnEquals": {"ecs:cluster": "*"}}):
        assert failures(edit_policy(prod_declared, "backup-primary-backup-access",
                                    grant(condition)), "iam-no-wildcard-allow") == [
            ("backup-primary-backup-access (identity)",
             "AllowOverlapGuardList: wildcard resource '*'")]


def test_break_glass_exception_for_a_role_outside_the_stack_passes(prod_declared):
    glass = f"arn:aws:iam::{ACCOUNT}:role/break-glass"

    def except_glass(document: dict[str, Any]) -> None:
        deny = next(s for s in document["Statement"] if s["Sid"] == "DenyDeleteBackup")
        deny["Condition"] = {"ArnNotEquals": {"aws:PrincipalArn": glass}}

    outcome = result(edit_policy(prod_declared, "backup-primary-policy", except_glass),
                     "s3-version-delete-break-glass-only")
    assert outcome.status == "pass"
    assert outcome.findings[0].evidence.endswith(f"; excepted: {glass} (break-glass)")


def test_seed_bucket_policy_fails_the_condition_key_control(prod_declared, seed_policy):
    resources = edit(prod_declared, "backup-primary-policy",
                     set_input(("policy",), json.dumps(seed_policy)))
    failing = failures(resources, "iam-condition-keys-valid")
    assert failing == [("backup-primary-policy (resource)",
                        "UNKNOWN_CONDITION_FOR_ACTION: Unknown condition s3:ObjectTag/Retention "
                        "for action s3:DeleteObject")]
    finding = next(f for f in result(resources, "iam-condition-keys-valid").findings
                   if f.subject == "backup-primary-policy (resource)")
    assert finding.sids == ("DenyDeleteBackup",)
    assert failures(resources, "iam-policy-lint-clean") == [
        ("backup-primary-policy (resource)",
         "MEDIUM UNKNOWN_CONDITION_FOR_ACTION: Unknown condition s3:ObjectTag/Retention for "
         "action s3:DeleteObject")]


# --- stack variants (each configuration runs once per session) -------------------------------


def test_object_lock_off_fails_by_name(stack_run):
    run = stack_run("prod", {"objectLock": {"enabled": False}})
    assert failures(declared_of(run), "s3-object-lock-default-retention") == [
        ("biometrics-backups (backup-primary-bucket)",
         "backup-primary-bucket: objectLockEnabled is not true"),
        ("biometrics-backups-replica (backup-replica-bucket)",
         "backup-replica-bucket: objectLockEnabled is not true")]


def test_replication_off_fails_by_name(stack_run):
    run = stack_run("prod", {"replica": {"enabled": False}})
    assert failures(declared_of(run), "s3-cross-region-replication") == [
        (PRIMARY, "biometrics-backups has no replication configuration")]


# --- containers (the runtime has not landed: synthetic recorded resources) -------------------


def container(name: str, envs: list[str], labels: dict[str, str],
              **inputs: Any) -> Declared:
    return Declared(
        urn=f"urn:pulumi:prod::biometrics-backup::biometrics:backup:BackupRuntime${CONTAINER}::"
            f"{name}",
        type=CONTAINER, name=name,
        inputs={"name": name, "image": "backup-agent:1", "envs": envs,
                "labels": [{"label": k, "value": v} for k, v in labels.items()], **inputs},
        parent="urn:pulumi:prod::biometrics-backup::biometrics:backup:BackupRuntime::runtime")


CLEAN_ENV = ["AWS_REGION=eu-central-1", "RESTIC_PASSWORD_FILE=/run/secrets/restic-password",
             "WALG_S3_PREFIX=s3://biometrics-backups/postgres/main"]


def test_container_controls_pass_on_clean_containers(prod_declared):
    resources = [*prod_declared,
                 container("backup-agent", CLEAN_ENV, {FULL_BACKUP_INTERVAL_LABEL: "7"}),
                 container("restore-agent", CLEAN_ENV, {HOST_LABEL: "restore"})]
    statuses = {c: result(resources, c).status for c in (
        "container-no-static-credentials", "restore-host-no-write-credentials",
        "rto-restorable-backup-not-cold")}
    assert statuses == dict.fromkeys(statuses, "pass")
    assert result(resources, "rto-restorable-backup-not-cold").findings[0].evidence == (
        "backup-agent: full base backups every 7 day(s); the newest base backup and its WAL "
        "leave STANDARD only after that")


def test_static_credentials_in_a_container_fail(prod_declared):
    resources = [*prod_declared, container("backup-agent", [
        *CLEAN_ENV, "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "RESTIC_PASSWORD=your-encryption-password"], {})]
    assert failures(resources, "container-no-static-credentials") == [(
        "backup-agent", "backup-agent: env AWS_SECRET_ACCESS_KEY (static AWS credentials); "
                        "env RESTIC_PASSWORD holds a plaintext secret (use a *_FILE mount)")]


def test_write_credentials_on_the_restore_host_fail(prod_declared):
    resources = [*prod_declared, container(
        "restore-agent", [*CLEAN_ENV, "AWS_PROFILE=backup-writer"], {HOST_LABEL: "restore"},
        volumes=[{"hostPath": "/root/.aws", "containerPath": "/root/.aws"}])]
    assert failures(resources, "restore-host-no-write-credentials") == [(
        "restore-agent", "restore-agent: env AWS_PROFILE selects other credentials than the "
                         "restore instance profile; volumes /root/.aws mounts AWS credentials")]


def test_base_backups_older_than_the_glacier_transition_fail_the_rto(prod_declared):
    resources = [*prod_declared,
                 container("backup-agent", CLEAN_ENV, {FULL_BACKUP_INTERVAL_LABEL: "45"})]
    assert failures(resources, "rto-restorable-backup-not-cold") == [(
        "backup-agent", "backup-agent: full base backups every 45 day(s), but "
                        "backup-primary-lifecycle rule 'tier-postgres' → GLACIER after 30 days "
                        "(biometrics-backups): Glacier restores take hours")]


def test_unknown_values_are_reported_unknown_never_pass_or_fail(prod_declared):
    inventory = build_inventory(unknown_outputs(prod_declared))
    statuses = {c.id: run_control(c, inventory).status for c in REGISTRY}
    assert statuses == {
        **PROD_STATUSES,
        # Read from values known at preview (the naming convention attaches them).
        "s3-public-access-blocked": "pass", "s3-acls-disabled": "pass",
        "s3-versioning": "pass", "s3-object-lock-default-retention": "pass",
        "s3-lifecycle-versioned": "pass",
        # Need a policy document, an ARN or a bucket name that is not known yet.
        "s3-ssl-only": "unknown", "s3-tls-1-2": "unknown",
        "s3-kms-encryption-with-rotation": "unknown", "s3-log-bucket-encrypted": "unknown",
        "s3-cross-region-replication": "unknown", "s3-delete-event-notifications": "unknown",
        "s3-access-logging": "unknown", "s3-no-policy-or-acl-changes-granted": "unknown",
        "s3-version-delete-break-glass-only": "unknown", "iam-condition-keys-valid": "unknown",
        "iam-policy-lint-clean": "unknown", "iam-no-wildcard-allow": "unknown",
        "iam-restore-role-read-only": "unknown",
        "s3-replica-written-by-replication-only": "unknown",
        "s3-writes-use-the-bucket-key": "unknown", "s3-retention-capped": "unknown",
        "sns-topic-encrypted-for-publishers-only": "unknown", "org-guard-rendered": "unknown",
    }
    ssl = run_control(controls_by_id()["s3-ssl-only"], inventory)
    assert [f.evidence for f in ssl.findings] == [
        f"backup-{name}-policy.policy is unknown during preview"
        for name in ("primary", "primary-access-logs", "replica", "replica-access-logs")]


# --- the CI deploy role, the guard's exemptions, EventBridge (stack variants) ----------------

GITHUB = {"repository": "octo-org/octo-repo", "environment": "prod"}
GLASS = f"arn:aws:iam::{ACCOUNT}:role/break-glass"
DEPLOY = f"arn:aws:iam::{ACCOUNT}:role/biometrics-backup-prod-github-deploy"


@pytest.fixture(scope="module")
def with_github(stack_run):
    return declared_of(stack_run("prod", {"github": GITHUB, "roles": {
        "backup": "backup-server", "restore": "restore-server", "walArchiver": "wal-archiver",
        "replication": "biometrics-backups-replication", "breakGlassArn": GLASS}}))


def test_deploy_role_key_management_is_tag_scoped(with_github):
    outcome = result(with_github, "iam-key-management-tag-scoped")
    assert [(f.subject, f.status, f.evidence, f.sids) for f in outcome.findings] == [(
        "biometrics-backup-prod-github-deploy", "pass",
        "biometrics-backup-prod-github-deploy: creates keys only with "
        "{'biometrics-backup-stack': 'prod'} (and no other tag key), manages only keys carrying "
        "it", ("CreateKeys", "ManageKeys"))]
    unscoped = edit_policy(with_github, "github-deploy-access",
                           drop_condition("ManageKeys", "StringEquals"))
    assert failures(unscoped, "iam-key-management-tag-scoped") == [(
        "biometrics-backup-prod-github-deploy",
        "biometrics-backup-prod-github-deploy changes the policy of a key without it: allowed")]
    any_tag = edit_policy(with_github, "github-deploy-access",
                          drop_condition("CreateKeys", "ForAllValues:StringEquals"))
    assert failures(any_tag, "iam-key-management-tag-scoped") == [(
        "biometrics-backup-prod-github-deploy", "biometrics-backup-prod-github-deploy creates a "
        "key with another tag key too: allowed")]


def test_guard_exempts_exactly_the_deploy_role_and_break_glass(with_github):
    outcome = result(with_github, "org-guard-rendered")
    assert outcome.status == "manual"
    assert outcome.findings[0].evidence.startswith(
        "rendered, apply in the management account: organization-guard-resource-control-policy,"
        " organization-guard-service-control-policy deny ")
    assert f"by anyone but {DEPLOY}, {GLASS}" in outcome.findings[0].evidence
    assert outcome.findings[0].evidence.endswith(
        "and the OIDC provider); AWS services and the organization's principals pass")
    widened = edit_policy(with_github, RCP, change_statement(
        "DenyProtectedBucketChanges", lambda s: s["Condition"]["ArnNotLike"].update(
            {"aws:PrincipalArn": [DEPLOY, GLASS, f"arn:aws:iam::{ACCOUNT}:role/*"]})),
        field="content")
    assert failures(widened, "org-guard-rendered") == [(
        RCP, "s3:PutBucketPolicy on arn:aws:s3:::biometrics-backups by an administrator is not "
             "denied by the guard")]
    provider = edit_policy(with_github, SCP, without_sid("DenyOidcProviderChanges"),
                           field="content")
    assert failures(provider, "org-guard-rendered") == [(
        RCP, "iam:UpdateOpenIDConnectProviderThumbprint on arn:aws:iam::111122223333:"
             "oidc-provider/token.actions.githubusercontent.com by an administrator is not "
             "denied by the guard")]


def test_an_eventbridge_rule_publishing_to_the_topic_must_be_admitted_by_its_key(prod_declared):
    topic_arn = f"arn:aws:sns:eu-central-1:{ACCOUNT}:backup-alerts"
    rule = sibling(prod_declared, "backup-alerts-topic",
                   "aws:cloudwatch/eventTarget:EventTarget", "backup-alerts-rule-target",
                   {"rule": "any-rule", "arn": topic_arn})
    assert failures([*prod_declared, rule], "sns-topic-encrypted-for-publishers-only") == [(
        TOPIC, "backup-alerts-key: events.amazonaws.com (publishes to backup-alerts-topic) "
               "cannot kms:GenerateDataKey")]


def _renamed(resources: list[Declared]) -> tuple[list[Declared], dict[str, str]]:
    """Every resource renamed to `<resN>` (URNs, parents and dependencies follow): no name keeps
    a suffix such as `-access-logs` or `-access`. Returns the resources and new → old names.
    Numbered in name order: the report lists subjects by name, and the order resources register
    in varies between runs."""
    names = {name: f"<res{index:04d}>" for index, name in enumerate(sorted(r.name
                                                                           for r in resources))}
    urns = {r.urn: f"{r.urn.rsplit('::', 1)[0]}::{names[r.name]}" for r in resources}
    renamed = [Declared(urns[r.urn], r.type, names[r.name], r.inputs, urns.get(r.parent, r.parent),
                        {key: tuple(urns[u] for u in deps)
                         for key, deps in r.property_dependencies.items()})
               for r in resources]
    return renamed, {new: old for old, new in names.items()}


def _results(resources: list[Declared], old_names: dict[str, str]) -> list[tuple[Any, ...]]:
    inventory = build_inventory(resources)

    def named(text: str) -> str:
        return re.sub(r"<res\d+>", lambda m: old_names.get(m.group(0), m.group(0)), text)

    # Sorted: subjects are listed in resource-name order, which renaming changes.
    return [(control.id, result.status,
             sorted((named(f.subject), f.status, named(f.evidence), f.sids)
                    for f in result.findings))
            for control in REGISTRY
            for result in [run_control(control, inventory)]]


@pytest.mark.parametrize("stack", ["prod", "ecs"])
@pytest.mark.parametrize("preview", ["offline", "first-preview"])
def test_renaming_children_does_not_change_what_the_report_checks(request, stack, preview):
    # Buckets, roles and the ECS resources are recognised by their types, tags and inputs,
    # not their resource names.
    declared = request.getfixturevalue(f"{stack}_declared")
    resources = declared if preview == "offline" else unknown_outputs(declared)
    renamed, old_names = _renamed(resources)
    assert "-access" not in " ".join(r.name for r in renamed)
    expected = _results(resources, {})
    assert any(status == "pass" for _, status, _ in expected)
    assert _results(renamed, old_names) == expected
