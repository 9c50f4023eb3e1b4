"""Queues: the SQS queue (and DLQ) of each S3-fed stage, and the dead-letter queues elsewhere.

A ``StageQueue`` is the whole path from a bucket to a stage: the queue, its DLQ, the
queue policy that lets only that bucket's S3 notifications in, and the bucket's
notification configuration. They are one concern because none is useful, or safe, alone:
a notification without the policy fails to deploy, a policy without the source
condition would let any bucket feed the stage.

Timeouts follow AWS's rule for Lambda event source mappings: the visibility timeout is at
least six times the function's timeout, so a message is not handed to a second
invocation while the first still works on it (and batching and retries have room).
After ``MAX_RECEIVES`` failed attempts a message moves to the DLQ, where an alarm waits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

VISIBILITY_FACTOR = 6
MAX_RECEIVES = 5
DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # SQS's maximum: two weeks to look at a failure
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600


def dead_letter_queue(name: str, parent: pulumi.Resource) -> aws.sqs.Queue:
    """A DLQ: kept as long as SQS allows, encrypted with SQS-managed keys."""
    return aws.sqs.Queue(
        name,
        message_retention_seconds=DLQ_RETENTION_SECONDS,
        sqs_managed_sse_enabled=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass
class StageQueueArgs:
    """Which bucket objects feed the stage, and how long the stage may take per batch."""

    bucket: aws.s3.Bucket
    prefix: str
    suffix: str | None
    consumer_timeout_seconds: int
    account_id: str


class StageQueue(pulumi.ComponentResource):
    """An S3-notified SQS queue with its DLQ, feeding one stage's Lambda."""

    queue: aws.sqs.Queue
    dead_letter_queue: aws.sqs.Queue

    def __init__(
        self, name: str, args: StageQueueArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ryuzen:index:StageQueue", name, None, opts)
        self.dead_letter_queue = dead_letter_queue(f"{name}-dlq", self)
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            visibility_timeout_seconds=VISIBILITY_FACTOR * args.consumer_timeout_seconds,
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            redrive_policy=self.dead_letter_queue.arn.apply(
                lambda arn: json.dumps(
                    {"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVES}
                )
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = aws.sqs.QueuePolicy(
            f"{name}-from-s3",
            queue_url=self.queue.url,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "OnlyThisBucketNotifies",
                            "Effect": "Allow",
                            "Principal": {"Service": "s3.amazonaws.com"},
                            "Action": "sqs:SendMessage",
                            "Resource": self.queue.arn,
                            "Condition": {
                                "ArnEquals": {"aws:SourceArn": args.bucket.arn},
                                "StringEquals": {"aws:SourceAccount": args.account_id},
                            },
                        }
                    ],
                }
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        notification = aws.s3.BucketNotificationQueueArgs(
            queue_arn=self.queue.arn,
            events=["s3:ObjectCreated:*"],
            filter_prefix=args.prefix,
            filter_suffix=args.suffix,
        )
        # S3 checks the queue policy when the notification is configured: policy first.
        aws.s3.BucketNotification(
            f"{name}-notification",
            bucket=args.bucket.id,
            queues=[notification],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self.register_outputs(
            {"queue_arn": self.queue.arn, "dead_letter_queue_arn": self.dead_letter_queue.arn}
        )
