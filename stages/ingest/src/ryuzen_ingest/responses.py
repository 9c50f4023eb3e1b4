"""API Gateway responses: the error codes clients can rely on and the response builders.

Every 4xx/5xx body is ``{"error": <code>, "detail": <text>}``. The detail is short fixed
text (at most an event index or a position in the body): it never echoes the body or a
header value back, so a response can be logged or shown without leaking telemetry.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


class ErrorCode(StrEnum):
    """Machine-readable rejection reasons (the ``error`` field of an error body)."""

    INVALID_JSON = "invalid_json"
    INVALID_ENCODING = "invalid_encoding"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    EMPTY_BATCH = "empty_batch"
    TOO_LARGE = "too_large"
    TOO_MANY_EVENTS = "too_many_events"
    EVENT_TOO_LARGE = "event_too_large"
    MISSING_FIELD = "missing_field"
    UNKNOWN_MODEL = "unknown_model"
    FORBIDDEN_PARTNER = "forbidden_partner"
    UNKNOWN_CLIENT = "unknown_client"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    IDEMPOTENCY_IN_PROGRESS = "idempotency_in_progress"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNAVAILABLE = "unavailable"
    INTERNAL_ERROR = "internal_error"


class IngestError(Exception):
    """The request is refused as a whole: an HTTP status, an error code and fixed detail text."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        detail: str,
        *,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code.value}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after = retry_after
        self.headers = headers or {}


def json_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """An API Gateway REST proxy response with a JSON body."""
    return {
        "statusCode": status,
        "headers": {**JSON_HEADERS, **(headers or {})},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def error_response(rejection: IngestError) -> dict[str, Any]:
    """The response for a rejection; ``Retry-After`` when the client should try again later."""
    headers = dict(rejection.headers)
    if rejection.retry_after is not None:
        headers["Retry-After"] = str(rejection.retry_after)
    return json_response(
        rejection.status, {"error": rejection.code.value, "detail": rejection.detail}, headers
    )


def accepted_response(batch_id: str, accepted: int, *, replayed: bool = False) -> dict[str, Any]:
    """202: the batch is durably in RAW. A replayed answer says so (Stripe's header name)."""
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return json_response(202, {"batch_id": batch_id, "accepted": accepted}, headers)


def unavailable(detail: str, *, retry_after: int = 1) -> IngestError:
    """503 ``unavailable``: a dependency failed or throttled; the client should retry."""
    return IngestError(503, ErrorCode.UNAVAILABLE, detail, retry_after=retry_after)
