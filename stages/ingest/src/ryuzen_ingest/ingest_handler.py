"""The ingest Lambda: API Gateway (REST, proxy) ``POST /v1/events`` → one RAW object in S3.

A thin edge. It reads the settings once (on the first request), caches the clients,
turns the proxy event into an ``IngestRequest``, runs the envelope checks, the routing and
the RAW write, and maps every outcome to a response. It answers 202 only after S3 has
confirmed the write.

Logs carry codes, counts, batch ids and request ids — never a body, a header value or an
exception message that could quote either.

Cold start: this module imports the stdlib, powertools' Logger and the key layout only.
pydantic (settings), boto3 (clients), powertools' idempotency and the audit log load on
first use.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from ryuzen_contracts.api_keys import api_key_id
from ryuzen_contracts.log_safety import error_fields
from ryuzen_contracts.pipeline_steps import failure_detail, step, step_of

from ryuzen_ingest.envelope import Envelope, read_envelope
from ryuzen_ingest.idempotency import check_idempotency_key
from ryuzen_ingest.raw_batch import RawWriteError, write_raw_batch
from ryuzen_ingest.responses import (
    ErrorCode,
    IngestError,
    accepted_response,
    error_response,
    unavailable,
)
from ryuzen_ingest.routing import PartnerRouter

if TYPE_CHECKING:
    from ryuzen_ingest.idempotency import IdempotencyGuard
    from ryuzen_ingest.settings import IngestSettings

STAGE = "ingest"
EVENTS_PATH = "/v1/events"
S3_RETRY_AFTER = 1
# API Gateway sets the request id; anything else (a local caller's) is kept only when it
# is plainly an id (fullmatch: no trailing newline), because it is written into RAW
# receipts and logs.
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")

logger = Logger(service="ryuzen-ingest")


@dataclass
class IngestRuntime:
    """Settings, routing and clients for the life of the execution environment."""

    settings: IngestSettings
    router: PartnerRouter
    s3: Any = None
    dynamodb: Any = None
    _idempotency: IdempotencyGuard | None = field(default=None, repr=False)

    @classmethod
    def from_settings(
        cls, settings: IngestSettings, *, s3: Any = None, dynamodb: Any = None
    ) -> IngestRuntime:
        """A runtime; clients not given are made with ``aws_clients.make_client`` on first use."""
        router = PartnerRouter(settings.stack_config, settings.api_key_clients)
        return cls(settings=settings, router=router, s3=s3, dynamodb=dynamodb)

    def s3_client(self) -> Any:
        if self.s3 is None:
            from ryuzen_contracts.aws_clients import make_client

            self.s3 = make_client("s3")
        return self.s3

    def dynamodb_client(self) -> Any:
        # Only requests with an Idempotency-Key (and failed writes) need DynamoDB.
        if self.dynamodb is None:
            from ryuzen_contracts.aws_clients import make_client

            self.dynamodb = make_client("dynamodb")
        return self.dynamodb

    def idempotency(self) -> IdempotencyGuard:
        if self._idempotency is None:
            from ryuzen_ingest.idempotency import IdempotencyGuard

            self._idempotency = IdempotencyGuard(
                self.dynamodb_client(), self.settings.idempotency_table
            )
        return self._idempotency


@dataclass(frozen=True)
class IngestRequest:
    """What the handler needs from an API Gateway REST proxy event (payload format 1.0)."""

    method: str
    path: str
    resource: str
    headers: dict[str, list[str]]
    body: str | None
    is_base64: bool
    api_key_id: str | None
    request_id: str | None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> IngestRequest:
        context = event.get("requestContext") or {}
        request_id = context.get("requestId")
        body = event.get("body")
        return cls(
            method=str(event.get("httpMethod") or ""),
            path=str(event.get("path") or ""),
            resource=str(event.get("resource") or ""),
            headers=_merge_headers(event),
            body=body if isinstance(body, str) else None,
            is_base64=bool(event.get("isBase64Encoded")),
            api_key_id=api_key_id(event),
            request_id=request_id
            if isinstance(request_id, str) and _REQUEST_ID_RE.fullmatch(request_id)
            else None,
        )

    def header(self, name: str, *, conflict: IngestError) -> str | None:
        """The value of header ``name`` (lower case) or None; ``conflict`` when values differ."""
        values = self.headers.get(name)
        if not values:
            return None
        if len(values) > 1 and len(set(values)) > 1:
            raise conflict
        return values[0]


def _merge_headers(event: dict[str, Any]) -> dict[str, list[str]]:
    # API Gateway passes header names as the client sent them; HTTP names are case-insensitive.
    merged: dict[str, list[str]] = {}
    for name, values in (event.get("multiValueHeaders") or {}).items():
        if isinstance(values, list):
            merged.setdefault(str(name).lower(), []).extend(
                str(value) for value in values if value is not None
            )
    from_multi = set(merged)
    for name, value in (event.get("headers") or {}).items():
        lower = str(name).lower()
        if lower not in from_multi and value is not None:
            merged.setdefault(lower, []).append(str(value))
    return merged


_runtime: IngestRuntime | None = None
_cold_start = True


def get_runtime() -> IngestRuntime:
    """The cached runtime, built from the environment on first use (SettingsError if invalid)."""
    global _runtime
    if _runtime is None:
        from ryuzen_ingest.settings import IngestSettings

        _runtime = IngestRuntime.from_settings(IngestSettings.from_environ())
    return _runtime


def reset_runtime() -> None:
    """Forget the cached runtime (tests, or a local stack that changes the environment)."""
    global _runtime
    _runtime = None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point for API Gateway REST proxy events."""
    global _cold_start
    logger.append_keys(
        lambda_request_id=getattr(context, "aws_request_id", None),
        function_name=getattr(context, "function_name", None),
        cold_start=_cold_start,
    )
    _cold_start = False
    try:
        runtime = get_runtime()
    except Exception as error:  # a misconfigured stack must still answer JSON
        from ryuzen_contracts.settings import settings_error_fields

        # A SettingsError names environment variables and client ids, nothing a caller sent.
        logger.error("ingest settings are invalid", extra=settings_error_fields(error))
        return error_response(IngestError(500, ErrorCode.INTERNAL_ERROR, "ingest is misconfigured"))
    return handle(event, context, runtime)


def handle(event: dict[str, Any], context: Any, runtime: IngestRuntime) -> dict[str, Any]:
    """Answer one proxy event with ``runtime``'s settings and clients (tests call this directly)."""
    logger.append_keys(request_id=None, client_id=None)
    try:
        request = IngestRequest.from_event(event)
        logger.append_keys(request_id=request.request_id)
        batch_id, accepted, replayed = _ingest(request, context, runtime)
    except IngestError as rejection:
        fields = {"status": rejection.status, "code": rejection.code.value}
        if rejection.status >= 500:
            # Which dependency step failed (write_raw, idempotency_start, ...): a 503 is
            # the one answer the caller gets, so the log says where it came from.
            logger.error("request not accepted", extra={**fields, "step": step_of(rejection)})
        else:
            logger.info("request rejected", extra=fields)
        return error_response(rejection)
    except Exception as error:  # a bug must still answer JSON, and log nothing it could quote
        logger.error("unexpected error", extra={**error_fields(error), "step": step_of(error)})
        return error_response(IngestError(500, ErrorCode.INTERNAL_ERROR, "unexpected error"))
    logger.info(
        "batch accepted", extra={"batch_id": batch_id, "accepted": accepted, "replayed": replayed}
    )
    return accepted_response(batch_id, accepted, replayed=replayed)


def _ingest(request: IngestRequest, context: Any, runtime: IngestRuntime) -> tuple[str, int, bool]:
    if request.resource != EVENTS_PATH and request.path.rstrip("/") != EVENTS_PATH:
        raise IngestError(404, ErrorCode.NOT_FOUND, "no such resource")
    if request.method != "POST":
        raise IngestError(405, ErrorCode.METHOD_NOT_ALLOWED, "use POST", headers={"Allow": "POST"})
    client_id = runtime.router.client_for_api_key(request.api_key_id)
    logger.append_keys(client_id=client_id)
    media_conflict = IngestError(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, "conflicting header values")
    envelope = read_envelope(
        request.body,
        is_base64=request.is_base64,
        content_type=request.header("content-type", conflict=media_conflict),
        content_encoding=request.header("content-encoding", conflict=media_conflict),
    )
    partners = runtime.router.partners_for(
        client_id, [value["model"]["id"] for value, _ in envelope.events]
    )
    key = check_idempotency_key(
        request.header(
            "idempotency-key",
            conflict=IngestError(
                400, ErrorCode.INVALID_IDEMPOTENCY_KEY, "several Idempotency-Key values"
            ),
        )
    )

    def write() -> dict[str, Any]:
        return _write(runtime, envelope, partners, client_id, request.request_id)

    if key is None:
        answer, replayed = write(), False
    else:
        try:
            guard = runtime.idempotency()
        except Exception as error:  # client creation failing is the store being unavailable
            logger.error("idempotency store unavailable", extra=error_fields(error))
            raise unavailable("the idempotency store is unavailable; retry later") from None
        answer, replayed = guard.run(
            client_id=client_id,
            key=key,
            payload_sha256=_payload_sha256(envelope),
            context=context,
            operation=write,
        )
    return str(answer["batch_id"]), int(answer["accepted"]), replayed


def _payload_sha256(envelope: Envelope) -> str:
    digest = hashlib.sha256(envelope.media_type.encode("ascii") + b"\n")
    digest.update(envelope.payload)
    return digest.hexdigest()


def _write(
    runtime: IngestRuntime,
    envelope: Envelope,
    partners: list[str],
    client_id: str,
    request_id: str | None,
) -> dict[str, Any]:
    try:
        batch = write_raw_batch(
            runtime.s3_client(),
            runtime.settings.raw_bucket,
            texts=[text for _, text in envelope.events],
            partners=partners,
            client_id=client_id,
            request_id=request_id,
        )
    except RawWriteError as failure:
        logger.error(
            "RAW write failed",
            extra={
                **failure_detail(failure),
                "batch_id": failure.batch_id,
                "s3_error_code": failure.s3_error_code,
            },
        )
        _audit_write_failure(runtime, failure, client_id, len(partners), request_id)
        with step(step_of(failure)):  # the 503 carries the step to the request's log line
            raise unavailable(
                "the batch could not be stored; retry later", retry_after=S3_RETRY_AFTER
            ) from None
    logger.debug("RAW object written", extra={"batch_id": batch.batch_id, "bytes": batch.size})
    return {"batch_id": batch.batch_id, "accepted": batch.accepted}


def _audit_write_failure(
    runtime: IngestRuntime,
    failure: RawWriteError,
    client_id: str,
    events: int,
    request_id: str | None,
) -> None:
    """Record an ERROR in the SYSTEM partition; a failure here is logged, never raised.

    One write per failed request, and only on this path — the RAW write failing — which
    the stage had before its steps were named; no other failure path writes audit events
    per request (an outage must not be amplified into the audit table): those log the step.
    """
    try:
        from ryuzen_contracts.audit_log import AuditEvent, AuditEventType, AuditLog

        detail: dict[str, Any] = {
            # The step and the error type (never a message), then what ingest knows.
            **failure_detail(failure),
            "error_code": "raw_write_failed",
            "batch_id": failure.batch_id,
            "s3_error_code": re.sub(r"[^A-Za-z0-9._-]", "", failure.s3_error_code)[:64]
            or "unknown",
            "client_id": client_id,
            "events": events,
        }
        if request_id is not None:
            detail["request_id"] = request_id
        audit = AuditLog(runtime.dynamodb_client(), runtime.settings.audit_table)
        audit.write(AuditEvent(event_type=AuditEventType.ERROR, stage=STAGE, detail=detail))
    except Exception as error:
        logger.error("audit write failed", extra=error_fields(error))
