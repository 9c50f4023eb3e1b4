"""What a running local stack holds: queue depths, bucket contents, stage counters.

Used by ``ryuzen local status`` (another process: it reads ``state.json`` for the endpoint
and names, ``stages.json`` for the counters) and by ``demo`` (in-process).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Any

from ryuzen_contracts.key_layout import InvalidKeyPart, parse_raw_key

from ryuzen_tools.local_stack.aws import LocalClients


@dataclass(frozen=True)
class RawInventory:
    """The RAW bucket's batches: objects whose key parses as a RAW key, and anything else."""

    objects: int
    bytes: int
    keys: list[str]
    other_keys: list[str]


def queue_depth(sqs: Any, url: str) -> dict[str, int]:
    """``{"depth", "in_flight", "delayed"}`` of one queue (SQS's approximate counts)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return {
        "depth": int(attributes.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    }


def queues_status(
    sqs: Any,
    queues: dict[str, dict[str, str]],
    consumers: dict[str, str | None],
    waiting_for: dict[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per queue role: depth, in-flight, delayed, DLQ count, consumer (or whom it waits for)."""
    report = {}
    for role, queue in sorted(queues.items()):
        main = queue_depth(sqs, queue["url"])
        dead = queue_depth(sqs, queue["dlq_url"])
        report[role] = {
            **main,
            "dlq": dead["depth"] + dead["in_flight"] + dead["delayed"],
            "consumer": consumers.get(role),
        }
        if consumers.get(role) is None and waiting_for and role in waiting_for:
            report[role]["waiting_for"] = f"the {waiting_for[role]} stage"
    return report


def count_objects(s3: Any, bucket: str, prefix: str = "") -> tuple[int, int]:
    """``(objects, bytes)`` in a bucket, or under ``prefix`` in it."""
    objects = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            objects += 1
            size += int(item.get("Size", 0))
    return objects, size


def buckets_status(s3: Any, buckets: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per bucket role: name, object count and bytes."""
    report = {}
    for role, name in sorted(buckets.items()):
        objects, size = count_objects(s3, name)
        report[role] = {"name": name, "objects": objects, "bytes": size}
    return report


def raw_inventory(s3: Any, bucket: str) -> RawInventory:
    """The RAW batches in ``bucket``; key_layout decides what is a RAW key."""
    keys: list[str] = []
    other: list[str] = []
    size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            try:
                parse_raw_key(item["Key"])
            except InvalidKeyPart:
                other.append(item["Key"])
                continue
            keys.append(item["Key"])
            size += int(item.get("Size", 0))
    return RawInventory(objects=len(keys), bytes=size, keys=keys, other_keys=other)


def raw_line_count(s3: Any, bucket: str, keys: list[str]) -> int:
    """Total NDJSON lines (events) in the given gzip RAW objects."""
    lines = 0
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        lines += sum(1 for line in gzip.decompress(body).splitlines() if line.strip())
    return lines


def stack_status(state: dict[str, Any], stage_counters: dict[str, Any]) -> dict[str, Any]:
    """The status report of a running stack described by its ``state.json``."""
    clients = LocalClients(state["aws"], state["region"])
    return {
        "stack": state.get("stack"),
        "api": state.get("api"),
        "aws": state.get("aws"),
        "queues": queues_status(
            clients.client("sqs"),
            state["queues"],
            state.get("consumers", {}),
            state.get("waiting_for"),
        ),
        "buckets": buckets_status(clients.client("s3"), state["buckets"]),
        "stages": stage_counters.get("stages", {}),
        "counters_updated_at": stage_counters.get("updated_at"),
    }
