"""The GitHub OIDC component: exact trust policies, least-privilege permissions, parliament."""

from __future__ import annotations

import pytest

from compliance.evaluation import LabelledPolicy, Request, evaluate
from compliance.lint import LintFinding, lint_policy
from components.config_reader import ConfigError
from components.oidc_policies import UNSCOPED_ACTIONS
from components.settings import parse_settings
from review.recording import PLACEHOLDER_ACCOUNT_ID
from review.render import render_documents
from tests.support import stack_config

ACCOUNT = PLACEHOLDER_ACCOUNT_ID
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
EXISTING_PROVIDER = "arn:aws:iam::444455556666:oidc-provider/token.actions.githubusercontent.com"
GITHUB = {"repository": "octo-org/octo-repo", "environment": "production"}
PREVIEW_ROLE = f"arn:aws:iam::{ACCOUNT}:role/biometrics-backup-prod-github-preview"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/biometrics-backup-prod-github-deploy"
BACKUP_BUCKETS = ("biometrics-backups", "biometrics-backups-replica")


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
                            "ReadInstanceProfiles", "ReadOidcProvider", "ReadTopic",
                            "ReadSubscriptions", "ReadAlarms"]
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


def test_alarm_arns_are_the_declared_alarms(with_github, documents):
    declared = sorted(f"arn:aws:cloudwatch:{r.inputs['region']}:{ACCOUNT}:alarm:{r.inputs['name']}"
                      for r in with_github.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"))
    for name in ("preview", "deploy"):
        sids = statements(documents[f"github/{name}-access.json"])
        alarms = sids["ReadAlarms" if name == "preview" else "ManageAlarms"]["Resource"]
        assert sorted(alarms) == declared


def test_wildcard_resources_only_for_unscoped_actions(documents):
    for name in ("github/preview-access.json", "github/deploy-access.json"):
        for statement in documents[name]["Statement"]:
            if statement["Resource"] == "*":
                assert set(statement["Action"]) <= set(UNSCOPED_ACTIONS), statement["Sid"]
            assert not any("*" in action for action in statement["Action"])


def test_deploy_role_manages_the_store_but_not_its_own_rights(documents):
    policy = statements(documents["github/deploy-access.json"])
    assert list(policy) == [
        "ReadBuckets", "ReadKeys", "ReadKeyAliases", "ReadRoles", "ReadInstanceProfiles",
        "ReadOidcProvider", "ReadTopic", "ReadSubscriptions", "ReadAlarms", "ManageBuckets",
        "CreateKeys", "TagKeys", "ManageKeys", "ManageKeyAliases", "ManageRoles",
        "ManageInstanceProfiles", "ManageTopic", "ManageSubscriptions", "ManageAlarms",
        "PassReplicationRole"]
    actions = {a for s in policy.values() for a in s["Action"]}
    assert not actions & {"s3:GetObject", "s3:DeleteBucket", "kms:Decrypt", "kms:Encrypt",
                          "kms:ScheduleKeyDeletion", "kms:DisableKey",
                          "iam:CreateOpenIDConnectProvider"}
    assert policy["ManageRoles"]["Resource"] == [
        f"arn:aws:iam::{ACCOUNT}:role/{name}" for name in
        ("backup-server", "restore-server", "wal-archiver", "biometrics-backups-replication")]
    assert policy["PassReplicationRole"] == {
        "Sid": "PassReplicationRole", "Effect": "Allow", "Action": ["iam:PassRole"],
        "Resource": [f"arn:aws:iam::{ACCOUNT}:role/biometrics-backups-replication"],
        "Condition": {"StringEquals": {"iam:PassedToService": "s3.amazonaws.com"}}}
    assert policy["CreateKeys"]["Condition"] == {
        "StringEquals": {"aws:RequestedRegion": ["eu-central-1", "eu-west-1"],
                         "aws:RequestTag/biometrics-backup-stack": "prod"},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["biometrics-backup-stack"]}}


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


def request(role, action, resource):
    return Request(principal_arn=role, action=action, resource=resource, context={})


def test_neither_role_can_read_or_decrypt_backups(documents):
    """The role policies and the deployed bucket and key policies together."""
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
                decision = evaluate(request(role, action, resource), policies)
                assert (decision.allowed, decision.reason) == (False, "implicit-deny"), (
                    name, action, resource)
        preview = evaluate(request(role, "s3:GetBucketVersioning",
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


def test_lint_preview_policy_is_clean(documents):
    result = lint_policy(documents["github/preview-access.json"], kind="identity")
    assert (result.findings, result.accepted) == ((), ())


def test_lint_deploy_policy_reports_the_inherent_escalation(documents):
    """A role that deploys bucket policies can grant itself object access: parliament says so
    for each bucket, and the protected GitHub environment is the control (docs/delivery.md)."""
    result = lint_policy(documents["github/deploy-access.json"], kind="identity")
    assert {(f.code, f.severity) for f in result.findings} == {
        ("RESOURCE_POLICY_PRIVILEGE_ESCALATION", "MEDIUM")}
    buckets = {f.detail.split(" due to ")[0].rsplit(" on ", 1)[1] for f in result.findings}
    assert buckets == {f"arn:aws:s3:::{name}" for name in (
        "biometrics-backups", "biometrics-backups-access-logs", "biometrics-backups-replica",
        "biometrics-backups-replica-access-logs")}
    assert result.accepted == ()


def test_secrets_key_must_not_be_a_backup_key():
    from components.oidc_policies import DeployedStack, preview_role_policy
    settings = parse_settings(
        {**{k.split(":", 1)[1]: v for k, v in stack_config("prod").items()
            if k.startswith("biometrics-backup:")},
         "github": {**GITHUB, "secretsKeyArn": f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/"
                    "e2282bd4-1938-5543-b337-23227e99edb8"}}, stack="prod")
    stack = DeployedStack(settings, ACCOUNT, (settings.github.secrets_key_arn,), "topic",
                          PROVIDER_ARN, ())
    with pytest.raises(ValueError, match="must not be a backup key"):
        preview_role_policy(stack)


def test_compliance_controls_judge_the_github_roles(with_github):
    """The compliance review sees the OIDC roles and passes them. Its advisory parliament
    control lists what parliament says about them: the unknown federation source (it knows
    web-identity and SAML providers, not IAM OIDC provider ARNs) and the escalation every
    bucket-policy deployer has."""
    from compliance.report import build_report
    from review.inventory import from_recorded

    report = build_report("prod", from_recorded(with_github.resources))
    assert report.mandatory_failures() == []
    failing = {(r.id, r.control.mandatory, f.subject, f.evidence.split(":")[0])
               for r in report.results for f in r.findings if f.status == "fail"}
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
    assert wildcards["github-preview-access (identity)"] == (
        '9 Allow statement(s) name actions and resources (Resource "*" in ReadKeyAliases, '
        "ReadSubscriptions: actions AWS cannot scope to a resource, or scoped by their condition "
        "key)")


def test_without_replica_no_alarm_or_pass_role_statements(stack_run):
    run = stack_run("prod", {"github": GITHUB, "replica": {"enabled": False}})
    documents = render_documents(run)
    assert list(statements(documents["github/preview-access.json"])) == [
        "ReadBuckets", "ReadKeys", "ReadKeyAliases", "ReadRoles", "ReadInstanceProfiles",
        "ReadOidcProvider", "ReadTopic", "ReadSubscriptions"]
    deploy = statements(documents["github/deploy-access.json"])
    assert list(deploy) == [
        "ReadBuckets", "ReadKeys", "ReadKeyAliases", "ReadRoles", "ReadInstanceProfiles",
        "ReadOidcProvider", "ReadTopic", "ReadSubscriptions", "ManageBuckets", "CreateKeys",
        "TagKeys", "ManageKeys", "ManageKeyAliases", "ManageRoles", "ManageInstanceProfiles",
        "ManageTopic", "ManageSubscriptions"]
    assert deploy["ReadBuckets"]["Resource"] == ["arn:aws:s3:::biometrics-backups",
                                                 "arn:aws:s3:::biometrics-backups-access-logs"]
    assert deploy["CreateKeys"]["Condition"]["StringEquals"]["aws:RequestedRegion"] == [
        "eu-central-1"]
