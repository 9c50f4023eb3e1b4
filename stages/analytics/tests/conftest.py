"""Shared fixtures: moto S3 (SANITIZED and ANALYTICS buckets) and the audit table."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import polars as pl
import pytest
from analytics_fixtures import MONTH, PARTNER, to_parquet
from moto import mock_aws
from ryuzen_analytics.analytics_object import AnalyticsTarget
from ryuzen_contracts.audit_log import AuditLog
from ryuzen_contracts.key_layout import sanitized_key
from ryuzen_contracts.tables import audit_table_definition

REGION = "eu-west-1"


@dataclass
class Stack:
    s3: Any
    ddb: Any
    audit: AuditLog
    target: AnalyticsTarget

    def put_sanitized(
        self,
        frame_or_body: pl.DataFrame | bytes,
        batch_id: str,
        partner: str = PARTNER,
        month: str = MONTH,
    ) -> str:
        key = sanitized_key(partner, month, batch_id)
        body = frame_or_body if isinstance(frame_or_body, bytes) else to_parquet(frame_or_body)
        self.s3.put_object(Bucket=self.target.sanitized_bucket, Key=key, Body=body)
        return key

    def keys(self, bucket: str) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, bucket: str, key: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def analytics(self, key: str) -> pl.DataFrame:
        return pl.read_parquet(io.BytesIO(self.read(self.target.analytics_bucket, key)))


@pytest.fixture(scope="module")
def moto_aws() -> Iterator[tuple[Any, Any, Any]]:
    """One in-process moto per test module, with its clients (creating a client costs ~0.2 s).

    Module scope, not session: the mock and the environment are undone when the module's
    tests are done, so they never reach another package's tests in the same run.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            patch.setenv(name, value)
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        with mock_aws() as mock:
            s3 = boto3.client("s3", region_name=REGION)
            ddb = boto3.client("dynamodb", region_name=REGION)
            yield mock, s3, ddb


@pytest.fixture
def stack(moto_aws: tuple[Any, Any, Any]) -> Stack:
    """Empty SANITIZED and ANALYTICS buckets and audit table: every test starts from nothing."""
    mock, s3, ddb = moto_aws
    mock.reset()
    for bucket in ("sanitized", "analytics"):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    ddb.create_table(**audit_table_definition("audit"))
    return Stack(s3, ddb, AuditLog(ddb, "audit"), AnalyticsTarget("sanitized", "analytics"))
