"""Cleanup: deleting a partner-month once its bundle is delivered, and the hourly sweep.

* ``BundleDelivered`` on the bundle service's bus → an EventBridge rule → the cleanup
  function (``ryuzen_cleanup.cleanup_handler``), invoked asynchronously. The handler
  refuses (and raises, so the event is retried) while the month is not yet ``DELIVERED``
  — the builder emits the event just before that last transition. Lambda retries a
  failed run twice (a minute or two apart), EventBridge retries an invocation it could
  not make for a day, and what still fails lands in the DLQ.
* An EventBridge Scheduler schedule runs the retention sweep
  (``ryuzen_cleanup.sweep_handler``) every hour: RAW stragglers older than
  ``rawHours`` and quarantine older than ``quarantineDays`` go, S3 lifecycle being only a
  whole-day backstop.

Both functions share this component's DLQ: whatever cleanup could not do is in one place.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from ryuzen_contracts.bundle_delivered import event_pattern

from infra.iam_statements import allow, policy_document, service_trust_policy
from infra.queues import dead_letter_queue
from infra.stage_function import StageFunction, StageFunctionArgs

SWEEP_RATE = "rate(1 hour)"
RULE_RETRIES = 185  # EventBridge's maximum; the age limit below ends them first
RULE_MAX_AGE_SECONDS = 24 * 3600
SWEEP_RETRIES = 2
SWEEP_MAX_AGE_SECONDS = 3600  # an hour late is the next sweep's work


@dataclass
class CleanupArgs:
    """The two functions (without their DLQ, made here) and the bus to listen on."""

    delivered: StageFunctionArgs
    sweep: StageFunctionArgs
    event_bus: aws.cloudwatch.EventBus
    account_id: str


class Cleanup(pulumi.ComponentResource):
    """The cleanup and sweep functions and what invokes them."""

    delivered: StageFunction
    sweep: StageFunction
    dead_letter_queue: aws.sqs.Queue

    def __init__(
        self, name: str, args: CleanupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ryuzen:index:Cleanup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.dead_letter_queue = dead_letter_queue(f"{name}-dlq", self)
        self.delivered = StageFunction(
            f"{name}-delivered",
            dataclasses.replace(args.delivered, async_dead_letter_queue=self.dead_letter_queue),
            opts=child,
        )
        self.sweep = StageFunction(
            f"{name}-sweep",
            dataclasses.replace(args.sweep, async_dead_letter_queue=self.dead_letter_queue),
            opts=child,
        )
        self._on_bundle_delivered(name, args)
        self._hourly_sweep(name, args)
        self.register_outputs(
            {
                "cleanup_function": self.delivered.function.name,
                "sweep_function": self.sweep.function.name,
                "dead_letter_queue": self.dead_letter_queue.arn,
            }
        )

    def _on_bundle_delivered(self, name: str, args: CleanupArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        rule = aws.cloudwatch.EventRule(
            f"{name}-delivered-rule",
            description="BundleDelivered -> delete that partner-month's working telemetry",
            event_bus_name=args.event_bus.name,
            event_pattern=json.dumps(event_pattern()),
            opts=child,
        )
        permission = aws.lambda_.Permission(
            f"{name}-delivered-invoke",
            action="lambda:InvokeFunction",
            function=self.delivered.function.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=child,
        )
        # EventBridge itself sends an event it could not deliver to the DLQ: only this
        # rule may.
        queue_policy = aws.sqs.QueuePolicy(
            f"{name}-dlq-from-rule",
            queue_url=self.dead_letter_queue.url,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "OnlyTheDeliveredRule",
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": self.dead_letter_queue.arn,
                            "Condition": {"ArnEquals": {"aws:SourceArn": rule.arn}},
                        }
                    ],
                }
            ),
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-delivered-target",
            rule=rule.name,
            event_bus_name=args.event_bus.name,
            arn=self.delivered.function.arn,
            retry_policy={
                "maximum_retry_attempts": RULE_RETRIES,
                "maximum_event_age_in_seconds": RULE_MAX_AGE_SECONDS,
            },
            dead_letter_config={"arn": self.dead_letter_queue.arn},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission, queue_policy]),
        )

    def _hourly_sweep(self, name: str, args: CleanupArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-sweep-scheduler-role",
            assume_role_policy=service_trust_policy("scheduler.amazonaws.com", args.account_id),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-sweep-scheduler-policy",
            role=role.id,
            policy=policy_document(
                [
                    allow(["lambda:InvokeFunction"], self.sweep.function.arn, sid="RunSweep"),
                    allow(["sqs:SendMessage"], self.dead_letter_queue.arn, sid="DeadLetters"),
                ]
            ),
            opts=child,
        )
        aws.scheduler.Schedule(
            f"{name}-sweep-schedule",
            description="Hourly retention sweep of RAW and quarantine",
            schedule_expression=SWEEP_RATE,
            flexible_time_window={"mode": "OFF"},
            target={
                "arn": self.sweep.function.arn,
                "role_arn": role.arn,
                "retry_policy": {
                    "maximum_retry_attempts": SWEEP_RETRIES,
                    "maximum_event_age_in_seconds": SWEEP_MAX_AGE_SECONDS,
                },
                "dead_letter_config": {"arn": self.dead_letter_queue.arn},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
