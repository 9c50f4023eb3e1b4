"""The bundle task: arm64 Fargate from the built context, least-privilege roles, and a
scheduler that may start only this task."""

from __future__ import annotations

import json

from infra.tests.pulumi_harness import ProgramRun


def test_the_task_is_arm64_fargate_read_only(any_run: ProgramRun, request) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    values = request.getfixturevalue(f"{any_run.stack}_values")
    sizing = values.get("ryuzen-telemetry:bundleTask", {})
    task = any_run.named(f"{prefix}-bundle-task").inputs
    assert task["requiresCompatibilities"] == ["FARGATE"]
    assert task["runtimePlatform"] == {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}
    assert task["cpu"] == str(sizing.get("cpu", 1024))
    assert task["memory"] == str(sizing.get("memoryMb", 4096))
    assert task["ephemeralStorage"] == {"sizeInGib": sizing.get("ephemeralStorageGib", 50)}
    (container,) = json.loads(task["containerDefinitions"])
    assert container["readonlyRootFilesystem"] is True
    assert container["user"] == "65534:65534"
    assert container["mountPoints"] == [{"sourceVolume": "scratch", "containerPath": "/scratch"}]
    image = any_run.named(f"{prefix}-bundle-image")
    assert container["image"] == image.outputs["ref"] and "@sha256:" in container["image"]


def test_the_image_is_built_for_arm64_from_the_build_context(
    any_run: ProgramRun, fake_dist
) -> None:
    image = any_run.named(f"ryuzen-{any_run.stack}-bundle-image").inputs
    assert image["platforms"] == ["linux/arm64"]
    assert image["push"] is True
    context = image["context"]["location"]
    assert context.startswith(str(fake_dist)) and context.endswith("-image")
    assert image["dockerfile"]["location"] == f"{context}/Dockerfile"
    # Tagged with the context digest the build wrote.
    assert image["tags"][0].endswith(":" + "c" * 32)


def test_the_scheduler_may_start_only_this_task(any_run: ProgramRun) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    policy = json.loads(any_run.named(f"{prefix}-bundle-scheduler-policy").inputs["policy"])
    run_task, pass_role, dead_letters = policy["Statement"]
    family = any_run.named(f"{prefix}-bundle-task").outputs["arnWithoutRevision"]
    cluster = any_run.named(f"{prefix}-bundle-cluster").outputs["arn"]
    assert run_task["Resource"] == [f"{family}:*"]
    assert run_task["Condition"] == {"ArnEquals": {"ecs:cluster": cluster}}
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    roles = {
        any_run.named(f"{prefix}-bundle-{r}-role").outputs["arn"] for r in ("task", "execution")
    }
    assert set(pass_role["Resource"]) == roles
    assert dead_letters["Resource"] == [
        any_run.named(f"{prefix}-bundle-schedule-dlq").outputs["arn"]
    ]


def test_the_execution_role_pulls_only_its_repository(any_run: ProgramRun) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    policy = json.loads(any_run.named(f"{prefix}-bundle-execution-policy").inputs["policy"])
    _, pull, logs = policy["Statement"]
    repository = any_run.named(f"{prefix}-bundle-images").outputs["arn"]
    assert pull["Resource"] == [repository]
    group = any_run.named(f"{prefix}-bundle-logs").outputs["arn"]
    assert logs["Resource"] == [f"{group}:*"]


def test_the_task_subnets_take_no_inbound_traffic(any_run: ProgramRun) -> None:
    (group,) = any_run.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert not group.inputs.get("ingress")
    (egress,) = group.inputs["egress"]
    assert (egress["fromPort"], egress["toPort"], egress["protocol"]) == (443, 443, "tcp")
    endpoints = {
        e.inputs["serviceName"] for e in any_run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    }
    assert endpoints == {"com.amazonaws.eu-west-1.s3", "com.amazonaws.eu-west-1.dynamodb"}
