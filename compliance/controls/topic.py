"""The alert topic's control: encrypted with a key that admits exactly its publishers."""

from __future__ import annotations

from collections.abc import Mapping

from compliance.controls.buckets import (
    account_administrator,
    decide,
    https_request,
)
from compliance.controls.registry import (
    Scope,
    Verdict,
    as_list,
    control,
    failed,
    passed,
    statements_of,
)
from compliance.evaluation import Decision, LabelledPolicy
from compliance.inventory import (
    EVENT_TARGET,
    KMS_KEY,
    TOPIC,
    TOPIC_POLICY,
    Declared,
    Inventory,
    PolicyDocument,
)

TOPICS = Scope("SNS topics", lambda i: i.of_type(TOPIC), lambda t: t.name,
               "the stack declares no SNS topic")


def _topic_arn(topic: Declared, inventory: Inventory) -> str:
    """Known before the topic exists: its region, the account and its name."""
    account = inventory.account_id() or "000000000000"
    return f"arn:aws:sns:{topic.get('region')}:{account}:{topic.get('name')}"


def _topic_publishers(topic: Declared, inventory: Inventory) -> list[tuple[str, dict[str, str]]]:
    """(service, a request context it publishes with) for every service the topic policy lets
    publish, plus EventBridge when a rule of the stack targets the topic."""
    found: list[tuple[str, dict[str, str]]] = []
    for policy in inventory.of_type(TOPIC_POLICY):
        if policy.parent != topic.parent:
            continue
        for statement in statements_of(PolicyDocument(policy, "resource").document()):
            principal = statement.get("Principal")
            services = as_list(principal.get("Service")) if isinstance(principal, Mapping) \
                else []
            context: dict[str, str] = {}
            for block in (statement.get("Condition") or {}).values():
                for key, value in block.items():
                    context[key] = str(as_list(value)[0]).replace("*", "any")
            found += [(str(service), context) for service in services
                      if statement.get("Effect") == "Allow"]
    account = inventory.account_id() or "000000000000"
    # A rule publishes with its own ARN as aws:SourceArn (Amazon SNS Developer Guide, "Enable
    # compatibility between event sources from AWS services and encrypted topics").
    found += [("events.amazonaws.com", {
        "aws:SourceArn": f"arn:aws:events:{target.get('region')}:{account}:rule/"
                         f"{target.get('rule')}",
        "aws:SourceAccount": account})
        for target in inventory.of_type(EVENT_TARGET)
        if target.get("arn") == _topic_arn(topic, inventory)]
    return found


@control("sns-topic-encrypted-for-publishers-only", "The alert topic is encrypted with a key "
         "only its publishing services may use", severity="medium", scope=TOPICS,
         frameworks=("SecurityHub SNS.1", "CKV_AWS_26"))
def _topic_encrypted(topic: Declared, inventory: Inventory) -> Verdict:
    key_id = topic.get("kmsMasterKeyId")
    key = next((k for k in inventory.of_type(KMS_KEY) if k.parent == topic.parent), None)
    if not key_id or key is None:
        return failed(f"{topic.name}: no customer managed key (kmsMasterKeyId {key_id!r})")
    if str(key_id).startswith("alias/aws/"):
        return failed(f"{topic.name}: {key_id} is AWS managed: its policy admits no service")
    account = inventory.account_id() or "000000000000"
    topic_arn = _topic_arn(topic, inventory)
    policies = [LabelledPolicy(key.name, "resource", PolicyDocument(key, "resource").document())]
    publishers = _topic_publishers(topic, inventory)
    own = {"kms:EncryptionContext:aws:sns:topicArn": topic_arn}
    sids: list[str] = []

    def allowed(service: str, action: str, context: Mapping[str, str]) -> Decision:
        return decide(policies, f"service:{service}", action, "*", context)

    # Each condition the topic policy puts on a publisher, violated one at a time.
    elsewhere = {"aws:SourceArn": "arn:aws:iam::000000000000:role/not-the-source",
                 "aws:SourceAccount": "000000000000",
                 "kms:EncryptionContext:aws:sns:topicArn": f"{topic_arn}-other"}
    labels = {"aws:SourceArn": "another source", "aws:SourceAccount": "another account's source",
              "kms:EncryptionContext:aws:sns:topicArn": "another topic"}
    services = {service for service, _ in publishers}
    try:
        for service, context in publishers:
            for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                decision = allowed(service, action, {**context, **own})
                if not decision.allowed:
                    return failed(f"{key.name}: {service} (publishes to {topic.name}) cannot "
                                  f"{action}")
                sids += [ref.sid for ref in decision.deciding if ref.sid not in sids]
            for condition in [*context, *own]:
                if condition in elsewhere and allowed(service, "kms:GenerateDataKey", {
                        **context, **own, condition: elsewhere[condition]}).allowed:
                    return failed(f"{key.name}: {service} may use the key for "
                                  f"{labels[condition]}")
            for other in ("events.amazonaws.com", "s3.amazonaws.com", "cloudwatch.amazonaws.com",
                          "sns.amazonaws.com"):
                if other not in services and allowed(other, "kms:GenerateDataKey",
                                                     {**context, **own}).allowed:
                    return failed(f"{key.name}: {other} may use the key but does not publish "
                                  f"to {topic.name}")
        for principal in (f"arn:aws:iam::{account}:root", account_administrator(inventory)[0]):
            if decide(policies, principal, "kms:Decrypt", "*", https_request(principal)).allowed:
                return failed(f"{key.name}: {principal} may decrypt the alerts")
    except ValueError as error:
        return failed(f"{key.name}: cannot evaluate ({error})")
    return passed(f"{topic.name}: encrypted with {key.name}, whose policy lets exactly "
                  f"{', '.join(sorted(services))} (the topic's publishers) generate data keys "
                  "and decrypt, each for its own source and this topic only", sids)
