"""The keyed hash of quarantined values: a per-stack secret derived in KMS, never a plain hash."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
from typing import Any

import boto3
import pytest
from ryuzen_sanitize.quarantine import (
    VALUE_HASH_LABEL,
    ValueHasher,
    record,
    records_object,
    value_hasher_from_kms,
)
from ryuzen_sanitize.validation import Reason, Rejection

REGION = "eu-west-1"
SSN = "078-05-1120"


def rejection(line: int = 1, value: str | None = SSN) -> Rejection:
    return Rejection(
        line=line,
        reason=Reason.PII_IN_IDENTIFIER,
        event_id="01JD0000000000000000000000",
        partner="acme",
        field="model.version",
        rule="SSN",
        value=value,
    )


@pytest.fixture
def kms(moto_aws: None) -> Any:
    return boto3.client("kms", region_name=REGION)


def hmac_key(kms) -> str:
    return kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"][
        "KeyId"
    ]


def test_the_secret_is_the_kms_mac_of_the_label_and_stable_per_key(kms) -> None:
    key = hmac_key(kms)

    first, again = value_hasher_from_kms(kms, key), value_hasher_from_kms(kms, key)
    other = value_hasher_from_kms(kms, hmac_key(kms))

    mac = kms.generate_mac(KeyId=key, Message=VALUE_HASH_LABEL, MacAlgorithm="HMAC_SHA_256")
    assert first.secret == bytes(mac["Mac"])
    # Every container of a stack hashes alike (records compare); another stack does not.
    assert first(SSN) == again(SSN)
    assert first.key_id == again.key_id
    assert other(SSN) != first(SSN)
    assert other.key_id != first.key_id


def test_a_record_carries_the_keyed_hash_and_never_the_plain_one() -> None:
    hasher = ValueHasher(b"\x01" * 32)

    document = record(rejection(), "batch-1", hasher)

    assert (
        document["value_hmac_sha256"]
        == hmac.new(b"\x01" * 32, SSN.encode(), hashlib.sha256).hexdigest()
    )
    assert document["value_hash_key"] == hasher.key_id
    text = json.dumps(document)
    assert SSN not in text
    assert hashlib.sha256(SSN.encode()).hexdigest() not in text


def test_without_a_hasher_no_value_hash_is_recorded() -> None:
    body = records_object([rejection(1), rejection(2, value=None)], "batch-1", None)

    documents = [json.loads(line) for line in gzip.decompress(body).decode().splitlines()]

    assert [(d["value_hmac_sha256"], d["value_hash_key"]) for d in documents] == [
        (None, None),
        (None, None),
    ]
    assert hashlib.sha256(SSN.encode()).hexdigest() not in gzip.decompress(body).decode()


def test_a_rejection_without_a_value_has_no_hash_even_with_a_hasher() -> None:
    document = record(rejection(value=None), "batch-1", ValueHasher(b"\x02" * 32))

    assert (document["value_hmac_sha256"], document["value_hash_key"]) == (None, None)


def test_the_secret_is_long_enough_and_never_printed() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ValueHasher(b"short")
    hasher = ValueHasher(b"\xab" * 32)
    assert "ab" * 8 not in repr(hasher)
