"""OrganizationGuard: the RCP and SCP for the organization's management account to attach to
this stack's account (policies in `components.organization_policies`).

Rendered, never deployed: the component declares nothing in AWS. Each child holds one policy
as `aws organizations create-policy` takes it (name, description, type, content), so the
preview writes it next to the other documents and the compliance controls (and CrossGuard)
judge it like any other declared document.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi

from components import organization_policies
from components.layout import PROJECT, TYPE_PREFIX, github_role_name
from components.oidc_policies import oidc_provider_arn
from components.organization_policies import RCP_TYPE, SCP_TYPE
from components.policies import to_json
from components.settings import StackSettings

RCP_COMPONENT = f"{TYPE_PREFIX}:ResourceControlPolicy"
SCP_COMPONENT = f"{TYPE_PREFIX}:ServiceControlPolicy"


class OrganizationPolicy(pulumi.ComponentResource):
    """One organization policy, held as data (its inputs are also its outputs)."""

    def __init__(self, type_: str, name: str, props: dict[str, pulumi.Input[str]],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_, name, props, opts)
        self.register_outputs(props)


class OrganizationGuard(pulumi.ComponentResource):
    def __init__(self, name: str, settings: StackSettings, *, account_id: pulumi.Input[str],
                 key_arns: Sequence[pulumi.Input[str]],
                 replication_role_arn: pulumi.Input[str] | None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:OrganizationGuard", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        github = settings.github
        buckets = [settings.primary.bucket_name,
                   *([settings.replica.bucket_name] if settings.replica else [])]

        def documents(values: list[Any]) -> dict[str, str | None]:
            account, replication, *keys = values
            deploy = github_role_name(settings.environment, "deploy")
            exempt = [f"arn:aws:iam::{account}:role/{deploy}"] if github else []
            if settings.roles.break_glass_arn:
                exempt.append(settings.roles.break_glass_arn)
            provider = (github.oidc_provider_arn or oidc_provider_arn(account)) if github else None
            stack = organization_policies.guard_stack(buckets, keys, exempt, replication,
                                                      provider)
            scp = organization_policies.service_control_policy(stack)
            return {"resourceControlPolicy":
                    to_json(organization_policies.resource_control_policy(stack)),
                    "serviceControlPolicy": to_json(scp) if scp is not None else None}

        rendered = pulumi.Output.all(account_id, replication_role_arn, *key_arns).apply(documents)
        label = f"{PROJECT}-{settings.environment}"
        kinds = [(RCP_COMPONENT, "resource-control-policy", RCP_TYPE, "resourceControlPolicy",
                  "Deny changing the backup buckets' and keys' protection, and S3 access from "
                  "outside the organization")]
        # The SCP protects the exempt roles and the replication role; without any there is
        # nothing for it to deny.
        if settings.replica or github or settings.roles.break_glass_arn:
            kinds.append((SCP_COMPONENT, "service-control-policy", SCP_TYPE,
                          "serviceControlPolicy",
                          "Deny changing the roles exempt from the backup protection and the "
                          "GitHub OIDC provider"))
        self.documents: dict[str, pulumi.Output[Any]] = {}
        for type_, suffix, policy_type, key, description in kinds:
            content = rendered[key]
            OrganizationPolicy(type_, f"{name}-{suffix}", {
                "name": f"{label}-{suffix}",
                "description": description,
                "type": policy_type,
                "content": content,
            }, opts=child)
            self.documents[key] = content.apply(json.loads)
        self.register_outputs({"documents": self.documents})
