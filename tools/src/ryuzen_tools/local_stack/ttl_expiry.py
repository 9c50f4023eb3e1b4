"""DynamoDB Time to Live for the local stack: moto stores a table's TTL setting, never acts.

In AWS, DynamoDB deletes an item some time after the epoch second in its TTL attribute
has passed: only when that attribute is a Number, and never when it lies more than five
years in the past (a value in milliseconds or a typo, not an expiry). Without the same
here, idempotency records (and audit events past their retention) would stay in the
stack's memory for as long as it runs. ``TtlExpirer`` runs ``expire_items`` over every
table with TTL enabled, every ``interval_s`` seconds, until stopped.

Each delete is conditional on the item still being expired, so an item whose TTL was
extended between the scan and the delete stays, as it would in AWS.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from ryuzen_tools.local_stack.repeating_thread import RepeatingThread

# DynamoDB skips TTL values more than five years in the past.
OLDEST_EXPIRY_S = 5 * 365 * 24 * 3600
EXPIRY_INTERVAL_S = 60.0


def ttl_attribute(dynamodb: Any, table: str) -> str | None:
    """The table's TTL attribute when TTL is enabled, else None."""
    description = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if description.get("TimeToLiveStatus") != "ENABLED":
        return None
    return str(description["AttributeName"])


def key_placeholders(dynamodb: Any, table: str) -> dict[str, str]:
    """The table's key attributes as expression placeholders (``{"#k0": "pk", ...}``): a
    scan projected on them returns exactly the ``Key`` a delete needs."""
    schema = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
    return {f"#k{index}": key["AttributeName"] for index, key in enumerate(schema)}


def expire_items(dynamodb: Any, table: str, attribute: str, now_s: float) -> int:
    """Delete the items of ``table`` whose ``attribute`` has passed; how many were deleted."""
    key_names = key_placeholders(dynamodb, table)
    # Only a Number expires: an item whose attribute is missing or of another type never
    # does, as in DynamoDB (the type test comes first; moto cannot compare a String).
    expired = "attribute_type(#ttl, :number) AND #ttl >= :oldest AND #ttl < :now"
    values = {
        ":number": {"S": "N"},
        ":oldest": {"N": str(int(now_s) - OLDEST_EXPIRY_S)},
        ":now": {"N": repr(now_s)},
    }
    deleted = 0
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table,
        ProjectionExpression=", ".join(key_names),
        FilterExpression=expired,
        ExpressionAttributeNames={**key_names, "#ttl": attribute},
        ExpressionAttributeValues=values,
    )
    for page in pages:
        for item in page.get("Items", []):
            try:
                dynamodb.delete_item(
                    TableName=table,
                    Key=item,
                    ConditionExpression=expired,
                    ExpressionAttributeNames={"#ttl": attribute},
                    ExpressionAttributeValues=values,
                )
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                continue  # extended or deleted since the scan: not ours to delete
            deleted += 1
    return deleted


class TtlExpirer:
    """Applies TTL to ``tables`` every ``interval_s`` seconds on its own thread until stopped."""

    def __init__(
        self,
        dynamodb: Any,
        tables: Iterable[str],
        *,
        interval_s: float = EXPIRY_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dynamodb = dynamodb
        self._tables = tuple(tables)
        self._clock = clock
        self._thread = RepeatingThread("ttl-expiry", self.run_once, interval_s)
        self.expired = 0

    def start(self) -> None:
        """Start the thread; the first pass is one interval from now."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop; a pass in progress finishes first (waited for up to ``timeout``)."""
        self._thread.stop(timeout)

    def run_once(self) -> int:
        """One pass over every table with TTL enabled; items deleted."""
        deleted = 0
        for table in self._tables:
            attribute = ttl_attribute(self._dynamodb, table)
            if attribute is not None:
                deleted += expire_items(self._dynamodb, table, attribute, self._clock())
        self.expired += deleted
        return deleted
