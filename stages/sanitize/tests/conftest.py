"""Shared fixtures: moto S3 + DynamoDB, the dev stack config, a local signing key."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest
from moto import mock_aws
from raw_batches import RECEIVED_AT
from ryuzen_contracts.audit_log import AuditLog
from ryuzen_contracts.ids import new_ulid
from ryuzen_contracts.key_layout import raw_key
from ryuzen_contracts.signing import LocalSigner, generate_local_key
from ryuzen_contracts.stack_config import StackConfig, load_stack_config
from ryuzen_contracts.tables import audit_table_definition
from ryuzen_sanitize.quarantine import value_hasher_from_kms
from ryuzen_sanitize.sanitize_object import SanitizeTarget

REGION = "eu-west-1"
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "Pulumi.yaml").exists())


@pytest.fixture(scope="session")
def dev_config() -> StackConfig:
    return load_stack_config(ROOT / "Pulumi.dev.yaml")


@dataclass
class Stack:
    s3: Any
    ddb: Any
    audit: AuditLog
    signer: LocalSigner
    public_key: bytes
    target: SanitizeTarget

    def put_raw(self, body: bytes, batch_id: str | None = None) -> str:
        key = raw_key(RECEIVED_AT, batch_id or new_ulid(RECEIVED_AT))
        self.s3.put_object(Bucket=self.target.raw_bucket, Key=key, Body=body)
        return key

    def keys(self, bucket: str) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, bucket: str, key: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def parquet(self, key: str) -> pl.DataFrame:
        return pl.read_parquet(io.BytesIO(self.read(self.target.sanitized_bucket, key)))

    def quarantine_records(self) -> list[dict[str, Any]]:
        records = []
        for key in self.keys(self.target.quarantine_bucket):
            if key.endswith(".raw.ndjson.gz"):
                continue
            text = gzip.decompress(self.read(self.target.quarantine_bucket, key)).decode()
            records += [json.loads(line) for line in text.splitlines()]
        return records


def make_stack(config: StackConfig, tmp_path: Path) -> Stack:
    s3 = boto3.client("s3", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    for bucket in ("raw", "sanitized", "quarantine"):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    ddb.create_table(**audit_table_definition("audit"))
    signer = generate_local_key(tmp_path / "key.pem", tmp_path / "key.pub.pem")
    kms = boto3.client("kms", region_name=REGION)
    hash_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    hasher = value_hasher_from_kms(kms, hash_key["KeyMetadata"]["KeyId"])
    target = SanitizeTarget("raw", "sanitized", "quarantine", None, config, hasher)
    return Stack(s3, ddb, AuditLog(ddb, "audit"), signer, signer.public_key_pem(), target)


@pytest.fixture
def moto_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-process AWS, with fake credentials (never a developer's real ones)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def stack(dev_config: StackConfig, tmp_path: Path, moto_aws: None) -> Stack:
    return make_stack(dev_config, tmp_path)
