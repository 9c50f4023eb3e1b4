"""The SQS poller behaves as Lambda's event source mapping, against moto's server."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from ryuzen_tools.local_stack.aws import LocalClients
from ryuzen_tools.local_stack.event_source import SqsPoller, failed_message_ids, sqs_event
from ryuzen_tools.local_stack.lambda_runtime import StageRuntime
from tools_support import REGION, load_event, unique


class RecordingHandler:
    """Records every event; answers with ``answer(event)``."""

    def __init__(self, answer: Any = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self._answer = answer

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        return self._answer(event) if callable(self._answer) else self._answer


def make_queue(
    aws: LocalClients, *, visibility: int = 30, max_receive: int = 3
) -> tuple[str, str, str]:
    """A queue with a DLQ; returns (url, arn, dlq url)."""
    sqs = aws.client("sqs")
    name = unique("poller")
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive}
            ),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn, dlq_url


def send(aws: LocalClients, url: str, bodies: list[str]) -> None:
    aws.client("sqs").send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
    )


def counts(aws: LocalClients, url: str) -> tuple[int, int]:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def poller_for(aws: LocalClients, handler: RecordingHandler, url: str, arn: str) -> SqsPoller:
    runtime = StageRuntime("test-stage", handler, region=REGION, stack="test")
    return SqsPoller(
        runtime, aws.client("sqs"), queue_url=url, queue_arn=arn, region=REGION, wait_time_s=1
    )


def test_success_deletes_every_message_and_builds_the_lambda_event(aws: LocalClients) -> None:
    # Given three messages and a handler that returns nothing
    url, arn, _ = make_queue(aws)
    send(aws, url, ["a", "b", "c"])
    handler = RecordingHandler()
    poller = poller_for(aws, handler, url, arn)

    # When the poller runs one batch
    received = poller.poll_once()

    # Then the handler saw a Lambda SQS event and every message is gone
    assert received == 3
    (event,) = handler.events
    assert sorted(record["body"] for record in event["Records"]) == ["a", "b", "c"]
    sample = load_event("sqs_lambda_event.json")["Records"][0]
    for record in event["Records"]:
        assert set(record) >= set(sample)
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"] == arn
        assert record["awsRegion"] == REGION
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
    context = handler.contexts[0]
    assert context.function_name == "ryuzen-test-test-stage"
    assert 0 < context.get_remaining_time_in_millis() <= 60_000
    assert counts(aws, url) == (0, 0)
    assert poller.runtime.counters() == {
        "invocations": 1,
        "errors": 0,
        "outcomes": {"messages_deleted": 3},
    }


def test_partial_batch_failure_keeps_only_the_failed_messages(aws: LocalClients) -> None:
    url, arn, _ = make_queue(aws)
    send(aws, url, ["keep", "drop-1", "drop-2"])

    def fail_keep(event: dict[str, Any]) -> dict[str, Any]:
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "keep"
            ]
        }

    poller = poller_for(aws, RecordingHandler(fail_keep), url, arn)
    poller.poll_once()

    assert counts(aws, url) == (0, 1)  # the failed one is in flight until its timeout ends
    outcomes = poller.runtime.counters()["outcomes"]
    assert outcomes == {"messages_deleted": 2, "messages_failed": 1}


def test_an_exception_fails_the_whole_batch(aws: LocalClients) -> None:
    url, arn, _ = make_queue(aws)
    send(aws, url, ["x", "y"])

    def explode(event: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    poller = poller_for(aws, RecordingHandler(explode), url, arn)
    poller.poll_once()

    assert counts(aws, url) == (0, 2)
    assert poller.runtime.counters()["errors"] == 1


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(None, set(), id="none"),
        pytest.param({}, set(), id="no-failures-key"),
        pytest.param({"batchItemFailures": []}, set(), id="empty-list"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": "m1"}]}, {"m1"}, id="one"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": ""}]}, {"m1", "m2"}, id="empty-id"),
        pytest.param(
            {"batchItemFailures": [{"itemIdentifier": "zz"}]}, {"m1", "m2"}, id="unknown-id"
        ),
        pytest.param({"batchItemFailures": [{}]}, {"m1", "m2"}, id="missing-id"),
        pytest.param({"batchItemFailures": "m1"}, {"m1", "m2"}, id="not-a-list"),
    ],
)
def test_batch_item_failures_follow_lambda_rules(answer: Any, expected: set[str]) -> None:
    assert failed_message_ids(answer, ["m1", "m2"]) == expected


def test_message_attributes_use_the_lambda_spelling() -> None:
    event = sqs_event(
        [
            {
                "MessageId": "m1",
                "ReceiptHandle": "r1",
                "Body": "b",
                "MD5OfBody": "x",
                "Attributes": {"ApproximateReceiveCount": "2"},
                "MessageAttributes": {
                    "kind": {"DataType": "String", "StringValue": "raw"},
                    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
                },
            }
        ],
        "arn:aws:sqs:eu-west-1:123456789012:q",
        REGION,
    )
    attributes = event["Records"][0]["messageAttributes"]
    assert attributes["kind"] == {
        "stringValue": "raw",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert attributes["blob"]["binaryValue"] == "AAE="


def test_sqs_redrives_to_the_dlq_after_max_receive_count(aws: LocalClients) -> None:
    # Given a queue that allows two receives, a one-second visibility timeout, and a
    # handler that always fails
    url, arn, dlq_url = make_queue(aws, visibility=1, max_receive=2)
    send(aws, url, ["poison"])

    def explode(event: dict[str, Any]) -> None:
        raise ValueError("always")

    handler = RecordingHandler(explode)
    poller = poller_for(aws, handler, url, arn)

    # When the poller runs until the message is gone from the queue
    poller.start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and counts(aws, dlq_url)[0] == 0:
            time.sleep(0.2)
    finally:
        poller.stop()

    # Then SQS (moto) moved it to the DLQ after exactly two failed invocations
    assert counts(aws, dlq_url) == (1, 0)
    assert counts(aws, url) == (0, 0)
    receive_counts = [
        e["Records"][0]["attributes"]["ApproximateReceiveCount"] for e in handler.events
    ]
    assert receive_counts == ["1", "2"]


def test_a_running_poller_feeds_the_stage_until_stopped(aws: LocalClients) -> None:
    url, arn, _ = make_queue(aws)
    handler = RecordingHandler()
    poller = poller_for(aws, handler, url, arn)
    poller.start()
    try:
        send(aws, url, [f"m{i}" for i in range(10)])
        send(aws, url, [f"n{i}" for i in range(5)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and counts(aws, url) != (0, 0):
            time.sleep(0.1)
    finally:
        poller.stop()
    bodies = sorted(r["body"] for e in handler.events for r in e["Records"])
    assert len(bodies) == 15
    assert all(len(e["Records"]) <= 10 for e in handler.events)
