"""SQS → handler, as Lambda's event source mapping does it.

One poller thread per consuming stage: it long-polls the queue for up to ``batch_size``
(≤ 10) messages, builds the Lambda SQS event, invokes the stage, and then:

* the handler returns normally without ``batchItemFailures`` → every message is deleted;
* it returns ``{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}`` → only the
  others are deleted (ReportBatchItemFailures); an empty, missing or unknown identifier
  fails the whole batch, as Lambda does;
* it raises → nothing is deleted; the messages become visible again when their visibility
  timeout ends.

Moving a message to its dead-letter queue after ``maxReceiveCount`` receives is SQS's job,
not the mapping's: the queue's RedrivePolicy does it, and moto honours it (tested).
"""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any

from ryuzen_tools.local_stack.lambda_runtime import StageRuntime

MAX_BATCH_SIZE = 10  # SQS ReceiveMessage returns at most 10 messages
DELETE_CHUNK = 10  # DeleteMessageBatch takes at most 10 entries

log = logging.getLogger(__name__)


class SqsPoller:
    """Feeds one stage from one queue until stopped."""

    def __init__(
        self,
        runtime: StageRuntime,
        sqs: Any,
        *,
        queue_url: str,
        queue_arn: str,
        region: str,
        batch_size: int = MAX_BATCH_SIZE,
        wait_time_s: int = 1,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH_SIZE}, not {batch_size}")
        self.runtime = runtime
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._region = region
        self._batch_size = batch_size
        # Short long-polls keep shutdown prompt: stop() waits at most this long.
        self._wait_time_s = wait_time_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the polling thread."""
        self._thread = threading.Thread(
            target=self._run, name=f"poller-{self.runtime.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current poll (and invocation, if any) ends."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as error:  # a poller must outlive a bad batch or a moto hiccup
                log.warning("poller %s: %s", self.runtime.name, type(error).__name__)
                self._stop.wait(1.0)

    def poll_once(self) -> int:
        """Receive one batch, invoke the stage, delete what succeeded; return the batch size."""
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=self._wait_time_s,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        event = sqs_event(messages, self._queue_arn, self._region)
        try:
            result = self.runtime.invoke(event)
        except Exception:
            self.runtime.count("messages_failed", len(messages))
            return len(messages)
        failed = failed_message_ids(result, [m["MessageId"] for m in messages])
        succeeded = [m for m in messages if m["MessageId"] not in failed]
        self._delete(succeeded)
        self.runtime.count("messages_deleted", len(succeeded))
        if failed:
            self.runtime.count("messages_failed", len(failed))
        return len(messages)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), DELETE_CHUNK):
            chunk = messages[start : start + DELETE_CHUNK]
            response = self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]}
                    for index, m in enumerate(chunk)
                ],
            )
            if response.get("Failed"):
                # The message will be received again; the stage must be idempotent anyway.
                log.warning(
                    "poller %s: %d deletes failed", self.runtime.name, len(response["Failed"])
                )


def failed_message_ids(result: Any, message_ids: list[str]) -> set[str]:
    """The ids to keep, per Lambda's ReportBatchItemFailures rules."""
    if not isinstance(result, dict) or "batchItemFailures" not in result:
        return set()
    failures = result["batchItemFailures"]
    if failures is None:
        return set()
    known = set(message_ids)
    if not isinstance(failures, list):
        return known
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in known:
            return known  # Lambda treats an invalid response as a failure of the whole batch
        failed.add(identifier)
    return failed


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda passes for a batch of SQS messages."""
    return {"Records": [_record(message, queue_arn, region) for message in messages]}


def _record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {str(k): str(v) for k, v in message.get("Attributes", {}).items()},
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return attribute
