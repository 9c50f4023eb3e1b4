"""S3 notifications in SQS: test events, other buckets and event types, URL-encoded keys."""

from __future__ import annotations

import json

import pytest
from ryuzen_contracts.s3_notifications import s3_keys


def notification(bucket: str, key: str, event_name: str = "ObjectCreated:Put") -> str:
    record = {"eventName": event_name, "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}
    return json.dumps({"Records": [record]})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            json.dumps({"Event": "s3:TestEvent", "Service": "Amazon S3"}), [], id="test-event"
        ),
        pytest.param(notification("other", "raw/x"), [], id="other-bucket"),
        pytest.param(notification("raw", "raw/x", "ObjectRemoved:Delete"), [], id="not-a-create"),
        pytest.param(notification("raw", "raw%2Fa+b%2Bc.gz"), ["raw/a b+c.gz"], id="url-decoded"),
        pytest.param(json.dumps({"Records": []}), [], id="no-records"),
    ],
)
def test_s3_keys(body: str, expected: list[str]) -> None:
    assert s3_keys(body, "raw") == expected
