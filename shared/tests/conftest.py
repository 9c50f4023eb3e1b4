"""Shared fixtures for the contracts tests: an in-process moto DynamoDB and the audit table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from ryuzen_contracts.tables import audit_table_definition

REGION = "eu-west-1"
AUDIT_TABLE = "TelemetryAudit"


@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no endpoint override, so nothing can reach a real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_DYNAMODB",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def _moto_dynamodb() -> Iterator[Any]:
    """One mocked AWS and one client for the whole session: creating a client costs ~80 ms."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_SESSION_TOKEN", "testing")
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
            patch.delenv(name, raising=False)
        with mock_aws():
            yield boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def ddb(_moto_dynamodb: Any) -> Iterator[Any]:
    """A low-level DynamoDB client against in-process moto, with a fresh audit table."""
    _moto_dynamodb.create_table(**audit_table_definition(AUDIT_TABLE))
    yield _moto_dynamodb
    _moto_dynamodb.delete_table(TableName=AUDIT_TABLE)
