"""StageFunction: one stage's Lambda, with everything that must come with it.

Python 3.12 on arm64, code from the stage's artifact in the ARTIFACTS bucket, and:

* its own role, whose one inline policy holds exactly the statements the program passes
  for this stage (``stage_permissions``) plus what running needs: writing to its own log
  group, reading its own queue, sending to its own DLQ — no AWS managed policy (the basic
  execution policy would grant ``logs:CreateLogGroup`` on every resource);
* its own log group with bounded retention (created here, so Lambda never creates an
  unbounded ``/aws/lambda/...`` group);
* for an SQS-fed stage, the event source mapping with ``ReportBatchItemFailures`` (the
  handlers answer per record, so one bad object is retried alone);
* for an asynchronously invoked stage (EventBridge, Scheduler), two retries and then its
  DLQ as the failure destination;
* reserved concurrency when the stack config sets one, which also caps the SQS pollers.

The environment is checked against Lambda's 4 KB limit (``lambda_environment``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.iam_statements import Statement, allow, policy_document, service_trust_policy
from infra.lambda_environment import checked_environment

RUNTIME = "python3.12"
ARCHITECTURE = "arm64"
ASYNC_RETRIES = 2
ASYNC_MAX_EVENT_AGE_SECONDS = 6 * 3600


def lambda_role(
    name: str, parent: pulumi.Resource | None = None, tags: Mapping[str, str] | None = None
) -> aws.iam.Role:
    """A role only Lambda may assume, with no policy yet (StageFunction adds it)."""
    return aws.iam.Role(
        name,
        assume_role_policy=service_trust_policy("lambda.amazonaws.com"),
        tags=dict(tags or {}),
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass
class StageFunctionArgs:
    """One function's code, handler, environment, permissions and sizing."""

    description: str
    code: aws.s3.BucketObjectv2
    code_hash: str
    handler: str
    environment: Mapping[str, pulumi.Input[str]]
    statements: Sequence[Statement]
    memory_mb: int
    timeout_seconds: int
    log_retention_days: int
    reserved_concurrency: int | None = None
    # SQS-fed: the queue its event source mapping reads, and the batch size.
    queue: aws.sqs.Queue | None = None
    batch_size: int = 5
    # Invoked asynchronously: where an event goes once the retries are spent.
    async_dead_letter_queue: aws.sqs.Queue | None = None
    # A role made beforehand, when another resource must name it before the function
    # exists (the pull API's presign role trusts it); otherwise the function makes its own.
    role: aws.iam.Role | None = None
    role_tags: Mapping[str, str] = field(default_factory=dict)


class StageFunction(pulumi.ComponentResource):
    """A stage's Lambda function with its role, log group and event wiring."""

    function: aws.lambda_.Function
    role: aws.iam.Role
    log_group: aws.cloudwatch.LogGroup

    def __init__(
        self, name: str, args: StageFunctionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ryuzen:index:StageFunction", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = args.role or lambda_role(f"{name}-role", self, args.role_tags)
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", retention_in_days=args.log_retention_days, opts=child
        )
        statements = [
            *args.statements,
            allow(
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                self.log_group.arn.apply(lambda arn: f"{arn}:*"),
                sid="OwnLogGroup",
            ),
        ]
        if args.queue is not None:
            statements.append(
                allow(
                    ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                    args.queue.arn,
                    sid="OwnQueue",
                )
            )
        if args.async_dead_letter_queue is not None:
            statements.append(
                allow(["sqs:SendMessage"], args.async_dead_letter_queue.arn, sid="OwnDeadLetters")
            )
        policy = aws.iam.RolePolicy(
            f"{name}-policy", role=self.role.id, policy=policy_document(statements), opts=child
        )
        # The function, its mapping and its invoke config wait for the policy: Lambda
        # checks the role can read the queue when the mapping is created.
        after_policy = pulumi.ResourceOptions(parent=self, depends_on=[policy])
        self.function = aws.lambda_.Function(
            f"{name}-fn",
            description=args.description,
            role=self.role.arn,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=args.handler,
            s3_bucket=args.code.bucket,
            s3_key=args.code.key,
            source_code_hash=args.code_hash,
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            reserved_concurrent_executions=args.reserved_concurrency,
            environment={"variables": checked_environment(name, args.environment)},
            logging_config={"log_format": "Text", "log_group": self.log_group.name},
            opts=after_policy,
        )
        if args.queue is not None:
            scaling: aws.lambda_.EventSourceMappingScalingConfigArgs | None = None
            if args.reserved_concurrency is not None and args.reserved_concurrency >= 2:
                # Pollers beyond the reserved concurrency would only be throttled, and a
                # throttled batch counts as a receive towards the DLQ.
                scaling = aws.lambda_.EventSourceMappingScalingConfigArgs(
                    maximum_concurrency=args.reserved_concurrency
                )
            aws.lambda_.EventSourceMapping(
                f"{name}-source",
                event_source_arn=args.queue.arn,
                function_name=self.function.arn,
                batch_size=args.batch_size,
                function_response_types=["ReportBatchItemFailures"],
                scaling_config=scaling,
                opts=after_policy,
            )
        if args.async_dead_letter_queue is not None:
            aws.lambda_.FunctionEventInvokeConfig(
                f"{name}-async",
                function_name=self.function.name,
                maximum_retry_attempts=ASYNC_RETRIES,
                maximum_event_age_in_seconds=ASYNC_MAX_EVENT_AGE_SECONDS,
                destination_config={
                    "on_failure": {"destination": args.async_dead_letter_queue.arn}
                },
                opts=after_policy,
            )
        self.register_outputs(
            {
                "function_name": self.function.name,
                "function_arn": self.function.arn,
                "role_arn": self.role.arn,
                "log_group": self.log_group.name,
            }
        )
