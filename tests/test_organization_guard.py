"""The organization guard: the RCP and SCP the stack renders for the management account, exactly,
and that nothing of it is deployed."""

from __future__ import annotations

from components.organization_policies import BUCKET_CONFIGURATION_ACTIONS, ROLE_CHANGE_ACTIONS
from review.render import render_documents

ACCOUNT = "111122223333"
PRIMARY = "arn:aws:s3:::biometrics-backups"
REPLICA = "arn:aws:s3:::biometrics-backups-replica"
REPLICATION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/biometrics-backups-replication"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/biometrics-backup-prod-github-deploy"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/break-glass"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
ROLES = {"backup": "backup-server", "restore": "restore-server", "walArchiver": "wal-archiver",
         "replication": "biometrics-backups-replication"}
OUTSIDE = {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "${aws:ResourceOrgID}"},
           "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}
OIDC_ACTIONS = ["iam:CreateOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider",
                "iam:UpdateOpenIDConnectProviderThumbprint",
                "iam:AddClientIDToOpenIDConnectProvider",
                "iam:RemoveClientIDFromOpenIDConnectProvider", "iam:TagOpenIDConnectProvider",
                "iam:UntagOpenIDConnectProvider"]


def document(statements):
    return {"Version": "2012-10-17", "Statement": statements}


def key_arns(run):
    """The buckets' keys and the alert topic's: every key of the stack."""
    buckets = run.outputs["buckets"]
    return [buckets["primary"]["keyArn"], buckets["replica"]["keyArn"],
            run.named("backup-alerts-topic").inputs["kmsMasterKeyId"]]


def rcp(keys, condition=None):
    exempt = {"Condition": condition} if condition else {}
    return document([
        {"Sid": "DenyProtectedBucketChanges", "Effect": "Deny", "Principal": "*",
         "Action": ["s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
                    "s3:PutBucketObjectLockConfiguration", "s3:PutReplicationConfiguration",
                    "s3:PutLifecycleConfiguration", "s3:PutEncryptionConfiguration",
                    "s3:PutBucketVersioning"],
         "Resource": [PRIMARY, REPLICA], **exempt},
        {"Sid": "DenyKeyPolicyChanges", "Effect": "Deny", "Principal": "*",
         "Action": ["kms:PutKeyPolicy"], "Resource": keys, **exempt},
        {"Sid": "DenyAccessFromOutsideOrganization", "Effect": "Deny", "Principal": "*",
         "Action": ["s3:*"], "Resource": [PRIMARY, REPLICA, f"{PRIMARY}/*", f"{REPLICA}/*"],
         "Condition": OUTSIDE},
    ])


def test_prod_guard_exempts_no_one_and_protects_the_replication_role(prod, prod_documents):
    keys = key_arns(prod)
    assert len(prod.of_type("aws:kms/key:Key")) == len(keys)
    assert prod_documents["organization-guard/resource-control-policy.json"] == rcp(keys)
    assert prod_documents["organization-guard/service-control-policy.json"] == document([
        {"Sid": "DenyExemptRoleChanges", "Effect": "Deny",
         "Action": ["iam:CreateRole", "iam:DeleteRole", "iam:UpdateRole",
                    "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
                    "iam:AttachRolePolicy", "iam:DetachRolePolicy",
                    "iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary",
                    "iam:TagRole", "iam:UntagRole"],
         "Resource": [REPLICATION_ROLE]},
    ])
    assert any("the organization guard exempts no principal" in w for w in prod.warnings)


def test_guard_exempts_the_deploy_role_and_break_glass_and_protects_them(stack_run):
    run = stack_run("prod", {"github": {"repository": "octo-org/octo-repo",
                                        "environment": "prod"},
                             "roles": {**ROLES, "breakGlassArn": BREAK_GLASS}})
    documents = render_documents(run)
    exempt = {"ArnNotLike": {"aws:PrincipalArn": [DEPLOY_ROLE, BREAK_GLASS]}}
    assert documents["organization-guard/resource-control-policy.json"] == rcp(
        key_arns(run), exempt)
    assert documents["organization-guard/service-control-policy.json"] == document([
        {"Sid": "DenyExemptRoleChanges", "Effect": "Deny", "Action": list(ROLE_CHANGE_ACTIONS),
         "Resource": [DEPLOY_ROLE, BREAK_GLASS, REPLICATION_ROLE], "Condition": exempt},
        {"Sid": "DenyOidcProviderChanges", "Effect": "Deny", "Action": OIDC_ACTIONS,
         "Resource": PROVIDER, "Condition": exempt},
    ])
    assert not any("organization guard" in w for w in run.warnings)


def test_nothing_to_protect_renders_no_scp(stack_run):
    run = stack_run("prod", {"replica": {"enabled": False}})
    documents = render_documents(run)
    assert "organization-guard/service-control-policy.json" not in documents
    statements = documents["organization-guard/resource-control-policy.json"]["Statement"]
    assert statements[0]["Resource"] == [PRIMARY]
    assert statements[0]["Action"] == list(BUCKET_CONFIGURATION_ACTIONS)
    assert statements[2]["Resource"] == [PRIMARY, f"{PRIMARY}/*"]


def test_the_guard_is_rendered_and_exported_never_deployed(prod, prod_documents):
    guard = [r for r in prod.resources
             if r.name == "organization-guard" or r.parent_name == "organization-guard"]
    assert {(r.type, r.name, r.custom) for r in guard} == {
        ("biometrics:backup:OrganizationGuard", "organization-guard", False),
        ("biometrics:backup:ResourceControlPolicy",
         "organization-guard-resource-control-policy", False),
        ("biometrics:backup:ServiceControlPolicy",
         "organization-guard-service-control-policy", False),
    }
    assert not prod.of_type("aws:organizations/policy:Policy")
    rcp_resource = prod.named("organization-guard-resource-control-policy")
    assert {k: v for k, v in rcp_resource.inputs.items() if k != "content"} == {
        "name": "biometrics-backup-prod-resource-control-policy",
        "type": "RESOURCE_CONTROL_POLICY",
        "description": "Deny changing the backup buckets' and keys' protection, and S3 access "
                       "from outside the organization"}
    # `pulumi stack output organizationGuard` gives the documents with the real key ARNs.
    assert prod.outputs["organizationGuard"] == {
        "resourceControlPolicy": prod_documents["organization-guard/resource-control-policy.json"],
        "serviceControlPolicy": prod_documents["organization-guard/service-control-policy.json"],
    }
