"""The partner pull Lambda: API Gateway (REST, proxy) → the partner's own bundles.

Routes (all ``GET``, all behind the partner's API key):

* ``/v1/bundles`` — ``{"partner", "bundles": [{"month", "bytes", "sha256", "created_at",
  "cleaned"}]}``; ``created_at`` is when the bundle was delivered;
* ``/v1/bundles/{month}`` — ``{"url", "expires_at", "sha256", "bytes", "receipt"}``: a
  fresh SigV4 presigned GET whose TTL is clamped to the signing credentials' lifetime
  (``presign.py``; with ``PRESIGN_ROLE_ARN``, credentials of that role,
  ``signing_role.py``). ``receipt`` is ``{"url", "expires_at", "sha256", "bytes"}`` for
  the month's deletion receipt once the month is ``CLEANED`` (signed with the same frozen
  credentials at the same moment, so with the same TTL), else ``null``;
* ``/v1/keys/signing`` — the PEM public key that verifies manifests and certificates.

Only months whose bundle state is ``DELIVERED`` or ``CLEANED`` are listed and served
(``bundle_catalog.py``). The partner is ``requestContext.identity.apiKeyId`` mapped
through ``API_KEY_PARTNERS``; an unknown or missing key id (an ingest client's key, say)
is 403 ``unknown_partner``. A partner can only ever name its own keys, so another
partner's month answers exactly like a month that does not exist, or one not delivered
yet: the same 404 body. Errors are ``{"error", "detail"}`` with fixed detail text. Logs
carry partner, month, status and TTL — never a URL (it is a bearer credential) or a key
value.

Settings (``pull_settings.py``) are read and clients made on the first request, like
ingest's; boto3 loads then too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from ryuzen_contracts.api_keys import api_key_id, identity_of
from ryuzen_contracts.bundle_state import BundleStateStore
from ryuzen_contracts.key_layout import InvalidKeyPart, validate_month
from ryuzen_contracts.log_safety import error_fields

from ryuzen_bundle.bundle_catalog import find_bundle, find_receipt, list_bundles
from ryuzen_bundle.presign import (
    CredentialsExpiringError,
    PresignedUrl,
    presign_get,
    rfc3339,
    signing_credentials,
)

if TYPE_CHECKING:
    from ryuzen_bundle.pull_settings import PullSettings

BUNDLES_PATH = "/v1/bundles"
BUNDLE_PATH = "/v1/bundles/{month}"
SIGNING_KEY_PATH = "/v1/keys/signing"
ROUTES = (BUNDLES_PATH, BUNDLE_PATH, SIGNING_KEY_PATH)
RETRY_AFTER_SECONDS = 5
JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}
PEM_CONTENT_TYPE = "application/x-pem-file"

logger = Logger(service="ryuzen-bundle-pull")


class PullError(Exception):
    """A refused request: status, error code, fixed detail text."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def not_found() -> PullError:
    """The one 404 for a month: no bundle, or another partner's (indistinguishable)."""
    return PullError(404, "not_found", "no bundle is available for this month")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PullRuntime:
    """Settings and clients for the life of the execution environment."""

    settings: PullSettings
    s3: Any = None
    dynamodb: Any = None
    kms: Any = None
    sts: Any = None  # used only with PRESIGN_ROLE_ARN
    # Anything with get_credentials() (a boto3 Session): without PRESIGN_ROLE_ARN, the
    # credentials that sign URLs; always the region they are signed for.
    session: Any = None
    # The time URLs are signed at and assumed-role credentials are judged by (tests move it).
    clock: Callable[[], datetime] = _utc_now
    _states: BundleStateStore | None = field(default=None, repr=False)
    _role_credentials: Any = field(default=None, repr=False)
    _public_key_pem: bytes | None = field(default=None, repr=False)

    def s3_client(self) -> Any:
        if self.s3 is None:
            from ryuzen_contracts.aws_clients import make_client

            self.s3 = make_client("s3")
        return self.s3

    def states(self) -> BundleStateStore:
        """The bundle state store over ``AUDIT_TABLE``."""
        if self._states is None:
            if self.dynamodb is None:
                from ryuzen_contracts.aws_clients import make_client

                self.dynamodb = make_client("dynamodb")
            self._states = BundleStateStore(self.dynamodb, self.settings.audit_table)
        return self._states

    def credentials(self) -> Any:
        """The botocore credentials that sign URLs: the presign role's, else the session's.

        The role's credentials object is kept for the life of the runtime: it is what
        caches them between requests and refreshes them before they expire.
        """
        role_arn = self.settings.presign_role_arn
        if role_arn is None:
            return self.signing_session().get_credentials()
        if self._role_credentials is None:
            from ryuzen_bundle.signing_role import assumed_role_credentials, session_duration

            if self.sts is None:
                from ryuzen_contracts.aws_clients import make_client

                self.sts = make_client("sts")
            self._role_credentials = assumed_role_credentials(
                self.sts,
                role_arn,
                duration_seconds=session_duration(
                    self.settings.stack_config.presigned_url_ttl_seconds
                ),
                clock=self.clock,
            )
        return self._role_credentials

    def signing_session(self) -> Any:
        if self.session is None:
            import boto3

            self.session = boto3.session.Session()
        return self.session

    def region(self) -> str | None:
        name = getattr(self.signing_session(), "region_name", None)
        if name:
            return str(name)
        region = getattr(getattr(self.s3_client(), "meta", None), "region_name", None)
        return str(region) if region else None

    def public_key_pem(self) -> bytes:
        """The PEM public key, read once (KMS ``GetPublicKey`` in AWS, a file locally)."""
        if self._public_key_pem is None:
            settings = self.settings
            if settings.signing_kms_key_id is not None:
                self._public_key_pem = _kms_public_key_pem(self, settings.signing_kms_key_id)
            else:
                assert settings.signing_public_key_file is not None
                self._public_key_pem = settings.signing_public_key_file.read_bytes()
        return self._public_key_pem


def _kms_public_key_pem(runtime: PullRuntime, key_id: str) -> bytes:
    from cryptography.hazmat.primitives import serialization

    if runtime.kms is None:
        from ryuzen_contracts.aws_clients import make_client

        runtime.kms = make_client("kms")
    der = bytes(runtime.kms.get_public_key(KeyId=key_id)["PublicKey"])
    return serialization.load_der_public_key(der).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


_runtime: PullRuntime | None = None
_cold_start = True


def get_runtime() -> PullRuntime:
    """The cached runtime, built from the environment on first use (SettingsError if invalid)."""
    global _runtime
    if _runtime is None:
        from ryuzen_bundle.pull_settings import PullSettings  # pydantic: on first use only

        _runtime = PullRuntime(PullSettings.from_environ())
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

        # A SettingsError names variables and partner ids, nothing a caller sent.
        logger.error("pull settings are invalid", extra=settings_error_fields(error))
        return error_response(PullError(500, "internal_error", "the bundle API is misconfigured"))
    return handle(event, runtime)


def handle(event: dict[str, Any], runtime: PullRuntime) -> dict[str, Any]:
    """Answer one proxy event with ``runtime``'s settings and clients (tests call this)."""
    logger.append_keys(partner=None, month=None, route=None)
    try:
        route, month = _route(event)
        logger.append_keys(route=route)
        partner = _partner(event, runtime.settings)
        logger.append_keys(partner=partner)
        if route == BUNDLES_PATH:
            return _list(runtime, partner)
        if route == SIGNING_KEY_PATH:
            return _signing_key(runtime)
        return _bundle_url(runtime, partner, month)
    except PullError as refusal:
        log = logger.error if refusal.status >= 500 else logger.info
        log("request refused", extra={"status": refusal.status, "code": refusal.code})
        return error_response(refusal)
    except Exception as error:  # a bug must still answer JSON, and log nothing it could quote
        logger.error("unexpected error", extra=error_fields(error))
        return error_response(PullError(500, "internal_error", "unexpected error"))


def _route(event: dict[str, Any]) -> tuple[str, str | None]:
    """The route template and the month path parameter; 404/405 otherwise."""
    resource = str(event.get("resource") or "")
    path = str(event.get("path") or "").rstrip("/")
    params = event.get("pathParameters") or {}
    month: str | None = None
    if resource in ROUTES:
        route = resource
        if route == BUNDLE_PATH:
            month = str(params.get("month") or "")
    elif path in (BUNDLES_PATH, SIGNING_KEY_PATH):
        route = path
    elif path.startswith(BUNDLES_PATH + "/") and path.count("/") == 3:
        route, month = BUNDLE_PATH, path.rsplit("/", 1)[1]
    else:
        raise PullError(404, "not_found", "no such resource")
    if event.get("httpMethod") != "GET":
        raise PullError(405, "method_not_allowed", "use GET", {"Allow": "GET"})
    return route, month


def _partner(event: dict[str, Any], settings: PullSettings) -> str:
    partner = identity_of(settings.api_key_partners, api_key_id(event))
    if partner is None:
        raise PullError(403, "unknown_partner", "this API key does not belong to a partner")
    return partner


def _list(runtime: PullRuntime, partner: str) -> dict[str, Any]:
    try:
        bundles = list_bundles(
            runtime.s3_client(), runtime.states(), runtime.settings.bundles_bucket, partner
        )
    except Exception as error:
        raise _storage_unavailable(error) from None
    logger.info("bundles listed", extra={"status": 200, "bundles": len(bundles)})
    return json_response(
        200, {"partner": partner, "bundles": [bundle.listing() for bundle in bundles]}
    )


def _bundle_url(runtime: PullRuntime, partner: str, month: str | None) -> dict[str, Any]:
    try:
        month = validate_month(month or "")
    except InvalidKeyPart:
        raise PullError(400, "invalid_month", "the month must be YYYY-MM") from None
    logger.append_keys(month=month)
    settings = runtime.settings
    try:
        bundle = find_bundle(
            runtime.s3_client(), runtime.states(), settings.bundles_bucket, partner, month
        )
        # Only a CLEANED month has one; for any other, no request is made.
        receipt = (
            None
            if bundle is None
            else find_receipt(runtime.s3_client(), settings.bundles_bucket, bundle)
        )
    except Exception as error:
        raise _storage_unavailable(error) from None
    if bundle is None:
        raise not_found()
    try:
        credentials = signing_credentials(runtime.credentials())
        now = runtime.clock()

        def presign(key: str) -> PresignedUrl:
            return presign_get(
                credentials,
                bucket=settings.bundles_bucket,
                key=key,
                configured_ttl_seconds=settings.stack_config.presigned_url_ttl_seconds,
                region=runtime.region(),
                endpoint_url=settings.presign_endpoint_url,
                now=now,
            )

        presigned = presign(bundle.key)
        receipt_url = None if receipt is None else presign(receipt.key)
    except CredentialsExpiringError:
        raise PullError(
            503,
            "unavailable",
            "the signing credentials are being renewed; retry shortly",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        ) from None
    logger.info(
        "presigned URL issued",
        extra={
            "status": 200,
            "ttl_seconds": presigned.ttl_seconds,
            "clamped": presigned.ttl_seconds < settings.stack_config.presigned_url_ttl_seconds,
            "bytes": bundle.bytes,
            "cleaned": bundle.cleaned,
            "receipt": receipt is not None,
        },
    )
    return json_response(
        200,
        {
            "url": presigned.url,
            "expires_at": rfc3339(presigned.expires_at),
            "sha256": bundle.sha256,
            "bytes": bundle.bytes,
            "receipt": (
                None
                if receipt is None or receipt_url is None
                else {
                    "url": receipt_url.url,
                    "expires_at": rfc3339(receipt_url.expires_at),
                    "sha256": receipt.sha256,
                    "bytes": receipt.bytes,
                }
            ),
        },
    )


def _signing_key(runtime: PullRuntime) -> dict[str, Any]:
    try:
        pem = runtime.public_key_pem()
    except Exception as error:
        logger.error("public key unavailable", extra=error_fields(error))
        raise PullError(
            503, "unavailable", "the signing key cannot be read; retry later", {"Retry-After": "5"}
        ) from None
    return {
        "statusCode": 200,
        # The key changes only when the stack's key is rotated: cacheable for a while.
        "headers": {"Content-Type": PEM_CONTENT_TYPE, "Cache-Control": "max-age=300"},
        "body": pem.decode("ascii"),
        "isBase64Encoded": False,
    }


def _storage_unavailable(error: Exception) -> PullError:
    logger.error("bundle store unavailable", extra=error_fields(error))
    return PullError(
        503,
        "unavailable",
        "the bundle store is unavailable; retry later",
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


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


def error_response(refusal: PullError) -> dict[str, Any]:
    """``{"error", "detail"}`` with the refusal's status and headers."""
    return json_response(
        refusal.status, {"error": refusal.code, "detail": refusal.detail}, refusal.headers
    )
