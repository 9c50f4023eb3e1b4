"""The REST API on loopback: HTTP request → API Gateway REST proxy (v1) event → handler → HTTP.

What API Gateway does before a Lambda proxy integration sees a request is reproduced here:
the route and method are matched — a resource path may hold ``{name}`` templates, which
match one path segment and fill ``pathParameters``, and a literal segment wins over a
template as in API Gateway — the ``x-api-key`` header must name an enabled key (else
403 ``{"message":"Forbidden"}``), payloads over 10 MB are refused with 413, a body that
is cut off before its announced length or framed ambiguously (an invalid or repeated
``Content-Length``, or one beside ``Transfer-Encoding: chunked``) is refused with 400
``{"message":"Bad Request"}`` and never reaches the handler, and the event
carries ``requestContext.identity.apiKeyId``, a fresh ``requestId``, ``headers`` and
``multiValueHeaders`` with the client's header-name casing, and — because the deployed API
declares the binary media type ``*/*`` — a base64 body with ``isBase64Encoded: true``
whenever the body is compressed or not UTF-8. A handler that raises or answers malformed
output becomes 502 ``{"message":"Internal server error"}``, as with a Lambda proxy.

Request bodies and key values are never logged; key ids are.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.serving import WSGIRequestHandler

from ryuzen_tools.local_stack.lambda_runtime import LOCAL_ACCOUNT_ID
from ryuzen_tools.local_stack.loopback_server import LoopbackServer
from ryuzen_tools.local_stack.moto_server import LOOPBACK

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's hard limit
API_KEY_HEADER = "x-api-key"
# ASCII digits only: str.isdigit() also takes "²", which int() refuses.
_DECIMAL = re.compile(r"[0-9]{1,20}")
RAW_HEADERS_KEY = "ryuzen.raw_headers"

log = logging.getLogger(__name__)

Invoke = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Route:
    """One method on one resource (``/v1/bundles/{month}``), integrated with a handler."""

    method: str
    path: str
    invoke: Invoke
    on_response: Callable[[int], None] | None = None


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers in order, body bytes."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class _RawHeaderRequestHandler(WSGIRequestHandler):
    """Keeps the header lines as the client sent them (WSGI upper-cases their names)."""

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ[RAW_HEADERS_KEY] = list(self.headers.items())
        return environ

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Access logging happens in the gateway, which knows the key id."""


class ApiGateway:
    """A threaded loopback HTTP server in front of the stage handlers."""

    def __init__(
        self,
        routes: Iterable[Route],
        api_keys: Mapping[str, str],
        *,
        region: str,
        port: int = 0,
        stage_name: str = "local",
        api_id: str = "localapi01",
    ) -> None:
        self._routes = {(route.method, route.path): route for route in routes}
        self._resources = sorted({route.path for route in self._routes.values()})
        self._api_keys = dict(api_keys)  # key value -> key id
        self._region = region
        self._stage_name = stage_name
        self._api_id = api_id
        self._http = LoopbackServer(self, port, _RawHeaderRequestHandler, "api-gateway")
        self.url = ""

    def start(self) -> str:
        """Serve on 127.0.0.1 and return the base URL (``http://127.0.0.1:PORT``)."""
        self.url = self._http.start()
        return self.url

    def stop(self) -> None:
        """Stop accepting requests and close the socket."""
        self._http.stop()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        started = time.monotonic()
        answer, key_id = self.handle(environ)
        start_response(_status_line(answer.status), answer.headers)
        log.info(
            "%s %s %d key_id=%s %.0fms",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
            answer.status,
            key_id or "-",
            (time.monotonic() - started) * 1000,
        )
        return [answer.body]

    def handle(self, environ: dict[str, Any]) -> tuple[Answer, str | None]:
        """Answer one request; also return the API key id it used, if any."""
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO") or "/"
        request_id = str(uuid.uuid4())
        matched = match_resource(self._resources, path)
        if matched is None:
            return _message(404, "Not Found", request_id, close=True), None
        resource, path_parameters = matched
        route = self._routes.get((method, resource))
        if route is None:
            allowed = ", ".join(sorted(m for m, p in self._routes if p == resource))
            answer = _message(405, "Method Not Allowed", request_id, close=True)
            answer.headers.append(("Allow", allowed))
            return answer, None

        raw_headers: list[tuple[str, str]] = environ.get(RAW_HEADERS_KEY, [])
        key_value = next((v for k, v in raw_headers if k.lower() == API_KEY_HEADER), None)
        key_id = self._api_keys.get(key_value) if key_value else None
        if key_id is None:
            return _message(403, "Forbidden", request_id, close=True), None

        try:
            body = _read_body(environ)
        except IncompleteBodyError:
            # A truncated body can still parse (an NDJSON prefix): the handler must never
            # see one, as API Gateway never invokes an integration before the whole body.
            return _message(400, "Bad Request", request_id, close=True), key_id
        if body is None:
            return _message(413, "Request Too Long", request_id, close=True), key_id

        event = proxy_event(
            method=method,
            path=path,
            resource=route.path,
            path_parameters=path_parameters,
            query_string=environ.get("QUERY_STRING", ""),
            raw_headers=raw_headers,
            body=body,
            source_ip=environ.get("REMOTE_ADDR", LOOPBACK),
            api_key=(key_value or "", key_id),
            request_id=request_id,
            stage=self._stage_name,
            api_id=self._api_id,
        )
        try:
            result = route.invoke(event)
            answer = proxy_answer(result, request_id)
        except Exception:  # the runtime logged it (type and location only)
            answer = _message(502, "Internal server error", request_id)
        if route.on_response is not None:
            route.on_response(answer.status)
        return answer, key_id


def match_resource(resources: Iterable[str], path: str) -> tuple[str, dict[str, str]] | None:
    """The resource ``path`` is routed to and its path parameters, or None (404).

    ``{name}`` matches one non-empty segment. When several resources match, the one whose
    first differing segment is literal wins (``/v1/bundles/latest`` before
    ``/v1/bundles/{month}``), as API Gateway prefers the most specific resource.
    """
    segments = path.split("/")
    best: tuple[tuple[bool, ...], str, dict[str, str]] | None = None
    for resource in resources:
        parts = resource.split("/")
        if len(parts) != len(segments):
            continue
        parameters: dict[str, str] = {}
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{") and part.endswith("}"):
                if not segment:
                    break
                parameters[part[1:-1]] = segment
            elif part != segment:
                break
        else:
            # literal segments rank before templates, position by position
            rank = tuple(part.startswith("{") for part in parts)
            if best is None or rank < best[0]:
                best = (rank, resource, parameters)
    return None if best is None else (best[1], best[2])


def proxy_event(
    *,
    method: str,
    path: str,
    resource: str,
    query_string: str,
    raw_headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    api_key: tuple[str, str],
    request_id: str,
    stage: str,
    api_id: str,
    now: datetime | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The REST proxy (v1) event API Gateway would send for this request."""
    moment = now or datetime.now(UTC)
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in raw_headers:
        headers[name] = value  # like API Gateway: the last value of a repeated header
        multi_headers.setdefault(name, []).append(value)
    query_pairs = parse_qsl(query_string, keep_blank_values=True)
    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in query_pairs:
        query[name] = value
        multi_query.setdefault(name, []).append(value)
    text, is_base64 = _event_body(body, headers)
    key_value, key_id = api_key
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{stage}{path}",
            "accountId": LOCAL_ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": "localhost",
            "requestTimeEpoch": int(moment.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": _header(headers, "user-agent"),
                "user": None,
                "apiKey": key_value,
                "apiKeyId": key_id,
            },
            "domainName": "localhost",
            "apiId": api_id,
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }


def proxy_answer(result: Any, request_id: str) -> Answer:
    """The HTTP answer for a Lambda proxy result; 502 when the result is malformed."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        return _message(502, "Internal server error", request_id)
    status = result["statusCode"]
    body = result.get("body")
    if body is None:
        payload = b""
    elif not isinstance(body, str):
        return _message(502, "Internal server error", request_id)
    elif result.get("isBase64Encoded"):
        payload = base64.b64decode(body)
    else:
        payload = body.encode("utf-8")
    headers: list[tuple[str, str]] = []
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(value)) for value in values)
    named = {name.lower() for name, _ in headers}
    for name, value in (result.get("headers") or {}).items():
        if str(name).lower() not in named:
            headers.append((str(name), str(value)))
    if "content-type" not in {name.lower() for name, _ in headers}:
        headers.append(("Content-Type", "application/json"))
    headers.append(("x-amzn-RequestId", request_id))
    return Answer(status, headers, payload)


class IncompleteBodyError(Exception):
    """The body ended before its announced length, or its framing is ambiguous."""


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The request body, or None when it exceeds the payload limit.

    IncompleteBodyError when the client stops before ``Content-Length`` bytes, a chunked
    body breaks off, or the length is not one plain decimal number (RFC 9112 6.3: repeated
    differing values, or a length beside ``Transfer-Encoding``, are errors, never guesses).
    """
    stream = environ["wsgi.input"]
    length_text = (environ.get("CONTENT_LENGTH") or "").strip(" \t")  # optional whitespace
    chunked = bool(environ.get("wsgi.input_terminated"))
    lengths = {
        value.strip()
        for name, value in environ.get(RAW_HEADERS_KEY, [])
        if name.lower() == "content-length"
    }
    if length_text and (chunked or len(lengths) > 1 or not _DECIMAL.fullmatch(length_text)):
        raise IncompleteBodyError("Content-Length is invalid, repeated or beside chunked")
    try:
        if length_text:
            length = int(length_text)
            if length > MAX_PAYLOAD_BYTES:
                return None
            body = bytes(stream.read(length)) if length else b""
            if len(body) != length:
                raise IncompleteBodyError("the body ended before Content-Length bytes")
            return body
        if chunked:  # read one byte past the limit
            body = bytes(stream.read(MAX_PAYLOAD_BYTES + 1))
            return None if len(body) > MAX_PAYLOAD_BYTES else body
    except OSError:  # werkzeug's "Invalid chunk header", a reset connection
        raise IncompleteBodyError("the body could not be read to its end") from None
    return b""


def _event_body(body: bytes, headers: Mapping[str, str]) -> tuple[str | None, bool]:
    if not body:
        return None, False
    encoding = (_header(headers, "content-encoding") or "identity").strip().lower()
    if encoding != "identity":
        return base64.b64encode(body).decode("ascii"), True
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)


def _message(status: int, message: str, request_id: str, *, close: bool = False) -> Answer:
    headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)]
    if close:
        # The request body was not read: the connection cannot carry another request.
        headers.append(("Connection", "close"))
    return Answer(status, headers, json.dumps({"message": message}).encode())


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
