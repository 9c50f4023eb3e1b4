"""Monitoring: the alarms that say the pipeline needs a human, all to one SNS topic.

* a DLQ is not empty — ``ApproximateNumberOfMessagesVisible`` > 0 on every DLQ;
* a function errs — Lambda ``Errors`` > 0, per function;
* ingest answers 5xx — API Gateway's ``5XXError`` rate on ``POST /v1/events`` > 1 %;
* RAW objects age — the sanitize queue's oldest message is over 15 minutes old (RAW
  should live minutes), or the sweep deleted a RAW straggler (``raw_deleted`` in its log);
* working telemetry outlives its month — the sweep found SANITIZED or ANALYTICS
  partner-months a week past their month's end (``stale_working_months`` in its log): a
  bundle build or a cleanup stopped, and the 100-day lifecycle rule is the only backstop;
* a ``SCRUB_VIOLATION`` spike — PII findings per hour over the stack's threshold: the
  ``scrub_violations`` of sanitize's "sanitized" log line, i.e. every redaction (the
  default ``onPii: redact`` keeps the event) plus every PII-class quarantine
  (``pii_in_identifier``, ``pii_in_text``, ``unknown_field``);
* a bundle task fails — an ECS task of the bundle cluster stops with a non-zero exit
  code, or never starts (an EventBridge rule on ECS's task events).

The log-based metrics read only counts the stages already log; no payload is ever in a
log line to begin with. The topic is not KMS-encrypted: alarm notifications carry names
and counts only, and an encrypted topic would need CloudWatch and EventBridge in its key
policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

PERIOD = 300
RAW_AGE_ALARM_SECONDS = 15 * 60
INGEST_5XX_RATE = 0.01
# Sanitize logs one "sanitized" line per RAW object; its ``scrub_violations`` counts the
# object's PII findings, redacted or quarantined (the SCRUB_VIOLATION audit counts).
SCRUB_VIOLATIONS_PATTERN = '{ $.message = "sanitized" && $.scrub_violations > 0 }'
SCRUB_VIOLATIONS_VALUE = "$.scrub_violations"
# The hourly sweep's log line counts the partner-months of working telemetry past
# STALE_AFTER (ryuzen_cleanup.retention_sweep).
STALE_WORKING_PATTERN = '{ $.message = "retention sweep done" && $.stale_working_months > 0 }'
STALE_WORKING_VALUE = "$.stale_working_months"


@dataclass(frozen=True)
class LogCount:
    """A number the stages log: which log group, which lines, which field, as what metric."""

    logs: aws.cloudwatch.LogGroup
    pattern: str
    value: str
    metric: str


@dataclass
class MonitoringArgs:
    """What to watch and where to send alarms."""

    metric_namespace: str
    alarm_email: str | None
    dead_letter_queues: Mapping[str, aws.sqs.Queue]
    functions: Mapping[str, aws.lambda_.Function]
    raw_queue: aws.sqs.Queue
    rest_api: aws.apigateway.RestApi
    stage_name: pulumi.Input[str]
    sanitize_logs: aws.cloudwatch.LogGroup
    sweep_logs: aws.cloudwatch.LogGroup
    bundle_cluster: aws.ecs.Cluster
    scrub_violation_threshold: int
    account_id: str


class Monitoring(pulumi.ComponentResource):
    """The alarm topic, the alarms and the bundle-task failure rule."""

    topic: aws.sns.Topic
    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ryuzen:index:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.topic = aws.sns.Topic(f"{name}-alarms", opts=child)
        if args.alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-alarms-email",
                topic=self.topic.arn,
                protocol="email",
                endpoint=args.alarm_email,
                opts=child,
            )
        self.alarms = {}
        for label, queue in args.dead_letter_queues.items():
            self._alarm(
                f"{name}-dlq-{label}",
                f"{label}: messages in the dead-letter queue",
                namespace="AWS/SQS",
                metric="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": queue.name},
                statistic="Maximum",
                threshold=0,
            )
        for label, function in args.functions.items():
            self._alarm(
                f"{name}-errors-{label}",
                f"{label}: the function failed",
                namespace="AWS/Lambda",
                metric="Errors",
                dimensions={"FunctionName": function.name},
                statistic="Sum",
                threshold=0,
            )
        self._alarm(
            f"{name}-ingest-5xx",
            "ingest: more than 1% of POST /v1/events answered 5xx",
            namespace="AWS/ApiGateway",
            metric="5XXError",
            dimensions={
                "ApiName": args.rest_api.name,
                "Stage": args.stage_name,
                "Resource": "/v1/events",
                "Method": "POST",
            },
            statistic="Average",
            threshold=INGEST_5XX_RATE,
            periods=3,
        )
        self._alarm(
            f"{name}-raw-age",
            "RAW objects wait more than 15 minutes for sanitize",
            namespace="AWS/SQS",
            metric="ApproximateAgeOfOldestMessage",
            dimensions={"QueueName": args.raw_queue.name},
            statistic="Maximum",
            threshold=RAW_AGE_ALARM_SECONDS,
        )
        self._log_alarm(
            f"{name}-raw-stragglers",
            "the sweep deleted RAW objects sanitize never consumed",
            LogCount(
                args.sweep_logs,
                '{ $.message = "retention sweep done" && $.raw_deleted > 0 }',
                "$.raw_deleted",
                "RawStragglersDeleted",
            ),
            namespace=args.metric_namespace,
            statistic="Sum",
            threshold=0,
        )
        self._log_alarm(
            f"{name}-stale-working-months",
            "working telemetry (SANITIZED/ANALYTICS) a week past its month: a bundle build "
            "or a cleanup stopped",
            LogCount(
                args.sweep_logs, STALE_WORKING_PATTERN, STALE_WORKING_VALUE, "StaleWorkingMonths"
            ),
            namespace=args.metric_namespace,
            statistic="Maximum",
            threshold=0,
            period=3600,  # the sweep runs hourly
        )
        self._log_alarm(
            f"{name}-scrub-violations",
            f"more than {args.scrub_violation_threshold} PII findings (redacted or "
            "quarantined) in an hour",
            LogCount(
                args.sanitize_logs,
                SCRUB_VIOLATIONS_PATTERN,
                SCRUB_VIOLATIONS_VALUE,
                "ScrubViolations",
            ),
            namespace=args.metric_namespace,
            statistic="Sum",
            threshold=args.scrub_violation_threshold,
            period=3600,
        )
        failed_tasks = self._bundle_task_failures(name, args)
        self._topic_policy(name, args, failed_tasks)
        self.register_outputs({"topic": self.topic.arn})

    def _alarm(
        self,
        name: str,
        description: str,
        *,
        namespace: str,
        metric: str,
        dimensions: Mapping[str, pulumi.Input[str]],
        statistic: str,
        threshold: float,
        periods: int = 1,
        period: int = PERIOD,
    ) -> None:
        self.alarms[name] = aws.cloudwatch.MetricAlarm(
            name,
            alarm_description=f"Ryuzen Telemetry: {description}",
            namespace=namespace,
            metric_name=metric,
            dimensions=dict(dimensions) or None,
            statistic=statistic,
            period=period,
            evaluation_periods=periods,
            threshold=threshold,
            comparison_operator="GreaterThanThreshold",
            # No data is the healthy state of an error metric.
            treat_missing_data="notBreaching",
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _log_alarm(
        self,
        name: str,
        description: str,
        count: LogCount,
        *,
        namespace: str,
        statistic: str,
        threshold: float,
        period: int = PERIOD,
    ) -> None:
        """A metric counted from log lines (a metric filter), and its alarm."""
        aws.cloudwatch.LogMetricFilter(
            name,
            log_group_name=count.logs.name,
            pattern=count.pattern,
            metric_transformation={
                "name": count.metric,
                "namespace": namespace,
                "value": count.value,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._alarm(
            name,
            description,
            namespace=namespace,
            metric=count.metric,
            dimensions={},
            statistic=statistic,
            threshold=threshold,
            period=period,
        )

    def _bundle_task_failures(self, name: str, args: MonitoringArgs) -> aws.cloudwatch.EventRule:
        child = pulumi.ResourceOptions(parent=self)
        # ECS reports task state changes on the default bus.
        rule = aws.cloudwatch.EventRule(
            f"{name}-bundle-task-failed",
            description="A bundle task stopped with an error or never started",
            event_pattern=pulumi.Output.json_dumps(
                {
                    "source": ["aws.ecs"],
                    "detail-type": ["ECS Task State Change"],
                    "detail": {
                        "clusterArn": [args.bundle_cluster.arn],
                        "lastStatus": ["STOPPED"],
                        "$or": [
                            {"containers": {"exitCode": [{"anything-but": 0}]}},
                            {"stopCode": ["TaskFailedToStart"]},
                        ],
                    },
                }
            ),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-bundle-task-failed-alarm",
            rule=rule.name,
            arn=self.topic.arn,
            input_transformer={
                "input_paths": {"task": "$.detail.taskArn", "reason": "$.detail.stoppedReason"},
                "input_template": '"Ryuzen Telemetry: bundle task <task> failed: <reason>"',
            },
            opts=child,
        )
        return rule

    def _topic_policy(
        self, name: str, args: MonitoringArgs, failed_tasks: aws.cloudwatch.EventRule
    ) -> None:
        aws.sns.TopicPolicy(
            f"{name}-alarms-policy",
            arn=self.topic.arn,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "AlarmsOfThisAccount",
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudwatch.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": self.topic.arn,
                            "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
                        },
                        {
                            "Sid": "BundleTaskFailures",
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": self.topic.arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": failed_tasks.arn}},
                        },
                    ],
                }
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
