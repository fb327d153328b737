"""BackupAlerts: one SNS topic that pages when replication fails or lags, or delete markers
appear in the primary bucket. The topic is encrypted with a key of its own that only the
publishing services may use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import bucket_config, policies
from components.layout import TYPE_PREFIX
from components.policies import to_json
from components.settings import AlertSettings


@dataclass(frozen=True)
class ReplicationAlarm:
    metric: str
    statistic: str
    threshold: float
    description: str


# S3 publishes these per replication rule once replication metrics are on.
REPLICATION_ALARMS = (
    ReplicationAlarm("OperationsFailedReplication", "Sum", 0,
                     "Objects failed to replicate to the replica bucket"),
    ReplicationAlarm("ReplicationLatency", "Maximum", bucket_config.REPLICATION_TIME_MINUTES * 60,
                     "Replication is slower than the 15-minute Replication Time Control target"),
)


@dataclass(frozen=True)
class ReplicationWatch:
    source_bucket: str
    replica_bucket: str
    rule_id: str


class BackupAlerts(pulumi.ComponentResource):
    def __init__(self, name: str, settings: AlertSettings, *, account_id: pulumi.Input[str],
                 region: str, bucket_name: pulumi.Input[str], bucket_arn: pulumi.Input[str],
                 replication: ReplicationWatch | None, key_tags: Mapping[str, str],
                 events_rule_arn: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """`events_rule_arn`: the ECS placement's rule on task state changes, which may
        publish here (None: no EventBridge rule does)."""
        super().__init__(f"{TYPE_PREFIX}:BackupAlerts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The topic's ARN is known before it exists, so its key policy can name it.
        topic_arn = pulumi.Output.from_input(account_id).apply(
            lambda account: f"arn:aws:sns:{region}:{account}:{name}")
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"Encrypts the messages of the SNS topic {name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(topic_arn, bucket_arn, account_id, events_rule_arn).apply(
                lambda values: to_json(policies.alert_topic_key_policy(
                    *values[:3], region, values[3]))),
            tags=dict(key_tags),
            region=region,
            opts=child,
        )
        aws.kms.Alias(f"{name}-key-alias", name=f"alias/{name}", target_key_id=self.key.key_id,
                      region=region, opts=child)
        self.topic = aws.sns.Topic(f"{name}-topic", name=name, kms_master_key_id=self.key.arn,
                                   region=region, opts=child)
        topic_policy = aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=self.topic.arn,
            policy=pulumi.Output.all(self.topic.arn, bucket_arn, account_id,
                                     events_rule_arn).apply(
                lambda values: to_json(policies.alert_topic_policy(*values[:3], region,
                                                                   values[3]))
            ),
            region=region,
            opts=child,
        )
        for index, subscriber in enumerate(settings.subscribers):
            aws.sns.TopicSubscription(
                f"{name}-subscriber-{index}",
                topic=self.topic.arn,
                protocol=subscriber.protocol,
                endpoint=subscriber.endpoint,
                region=region,
                opts=child,
            )
        notification = self.topic.arn.apply(bucket_config.delete_notifications)
        aws.s3.BucketNotification(
            f"{name}-delete-events",
            bucket=bucket_name,
            topics=notification["TopicConfigurations"].apply(bucket_config.to_pulumi_args),
            region=region,
            # S3 checks it may publish when the notification is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[topic_policy]),
        )
        self.alarms: list[aws.cloudwatch.MetricAlarm] = []
        if replication is not None:
            for alarm in REPLICATION_ALARMS:
                self.alarms.append(aws.cloudwatch.MetricAlarm(
                    f"{name}-{alarm.metric}",
                    name=f"{replication.source_bucket}-{alarm.metric}",
                    alarm_description=alarm.description,
                    namespace="AWS/S3",
                    metric_name=alarm.metric,
                    dimensions={
                        "SourceBucket": replication.source_bucket,
                        "DestinationBucket": replication.replica_bucket,
                        "RuleId": replication.rule_id,
                    },
                    statistic=alarm.statistic,
                    period=300,
                    evaluation_periods=1,
                    comparison_operator="GreaterThanThreshold",
                    threshold=alarm.threshold,
                    # No datapoints means no replication activity, not a failure.
                    treat_missing_data="notBreaching",
                    alarm_actions=[self.topic.arn],
                    ok_actions=[self.topic.arn],
                    region=region,
                    opts=child,
                ))
        self.register_outputs({"topicArn": self.topic.arn, "keyArn": self.key.arn,
                               "alarmNames": [alarm.name for alarm in self.alarms]})
