"""Queues and functions: every queue has a DLQ, timeouts agree, failures are reported per
record, every async path ends in a DLQ, and every DLQ and function has an alarm."""

from __future__ import annotations

import json

from infra.queues import MAX_RECEIVES
from infra.tests.pulumi_harness import ProgramRun


def _queues(run: ProgramRun) -> dict[str, dict]:
    return {q.outputs["arn"]: q.inputs for q in run.of_type("aws:sqs/queue:Queue")}


def _functions(run: ProgramRun) -> dict[str, dict]:
    return {f.outputs["arn"]: f.inputs for f in run.of_type("aws:lambda/function:Function")}


def test_every_work_queue_redrives_to_a_dlq(any_run: ProgramRun) -> None:
    queues = _queues(any_run)
    work = {arn: q for arn, q in queues.items() if "redrivePolicy" in q}
    assert len(work) == 2  # RAW -> sanitize, SANITIZED -> analytics
    for arn, queue in work.items():
        redrive = json.loads(queue["redrivePolicy"])
        assert redrive["maxReceiveCount"] == MAX_RECEIVES
        dlq = queues[redrive["deadLetterTargetArn"]]
        assert "redrivePolicy" not in dlq, arn
        assert dlq["messageRetentionSeconds"] == 14 * 24 * 3600
    for queue in queues.values():
        assert queue["sqsManagedSseEnabled"] is True


def test_visibility_is_at_least_six_function_timeouts(any_run: ProgramRun) -> None:
    queues, functions = _queues(any_run), _functions(any_run)
    mappings = any_run.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    assert len(mappings) == 2
    for mapping in mappings:
        queue = queues[mapping.inputs["eventSourceArn"]]
        function = functions[mapping.inputs["functionName"]]
        # AWS's rule for SQS event sources: at least six times the function's timeout.
        assert queue["visibilityTimeoutSeconds"] >= 6 * function["timeout"]
        assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]


def test_prod_timeouts_follow_the_stack_config(prod_run: ProgramRun) -> None:
    sanitize = prod_run.named("ryuzen-prod-sanitize-fn").inputs
    assert sanitize["memorySize"] == 3008  # from Pulumi.prod.yaml
    assert sanitize["reservedConcurrentExecutions"] == 50
    (mapping,) = [
        m
        for m in prod_run.of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
        if m.name == "ryuzen-prod-sanitize-source"
    ]
    # Pollers beyond the reserved concurrency would only be throttled.
    assert mapping.inputs["scalingConfig"] == {"maximumConcurrency": 50}


def test_the_s3_notifications_feed_only_their_queue(any_run: ProgramRun) -> None:
    buckets = any_run.outputs["buckets"]
    notifications = {
        n.inputs["bucket"]: n.inputs["queues"]
        for n in any_run.of_type("aws:s3/bucketNotification:BucketNotification")
    }
    assert set(notifications) == {buckets["raw"], buckets["sanitized"]}
    policies = {
        p.inputs["queueUrl"]: json.loads(p.inputs["policy"])
        for p in any_run.of_type("aws:sqs/queuePolicy:QueuePolicy")
    }
    urls = {q.outputs["arn"]: q.outputs["url"] for q in any_run.of_type("aws:sqs/queue:Queue")}
    for bucket, (target,) in notifications.items():
        assert target["events"] == ["s3:ObjectCreated:*"]
        (statement,) = policies[urls[target["queueArn"]]]["Statement"]
        assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
        assert statement["Condition"]["ArnEquals"] == {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}


def test_async_functions_end_in_the_cleanup_dlq(any_run: ProgramRun) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    dlq = any_run.named(f"{prefix}-cleanup-dlq").outputs["arn"]
    configs = {
        c.name: c.inputs
        for c in any_run.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    }
    assert set(configs) == {f"{prefix}-cleanup-delivered-async", f"{prefix}-cleanup-sweep-async"}
    for config in configs.values():
        assert config["destinationConfig"] == {"onFailure": {"destination": dlq}}
        assert config["maximumRetryAttempts"] == 2
    (target,) = [
        t
        for t in any_run.of_type("aws:cloudwatch/eventTarget:EventTarget")
        if t.name == f"{prefix}-cleanup-delivered-target"
    ]
    assert target.inputs["deadLetterConfig"] == {"arn": dlq}
    schedules = [s.inputs for s in any_run.of_type("aws:scheduler/schedule:Schedule")]
    assert all("arn" in s["target"]["deadLetterConfig"] for s in schedules)


def test_every_function_logs_to_its_own_bounded_group(any_run: ProgramRun, request) -> None:
    values = request.getfixturevalue(f"{any_run.stack}_values")
    retention = values.get("ryuzen-telemetry:logRetentionDays", 30)
    groups = {
        g.outputs["name"]: g.inputs for g in any_run.of_type("aws:cloudwatch/logGroup:LogGroup")
    }
    used = []
    for function in any_run.of_type("aws:lambda/function:Function"):
        group = function.inputs["loggingConfig"]["logGroup"]
        assert groups[group]["retentionInDays"] == retention, function.name
        used.append(group)
    assert len(set(used)) == len(used) == 6
    assert all(g["retentionInDays"] == retention for g in groups.values())


def test_functions_are_python312_on_arm64_from_the_artifacts_bucket(any_run: ProgramRun) -> None:
    artifacts = any_run.outputs["buckets"]["artifacts"]
    objects = {
        o.inputs["key"]: o.inputs for o in any_run.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    }
    for function in any_run.of_type("aws:lambda/function:Function"):
        inputs = function.inputs
        assert inputs["runtime"] == "python3.12" and inputs["architectures"] == ["arm64"]
        assert inputs["s3Bucket"] == artifacts
        assert inputs["s3Key"] in objects
        # The key is the zip's SHA-256, and so is the code hash: same build, no redeploy.
        digest = inputs["s3Key"].rsplit("/", 1)[1].removesuffix(".zip")
        assert bytes.fromhex(digest) == __import__("base64").b64decode(inputs["sourceCodeHash"])


def test_every_dlq_and_function_has_an_alarm(any_run: ProgramRun) -> None:
    alarms = [a.inputs for a in any_run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")]
    topic = any_run.outputs["alarmTopicArn"]
    assert all(a["alarmActions"] == [topic] for a in alarms)
    watched_queues = {
        a["dimensions"]["QueueName"]
        for a in alarms
        if a["metricName"] == "ApproximateNumberOfMessagesVisible"
    }
    dlqs = {
        q.outputs["name"]
        for q in any_run.of_type("aws:sqs/queue:Queue")
        if "redrivePolicy" not in q.inputs
    }
    assert watched_queues == dlqs
    erring = {a["dimensions"]["FunctionName"] for a in alarms if a["metricName"] == "Errors"}
    assert erring == {f.outputs["name"] for f in any_run.of_type("aws:lambda/function:Function")}
    names = {a["metricName"] for a in alarms}
    assert {
        "5XXError",
        "ApproximateAgeOfOldestMessage",
        "RawStragglersDeleted",
        "ScrubViolations",
    } <= names


def test_bundle_task_failures_reach_the_alarm_topic(any_run: ProgramRun) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    rule = any_run.named(f"{prefix}-monitoring-bundle-task-failed").inputs
    pattern = json.loads(rule["eventPattern"])
    cluster = any_run.named(f"{prefix}-bundle-cluster").outputs["arn"]
    assert pattern["detail"]["clusterArn"] == [cluster]
    assert pattern["detail"]["lastStatus"] == ["STOPPED"]
    target = any_run.named(f"{prefix}-monitoring-bundle-task-failed-alarm").inputs
    assert target["arn"] == any_run.outputs["alarmTopicArn"]
