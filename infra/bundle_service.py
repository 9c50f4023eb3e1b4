"""BundleService: the monthly bundle task and everything that starts and feeds it.

* the ``BundleDelivered`` event bus the task announces deliveries on (cleanup listens);
* an ECR repository and the image built from ``stages/bundle/Dockerfile`` with the
  context ``nox -s build`` wrote (pulumi-docker-build; linux/arm64; tagged with the
  context digest, and the task definition pins the pushed digest);
* an ECS cluster and a Fargate task definition (arm64, read-only root filesystem, a
  scratch volume on the task's ephemeral storage), with a task role holding only the
  bundle stage's permissions (``stage_permissions.bundle_task``) and an execution role
  that can only pull this repository's image and write this task's logs;
* one EventBridge Scheduler schedule per partner: on the 1st of each month, within an
  hour of 06:00 UTC, ``python -m ryuzen_bundle build --partner P`` for the month that
  just closed (the task's default ``--month``), with retries and a DLQ for a start that
  fails. The six hours after midnight leave the last RAW batches of the month time to
  pass sanitize and analytics (RAW retention is a few hours).

A task that starts but fails (exit status 1) is not retried by the scheduler — its run
leaves an ``ERROR`` audit event and the monitoring rule on stopped tasks alerts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build
from ryuzen_contracts.stack_config import BundleTask, Partner

from infra.artifacts import ImageContext
from infra.build_artifacts import FIXED_EPOCH
from infra.iam_statements import Statement, allow, policy_document, service_trust_policy
from infra.network import Network
from infra.queues import dead_letter_queue
from infra.signing import SIGNER_TAG
from infra.stage_permissions import StageResources, bundle_task

CONTAINER = "bundle"
SCRATCH = "/scratch"
MONTHLY = "cron(0 6 1 * ? *)"
START_WINDOW_MINUTES = 60
# A start that fails (capacity, throttling) is retried for a day before the DLQ.
START_RETRIES = 10
START_MAX_AGE_SECONDS = 24 * 3600
IMAGES_KEPT = 10


@dataclass
class BundleServiceArgs:
    """What the task needs: its image, sizing, environment, permissions and network."""

    image_context: ImageContext
    partners: Sequence[Partner]
    task: BundleTask
    # The task's environment, less EVENT_BUS_NAME (the bus is made here).
    environment: Mapping[str, pulumi.Input[str]]
    permissions: StageResources
    network: Network
    log_retention_days: int
    signer_tag_value: str
    account_id: str
    region: str
    protect: bool


class BundleService(pulumi.ComponentResource):
    """The bundle task on Fargate, its image, its event bus and its monthly schedules."""

    event_bus: aws.cloudwatch.EventBus
    cluster: aws.ecs.Cluster
    task_definition: aws.ecs.TaskDefinition
    task_role: aws.iam.Role
    schedules: dict[str, aws.scheduler.Schedule]
    dead_letter_queue: aws.sqs.Queue

    def __init__(
        self, name: str, args: BundleServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ryuzen:index:BundleService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.event_bus = aws.cloudwatch.EventBus(f"{name}-events", opts=child)
        image = self._image(name, args)
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[{"name": "containerInsights", "value": "enabled"}],
            opts=child,
        )
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs", retention_in_days=args.log_retention_days, opts=child
        )
        self.task_role = aws.iam.Role(
            f"{name}-task-role",
            assume_role_policy=service_trust_policy("ecs-tasks.amazonaws.com", args.account_id),
            tags={SIGNER_TAG: args.signer_tag_value},
            opts=child,
        )
        task_policy = aws.iam.RolePolicy(
            f"{name}-task-policy",
            role=self.task_role.id,
            policy=policy_document(bundle_task(args.permissions, self.event_bus)),
            opts=child,
        )
        # The execution role is ECS's own (image pull, logs) and trusts ecs-tasks plainly,
        # as AWS documents it; the account condition guards the role the code runs as.
        execution_role = aws.iam.Role(
            f"{name}-execution-role",
            assume_role_policy=service_trust_policy("ecs-tasks.amazonaws.com"),
            opts=child,
        )
        execution_policy = aws.iam.RolePolicy(
            f"{name}-execution-policy",
            role=execution_role.id,
            policy=policy_document(self._execution_statements(image.repository, logs)),
            opts=child,
        )
        environment = {**args.environment, "EVENT_BUS_NAME": self.event_bus.name}
        self.task_definition = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=f"{name}-task",
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(args.task.cpu),
            memory=str(args.task.memory_mb),
            runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": "ARM64"},
            ephemeral_storage={"size_in_gib": args.task.ephemeral_storage_gib},
            execution_role_arn=execution_role.arn,
            task_role_arn=self.task_role.arn,
            volumes=[{"name": "scratch"}],
            container_definitions=pulumi.Output.json_dumps(
                [
                    {
                        "name": CONTAINER,
                        "image": image.image.ref,
                        "essential": True,
                        "readonlyRootFilesystem": True,
                        "user": "65534:65534",
                        "environment": [
                            {"name": key, "value": value}
                            for key, value in sorted(environment.items())
                        ],
                        "mountPoints": [{"sourceVolume": "scratch", "containerPath": SCRATCH}],
                        "logConfiguration": {
                            "logDriver": "awslogs",
                            "options": {
                                "awslogs-group": logs.name,
                                "awslogs-region": args.region,
                                "awslogs-stream-prefix": CONTAINER,
                            },
                        },
                    }
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[task_policy, execution_policy]),
        )
        self.dead_letter_queue = dead_letter_queue(f"{name}-schedule-dlq", self)
        self.schedules = self._schedules(name, args, execution_role)
        self.register_outputs(
            {
                "event_bus": self.event_bus.name,
                "cluster": self.cluster.arn,
                "task_definition": self.task_definition.arn,
                "image": image.image.ref,
            }
        )

    def _image(self, name: str, args: BundleServiceArgs) -> _BundleImage:
        repository = aws.ecr.Repository(
            f"{name}-images",
            # Tags are the context digest, and the task pins the pushed image digest, so
            # a tag moving would never change what runs; mutable tags let a rebuild of
            # the same context (a newer base image) push again.
            image_tag_mutability="MUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "KMS"}],
            force_delete=not args.protect,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-images-lifecycle",
            repository=repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"keep the last {IMAGES_KEPT} images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": IMAGES_KEPT,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        context = args.image_context
        image = docker_build.Image(
            f"{name}-image",
            context={"location": str(context.path)},
            dockerfile={"location": str(context.path / "Dockerfile")},
            platforms=[docker_build.Platform.LINUX_ARM64],
            build_args={"SOURCE_DATE_EPOCH": str(FIXED_EPOCH)},
            push=True,
            tags=[repository.repository_url.apply(lambda url: f"{url}:{context.digest[:32]}")],
            registries=[
                {
                    "address": repository.repository_url,
                    "username": token.user_name,
                    "password": token.password,
                }
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        return _BundleImage(repository, image)

    @staticmethod
    def _execution_statements(
        repository: aws.ecr.Repository, logs: aws.cloudwatch.LogGroup
    ) -> list[Statement]:
        return [
            # ECR's GetAuthorizationToken has no resource to scope it to: AWS requires "*".
            # The token alone reads nothing; the next statement decides which images.
            allow(["ecr:GetAuthorizationToken"], "*", sid="RegistryLogin"),
            allow(
                [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                repository.arn,
                sid="PullOwnImage",
            ),
            allow(
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                logs.arn.apply(lambda arn: f"{arn}:*"),
                sid="OwnLogGroup",
            ),
        ]

    def _schedules(
        self, name: str, args: BundleServiceArgs, execution_role: aws.iam.Role
    ) -> dict[str, aws.scheduler.Schedule]:
        child = pulumi.ResourceOptions(parent=self)
        group = aws.scheduler.ScheduleGroup(f"{name}-schedules", opts=child)
        role = aws.iam.Role(
            f"{name}-scheduler-role",
            assume_role_policy=service_trust_policy("scheduler.amazonaws.com", args.account_id),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-scheduler-policy",
            role=role.id,
            policy=policy_document(
                [
                    allow(
                        ["ecs:RunTask"],
                        self.task_definition.arn_without_revision.apply(lambda arn: f"{arn}:*"),
                        {"ArnEquals": {"ecs:cluster": self.cluster.arn}},
                        sid="RunBundleTask",
                    ),
                    allow(
                        ["iam:PassRole"],
                        [self.task_role.arn, execution_role.arn],
                        {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
                        sid="PassTaskRoles",
                    ),
                    allow(["sqs:SendMessage"], self.dead_letter_queue.arn, sid="DeadLetters"),
                ]
            ),
            opts=child,
        )
        schedules = {}
        for partner in args.partners:
            schedules[partner.id] = aws.scheduler.Schedule(
                f"{name}-{partner.id}",
                group_name=group.name,
                description=f"Monthly bundle of partner {partner.id}",
                schedule_expression=MONTHLY,
                schedule_expression_timezone="UTC",
                flexible_time_window={
                    "mode": "FLEXIBLE",
                    "maximum_window_in_minutes": START_WINDOW_MINUTES,
                },
                target={
                    "arn": self.cluster.arn,
                    "role_arn": role.arn,
                    "input": json.dumps(
                        {
                            "containerOverrides": [
                                {"name": CONTAINER, "command": ["build", "--partner", partner.id]}
                            ]
                        }
                    ),
                    "ecs_parameters": {
                        "task_definition_arn": self.task_definition.arn,
                        "launch_type": "FARGATE",
                        "platform_version": "LATEST",
                        "task_count": 1,
                        "network_configuration": {
                            "subnets": [subnet.id for subnet in args.network.subnets],
                            "security_groups": [args.network.security_group.id],
                            "assign_public_ip": True,
                        },
                    },
                    "retry_policy": {
                        "maximum_retry_attempts": START_RETRIES,
                        "maximum_event_age_in_seconds": START_MAX_AGE_SECONDS,
                    },
                    "dead_letter_config": {"arn": self.dead_letter_queue.arn},
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
            )
        return schedules


@dataclass
class _BundleImage:
    repository: aws.ecr.Repository
    image: docker_build.Image
