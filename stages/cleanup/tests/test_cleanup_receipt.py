"""The deletion receipt: signed, verifiable offline, and any tampering is detected."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cleanup_fixtures import BUCKETS, MONTH, PARTNER, CleanupStack, bundle_sha256
from ryuzen_cleanup.deletion_receipt import (
    DeletionFacts,
    ReceiptConflict,
    read_receipt,
    receipt,
    store_receipt,
)
from ryuzen_cleanup.prefix_deletion import Prefix
from ryuzen_contracts.attestation import (
    DELETION_PREDICATE,
    ZERO_PII_PREDICATE,
    VerificationError,
    verify,
    verify_subject_digests,
)
from ryuzen_contracts.key_layout import (
    analytics_prefix,
    bundle_key,
    deletion_receipt_key,
    sanitized_prefix,
)
from ryuzen_contracts.signing import LocalSigner, generate_local_key

FACTS = DeletionFacts(
    partner=PARTNER,
    month=MONTH,
    bundle_key=bundle_key(PARTNER, MONTH),
    bundle_sha256=bundle_sha256(PARTNER, MONTH),
    proven_empty=(
        Prefix(BUCKETS["analytics"], analytics_prefix(PARTNER, MONTH)),
        Prefix(BUCKETS["sanitized"], sanitized_prefix(PARTNER, MONTH)),
    ),
    objects_deleted={BUCKETS["sanitized"]: 24, BUCKETS["analytics"]: 12},
    deleted_keys_sha256="c" * 64,
    deleted_at=datetime(2026, 12, 1, 3, 15, 7, 250000, tzinfo=UTC),
)


def signed(signer: LocalSigner, facts: DeletionFacts = FACTS) -> bytes:
    return receipt(facts, signer).to_json_bytes()


def test_a_receipt_verifies_with_the_public_key(signer: LocalSigner) -> None:
    stmt = verify(signed(signer), signer.public_key_pem(), predicate_type=DELETION_PREDICATE)

    assert stmt.predicate == {
        "partner": PARTNER,
        "month": MONTH,
        "bundle": {"key": bundle_key(PARTNER, MONTH), "sha256": bundle_sha256(PARTNER, MONTH)},
        "prefixes_proven_empty": [
            {"bucket": BUCKETS["analytics"], "prefix": analytics_prefix(PARTNER, MONTH)},
            {"bucket": BUCKETS["sanitized"], "prefix": sanitized_prefix(PARTNER, MONTH)},
        ],
        "objects_deleted": {BUCKETS["analytics"]: 12, BUCKETS["sanitized"]: 24},
        "objects_deleted_total": 36,
        "deleted_keys_sha256": "c" * 64,
        "already_empty": False,
        "deleted_at": "2026-12-01T03:15:07.250Z",
    }
    # Its subject is the delivered bundle: the partner checks it against the ZIP they hold.
    verify_subject_digests(stmt, {bundle_key(PARTNER, MONTH): bundle_sha256(PARTNER, MONTH)})


def _with_payload(envelope: bytes, change) -> bytes:
    document = json.loads(envelope)
    payload = json.loads(base64.b64decode(document["payload"]))
    change(payload)
    document["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    return json.dumps(document).encode()


def _flip_signature(envelope: bytes) -> bytes:
    document = json.loads(envelope)
    sig = bytearray(base64.b64decode(document["signatures"][0]["sig"]))
    sig[-1] ^= 0x01
    document["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(
            lambda env: _with_payload(
                env, lambda p: p["predicate"].update(objects_deleted_total=35)
            ),
            id="count-changed",
        ),
        pytest.param(
            lambda env: _with_payload(env, lambda p: p["predicate"].update(month="2026-10")),
            id="month-changed",
        ),
        pytest.param(
            lambda env: _with_payload(
                env, lambda p: p["subject"][0]["digest"].update(sha256="d" * 64)
            ),
            id="bundle-digest-changed",
        ),
        pytest.param(_flip_signature, id="signature-flipped"),
        pytest.param(lambda env: env.replace(b'"payload"', b'"payloadX"'), id="not-an-envelope"),
    ],
)
def test_tampering_is_detected(signer: LocalSigner, tamper) -> None:
    with pytest.raises(VerificationError):
        verify(tamper(signed(signer)), signer.public_key_pem(), predicate_type=DELETION_PREDICATE)


def test_another_key_does_not_verify(signer: LocalSigner, tmp_path: Path) -> None:
    other = generate_local_key(tmp_path / "other.pem", tmp_path / "other.pub.pem")

    with pytest.raises(VerificationError, match="no signature by key"):
        verify(signed(signer), other.public_key_pem())


def test_a_receipt_is_not_a_certificate(signer: LocalSigner) -> None:
    with pytest.raises(VerificationError, match="predicateType"):
        verify(signed(signer), signer.public_key_pem(), predicate_type=ZERO_PII_PREDICATE)


def test_a_receipt_is_written_once_and_read_back(stack: CleanupStack) -> None:
    bucket = BUCKETS["bundles"]
    assert read_receipt(stack.s3, bucket, PARTNER, MONTH) is None

    stored = store_receipt(
        stack.s3, bucket, PARTNER, MONTH, receipt(FACTS, stack.signer), replacing=None
    )
    found = read_receipt(stack.s3, bucket, PARTNER, MONTH)

    assert found is not None
    assert found.body == stored.body
    assert found.sha256 == stored.sha256
    assert found.predicate is not None and found.predicate["objects_deleted_total"] == 36
    # A second writer that read "no receipt" before the first wrote loses, loudly.
    with pytest.raises(ReceiptConflict):
        store_receipt(
            stack.s3, bucket, PARTNER, MONTH, receipt(FACTS, stack.signer), replacing=None
        )
    # Replacing needs the exact receipt read before.
    replaced = store_receipt(
        stack.s3, bucket, PARTNER, MONTH, receipt(FACTS, stack.signer), replacing=found
    )
    with pytest.raises(ReceiptConflict):
        store_receipt(
            stack.s3, bucket, PARTNER, MONTH, receipt(FACTS, stack.signer), replacing=found
        )
    assert read_receipt(stack.s3, bucket, PARTNER, MONTH).body == replaced.body


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="garbage"),
        pytest.param(b'{"payloadType": "x", "payload": "!!", "signatures": []}', id="bad-envelope"),
    ],
)
def test_an_object_that_is_not_a_receipt_reads_as_none(stack: CleanupStack, body: bytes) -> None:
    bucket = BUCKETS["bundles"]
    stack.s3.put_object(Bucket=bucket, Key=deletion_receipt_key(PARTNER, MONTH), Body=body)

    found = read_receipt(stack.s3, bucket, PARTNER, MONTH)

    assert found is not None and found.predicate is None


def test_a_receipt_of_another_month_reads_as_none(stack: CleanupStack) -> None:
    bucket = BUCKETS["bundles"]
    store_receipt(stack.s3, bucket, PARTNER, MONTH, receipt(FACTS, stack.signer), replacing=None)
    stored = stack.s3.get_object(Bucket=bucket, Key=deletion_receipt_key(PARTNER, MONTH))
    stack.s3.put_object(
        Bucket=bucket,
        Key=deletion_receipt_key(PARTNER, "2026-10"),
        Body=stored["Body"].read(),
    )

    found = read_receipt(stack.s3, bucket, PARTNER, "2026-10")

    assert found is not None and found.predicate is None
