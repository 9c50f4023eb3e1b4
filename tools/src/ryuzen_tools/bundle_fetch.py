"""A partner's side of the pull API: ask for a month's URL, download the ZIP, check it.

``request_bundle`` calls ``GET {api}/v1/bundles/{month}`` with the partner's API key;
``download`` streams the presigned URL to a temporary file beside the destination,
hashing as it goes, and renames it into place only when size and SHA-256 match what the
API announced — so a partial or corrupted download never sits under the bundle's name.
Once the month is cleaned the answer also offers the deletion receipt (``receipt``);
``download_receipt`` fetches it the same way, beside the ZIP, as
``ryuzen-telemetry-{p}-{m}.deletion-receipt.dsse.json``.
The presigned URLs are bearer credentials for their lifetime: never printed or logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from ryuzen_contracts.key_layout import validate_month

CHUNK_BYTES = 256 * 1024
# The receipt is kept beside the ZIP under the ZIP's stem with this suffix.
RECEIPT_SUFFIX = ".deletion-receipt.dsse.json"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.zip")


class FetchError(RuntimeError):
    """The bundle could not be fetched; the message says why (never the URL)."""


@dataclass(frozen=True)
class ReceiptOffer:
    """The answer's ``receipt``: the month's deletion receipt, once it is cleaned."""

    url: str
    expires_at: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class BundleOffer:
    """The API's answer for one month."""

    month: str
    url: str
    expires_at: str
    sha256: str
    bytes: int
    receipt: ReceiptOffer | None = None

    def file_name(self) -> str:
        """The object's own name (``ryuzen-telemetry-{p}-{m}.zip``), when it is a safe one."""
        name = unquote(urlsplit(self.url).path).rsplit("/", 1)[-1]
        return name if _SAFE_NAME.fullmatch(name) else f"ryuzen-telemetry-{self.month}.zip"


def receipt_path(bundle_path: Path) -> Path:
    """Where the receipt of the bundle at ``bundle_path`` is kept: beside it."""
    return bundle_path.with_name(bundle_path.stem + RECEIPT_SUFFIX)


@dataclass(frozen=True)
class Downloaded:
    """A bundle on disk whose size and digest match the offer."""

    path: Path
    bytes: int
    sha256: str


def api_get(client: httpx.Client, api: str, path: str, key: str) -> httpx.Response:
    """``GET {api}{path}`` with the partner's key; FetchError on a connection failure."""
    try:
        return client.get(f"{api.rstrip('/')}{path}", headers={"x-api-key": key})
    except httpx.HTTPError as error:
        raise FetchError(f"the API at {api} did not answer ({type(error).__name__})") from None


def request_bundle(client: httpx.Client, api: str, key: str, month: str) -> BundleOffer:
    """The presigned URL and facts for ``month``; FetchError with the API's reason."""
    validate_month(month)
    response = api_get(client, api, f"/v1/bundles/{month}", key)
    body = _json(response)
    if response.status_code != 200:
        raise FetchError(f"the API refused: {response.status_code} {_reason(body)}")
    try:
        return BundleOffer(
            month=month,
            url=str(body["url"]),
            expires_at=str(body["expires_at"]),
            sha256=str(body["sha256"]),
            bytes=int(body["bytes"]),
            receipt=_receipt_offer(body.get("receipt")),
        )
    except (KeyError, TypeError, ValueError):
        raise FetchError("the API's answer lacks url, expires_at, sha256 or bytes") from None


def _receipt_offer(value: Any) -> ReceiptOffer | None:
    """The answer's ``receipt``: absent or null before the month is cleaned."""
    if value is None:
        return None
    try:
        return ReceiptOffer(
            url=str(value["url"]),
            expires_at=str(value["expires_at"]),
            sha256=str(value["sha256"]),
            bytes=int(value["bytes"]),
        )
    except (KeyError, TypeError, ValueError):
        raise FetchError("the API's receipt lacks url, expires_at, sha256 or bytes") from None


def list_bundles(client: httpx.Client, api: str, key: str) -> list[dict[str, Any]]:
    """``GET /v1/bundles``: the partner's available months."""
    response = api_get(client, api, "/v1/bundles", key)
    body = _json(response)
    if response.status_code != 200:
        raise FetchError(f"the API refused: {response.status_code} {_reason(body)}")
    return list(body.get("bundles") or [])


def signing_key(client: httpx.Client, api: str, key: str) -> bytes:
    """``GET /v1/keys/signing``: the PEM public key the stack signs with."""
    response = api_get(client, api, "/v1/keys/signing", key)
    if response.status_code != 200:
        raise FetchError(f"the API refused: {response.status_code} {_reason(_json(response))}")
    return response.content


def download(
    client: httpx.Client,
    offer: BundleOffer,
    out_dir: Path,
    on_bytes: Callable[[int], None] | None = None,
) -> Downloaded:
    """Stream the offer's URL into ``out_dir``; FetchError unless size and SHA-256 match."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return _fetch(
        client, offer.url, out_dir / offer.file_name(), offer.bytes, offer.sha256, on_bytes
    )


def download_receipt(client: httpx.Client, receipt: ReceiptOffer, bundle_path: Path) -> Downloaded:
    """Stream the receipt beside the bundle (``receipt_path``), checked like the bundle."""
    target = receipt_path(bundle_path)
    try:
        return _fetch(client, receipt.url, target, receipt.bytes, receipt.sha256, None)
    except FetchError as error:
        raise FetchError(f"the deletion receipt: {error}") from None


def _fetch(
    client: httpx.Client,
    url: str,
    target: Path,
    expected_bytes: int,
    expected_sha256: str,
    on_bytes: Callable[[int], None] | None,
) -> Downloaded:
    partial = target.with_name(f".{target.name}.part")
    digest = hashlib.sha256()
    size = 0
    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                text = response.read().decode("utf-8", "replace")
                code = re.search(r"<Code>([^<]{1,64})</Code>", text)
                raise FetchError(
                    f"the download was refused: {response.status_code}"
                    + (f" {code.group(1)}" if code else "")
                )
            with partial.open("wb") as handle:
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
    except httpx.HTTPError as error:
        partial.unlink(missing_ok=True)
        raise FetchError(f"the download failed ({type(error).__name__})") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    actual = digest.hexdigest()
    if size != expected_bytes or actual != expected_sha256:
        partial.unlink(missing_ok=True)
        raise FetchError(
            f"the download does not match the API's announcement: {size} bytes, sha256 "
            f"{actual[:16]}… (announced {expected_bytes} bytes, {expected_sha256[:16]}…)"
        )
    partial.replace(target)
    return Downloaded(target, size, actual)


def _json(response: httpx.Response) -> dict[str, Any]:
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, dict):
            return body
    return {}


def _reason(body: dict[str, Any]) -> str:
    if "error" in body:
        return f"{body['error']}: {body.get('detail', '')}".strip()
    return str(body.get("message", "no reason given"))
