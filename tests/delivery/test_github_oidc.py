"""The GitHub OIDC component: exact trust policies, least-privilege permissions, parliament."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter

import pytest

from compliance.evaluation import LabelledPolicy, Request, evaluate
from compliance.lint import LintFinding, lint_policy
from components.config_reader import ConfigError
from components.oidc_policies import (
    UNSCOPED_ACTIONS,
    DeployedStack,
    deploy_role_policy,
    preview_role_policy,
)
from components.settings import parse_settings
from review.recording import PLACEHOLDER_ACCOUNT_ID
from review.render import render_documents
from review.stack_config import stack_settings
from tests.support import project_config, stack_config

ACCOUNT = PLACEHOLDER_ACCOUNT_ID
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
EXISTING_PROVIDER = "arn:aws:iam::444455556666:oidc-provider/token.actions.githubusercontent.com"
GITHUB = {"repository": "octo-org/octo-repo", "environment": "production"}
PREVIEW_ROLE = f"arn:aws:iam::{ACCOUNT}:role/biometrics-backup-prod-github-preview"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/biometrics-backup-prod-github-deploy"
BACKUP_BUCKETS = ("biometrics-backups", "biometrics-backups-replica")
STORE_ROLES = ("backup-server", "restore-server", "wal-archiver", "biometrics-backups-replication")


def trust(sid, subject, provider=PROVIDER_ARN):
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"Federated": provider},
            "Action": ["sts:AssumeRoleWithWebIdentity"],
            "Condition": {"StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": subject,
            }},
        }],
    }


@pytest.fixture(scope="module")
def with_github(stack_run):
    return stack_run("prod", {"github": GITHUB})


@pytest.fixture(scope="module")
def documents(with_github):
    return render_documents(with_github)


def scale_run(stack_run):
    """Pulumi.scale.yaml (everything on ECS, the exporter too) with a github block."""
    return stack_run("scale", {"github": GITHUB})


@pytest.fixture(scope="module")
def scale_documents(stack_run):
    return render_documents(scale_run(stack_run))


def test_off_without_github_config(prod):
    assert not [r for r in prod.resources if r.name.startswith("github")]
    assert "githubRoleArns" not in prod.outputs


def test_declares_provider_and_two_roles(with_github):
    github = sorted((r.type, r.name) for r in with_github.resources
                    if r.name.startswith("github"))
    assert github == [
        ("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "github-provider"),
        ("aws:iam/role:Role", "github-deploy"),
        ("aws:iam/role:Role", "github-preview"),
        ("aws:iam/rolePolicy:RolePolicy", "github-deploy-access"),
        ("aws:iam/rolePolicy:RolePolicy", "github-preview-access"),
        ("biometrics:backup:GitHubOidc", "github"),
    ]
    provider = with_github.named("github-provider")
    assert provider.inputs["url"] == "https://token.actions.githubusercontent.com"
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert with_github.outputs["githubRoleArns"] == {"preview": PREVIEW_ROLE,
                                                     "deploy": DEPLOY_ROLE}


def test_trust_policies_check_sub_and_aud(documents):
    assert documents["github/preview-trust-policy.json"] == trust(
        "AllowPullRequestPreview", "repo:octo-org/octo-repo:pull_request")
    assert documents["github/deploy-trust-policy.json"] == trust(
        "AllowEnvironmentDeploy", "repo:octo-org/octo-repo:environment:production")


def test_existing_provider_is_used_not_declared(stack_run):
    run = stack_run("prod", {"github": {**GITHUB, "repository": "octo-org@59/octo-repo@710",
                                        "oidcProviderArn": EXISTING_PROVIDER}})
    assert not run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert render_documents(run)["github/deploy-trust-policy.json"] == trust(
        "AllowEnvironmentDeploy", "repo:octo-org@59/octo-repo@710:environment:production",
        EXISTING_PROVIDER)


def test_environment_defaults_to_stack_name():
    raw = {"primary": {"bucketName": "b-primary", "region": "eu-central-1"},
           "replica": {"enabled": False}, "github": {"repository": "o/r"}}
    assert parse_settings(raw, stack="staging").github.environment == "staging"


@pytest.mark.parametrize(("github", "key", "allowed"), [
    ({"environment": "prod"}, "github.repository", "is required"),
    ({"repository": "octo-org"}, "github.repository", "OWNER/REPO"),
    ({"repository": "o/r", "environment": "a b"}, "github.environment", "GitHub environment"),
    ({"repository": "o/r", "oidcProviderArn": "arn:aws:iam::1:oidc-provider/x"},
     "github.oidcProviderArn", "token.actions.githubusercontent.com"),
    ({"repository": "o/r", "secretsKeyArn": "alias/pulumi"}, "github.secretsKeyArn",
     "KMS key ARN"),
    ({"repository": "o/r", "branch": "main"}, "github.branch", "unknown key"),
])
def test_invalid_github_config_names_the_key(github, key, allowed):
    raw = {"primary": {"bucketName": "b-primary", "region": "eu-central-1"},
           "replica": {"enabled": False}, "github": github}
    with pytest.raises(ConfigError) as error:
        parse_settings(raw, stack="prod")
    assert error.value.key == f"biometrics-backup:{key}"
    assert allowed in str(error.value)


def statements(document):
    return {s["Sid"]: s for s in document["Statement"]}


def test_preview_role_reads_the_control_plane_only(documents):
    policy = statements(documents["github/preview-access.json"])
    assert list(policy) == ["ReadBuckets", "ReadKeys", "ReadKeyAliases", "ReadRoles",
                            "ReadGitHubRoles", "ReadInstanceProfiles", "ReadOidcProvider",
                            "ReadTopic", "ReadSubscriptions", "ReadAlarms"]
    actions = [a for s in policy.values() for a in s["Action"]]
    assert all(a.split(":")[1].startswith(("Get", "List", "Describe")) for a in actions)
    assert "s3:GetObject" not in actions and "kms:Decrypt" not in actions
    assert policy["ReadKeys"]["Action"] == ["kms:DescribeKey", "kms:GetKeyPolicy",
                                            "kms:GetKeyRotationStatus", "kms:ListResourceTags"]
    assert policy["ReadBuckets"]["Resource"] == [
        "arn:aws:s3:::biometrics-backups", "arn:aws:s3:::biometrics-backups-access-logs",
        "arn:aws:s3:::biometrics-backups-replica",
        "arn:aws:s3:::biometrics-backups-replica-access-logs"]
    assert policy["ReadAlarms"]["Resource"] == [
        f"arn:aws:cloudwatch:eu-central-1:{ACCOUNT}:alarm:biometrics-backups-{metric}"
        for metric in ("OperationsFailedReplication", "ReplicationLatency")]
    assert policy["ReadRoles"]["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/{name}" for name in STORE_ROLES]
    assert policy["ReadGitHubRoles"] == {
        "Sid": "ReadGitHubRoles", "Effect": "Allow",
        "Action": ["iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies",
                   "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole"],
        "Resource": [PREVIEW_ROLE, DEPLOY_ROLE]}


def test_alarm_arns_are_the_declared_alarms(with_github, documents):
    declared = sorted(f"arn:aws:cloudwatch:{r.inputs['region']}:{ACCOUNT}:alarm:{r.inputs['name']}"
                      for r in with_github.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"))
    for name in ("preview", "deploy"):
        sids = statements(documents[f"github/{name}-access.json"])
        alarms = sids["ReadAlarms" if name == "preview" else "ManageAlarms"]["Resource"]
        assert sorted(alarms) == declared


@pytest.mark.parametrize("stack_documents", ["documents", "scale_documents"])
def test_wildcard_resources_only_for_unscoped_actions(stack_documents, request):
    documents = request.getfixturevalue(stack_documents)
    for name in ("github/preview-access.json", "github/deploy-access.json"):
        for statement in documents[name]["Statement"]:
            if statement["Resource"] == "*":
                assert set(statement["Action"]) <= set(UNSCOPED_ACTIONS), statement["Sid"]
            assert not any("*" in action for action in statement["Action"])


def test_deploy_role_manages_the_store_but_not_its_own_rights(documents):
    """The preview role's reads of each resource and the writes, in one statement; nothing of
    the CI side (the GitHub roles, the OIDC provider), which only an administrator changes."""
    preview = statements(documents["github/preview-access.json"])
    policy = statements(documents["github/deploy-access.json"])
    assert list(policy) == [
        "ManageBuckets", "ReadKeyAliases", "ManageRoles", "ManageInstanceProfiles",
        "ManageTopic", "ManageSubscriptions", "ManageAlarms", "CreateKeys", "TagKeys",
        "ManageKeys", "ManageKeyAliases", "PassReplicationRole"]
    for read, manage, writes in (
            ("ReadBuckets", "ManageBuckets", [
                "s3:CreateBucket", "s3:PutBucketVersioning", "s3:PutEncryptionConfiguration",
                "s3:PutBucketPublicAccessBlock", "s3:PutBucketOwnershipControls",
                "s3:PutBucketObjectLockConfiguration", "s3:PutLifecycleConfiguration",
                "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketLogging",
                "s3:PutReplicationConfiguration", "s3:PutBucketNotification",
                "s3:PutBucketTagging"]),
            ("ReadKeyAliases", "ReadKeyAliases", []),
            ("ReadRoles", "ManageRoles", [
                "iam:CreateRole", "iam:DeleteRole", "iam:UpdateRole", "iam:UpdateRoleDescription",
                "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:UntagRole",
                "iam:PutRolePolicy", "iam:DeleteRolePolicy"]),
            ("ReadInstanceProfiles", "ManageInstanceProfiles", [
                "iam:CreateInstanceProfile", "iam:DeleteInstanceProfile",
                "iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile",
                "iam:TagInstanceProfile"]),
            ("ReadTopic", "ManageTopic", [
                "sns:CreateTopic", "sns:SetTopicAttributes", "sns:TagResource", "sns:Subscribe"]),
            ("ReadSubscriptions", "ManageSubscriptions",
             ["sns:SetSubscriptionAttributes", "sns:Unsubscribe"]),
            ("ReadAlarms", "ManageAlarms", [
                "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource",
                "cloudwatch:UntagResource"])):
        assert policy[manage] == {**preview[read], "Sid": manage,
                                  "Action": [*preview[read]["Action"], *writes]}, manage
    actions = {a for s in policy.values() for a in s["Action"]}
    assert not actions & {"s3:GetObject", "s3:DeleteBucket", "kms:Decrypt", "kms:Encrypt",
                          "kms:ScheduleKeyDeletion", "kms:DisableKey",
                          "iam:CreateOpenIDConnectProvider", "iam:GetOpenIDConnectProvider"}
    resources = [r for s in policy.values() for r in as_list(s["Resource"])]
    assert not [r for r in resources if "github" in r or "oidc-provider" in r]
    assert policy["ManageRoles"]["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/{name}" for name in STORE_ROLES]
    assert policy["PassReplicationRole"] == {
        "Sid": "PassReplicationRole", "Effect": "Allow", "Action": ["iam:PassRole"],
        "Resource": [f"arn:aws:iam::{ACCOUNT}:role/biometrics-backups-replication"],
        "Condition": {"StringEquals": {"iam:PassedToService": "s3.amazonaws.com"}}}
    assert policy["CreateKeys"]["Condition"] == {
        "StringEquals": {"aws:RequestedRegion": ["eu-central-1", "eu-west-1"],
                         "aws:RequestTag/biometrics-backup-stack": "prod"},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["biometrics-backup-stack"]}}


def as_list(value):
    return value if isinstance(value, list) else [value]


def test_deploy_role_keys_are_scoped_by_the_tag_the_stack_sets(with_github, documents):
    """A key's ARN does not exist before it is created: kms:CreateKey, tagging at creation
    and managing a key are conditioned on the tag every key of the stack carries."""
    assert {r.inputs["tags"]["biometrics-backup-stack"]
            for r in with_github.of_type("aws:kms/key:Key")} == {"prod"}
    policy = statements(documents["github/deploy-access.json"])
    keys = [f"arn:aws:kms:{region}:{ACCOUNT}:key/*" for region in ("eu-central-1", "eu-west-1")]
    tagged = {"StringEquals": {"aws:ResourceTag/biometrics-backup-stack": "prod"}}
    assert policy["TagKeys"] == {
        "Sid": "TagKeys", "Effect": "Allow", "Action": ["kms:TagResource"], "Resource": keys,
        "Condition": {"StringEquals": {"aws:RequestTag/biometrics-backup-stack": "prod"},
                      "ForAllValues:StringEquals": {"aws:TagKeys": ["biometrics-backup-stack"]}}}
    assert policy["ManageKeys"] == {
        "Sid": "ManageKeys", "Effect": "Allow",
        "Action": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus",
                   "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:EnableKeyRotation",
                   "kms:UpdateKeyDescription", "kms:UntagResource"],
        "Resource": keys, "Condition": tagged}
    # An alias has no tags (IfExists); a key of another stack is not a target.
    assert policy["ManageKeyAliases"] == {
        "Sid": "ManageKeyAliases", "Effect": "Allow",
        "Action": ["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"],
        "Resource": [f"arn:aws:kms:eu-central-1:{ACCOUNT}:alias/biometrics-backups",
                     f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/biometrics-backups-replica",
                     f"arn:aws:kms:eu-central-1:{ACCOUNT}:alias/backup-alerts", *keys],
        "Condition": {"StringEqualsIfExists": {"aws:ResourceTag/biometrics-backup-stack":
                                               "prod"}}}
    role = "arn:aws:iam::111122223333:role/biometrics-backup-prod-github-deploy"
    deploy = [LabelledPolicy("role", "identity", documents["github/deploy-access.json"],
                             principal_arn=role)]
    for context, expected in (({"aws:ResourceTag/biometrics-backup-stack": "prod"}, True),
                              ({"aws:ResourceTag/biometrics-backup-stack": "dev"}, False),
                              ({}, False)):
        decision = evaluate(Request(role, "kms:PutKeyPolicy", keys[0].replace("*", "other"),
                                    context), deploy)
        assert decision.allowed is expected, context


def probe(role, action, resource):
    return Request(principal_arn=role, action=action, resource=resource, context={})


@pytest.mark.parametrize("stack_documents", ["documents", "scale_documents"])
def test_neither_role_can_read_or_decrypt_backups(stack_documents, request):
    """The role policies and the deployed bucket and key policies together (prod, and the
    scale stack with the ECS placement)."""
    documents = request.getfixturevalue(stack_documents)
    key_arns = {bucket: documents[f"backup-{side}/encryption.json"][
        "ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"][
        "KMSMasterKeyID"] for bucket, side in zip(BACKUP_BUCKETS, ("primary", "replica"),
                                                 strict=True)}
    for role, name in ((PREVIEW_ROLE, "preview"), (DEPLOY_ROLE, "deploy")):
        for bucket, side in zip(BACKUP_BUCKETS, ("primary", "replica"), strict=True):
            policies = [
                LabelledPolicy("role", "identity", documents[f"github/{name}-access.json"],
                               principal_arn=role),
                LabelledPolicy("bucket", "resource", documents[f"backup-{side}/policy.json"]),
                LabelledPolicy("key", "resource", documents[f"backup-{side}/key-policy.json"]),
            ]
            for action, resource in (("s3:GetObject", f"arn:aws:s3:::{bucket}/postgres/base"),
                                     ("s3:GetObject", f"arn:aws:s3:::{bucket}/restic/config"),
                                     ("kms:Decrypt", key_arns[bucket])):
                decision = evaluate(probe(role, action, resource), policies)
                assert (decision.allowed, decision.reason) == (False, "implicit-deny"), (
                    name, action, resource)
        preview = evaluate(probe(role, "s3:GetBucketVersioning",
                                   "arn:aws:s3:::biometrics-backups"),
                           [LabelledPolicy("role", "identity",
                                           documents[f"github/{name}-access.json"],
                                           principal_arn=role)])
        assert preview.allowed


def test_state_backend_access_when_self_managed(stack_run):
    key = "arn:aws:kms:eu-central-1:444455556666:key/0f0b9858-e925-5d85-81e9-5cda3192dd01"
    run = stack_run("prod", {"github": {**GITHUB, "stateBucket": "acme-pulumi-state",
                                        "secretsKeyArn": key}})
    documents = render_documents(run)
    preview = statements(documents["github/preview-access.json"])
    deploy = statements(documents["github/deploy-access.json"])
    state = "arn:aws:s3:::acme-pulumi-state/.pulumi"
    assert preview["WriteStateLocks"]["Resource"] == f"{state}/locks/*"
    assert deploy["WriteState"]["Resource"] == f"{state}/*"
    assert preview["ReadState"]["Resource"] == f"{state}/*"
    assert preview["UseStateSecretsKey"] == {"Sid": "UseStateSecretsKey", "Effect": "Allow",
                                             "Action": ["kms:Decrypt"], "Resource": key}
    assert deploy["UseStateSecretsKey"]["Action"] == ["kms:Decrypt", "kms:Encrypt"]


def test_lint_trust_policies(documents):
    # parliament knows web-identity and SAML providers but not IAM OIDC provider ARNs, which
    # is the form AWS documents for GitHub: its one finding, asserted exactly.
    for name, sid in (("preview", "AllowPullRequestPreview"), ("deploy", "AllowEnvironmentDeploy")):
        result = lint_policy(documents[f"github/{name}-trust-policy.json"], kind="trust")
        assert result.findings == (LintFinding(
            code="UNKNOWN_FEDERATION_SOURCE", severity="MEDIUM",
            title="Unknown federation source", detail=PROVIDER_ARN, sid=sid),)
        assert [a.rule for a in result.accepted] == ["trust-policy-has-no-resource"]


@pytest.mark.parametrize("stack_documents", ["documents", "scale_documents"])
def test_lint_preview_policy_is_clean(stack_documents, request):
    documents = request.getfixturevalue(stack_documents)
    result = lint_policy(documents["github/preview-access.json"], kind="identity")
    assert (result.findings, result.accepted) == ((), ())


@pytest.mark.parametrize("stack_documents", ["documents", "scale_documents"])
def test_lint_deploy_policy_reports_the_inherent_escalation(stack_documents, request):
    """A role that deploys bucket policies can grant itself object access: parliament says so
    for each bucket, and the protected GitHub environment is the control (docs/delivery.md).
    Nothing else, with the ECS placement too."""
    documents = request.getfixturevalue(stack_documents)
    result = lint_policy(documents["github/deploy-access.json"], kind="identity")
    assert {(f.code, f.severity) for f in result.findings} == {
        ("RESOURCE_POLICY_PRIVILEGE_ESCALATION", "MEDIUM")}
    buckets = {f.detail.split(" due to ")[0].rsplit(" on ", 1)[1] for f in result.findings}
    assert buckets == {f"arn:aws:s3:::{name}" for name in (
        "biometrics-backups", "biometrics-backups-access-logs", "biometrics-backups-replica",
        "biometrics-backups-replica-access-logs")}
    assert result.accepted == ()


def test_secrets_key_must_not_be_a_backup_key():
    settings = parse_settings(
        {**{k.split(":", 1)[1]: v for k, v in stack_config("prod").items()
            if k.startswith("biometrics-backup:")},
         "github": {**GITHUB, "secretsKeyArn": f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/"
                    "e2282bd4-1938-5543-b337-23227e99edb8"}}, stack="prod")
    stack = DeployedStack(settings, ACCOUNT, (settings.github.secrets_key_arn,), "topic",
                          PROVIDER_ARN, ())
    with pytest.raises(ValueError, match="must not be a backup key"):
        preview_role_policy(stack)


WILDCARD_EVIDENCE = ('{} Allow statement(s) name actions and resources (Resource "*" in {}: '
                     "actions AWS cannot scope to a resource, or scoped by their condition key)")


@pytest.mark.parametrize(("stack", "preview", "deploy"), [
    ("prod", (10, "ReadKeyAliases, ReadSubscriptions"),
     (12, "ReadKeyAliases, ManageSubscriptions, CreateKeys")),
    ("scale", (12, "ReadKeyAliases, ReadSubscriptions, EcsRegionWide"),
     (19, "ReadKeyAliases, ManageSubscriptions, CreateKeys, EcsRegionWide")),
])
def test_compliance_controls_judge_the_github_roles(stack_run, stack, preview, deploy):
    """The compliance review sees the OIDC roles and passes them (prod, and the scale stack
    with the ECS placement). Its advisory parliament control lists what parliament says about
    them: the unknown federation source (it knows web-identity and SAML providers, not IAM OIDC
    provider ARNs) and the escalation every bucket-policy deployer has."""
    from compliance.report import build_report
    from review.inventory import from_recorded

    run = stack_run(stack, {"github": GITHUB})
    report = build_report(stack, from_recorded(run.resources))
    assert report.mandatory_failures() == []
    failing = {(r.id, r.control.mandatory, f.subject, f.evidence.split(":")[0])
               for r in report.results for f in r.findings
               if f.status == "fail" and f.subject.startswith("github")}
    assert failing == {
        ("iam-policy-lint-clean", False, "github-preview (trust)",
         "MEDIUM UNKNOWN_FEDERATION_SOURCE"),
        ("iam-policy-lint-clean", False, "github-deploy (trust)",
         "MEDIUM UNKNOWN_FEDERATION_SOURCE"),
        ("iam-policy-lint-clean", False, "github-deploy-access (identity)",
         "MEDIUM RESOURCE_POLICY_PRIVILEGE_ESCALATION"),
    }
    wildcards = {f.subject: f.evidence for r in report.results if r.id == "iam-no-wildcard-allow"
                 for f in r.findings if f.subject.startswith("github")}
    assert wildcards == {
        "github-preview (trust)": "1 Allow statement(s) name actions and resources",
        "github-deploy (trust)": "1 Allow statement(s) name actions and resources",
        "github-preview-access (identity)": WILDCARD_EVIDENCE.format(*preview),
        "github-deploy-access (identity)": WILDCARD_EVIDENCE.format(*deploy),
    }


def test_without_replica_no_alarm_or_pass_role_statements(stack_run):
    run = stack_run("prod", {"github": GITHUB, "replica": {"enabled": False}})
    documents = render_documents(run)
    assert list(statements(documents["github/preview-access.json"])) == [
        "ReadBuckets", "ReadKeys", "ReadKeyAliases", "ReadRoles", "ReadGitHubRoles",
        "ReadInstanceProfiles", "ReadOidcProvider", "ReadTopic", "ReadSubscriptions"]
    deploy = statements(documents["github/deploy-access.json"])
    assert list(deploy) == [
        "ManageBuckets", "ReadKeyAliases", "ManageRoles", "ManageInstanceProfiles",
        "ManageTopic", "ManageSubscriptions", "CreateKeys", "TagKeys", "ManageKeys",
        "ManageKeyAliases"]
    assert deploy["ManageBuckets"]["Resource"] == ["arn:aws:s3:::biometrics-backups",
                                                   "arn:aws:s3:::biometrics-backups-access-logs"]
    assert deploy["CreateKeys"]["Condition"]["StringEquals"]["aws:RequestedRegion"] == [
        "eu-central-1"]


# --- the ECS placement (Pulumi.scale.yaml with github) ----------------------------------------

REGION = "eu-central-1"
ECS_ROLES = [f"arn:aws:iam::{ACCOUNT}:role/biometrics-backup-{purpose}" for purpose in (
    "task-postgres", "task-files", "task-drill", "task-exporter", "task-execution", "scheduler")]
STORE_ROLE_ARNS = [f"arn:aws:iam::{ACCOUNT}:role/{name}" for name in STORE_ROLES]


def arn(service, resource):
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


ECS_RESOURCES = [
    arn("ecs", "cluster/biometrics-backup"),
    arn("ecs", "service/biometrics-backup/biometrics-backup-exporter"),
    *(arn("ecs", f"task-definition/biometrics-backup-{kind}:*")
      for kind in ("postgres", "files", "drill", "exporter")),
    arn("ecr", "repository/biometrics-backup-agent"),
    arn("logs", "log-group:/biometrics-backup/biometrics-backup/*"),
    arn("secretsmanager", "secret:biometrics-backup/*"),
    arn("scheduler", "schedule-group/biometrics-backup"),
    arn("scheduler", "schedule/biometrics-backup/*"),
    arn("sqs", "biometrics-backup-schedule-dead-letters"),
    arn("events", "rule/biometrics-backup-task-failures"),
    arn("servicediscovery", "service/srv-backup-exporter"),  # the Cloud Map service's ARN
]
ECS_READS = [
    "ecs:DescribeClusters", "ecs:DescribeServices", "ecs:ListTagsForResource",
    "ecr:DescribeRepositories", "ecr:ListTagsForResource", "logs:ListTagsForResource",
    "secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy",
    "scheduler:GetScheduleGroup", "scheduler:ListTagsForResource", "scheduler:GetSchedule",
    "sqs:GetQueueAttributes", "sqs:ListQueueTags", "events:DescribeRule",
    "events:ListTagsForResource", "events:ListTargetsByRule", "servicediscovery:GetService"]
ECS_WRITES = [
    "ecs:CreateCluster", "ecs:UpdateCluster", "ecs:CreateService", "ecs:UpdateService",
    "ecs:RegisterTaskDefinition", "ecr:CreateRepository", "ecr:PutImageTagMutability",
    "ecr:PutImageScanningConfiguration", "logs:CreateLogGroup", "logs:PutRetentionPolicy",
    "logs:AssociateKmsKey", "secretsmanager:CreateSecret", "secretsmanager:UpdateSecret",
    "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:GetSecretValue", "scheduler:CreateScheduleGroup",
    "scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule",
    "sqs:CreateQueue", "sqs:SetQueueAttributes", "events:PutRule", "events:PutTargets",
    "events:RemoveTargets", "servicediscovery:UpdateService"]
IN_REGION = {"StringEquals": {"aws:RequestedRegion": REGION}}


def runtime_key_arn(run):
    alias = next(r for r in run.resources if r.name == "ecs-jobs-key-alias")
    return arn("kms", f"key/{alias.inputs['targetKeyId']}")


def test_preview_role_reads_the_ecs_placement(stack_run, scale_documents):
    scale = scale_run(stack_run)
    policy = statements(scale_documents["github/preview-access.json"])
    assert list(policy) == ["ReadBuckets", "ReadKeys", "ReadKeyAliases", "ReadRoles",
                            "ReadGitHubRoles", "ReadInstanceProfiles", "ReadOidcProvider",
                            "ReadTopic", "ReadSubscriptions", "ReadAlarms", "EcsRuntime",
                            "EcsRegionWide"]
    assert policy["EcsRuntime"] == {"Sid": "EcsRuntime", "Effect": "Allow",
                                    "Action": ECS_READS, "Resource": ECS_RESOURCES}
    assert policy["EcsRegionWide"] == {
        "Sid": "EcsRegionWide", "Effect": "Allow",
        "Action": ["ecs:DescribeTaskDefinition", "logs:DescribeLogGroups",
                   "servicediscovery:ListTagsForResource"],
        "Resource": "*", "Condition": IN_REGION}
    assert policy["ReadRoles"]["Resource"] == [*STORE_ROLE_ARNS, *ECS_ROLES]
    assert policy["ReadKeys"]["Resource"][3:] == [runtime_key_arn(scale)]
    assert policy["ReadAlarms"]["Resource"][2:] == [arn("cloudwatch", "alarm:biometrics-backup.*")]


def test_deploy_role_creates_and_updates_the_ecs_placement(scale_documents):
    policy = statements(scale_documents["github/deploy-access.json"])
    assert list(policy) == [
        "ManageBuckets", "ReadKeyAliases", "ManageRoles", "ManageInstanceProfiles",
        "ManageTopic", "ManageSubscriptions", "ManageAlarms", "CreateKeys", "TagKeys",
        "ManageKeys", "ManageKeyAliases", "PassReplicationRole", "EcsRuntime", "EcsRegionWide",
        "EcsDeleteSecrets", "EcsSecretsKey", "EcsPassTaskRoles", "EcsPassSchedulerRole",
        "EcsCreateDiscovery"]
    ecs = {sid: policy[sid] for sid in list(policy)[12:]}
    assert ecs == {
        "EcsRuntime": {"Sid": "EcsRuntime", "Effect": "Allow",
                       "Action": [*ECS_READS, *ECS_WRITES], "Resource": ECS_RESOURCES},
        "EcsRegionWide": {
            "Sid": "EcsRegionWide", "Effect": "Allow",
            "Action": ["ecs:DescribeTaskDefinition", "logs:DescribeLogGroups",
                       "servicediscovery:ListTagsForResource", "ecs:DeregisterTaskDefinition"],
            "Resource": "*", "Condition": IN_REGION},
        "EcsDeleteSecrets": {
            "Sid": "EcsDeleteSecrets", "Effect": "Allow",
            "Action": ["secretsmanager:DeleteSecret"],
            "Resource": arn("secretsmanager", "secret:biometrics-backup/*"),
            "Condition": {"NumericGreaterThanEquals": {
                "secretsmanager:RecoveryWindowInDays": "7"}}},
        "EcsSecretsKey": {
            "Sid": "EcsSecretsKey", "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": arn("kms", "key/*"),
            "Condition": {"StringEquals": {
                "aws:ResourceTag/biometrics-backup-stack": "prod",
                "kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}}},
        "EcsPassTaskRoles": {
            "Sid": "EcsPassTaskRoles", "Effect": "Allow", "Action": ["iam:PassRole"],
            "Resource": ECS_ROLES[:5],
            "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}},
        "EcsPassSchedulerRole": {
            "Sid": "EcsPassSchedulerRole", "Effect": "Allow", "Action": ["iam:PassRole"],
            "Resource": ECS_ROLES[5:],
            "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}},
        "EcsCreateDiscovery": {
            "Sid": "EcsCreateDiscovery", "Effect": "Allow",
            "Action": ["servicediscovery:CreateService"],
            "Resource": [arn("servicediscovery", "namespace/ns-0a1b2c3d4e5f6071"),
                         arn("servicediscovery", "service/*")]},
    }
    assert policy["ManageRoles"]["Resource"] == [*STORE_ROLE_ARNS, *ECS_ROLES]
    assert policy["ManageAlarms"]["Resource"][2:] == [
        arn("cloudwatch", "alarm:biometrics-backup.*")]
    assert policy["ManageKeyAliases"]["Resource"][3] == arn(
        "kms", "alias/biometrics-backup-runtime")


# What each declared ECS resource is, by the ARN AWS gives it (from its declared name), and
# what the deploy role must be able to do to it and the preview role to read it.
DECLARED_ARNS = {
    "aws:ecs/cluster:Cluster": (lambda i: arn("ecs", f"cluster/{i['name']}"),
                                "ecs:CreateCluster", "ecs:DescribeClusters"),
    "aws:ecs/taskDefinition:TaskDefinition": (
        lambda i: arn("ecs", f"task-definition/{i['family']}:7"), "ecs:RegisterTaskDefinition",
        "ecs:ListTagsForResource"),
    "aws:ecs/service:Service": (lambda i: arn("ecs", f"service/biometrics-backup/{i['name']}"),
                                "ecs:UpdateService", "ecs:DescribeServices"),
    "aws:ecr/repository:Repository": (lambda i: arn("ecr", f"repository/{i['name']}"),
                                      "ecr:CreateRepository", "ecr:DescribeRepositories"),
    "aws:cloudwatch/logGroup:LogGroup": (lambda i: arn("logs", f"log-group:{i['name']}"),
                                         "logs:CreateLogGroup", "logs:ListTagsForResource"),
    "aws:secretsmanager/secret:Secret": (
        lambda i: arn("secretsmanager", f"secret:{i['name']}-AbCdEf"),
        "secretsmanager:PutSecretValue", "secretsmanager:DescribeSecret"),
    "aws:sqs/queue:Queue": (lambda i: arn("sqs", i["name"]), "sqs:CreateQueue",
                            "sqs:GetQueueAttributes"),
    "aws:scheduler/scheduleGroup:ScheduleGroup": (
        lambda i: arn("scheduler", f"schedule-group/{i['name']}"),
        "scheduler:CreateScheduleGroup", "scheduler:GetScheduleGroup"),
    "aws:scheduler/schedule:Schedule": (
        lambda i: arn("scheduler", f"schedule/{i['groupName']}/{i['name']}"),
        "scheduler:CreateSchedule", "scheduler:GetSchedule"),
    "aws:cloudwatch/eventRule:EventRule": (lambda i: arn("events", f"rule/{i['name']}"),
                                           "events:PutRule", "events:DescribeRule"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (
        lambda i: arn("cloudwatch", f"alarm:{i['name']}"), "cloudwatch:PutMetricAlarm",
        "cloudwatch:DescribeAlarms"),
    "aws:servicediscovery/service:Service": (
        lambda i: arn("servicediscovery", f"service/srv-{i['name']}"),
        "servicediscovery:UpdateService", "servicediscovery:GetService"),
    "aws:iam/role:Role": (lambda i: f"arn:aws:iam::{ACCOUNT}:role/{i['name']}",
                          "iam:PutRolePolicy", "iam:GetRole"),
}


def role_policies(documents):
    return {name: [LabelledPolicy(name, "identity", documents[f"github/{name}-access.json"],
                                  principal_arn=role)]
            for name, role in (("preview", PREVIEW_ROLE), ("deploy", DEPLOY_ROLE))}


def allowed(policies, action, resource, context=None):
    role = policies[0].principal_arn
    return evaluate(Request(role, action, resource, context or {}), policies).allowed


def test_ci_roles_cover_every_declared_ecs_resource(stack_run, scale_documents):
    """By the names the components declare, not the names the policy builder assumes: every
    resource of the ECS components, and every alarm and role of the stack."""
    scale = scale_run(stack_run)
    policies = role_policies(scale_documents)
    checked = Counter()
    for resource in scale.resources:
        ecs = resource.parent_name in ("ecs", "ecs-jobs")
        if resource.type not in DECLARED_ARNS or not (
                ecs or resource.type == "aws:cloudwatch/metricAlarm:MetricAlarm"):
            continue
        to_arn, write, read = DECLARED_ARNS[resource.type]
        target = to_arn(resource.inputs)
        assert allowed(policies["deploy"], write, target), (write, target)
        assert allowed(policies["preview"], read, target), (read, target)
        assert not allowed(policies["preview"], write, target), (write, target)
        checked[resource.type] += 1
    assert checked == {
        "aws:ecs/cluster:Cluster": 1, "aws:ecs/taskDefinition:TaskDefinition": 4,
        "aws:ecs/service:Service": 1, "aws:ecr/repository:Repository": 1,
        "aws:cloudwatch/logGroup:LogGroup": 4, "aws:secretsmanager/secret:Secret": 52,
        "aws:sqs/queue:Queue": 1, "aws:scheduler/scheduleGroup:ScheduleGroup": 1,
        "aws:scheduler/schedule:Schedule": 52, "aws:cloudwatch/eventRule:EventRule": 1,
        # 52 jobs and the dead letters on ECS, the store's two replication alarms
        "aws:cloudwatch/metricAlarm:MetricAlarm": 55,
        "aws:servicediscovery/service:Service": 1, "aws:iam/role:Role": 6}
    alias = next(r for r in scale.resources if r.name == "ecs-jobs-key-alias")
    assert allowed(policies["deploy"], "kms:CreateAlias", arn("kms", alias.inputs["name"]))


def test_ci_roles_never_read_ecs_secrets_or_logs_nor_run_tasks(stack_run, scale_documents):
    scale = scale_run(stack_run)
    policies = role_policies(scale_documents)
    secret = arn("secretsmanager", "secret:biometrics-backup/resticPassword-AbCdEf")
    group = arn("logs", "log-group:/biometrics-backup/biometrics-backup/postgres")
    for name in ("preview", "deploy"):
        for action, resource in (
                ("logs:GetLogEvents", f"{group}:log-stream:postgres/backup-agent/1"),
                ("logs:FilterLogEvents", group), ("logs:DeleteLogGroup", group),
                ("ecs:RunTask", arn("ecs", "task-definition/biometrics-backup-postgres:1")),
                ("ecs:DeleteCluster", arn("ecs", "cluster/biometrics-backup")),
                ("ecr:DeleteRepository", arn("ecr", "repository/biometrics-backup-agent")),
                ("sqs:DeleteQueue", arn("sqs", "biometrics-backup-schedule-dead-letters")),
                ("sqs:ReceiveMessage", arn("sqs", "biometrics-backup-schedule-dead-letters")),
                ("events:DeleteRule", arn("events", "rule/biometrics-backup-task-failures")),
                ("kms:ScheduleKeyDeletion", runtime_key_arn(scale)),
                ("secretsmanager:DeleteSecret", secret)):  # no recovery window: refused
            assert not allowed(policies[name], action, resource), (name, action)
    assert not allowed(policies["preview"], "secretsmanager:GetSecretValue", secret)
    # The deploy role reads back what it puts, on this stack's secrets only.
    assert allowed(policies["deploy"], "secretsmanager:GetSecretValue", secret)
    assert not allowed(policies["deploy"], "secretsmanager:GetSecretValue",
                       arn("secretsmanager", "secret:other-app/password-AbCdEf"))
    for days, expected in (("7", True), ("30", True), ("6", False)):
        assert allowed(policies["deploy"], "secretsmanager:DeleteSecret", secret,
                       {"secretsmanager:RecoveryWindowInDays": days}) is expected, days


def test_deploy_role_passes_each_ecs_role_to_its_one_service(scale_documents):
    deploy = role_policies(scale_documents)["deploy"]

    def passes(role, service):
        return allowed(deploy, "iam:PassRole", role, {"iam:PassedToService": service})

    for role in ECS_ROLES[:5]:
        assert passes(role, "ecs-tasks.amazonaws.com"), role
        assert not passes(role, "scheduler.amazonaws.com"), role
    assert passes(ECS_ROLES[5], "scheduler.amazonaws.com")
    assert not passes(ECS_ROLES[5], "ecs-tasks.amazonaws.com")
    for role in (f"arn:aws:iam::{ACCOUNT}:role/backup-server", DEPLOY_ROLE,
                 f"arn:aws:iam::{ACCOUNT}:role/biometrics-backup-task-other"):
        assert not passes(role, "ecs-tasks.amazonaws.com"), role
        assert not passes(role, "scheduler.amazonaws.com"), role


def test_deploy_role_uses_the_runtime_key_only_through_secrets_manager(stack_run, scale_documents):
    scale = scale_run(stack_run)
    deploy = role_policies(scale_documents)["deploy"]
    key = runtime_key_arn(scale)
    tagged = {"aws:ResourceTag/biometrics-backup-stack": "prod"}
    for context, expected in (
            ({**tagged, "kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}, True),
            ({**tagged, "kms:ViaService": f"sqs.{REGION}.amazonaws.com"}, False),
            ({**tagged, "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}, False),
            (tagged, False),
            ({"aws:ResourceTag/biometrics-backup-stack": "dev",
              "kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}, False)):
        for action in ("kms:Decrypt", "kms:GenerateDataKey"):
            assert allowed(deploy, action, key, context) is expected, (action, context)


def test_adding_a_database_changes_neither_ci_role(stack_run, scale_documents):
    """The deploy role cannot change its own policy: a new database must need no new
    statement (its schedule, alarm and secret are named by the cluster's patterns)."""
    runtime = project_config("scale")["runtime"]
    fewer = stack_run("scale", {"github": GITHUB,
                                "runtime": {**runtime, "databases": runtime["databases"][:10]}})
    documents = render_documents(fewer)
    assert len(fewer.of_type("aws:scheduler/schedule:Schedule")) == 12
    for name in ("github/preview-access.json", "github/deploy-access.json"):
        assert documents[name] == scale_documents[name], name


def test_ci_role_policies_fit_iams_size_quota(stack_run):
    """IAM counts a role's inline policies together, whitespace excluded: at most 10,240
    characters (IAM User Guide, "IAM and AWS STS quotas"). The largest configuration: the ECS
    placement with the exporter, the replica, a self-managed backend and its secrets key."""
    key = "arn:aws:kms:eu-central-1:444455556666:key/0f0b9858-e925-5d85-81e9-5cda3192dd01"
    run = stack_run("scale", {"github": {**GITHUB, "stateBucket": "acme-pulumi-state",
                                         "secretsKeyArn": key}})
    documents = render_documents(run)
    sizes = {name: len(re.sub(r"\s", "", json.dumps(documents[f"github/{name}-access.json"])))
             for name in ("preview", "deploy")}
    assert max(sizes.values()) <= 10_240, sizes


def test_ecs_placement_without_the_exporter_names_no_service():
    """With the exporter on a host there is no ECS or Cloud Map service to name."""
    settings = stack_settings(stack_config("scale", {"github": GITHUB}), "scale")
    settings = dataclasses.replace(settings, runtime=dataclasses.replace(
        settings.runtime, exporter_host="monitor-1"))
    stack = DeployedStack(settings, ACCOUNT, (), "arn:aws:sns:eu-central-1:1:backup-alerts",
                          PROVIDER_ARN, ())
    kinds = ("postgres", "files", "drill")
    resources = [ECS_RESOURCES[0], *(arn("ecs", f"task-definition/biometrics-backup-{kind}:*")
                                     for kind in kinds), *ECS_RESOURCES[6:-1]]
    exporter = {"ecs:DescribeServices", "ecs:CreateService", "ecs:UpdateService",
                "servicediscovery:GetService", "servicediscovery:UpdateService"}
    preview = statements(preview_role_policy(stack))
    deploy = statements(deploy_role_policy(stack))
    assert preview["EcsRuntime"]["Resource"] == deploy["EcsRuntime"]["Resource"] == resources
    assert preview["EcsRuntime"]["Action"] == [a for a in ECS_READS if a not in exporter]
    assert deploy["EcsRuntime"]["Action"] == [a for a in (*ECS_READS, *ECS_WRITES)
                                              if a not in exporter]
    assert deploy["EcsRegionWide"]["Action"] == ["ecs:DescribeTaskDefinition",
                                                 "logs:DescribeLogGroups",
                                                 "ecs:DeregisterTaskDefinition"]
    assert "EcsCreateDiscovery" not in deploy
    assert deploy["EcsPassTaskRoles"]["Resource"] == [
        *ECS_ROLES[:3], f"arn:aws:iam::{ACCOUNT}:role/biometrics-backup-task-execution"]
