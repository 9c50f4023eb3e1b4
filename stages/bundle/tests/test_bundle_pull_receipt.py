"""The deletion receipt through the pull API: ``GET /v1/bundles/{month}`` offers it once the
month is ``CLEANED``, with a presigned URL like the bundle's, and only to its own partner."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from botocore.exceptions import ClientError
from bundle_pull_fixtures import (
    BUCKET,
    CONFIGURED_TTL,
    NIMBUS_KEY_ID,
    PRESIGN_ENDPOINT,
    PullWorld,
    expiring_credentials,
    proxy_event,
    pull_world,
    url_query,
)
from ryuzen_bundle.presign import SAFETY_MARGIN
from ryuzen_bundle.pull_handler import handle
from ryuzen_contracts.bundle_state import BundleState
from ryuzen_contracts.key_layout import bundle_key, deletion_receipt_key

RECEIPT = b'{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}'
OTHER_RECEIPT = b'{"payloadType":"application/vnd.in-toto+json","payload":"bmltYnVz"}'


@pytest.fixture
def world(tmp_path: Path) -> Iterator[PullWorld]:
    with pull_world(tmp_path) as built:
        yield built


def object_path(url: str) -> tuple[str, str]:
    """The bucket and key a path-style presigned URL addresses."""
    bucket, key = unquote(urlsplit(url).path).lstrip("/").split("/", 1)
    return bucket, key


def test_a_cleaned_month_offers_its_receipt_beside_the_bundle(world: PullWorld) -> None:
    # Given acme's 2026-10 is cleaned: the receipt stored beside the bundle, its digest
    # recorded by the CLEANED state
    world.put_bundle("acme", "2026-10", state=BundleState.CLEANED, receipt=RECEIPT)

    # When acme asks for the month
    answer = world.call("/v1/bundles/2026-10")

    # Then the answer holds the bundle as before and the receipt: a presigned GET of
    # exactly the receipt's key, with its size and SHA-256, expiring with the bundle URL
    assert answer.status == 200
    body = answer.json()
    receipt = body["receipt"]
    assert set(receipt) == {"url", "expires_at", "sha256", "bytes"}
    assert receipt["sha256"] == hashlib.sha256(RECEIPT).hexdigest()
    assert receipt["bytes"] == len(RECEIPT)
    assert receipt["url"].startswith(PRESIGN_ENDPOINT + "/")
    assert object_path(receipt["url"]) == (BUCKET, deletion_receipt_key("acme", "2026-10"))
    assert object_path(body["url"]) == (BUCKET, bundle_key("acme", "2026-10"))
    query, bundle_query = url_query(receipt["url"]), url_query(body["url"])
    assert query["X-Amz-Expires"] == bundle_query["X-Amz-Expires"] == str(CONFIGURED_TTL)
    assert query["X-Amz-Date"] == bundle_query["X-Amz-Date"]
    assert query["X-Amz-Signature"] != bundle_query["X-Amz-Signature"]
    assert receipt["expires_at"] == body["expires_at"]
    # (moto checks no signature; the local stack's proxy does) the key serves the receipt
    bucket, key = object_path(receipt["url"])
    assert world.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == RECEIPT


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(
            lambda w: w.put_bundle("acme", "2026-10"),
            id="delivered-no-receipt",
        ),
        pytest.param(
            # cleanup wrote the receipt but has not committed CLEANED yet (or a forced
            # rebuild left the previous one): not offered before CLEANED
            lambda w: (w.put_bundle("acme", "2026-10"), w.put_receipt("acme", "2026-10", RECEIPT)),
            id="delivered-receipt-object-present",
        ),
        pytest.param(
            lambda w: w.put_bundle("acme", "2026-10", state=BundleState.CLEANED),
            id="cleaned-state-records-no-receipt",
        ),
        pytest.param(
            lambda w: (
                w.put_bundle("acme", "2026-10", state=BundleState.CLEANED, receipt=RECEIPT),
                w.s3.delete_object(Bucket=BUCKET, Key=deletion_receipt_key("acme", "2026-10")),
            ),
            id="cleaned-receipt-object-gone",
        ),
    ],
)
def test_otherwise_the_receipt_is_null_and_the_bundle_still_served(
    world: PullWorld, setup: Any
) -> None:
    setup(world)
    answer = world.call("/v1/bundles/2026-10")
    assert answer.status == 200
    body = answer.json()
    assert body["receipt"] is None
    assert body["bytes"] == len(world.uploaded[("acme", "2026-10")])


def test_the_list_says_which_months_are_cleaned(world: PullWorld) -> None:
    world.put_bundle("acme", "2026-09", state=BundleState.CLEANED, receipt=RECEIPT)
    world.put_bundle("acme", "2026-10")
    listed = world.call("/v1/bundles").json()["bundles"]
    assert [(entry["month"], entry["cleaned"]) for entry in listed] == [
        ("2026-09", True),
        ("2026-10", False),
    ]


def test_another_partners_receipt_is_never_offered(world: PullWorld) -> None:
    # Given nimbus-ai's 2026-10 is cleaned with a receipt; acme's 2026-10 is cleaned too,
    # its state records a receipt digest, but its own receipt object is missing
    world.put_bundle("nimbus-ai", "2026-10", state=BundleState.CLEANED, receipt=OTHER_RECEIPT)
    world.put_bundle("acme", "2026-10", state=BundleState.CLEANED, receipt=RECEIPT)
    world.s3.delete_object(Bucket=BUCKET, Key=deletion_receipt_key("acme", "2026-10"))
    # and nimbus-ai's cleaned 2026-08, a month acme does not have
    world.put_bundle("nimbus-ai", "2026-08", state=BundleState.CLEANED, receipt=OTHER_RECEIPT)

    # When acme asks for both months
    own = world.call("/v1/bundles/2026-10")
    theirs = handle(proxy_event("/v1/bundles/2026-08"), world.runtime)
    missing = handle(proxy_event("/v1/bundles/2031-01"), world.runtime)

    # Then acme gets no receipt — nimbus-ai's is never a fallback — and nimbus-ai's month
    # answers exactly like a missing one
    assert own.status == 200 and own.json()["receipt"] is None
    assert theirs["statusCode"] == missing["statusCode"] == 404
    assert (theirs["body"], theirs["headers"]) == (missing["body"], missing["headers"])
    assert "receipt" not in json.loads(theirs["body"])
    # while nimbus-ai gets its own receipt, and only its own key
    for month in ("2026-10", "2026-08"):
        receipt = world.call(f"/v1/bundles/{month}", key_id=NIMBUS_KEY_ID).json()["receipt"]
        assert object_path(receipt["url"]) == (BUCKET, deletion_receipt_key("nimbus-ai", month))
        assert receipt["sha256"] == hashlib.sha256(OTHER_RECEIPT).hexdigest()


def test_the_receipt_url_is_clamped_like_the_bundle_url(tmp_path: Path) -> None:
    # Given credentials that expire in 5 minutes (the stack says 15)
    with pull_world(tmp_path, credentials=expiring_credentials(300)) as world:
        world.put_bundle("acme", "2026-10", state=BundleState.CLEANED, receipt=RECEIPT)
        body = world.call("/v1/bundles/2026-10").json()
    # Then both URLs live 5 minutes minus the margin, and expire together
    receipt_ttl = int(url_query(body["receipt"]["url"])["X-Amz-Expires"])
    bundle_ttl = int(url_query(body["url"])["X-Amz-Expires"])
    margin = int(SAFETY_MARGIN.total_seconds())
    assert receipt_ttl == bundle_ttl
    assert 300 - margin - 3 <= receipt_ttl <= 300 - margin
    assert body["receipt"]["expires_at"] == body["expires_at"]
    assert url_query(body["receipt"]["url"])["X-Amz-Credential"].startswith("ASIATEMPORARY/")


def test_a_failure_reading_the_receipt_is_503(
    world: PullWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.put_bundle("acme", "2026-10", state=BundleState.CLEANED, receipt=RECEIPT)
    head_object = world.s3.head_object
    receipt_key = deletion_receipt_key("acme", "2026-10")

    def throttled_on_the_receipt(**kwargs: Any) -> Any:
        if kwargs.get("Key") == receipt_key:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "HeadObject")
        return head_object(**kwargs)

    monkeypatch.setattr(world.s3, "head_object", throttled_on_the_receipt)
    answer = world.call("/v1/bundles/2026-10")
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["error"] == "unavailable"


def test_logs_say_a_receipt_was_offered_but_carry_no_url(
    world: PullWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world.put_bundle("acme", "2026-10", state=BundleState.CLEANED, receipt=RECEIPT)
    with caplog.at_level(logging.DEBUG, logger="ryuzen-bundle-pull"):
        body = world.call("/v1/bundles/2026-10").json()
    records = [record for record in caplog.records if record.name == "ryuzen-bundle-pull"]
    (issued,) = [r for r in records if r.getMessage() == "presigned URL issued"]
    assert issued.receipt is True and issued.cleaned is True  # type: ignore[attr-defined]
    output = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in records)
    assert body["receipt"]["url"] not in output
    assert url_query(body["receipt"]["url"])["X-Amz-Signature"] not in output
    assert "X-Amz-" not in output
