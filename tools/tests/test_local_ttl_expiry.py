"""DynamoDB TTL in the local stack: expired items go, as in AWS; nothing else does."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from ryuzen_tools.local_stack.aws import LocalClients
from ryuzen_tools.local_stack.stack import LocalStack, LocalStackOptions
from ryuzen_tools.local_stack.ttl_expiry import (
    OLDEST_EXPIRY_S,
    TtlExpirer,
    expire_items,
)
from tools_support import unique

NOW = 1_800_000_000.0


def _table(dynamodb: Any, ttl_attribute: str | None = "expiration") -> str:
    name = unique("ttl")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    if ttl_attribute is not None:
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
        )
    return name


def _put(dynamodb: Any, table: str, pk: str, expiration: dict[str, str] | None) -> None:
    item = {"pk": {"S": pk}, "sk": {"S": "x"}}
    if expiration is not None:
        item["expiration"] = expiration
    dynamodb.put_item(TableName=table, Item=item)


def _left(dynamodb: Any, table: str) -> set[str]:
    return {item["pk"]["S"] for item in dynamodb.scan(TableName=table)["Items"]}


@pytest.fixture
def dynamodb(aws: LocalClients) -> Any:
    return aws.client("dynamodb")


def test_only_items_whose_number_ttl_has_passed_are_deleted(dynamodb: Any) -> None:
    table = _table(dynamodb)
    _put(dynamodb, table, "expired", {"N": str(int(NOW) - 10)})
    _put(dynamodb, table, "expires-now", {"N": str(int(NOW))})  # not yet: expiry is after
    _put(dynamodb, table, "future", {"N": str(int(NOW) + 3600)})
    _put(dynamodb, table, "fractional-expired", {"N": f"{NOW - 0.5}"})
    _put(dynamodb, table, "no-ttl", None)
    _put(dynamodb, table, "string-ttl", {"S": "0"})  # not a Number: never expires
    _put(dynamodb, table, "ancient", {"N": str(int(NOW) - OLDEST_EXPIRY_S - 1)})

    deleted = expire_items(dynamodb, table, "expiration", NOW)

    assert deleted == 2
    assert _left(dynamodb, table) == {"expires-now", "future", "no-ttl", "string-ttl", "ancient"}
    assert expire_items(dynamodb, table, "expiration", NOW) == 0  # a second pass: nothing


class _ExtendsBeforeDelete:
    """A DynamoDB client on which another writer extends the item's TTL just before the
    expirer's delete arrives."""

    def __init__(self, dynamodb: Any) -> None:
        self._dynamodb = dynamodb

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dynamodb, name)

    def delete_item(self, **kwargs: Any) -> Any:
        self._dynamodb.update_item(
            TableName=kwargs["TableName"],
            Key=kwargs["Key"],
            UpdateExpression="SET expiration = :later",
            ExpressionAttributeValues={":later": {"N": str(int(NOW) + 3600)}},
        )
        return self._dynamodb.delete_item(**kwargs)


def test_an_item_extended_since_the_scan_stays(dynamodb: Any) -> None:
    table = _table(dynamodb)
    _put(dynamodb, table, "renewed", {"N": str(int(NOW) - 10)})

    assert expire_items(_ExtendsBeforeDelete(dynamodb), table, "expiration", NOW) == 0
    assert _left(dynamodb, table) == {"renewed"}


def test_a_pass_skips_tables_without_ttl_and_uses_each_tables_attribute(dynamodb: Any) -> None:
    without = _table(dynamodb, ttl_attribute=None)
    other = _table(dynamodb, ttl_attribute="expires_at")
    _put(dynamodb, without, "kept", {"N": str(int(NOW) - 10)})
    dynamodb.put_item(
        TableName=other,
        Item={"pk": {"S": "gone"}, "sk": {"S": "x"}, "expires_at": {"N": str(int(NOW) - 10)}},
    )
    expirer = TtlExpirer(dynamodb, [without, other], clock=lambda: NOW)

    assert expirer.run_once() == 1
    assert _left(dynamodb, without) == {"kept"}
    assert _left(dynamodb, other) == set()
    assert expirer.expired == 1


def test_the_thread_expires_items_until_stopped(dynamodb: Any) -> None:
    table = _table(dynamodb)
    _put(dynamodb, table, "expired", {"N": str(int(time.time()) - 10)})
    expirer = TtlExpirer(dynamodb, [table], interval_s=0.05)
    expirer.start()
    try:
        deadline = time.monotonic() + 10
        while _left(dynamodb, table) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        expirer.stop()
    assert _left(dynamodb, table) == set()
    with pytest.raises(ValueError, match="positive"):
        TtlExpirer(dynamodb, [table], interval_s=0)


def test_the_local_stack_expires_its_idempotency_records(project_dir: Path) -> None:
    options = LocalStackOptions(
        project_dir=project_dir,
        state_dir=None,
        resource_prefix=unique("ttl-stack"),
        consumers=(),
        scheduled=(),
        ttl_interval_s=0.1,
    )
    with LocalStack(options) as stack:
        assert stack.clients is not None and stack.resources is not None
        dynamodb = stack.clients.client("dynamodb")
        table = stack.resources.tables["idempotency"]
        key = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"][0]["AttributeName"]
        expired = int(time.time()) - 10
        dynamodb.put_item(
            TableName=table, Item={key: {"S": "old-request"}, "expiration": {"N": str(expired)}}
        )
        deadline = time.monotonic() + 10
        while dynamodb.scan(TableName=table)["Items"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert dynamodb.scan(TableName=table)["Items"] == []
