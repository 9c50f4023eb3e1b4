"""A stand-in for the ingest handler, with the interface the real one has.

It lets the gateway, the stack and the demo be tested without depending on the ingest
stage's behaviour: it checks the key id against ``API_KEY_CLIENTS``, decodes the body as
API Gateway delivered it, and writes one gzip NDJSON RAW object per new Idempotency-Key.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import threading
from datetime import UTC, datetime
from typing import Any

import boto3
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import raw_key

_seen: dict[str, str] = {}
_lock = threading.Lock()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    assert context.get_remaining_time_in_millis() > 0
    clients = json.loads(os.environ["API_KEY_CLIENTS"])
    key_id = event["requestContext"]["identity"]["apiKeyId"]
    if key_id not in clients:
        return _answer(403, {"error": "unknown_client", "detail": "key is not an ingest client"})
    body = event["body"] or ""
    data = base64.b64decode(body) if event["isBase64Encoded"] else body.encode()
    headers = {name.lower(): value for name, value in (event["headers"] or {}).items()}
    if headers.get("content-encoding") == "gzip":
        data = gzip.decompress(data)
    lines = [line for line in data.splitlines() if line.strip()]
    if not lines:
        return _answer(400, {"error": "empty_batch", "detail": "no events"})
    idempotency_key = headers.get("idempotency-key")
    with _lock:
        if idempotency_key and idempotency_key in _seen:
            return _answer(202, {"batch_id": _seen[idempotency_key], "accepted": len(lines)})
        batch_id = new_ulid()
        if idempotency_key:
            _seen[idempotency_key] = batch_id
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    s3.put_object(
        Bucket=os.environ["RAW_BUCKET"],
        Key=raw_key(datetime.now(UTC), batch_id),
        Body=gzip.compress(b"\n".join(lines) + b"\n"),
    )
    return _answer(202, {"batch_id": batch_id, "accepted": len(lines)})


def _answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }
