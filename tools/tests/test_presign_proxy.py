"""The verifying proxy: a presigned URL works as signed, and in no other form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

import boto3
import httpx
import pytest
from ryuzen_contracts.aws_clients import client_config
from ryuzen_contracts.key_layout import bundle_key
from ryuzen_tools.local_stack.aws import LocalClients
from ryuzen_tools.local_stack.moto_server import FAKE_ACCESS_KEY, FAKE_SECRET_KEY
from ryuzen_tools.local_stack.presign_proxy import PresignProxy
from tools_support import REGION, unique

ACME_KEY = bundle_key("acme", "2026-10")
NIMBUS_KEY = bundle_key("nimbus-ai", "2026-10")
ACME_BYTES = b"PK\x03\x04 acme bundle " * 40_000  # ~1 MiB: streamed in several chunks


class Clock:
    """The proxy's clock, movable by the tests."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Proxied:
    url: str
    bucket: str
    other_bucket: str
    clock: Clock

    def presign(
        self,
        key: str = ACME_KEY,
        *,
        bucket: str | None = None,
        expires: int = 900,
        access_key: str = FAKE_ACCESS_KEY,
        secret_key: str = FAKE_SECRET_KEY,
        method: str = "get_object",
    ) -> str:
        session: Any = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=REGION
        )
        client = session.client(
            "s3", endpoint_url=self.url, config=client_config("s3", endpoint_url=self.url)
        )
        return str(
            client.generate_presigned_url(
                method, Params={"Bucket": bucket or self.bucket, "Key": key}, ExpiresIn=expires
            )
        )


@pytest.fixture(scope="module")
def proxied(aws: LocalClients) -> Iterator[Proxied]:
    s3 = aws.client("s3")
    bucket, other = unique("bundles"), unique("sanitized")
    for name in (bucket, other):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=bucket, Key=ACME_KEY, Body=ACME_BYTES, Metadata={"sha256": "ab" * 32})
    s3.put_object(Bucket=bucket, Key=NIMBUS_KEY, Body=b"nimbus bundle")
    s3.put_object(Bucket=other, Key=ACME_KEY, Body=b"not a bundle bucket")
    clock = Clock()
    proxy = PresignProxy(
        s3,
        bucket=bucket,
        region=REGION,
        access_key=FAKE_ACCESS_KEY,
        secret_key=FAKE_SECRET_KEY,
        clock=clock,
    )
    url = proxy.start()
    yield Proxied(url, bucket, other, clock)
    proxy.stop()


@pytest.fixture(autouse=True)
def _reset_clock(proxied: Proxied) -> Iterator[None]:
    proxied.clock.offset = timedelta(0)
    yield
    proxied.clock.offset = timedelta(0)


def error_code(response: httpx.Response) -> str:
    match = re.search(r"<Code>([^<]+)</Code>", response.text)
    return match.group(1) if match else ""


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote, safe="")))


def test_a_valid_url_streams_the_object(proxied: Proxied) -> None:
    with httpx.stream("GET", proxied.presign(), timeout=30) as response:
        assert response.status_code == 200
        received = b"".join(response.iter_bytes())
    assert received == ACME_BYTES
    assert response.headers["Content-Length"] == str(len(ACME_BYTES))
    assert response.headers["x-amz-meta-sha256"] == "ab" * 32
    assert response.headers["ETag"]


def test_a_url_still_works_just_before_it_expires(proxied: Proxied) -> None:
    url = proxied.presign(expires=600)
    proxied.clock.offset = timedelta(seconds=590)
    assert httpx.get(url, timeout=30).status_code == 200


def test_a_head_url_is_served_without_a_body(proxied: Proxied) -> None:
    response = httpx.head(proxied.presign(method="head_object"), timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(ACME_BYTES))


@pytest.mark.parametrize(
    ("tamper", "status", "code"),
    [
        pytest.param(
            lambda p: _later(p, p.presign(expires=60), 61), 403, "AccessDenied", id="expired"
        ),
        pytest.param(
            lambda p: with_query(
                p.presign(), **{"X-Amz-Signature": _flip(_signature(p.presign()))}
            ),
            403,
            "SignatureDoesNotMatch",
            id="tampered-signature",
        ),
        pytest.param(
            lambda p: p.presign().replace(quote(ACME_KEY), quote(NIMBUS_KEY)),
            403,
            "SignatureDoesNotMatch",
            id="other-key",
        ),
        pytest.param(
            lambda p: with_query(p.presign(expires=60), **{"X-Amz-Expires": "604800"}),
            403,
            "SignatureDoesNotMatch",
            id="stretched-expiry",
        ),
        pytest.param(
            lambda p: p.presign(secret_key="not-the-secret"),
            403,
            "SignatureDoesNotMatch",
            id="wrong-secret",
        ),
        pytest.param(
            lambda p: p.presign(access_key="AKIAOTHER"),
            403,
            "InvalidAccessKeyId",
            id="unknown-access-key",
        ),
        pytest.param(
            lambda p: p.presign(bucket=p.other_bucket),
            403,
            "AccessDenied",
            id="validly-signed-other-bucket",
        ),
        pytest.param(
            lambda p: f"{p.url}/{p.bucket}/{ACME_KEY}", 403, "AccessDenied", id="unsigned"
        ),
        pytest.param(
            lambda p: with_query(p.presign(), **{"X-Amz-Algorithm": "AWS4-HMAC-SHA1"}),
            403,
            "AccessDenied",
            id="other-algorithm",
        ),
    ],
)
def test_a_url_in_any_other_form_is_refused(
    proxied: Proxied, tamper: Any, status: int, code: str
) -> None:
    url = tamper(proxied)
    response = httpx.get(url, timeout=30)
    assert response.status_code == status
    assert error_code(response) == code
    assert response.headers["Content-Type"] == "application/xml"
    assert b"acme bundle" not in response.content


def test_an_expired_url_says_so(proxied: Proxied) -> None:
    url = proxied.presign(expires=60)
    proxied.clock.offset = timedelta(seconds=61)
    response = httpx.get(url, timeout=30)
    assert response.status_code == 403
    assert "Request has expired" in response.text


def test_a_url_from_the_future_is_refused(proxied: Proxied) -> None:
    url = proxied.presign(expires=600)
    proxied.clock.offset = -timedelta(minutes=20)
    response = httpx.get(url, timeout=30)
    assert response.status_code == 403
    assert "not yet valid" in response.text


def test_a_get_signature_does_not_authorize_a_head(proxied: Proxied) -> None:
    response = httpx.head(proxied.presign(), timeout=30)
    assert response.status_code == 403


def test_other_methods_are_405(proxied: Proxied) -> None:
    assert httpx.put(proxied.presign(), content=b"x", timeout=30).status_code == 405


def test_a_valid_url_for_a_missing_key_is_404(proxied: Proxied) -> None:
    response = httpx.get(proxied.presign(bundle_key("acme", "2020-01")), timeout=30)
    assert response.status_code == 404
    assert error_code(response) == "NoSuchKey"


def test_the_proxy_logs_no_query(proxied: Proxied, caplog: pytest.LogCaptureFixture) -> None:
    url = proxied.presign()
    with caplog.at_level("INFO", logger="ryuzen_tools.local_stack.presign_proxy"):
        httpx.get(url, timeout=30)
        httpx.get(with_query(url, **{"X-Amz-Signature": "0" * 64}), timeout=30)
    text = caplog.text
    assert "200" in text and "SignatureDoesNotMatch" in text
    assert _signature(url) not in text and "X-Amz" not in text


def _signature(url: str) -> str:
    return parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]


def _flip(signature: str) -> str:
    return ("0" if signature[0] != "0" else "1") + signature[1:]


def _later(proxied: Proxied, url: str, seconds: int) -> str:
    proxied.clock.offset = timedelta(seconds=seconds)
    return url
