"""GitHubOidc: the GitHub Actions OIDC provider (or an existing one) and the CI roles.

Declared only when the stack config names a GitHub repository. The policies come from
`components.oidc_policies`; this component only wires them to IAM.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components import oidc_policies
from components.layout import GITHUB_ROLE_PURPOSES, TYPE_PREFIX, github_role_name
from components.oidc_policies import DeployedStack
from components.policies import to_json
from components.settings import StackSettings

ROLE_DESCRIPTIONS = {
    "preview": "GitHub Actions pull-request previews: control-plane reads, no backup data",
    "deploy": "GitHub Actions deploys from the protected environment: pulumi up of the store",
}


class GitHubOidc(pulumi.ComponentResource):
    def __init__(self, name: str, settings: StackSettings, *, account_id: pulumi.Input[str],
                 key_arns: Sequence[pulumi.Input[str]], topic_arn: pulumi.Input[str],
                 alarm_names: Sequence[pulumi.Input[str]],
                 discovery_service_arn: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:GitHubOidc", name, None, opts)
        github = settings.github
        if github is None:
            raise ValueError("GitHubOidc needs settings.github")
        child = pulumi.ResourceOptions(parent=self)
        if github.oidc_provider_arn is not None:
            # An account holds one provider per URL (IAM User Guide: OIDC identity providers):
            # reuse the one that exists.
            provider_arn: pulumi.Input[str] = github.oidc_provider_arn
        else:
            provider = aws.iam.OpenIdConnectProvider(
                f"{name}-provider",
                url=oidc_policies.GITHUB_OIDC_URL,
                client_id_lists=[oidc_policies.STS_AUDIENCE],
                opts=child,
            )
            # The ARN derived from the account, ordered after the provider through its id.
            provider_arn = pulumi.Output.all(account_id, provider.id).apply(
                lambda values: oidc_policies.oidc_provider_arn(values[0]))
        subjects = {
            "preview": oidc_policies.pull_request_subject(github.repository),
            "deploy": oidc_policies.environment_subject(github.repository, github.environment),
        }
        sids = {"preview": "AllowPullRequestPreview", "deploy": "AllowEnvironmentDeploy"}
        builders = {"preview": oidc_policies.preview_role_policy,
                    "deploy": oidc_policies.deploy_role_policy}
        role_names = {purpose: github_role_name(settings.environment, purpose)
                      for purpose in GITHUB_ROLE_PURPOSES}

        # Everything the policies name that another component owns, from its outputs.
        deployed = pulumi.Output.all(
            account=account_id, provider=provider_arn, topic=topic_arn,
            keys=pulumi.Output.all(*key_arns), alarms=pulumi.Output.all(*alarm_names),
            discovery=discovery_service_arn,
        ).apply(lambda values: DeployedStack(
            settings, values["account"], tuple(values["keys"]), values["topic"],
            values["provider"], tuple(role_names.values()), tuple(values["alarms"]),
            values["discovery"]))

        self.roles: dict[str, aws.iam.Role] = {}
        for purpose, description in ROLE_DESCRIPTIONS.items():
            role = aws.iam.Role(
                f"{name}-{purpose}",
                name=role_names[purpose],
                description=description,
                assume_role_policy=pulumi.Output.from_input(provider_arn).apply(
                    lambda arn, purpose=purpose: to_json(oidc_policies.github_trust_policy(
                        arn, subjects[purpose], sids[purpose]))
                ),
                opts=child,
            )
            aws.iam.RolePolicy(
                f"{name}-{purpose}-access",
                role=role.name,
                policy=deployed.apply(
                    lambda stack, purpose=purpose: to_json(builders[purpose](stack))),
                opts=child,
            )
            self.roles[purpose] = role
        self.provider_arn = provider_arn
        self.register_outputs({
            "providerArn": provider_arn,
            "roleArns": {purpose: role.arn for purpose, role in self.roles.items()},
        })
