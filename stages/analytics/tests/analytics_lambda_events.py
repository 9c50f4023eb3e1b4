"""Test helpers: the Lambda context and the SQS-wrapped S3 notifications analytics receives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

EVENTS = Path(__file__).parent / "events"


class Context:
    function_name = "ryuzen-analytics"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:ryuzen-analytics"
    memory_limit_in_mb = 1024
    aws_request_id = "request-1"
    log_group_name = "/aws/lambda/ryuzen-analytics"
    log_stream_name = "stream"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def notification(bucket: str, key: str, event_name: str = "ObjectCreated:Put") -> str:
    template = json.loads((EVENTS / "s3_object_created.json").read_text())
    record = template["Records"][0]
    record["eventName"] = event_name
    record["s3"]["bucket"]["name"] = bucket
    # S3 form-encodes keys in notifications: "=" arrives as %3D, a space as "+".
    record["s3"]["object"]["key"] = quote_plus(key, safe="/")
    return json.dumps(template)


def sqs_event(*bodies: str) -> dict[str, Any]:
    template = json.loads((EVENTS / "sqs_batch.json").read_text())
    record = template["Records"][0]
    template["Records"] = [
        {**record, "messageId": f"m{i}", "body": body} for i, body in enumerate(bodies)
    ]
    return template
