"""`ryuzen bundle fetch`'s handling of the answer's ``receipt``, against a fake API and store
(httpx's MockTransport): parsing, the checked download beside the ZIP, and that a failed
fetch leaves no receipt behind. The real stack's round trip is in test_bundle_pull_local."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from ryuzen_tools import bundle_commands
from ryuzen_tools.bundle_fetch import (
    FetchError,
    ReceiptOffer,
    download_receipt,
    receipt_path,
    request_bundle,
)
from ryuzen_tools.cli import app
from typer.testing import CliRunner

API = "https://api.example.test/prod"
STORE = "https://store.example.test/ryuzen-bundles/acme/2026-10"
ZIP = b"PK not really a zip"
RECEIPT = b'{"payloadType":"application/vnd.in-toto+json"}'


def answer(receipt: Any = "offered", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "url": f"{STORE}/ryuzen-telemetry-acme-2026-10.zip?X-Amz-Signature=zip",
        "expires_at": "2026-11-28T12:15:00Z",
        "sha256": hashlib.sha256(ZIP).hexdigest(),
        "bytes": len(ZIP),
        "receipt": {
            "url": f"{STORE}/deletion-receipt.dsse.json?X-Amz-Signature=receipt",
            "expires_at": "2026-11-28T12:15:00Z",
            "sha256": hashlib.sha256(RECEIPT).hexdigest(),
            "bytes": len(RECEIPT),
        }
        if receipt == "offered"
        else receipt,
    }
    body.update(changes)
    return body


class FakeWorld:
    """The API and the store behind one MockTransport; ``objects`` by URL path suffix."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.objects = {
            "ryuzen-telemetry-acme-2026-10.zip": ZIP,
            "deletion-receipt.dsse.json": RECEIPT,
        }
        self.requested: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requested.append(request.url.path.rsplit("/", 1)[-1])
        if request.url.host == "api.example.test":
            assert request.headers["x-api-key"] == "partner-key"
            return httpx.Response(200, json=self.body)
        name = request.url.path.rsplit("/", 1)[-1]
        if name not in self.objects:
            return httpx.Response(403, content=b"<Error><Code>AccessDenied</Code></Error>")
        return httpx.Response(200, content=self.objects[name])

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


@pytest.mark.parametrize(
    "receipt",
    [pytest.param(None, id="null"), pytest.param("absent", id="absent")],
)
def test_no_receipt_before_the_month_is_cleaned(receipt: Any) -> None:
    body = answer(receipt=None)
    if receipt == "absent":
        del body["receipt"]  # an API from before receipts were offered
    with FakeWorld(body).client() as client:
        assert request_bundle(client, API, "partner-key", "2026-10").receipt is None


def test_the_receipt_offer_is_read() -> None:
    with FakeWorld(answer()).client() as client:
        offer = request_bundle(client, API, "partner-key", "2026-10")
    assert offer.receipt == ReceiptOffer(
        url=f"{STORE}/deletion-receipt.dsse.json?X-Amz-Signature=receipt",
        expires_at="2026-11-28T12:15:00Z",
        sha256=hashlib.sha256(RECEIPT).hexdigest(),
        bytes=len(RECEIPT),
    )


@pytest.mark.parametrize(
    "receipt",
    [
        pytest.param({"url": "u", "expires_at": "t", "sha256": "s"}, id="no-bytes"),
        pytest.param({"url": "u", "expires_at": "t", "sha256": "s", "bytes": "x"}, id="bad-bytes"),
        pytest.param("a string", id="not-an-object"),
    ],
)
def test_a_malformed_receipt_offer_is_refused(receipt: Any) -> None:
    with (
        FakeWorld(answer(receipt=receipt)).client() as client,
        pytest.raises(FetchError, match="the API's receipt lacks url, expires_at, sha256 or bytes"),
    ):
        request_bundle(client, API, "partner-key", "2026-10")


def test_the_receipt_is_kept_beside_the_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "ryuzen-telemetry-acme-2026-10.zip"
    assert (
        receipt_path(bundle)
        == tmp_path / "ryuzen-telemetry-acme-2026-10.deletion-receipt.dsse.json"
    )
    world = FakeWorld(answer())
    with world.client() as client:
        offer = request_bundle(client, API, "partner-key", "2026-10")
        assert offer.receipt is not None
        kept = download_receipt(client, offer.receipt, bundle)
    assert kept.path == receipt_path(bundle)
    assert kept.path.read_bytes() == RECEIPT
    assert (kept.bytes, kept.sha256) == (len(RECEIPT), hashlib.sha256(RECEIPT).hexdigest())


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        pytest.param(
            RECEIPT + b" ", "the download does not match the API's announcement", id="changed"
        ),
        pytest.param(None, "the download was refused: 403 AccessDenied", id="refused"),
    ],
)
def test_a_receipt_download_that_does_not_match_leaves_nothing(
    tmp_path: Path, stored: bytes | None, reason: str
) -> None:
    world = FakeWorld(answer())
    if stored is None:
        del world.objects["deletion-receipt.dsse.json"]
    else:
        world.objects["deletion-receipt.dsse.json"] = stored
    with world.client() as client:
        offer = request_bundle(client, API, "partner-key", "2026-10")
        assert offer.receipt is not None
        with pytest.raises(FetchError, match=f"the deletion receipt: {reason}"):
            download_receipt(client, offer.receipt, tmp_path / "b.zip")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def fake_http(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWorld]:
    """`ryuzen bundle fetch` against a FakeWorld (its httpx.Client gets the transport)."""
    world = FakeWorld(answer())
    real_client = httpx.Client

    def client(**options: Any) -> httpx.Client:
        return real_client(transport=httpx.MockTransport(world), **options)

    monkeypatch.setattr(bundle_commands.httpx, "Client", client)
    yield world


def test_the_receipt_is_fetched_first_and_removed_when_the_bundle_fails(
    fake_http: FakeWorld, tmp_path: Path
) -> None:
    # Given the store serves the receipt but not the ZIP
    del fake_http.objects["ryuzen-telemetry-acme-2026-10.zip"]
    public_key = tmp_path / "key.pub.pem"
    public_key.write_text("unused: the fetch fails first")
    out = tmp_path / "out"

    # When the partner fetches with --verify
    result = CliRunner().invoke(
        app,
        [
            "bundle", "fetch", "--api", API, "--key", "partner-key", "--month", "2026-10",
            "--out", str(out), "--verify", "--public-key", str(public_key),
        ],
    )  # fmt: skip

    # Then the receipt was fetched before the ZIP (its URL expires with the ZIP's), and the
    # failed fetch leaves neither behind
    assert result.exit_code == 1
    assert "the download was refused: 403 AccessDenied" in result.stderr
    assert fake_http.requested[1:] == [
        "deletion-receipt.dsse.json",
        "ryuzen-telemetry-acme-2026-10.zip",
    ]
    assert list(out.iterdir()) == []
    assert "X-Amz-Signature" not in result.output
    assert json.dumps(fake_http.body["receipt"]["url"]) not in result.output
