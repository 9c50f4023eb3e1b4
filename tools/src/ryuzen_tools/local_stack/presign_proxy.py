"""The verifying proxy in front of moto for presigned bundle URLs (DESIGN §6).

moto serves a presigned URL without looking at its signature or its expiry, so a local
partner could change the key in a URL, or use it forever, and still download. The pull
handler therefore signs its URLs for this proxy's endpoint (``PRESIGN_ENDPOINT_URL``),
and the proxy does what S3 does before it serves a query-signed ``GET``/``HEAD``:

1. the ``X-Amz-*`` parameters are all there, the algorithm is SigV4, the credential
   scope names the local access key, the stack's region and ``s3``, for the day of
   ``X-Amz-Date``; ``X-Amz-Expires`` is 1 s .. 7 days;
2. the URL has not expired (``X-Amz-Date + X-Amz-Expires``) and is not from the future;
3. the signature is recomputed with botocore's own SigV4 query signer
   (``S3SigV4QueryAuth``: canonical request → string to sign → signature, with the
   URL's own timestamp) over the request exactly as received — method, raw path, raw
   query without ``X-Amz-Signature``, signed headers — and compared with
   ``hmac.compare_digest``. A changed key, bucket, expiry or signature no longer matches;
4. the path must address the bundle bucket.

Any failure is 403 with an S3-style XML error (``AccessDenied`` /
``SignatureDoesNotMatch`` / ``InvalidAccessKeyId``); otherwise the object is streamed from
moto in chunks. URLs and query strings are never logged (a presigned URL is a bearer
credential): only method, status, the S3 error code and the object key.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from werkzeug.serving import WSGIRequestHandler

from ryuzen_tools.local_stack.loopback_server import LoopbackServer

ALGORITHM = "AWS4-HMAC-SHA256"
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_EXPIRES = 7 * 24 * 3600
# S3 refuses a request signed further in the future than its clock-skew allowance.
MAX_CLOCK_SKEW = timedelta(minutes=15)
CHUNK_BYTES = 256 * 1024
REQUIRED_PARAMETERS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
_PASSED_THROUGH = ("ContentType", "ETag", "LastModified")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    """Why a request is not served: status, S3 error code, message."""

    status: int
    code: str
    message: str


@dataclass(frozen=True)
class Verified:
    """A request whose presigned signature holds: the bucket and key it may read."""

    bucket: str
    key: str


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The proxy logs for itself, without the query string."""


class PresignProxy:
    """A loopback HTTP server that verifies presigned S3 URLs, then streams from moto."""

    def __init__(
        self,
        s3: Any,
        *,
        bucket: str,
        region: str,
        access_key: str,
        secret_key: str,
        port: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._region = region
        self._credentials = Credentials(access_key, secret_key)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._http = LoopbackServer(self, port, _QuietRequestHandler, "presign-proxy")
        self.url = ""

    def start(self) -> str:
        """Serve on 127.0.0.1 and return the base URL (``http://127.0.0.1:PORT``)."""
        self.url = self._http.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._http.stop()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        raw_uri = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "/")
        raw_path, _, raw_query = raw_uri.partition("?")
        headers = {
            name[5:].replace("_", "-").lower(): str(value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        outcome = self.verify(method, raw_path, raw_query, headers)
        if isinstance(outcome, Refusal):
            log.info("presign proxy: %s %d %s", method, outcome.status, outcome.code)
            return _error(start_response, outcome)
        return self._serve(method, outcome, start_response)

    def verify(
        self, method: str, raw_path: str, raw_query: str, headers: dict[str, str]
    ) -> Verified | Refusal:
        """Check a request's query signature as S3 would; ``headers`` by lower-case name."""
        if method not in ("GET", "HEAD"):
            return Refusal(405, "MethodNotAllowed", "only GET and HEAD are served")
        pairs = [pair.partition("=") for pair in raw_query.split("&") if pair]
        params = {unquote(name): unquote(value) for name, _, value in pairs}
        missing = [name for name in REQUIRED_PARAMETERS if not params.get(name)]
        if missing:
            return Refusal(403, "AccessDenied", "a presigned URL is required")
        if params["X-Amz-Algorithm"] != ALGORITHM:
            return Refusal(403, "AccessDenied", "unsupported signing algorithm")
        scope = params["X-Amz-Credential"].split("/")
        if len(scope) != 5 or scope[0] != self._credentials.access_key:
            return Refusal(403, "InvalidAccessKeyId", "the access key is not known")
        stamp = params["X-Amz-Date"]
        if scope[1:] != [stamp[:8], self._region, "s3", "aws4_request"]:
            return Refusal(403, "AuthorizationQueryParametersError", "invalid credential scope")
        try:
            signed_at = datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
            expires = int(params["X-Amz-Expires"])
        except ValueError:
            return Refusal(403, "AuthorizationQueryParametersError", "invalid date or expiry")
        if not 1 <= expires <= MAX_EXPIRES:
            return Refusal(403, "AuthorizationQueryParametersError", "invalid X-Amz-Expires")
        now = self._clock()
        if now > signed_at + timedelta(seconds=expires):
            return Refusal(403, "AccessDenied", "Request has expired")
        if signed_at > now + MAX_CLOCK_SKEW:
            return Refusal(403, "AccessDenied", "Request is not yet valid")
        expected = self._signature(method, raw_path, pairs, params, headers, stamp)
        if expected is None or not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            return Refusal(403, "SignatureDoesNotMatch", "the signature does not match")
        bucket, _, key = unquote(raw_path).lstrip("/").partition("/")
        if bucket != self._bucket or not key:
            return Refusal(403, "AccessDenied", "only the bundle bucket is served")
        return Verified(bucket, key)

    def _signature(
        self,
        method: str,
        raw_path: str,
        pairs: list[tuple[str, str, str]],
        params: dict[str, str],
        headers: dict[str, str],
        stamp: str,
    ) -> str | None:
        # The canonical query is the query as received minus the signature itself, and
        # the signed headers are taken from the request; botocore does the rest exactly
        # as it did when it signed.
        query = "&".join(f"{name}={value}" for name, _, value in pairs if name != "X-Amz-Signature")
        signed = params["X-Amz-SignedHeaders"].split(";")
        if "host" not in signed or any(name not in headers for name in signed):
            return None
        request = AWSRequest(
            method=method,
            url=f"http://{headers['host']}{raw_path}?{query}",
            headers={name: headers[name] for name in signed},
        )
        request.context["timestamp"] = stamp
        signer = S3SigV4QueryAuth(self._credentials, "s3", self._region)
        canonical = signer.canonical_request(request)
        return str(signer.signature(signer.string_to_sign(request, canonical), request))

    def _serve(
        self, method: str, verified: Verified, start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        try:
            if method == "HEAD":
                answer = self._s3.head_object(Bucket=verified.bucket, Key=verified.key)
            else:
                answer = self._s3.get_object(Bucket=verified.bucket, Key=verified.key)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code"))
            missing = code in ("NoSuchKey", "404", "NotFound")
            refusal = (
                Refusal(404, "NoSuchKey", "The specified key does not exist.")
                if missing
                else Refusal(503, "ServiceUnavailable", "the store did not answer")
            )
            log.info("presign proxy: %s %d %s", method, refusal.status, refusal.code)
            return _error(start_response, refusal)
        headers = [("Content-Length", str(answer["ContentLength"]))]
        for field in _PASSED_THROUGH:
            if field in answer:
                value = answer[field]
                if isinstance(value, datetime):
                    value = value.strftime("%a, %d %b %Y %H:%M:%S GMT")
                name = "Content-Type" if field == "ContentType" else field
                headers.append(("Last-Modified" if field == "LastModified" else name, str(value)))
        for name, value in (answer.get("Metadata") or {}).items():
            headers.append((f"x-amz-meta-{name}", str(value)))
        start_response("200 OK", headers)
        log.info("presign proxy: %s 200 %s", method, verified.key)
        if method == "HEAD":
            return []
        return _chunks(answer["Body"])


def _chunks(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()


def _error(start_response: Callable[..., Any], refusal: Refusal) -> list[bytes]:
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(refusal.code)}</Code>"
        f"<Message>{escape(refusal.message)}</Message></Error>"
    ).encode()
    phrases = {403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}
    start_response(
        f"{refusal.status} {phrases.get(refusal.status, 'Service Unavailable')}",
        [("Content-Type", "application/xml"), ("Content-Length", str(len(document)))],
    )
    return [document]
