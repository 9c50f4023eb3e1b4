"""LocalStack in-process: HTTP → (fake) ingest → RAW → S3 event → SQS → a test consumer."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import fake_ingest
import pytest
from ryuzen_tools.local_stack.stack import LocalStack, LocalStackOptions, StackAlreadyRunningError
from ryuzen_tools.local_stack.stage_registry import SqsConsumer
from ryuzen_tools.local_stack.state_file import (
    StackNotRunningError,
    read_stage_counters,
    read_state,
    state_path,
    write_state,
)
from ryuzen_tools.local_stack.status import raw_inventory, stack_status
from ryuzen_tools.synthetic import SyntheticEvents
from ryuzen_tools.traffic import SendOptions, TrafficSender
from tools_support import unique


class RecordingConsumer:
    """Stands in for sanitize on raw-events: records the RAW keys it is told about."""

    def __init__(self, fail_everything: bool = False) -> None:
        self.keys: list[str] = []
        self.test_events = 0
        self.fail_everything = fail_everything

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if self.fail_everything:
            raise RuntimeError("consumer down")
        for record in event["Records"]:
            body = json.loads(record["body"])
            if body.get("Event") == "s3:TestEvent":
                self.test_events += 1
            for s3_record in body.get("Records", []):
                self.keys.append(unquote_plus(s3_record["s3"]["object"]["key"]))
        return {"batchItemFailures": []}


def options(
    project_dir: Path,
    state_dir: Path,
    consumer: RecordingConsumer,
    consumer_timeout_s: float = 60.0,
    **extra: Any,
) -> LocalStackOptions:
    return LocalStackOptions(
        project_dir=project_dir,
        state_dir=state_dir,
        resource_prefix=unique("stack"),
        consumers=(
            SqsConsumer(
                "test-sanitize",
                "not.imported:handler",
                "raw-events",
                timeout_s=consumer_timeout_s,
            ),
        ),
        handlers={"ingest": fake_ingest.lambda_handler, "test-sanitize": consumer},
        **extra,
    )


def test_traffic_flows_from_http_to_the_queue_consumer(project_dir: Path, tmp_path: Path) -> None:
    consumer = RecordingConsumer()
    before = dict(os.environ)
    with LocalStack(options(project_dir, tmp_path, consumer)) as stack:
        # Given a ready stack recorded in a private state file
        ready = stack.ready
        path = state_path(tmp_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert read_state(tmp_path)["api"] == ready["api"]
        assert ready["consumers"] == {
            "bundle-delivered": None,
            "raw-events": "test-sanitize",
            "sanitized-events": None,
        }
        assert ready["waiting_for"] == {}
        assert os.environ["RAW_BUCKET"] == ready["buckets"]["raw"]
        # and the stages sign with a fresh local key file, never through moto's KMS
        private_key = tmp_path / "signing-key.pem"
        assert os.environ["SIGNING_KEY_FILE"] == str(private_key.resolve())
        assert stat.S_IMODE(private_key.stat().st_mode) == 0o600
        assert ready["public_key"] == str((tmp_path / "signing-key.pub.pem").resolve())
        assert Path(ready["public_key"]).read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
        assert "SIGNING_KMS_KEY_ID" not in os.environ
        # the queue hides a message at least as long as its consumer may run
        sqs = stack.clients.client("sqs")  # type: ignore[union-attr]
        attributes = sqs.get_queue_attributes(
            QueueUrl=ready["queues"]["raw-events"]["url"], AttributeNames=["VisibilityTimeout"]
        )["Attributes"]
        assert attributes["VisibilityTimeout"] == "60"

        # When 1,200 events are sent in batches of 500
        generator = SyntheticEvents(stack.config, seed=11)  # type: ignore[arg-type]
        batches = ([e.payload for e in batch] for batch in generator.batches(1200, 500))
        with TrafficSender(
            SendOptions(ready["api"], ready["ingest_keys"]["edge-gateway"])
        ) as sender:
            result = sender.send(batches)
        assert stack.wait_until_drained(timeout_s=30)

        # Then each accepted batch is one RAW object, announced once to the consumer
        assert result.batches_accepted == 3
        s3 = stack.clients.client("s3")  # type: ignore[union-attr]
        inventory = raw_inventory(s3, ready["buckets"]["raw"])
        assert sorted(consumer.keys) == sorted(inventory.keys)
        assert inventory.objects == 3
        assert consumer.test_events == 1

        # And status (as another process would compute it) sees the same; the counters
        # file is rewritten at most once a second
        deadline = time.monotonic() + 10
        while True:
            report = stack_status(read_state(tmp_path), read_stage_counters(tmp_path))
            done = report["stages"].get("test-sanitize", {}).get("invocations", 0) > 0
            if report["stages"]["ingest"]["invocations"] == 3 and done:
                break
            assert time.monotonic() < deadline, report["stages"]
            time.sleep(0.2)
        assert report["buckets"]["raw"]["objects"] == 3
        assert report["queues"]["raw-events"]["depth"] == 0
        assert report["stages"]["ingest"]["invocations"] == 3
        assert report["stages"]["ingest"]["outcomes"] == {"http_202": 3}
        assert report["stages"]["test-sanitize"]["errors"] == 0

    # After stopping, the state file is gone, the counters remain, the environment is back
    assert not state_path(tmp_path).exists()
    assert read_stage_counters(tmp_path)["stages"]["ingest"]["invocations"] == 3
    assert dict(os.environ) == before


def test_a_failing_consumer_ends_in_the_dlq(project_dir: Path, tmp_path: Path) -> None:
    consumer = RecordingConsumer(fail_everything=True)
    stack_options = options(
        project_dir,
        tmp_path,
        consumer,
        consumer_timeout_s=1,
        visibility_timeout_s=1,
        max_receive_count=2,
    )
    with LocalStack(stack_options) as stack:
        deadline = time.monotonic() + 20
        report: dict[str, Any] = {}
        while time.monotonic() < deadline:
            report = stack_status(stack.ready, {})
            if report["queues"]["raw-events"]["dlq"] == 1:
                break
            time.sleep(0.3)
        assert report["queues"]["raw-events"]["dlq"] == 1  # the s3:TestEvent message
        assert stack.runtimes["test-sanitize"].counters()["errors"] == 2


def test_a_second_stack_on_the_same_state_dir_is_refused(project_dir: Path, tmp_path: Path) -> None:
    with LocalStack(options(project_dir, tmp_path, RecordingConsumer())):
        with pytest.raises(StackAlreadyRunningError, match="already runs"):
            LocalStack(options(project_dir, tmp_path, RecordingConsumer())).start()
        assert state_path(tmp_path).exists()  # the refused start did not remove it


def test_status_refuses_a_missing_or_stale_state_file(tmp_path: Path) -> None:
    with pytest.raises(StackNotRunningError, match=str(tmp_path / "state.json")):
        read_state(tmp_path)
    write_state(tmp_path, {"pid": 2**22 + 12345})  # above pid_max on Linux: never alive
    with pytest.raises(StackNotRunningError, match="not running"):
        read_state(tmp_path)
