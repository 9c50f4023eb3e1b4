"""Helpers for the pull-handler tests: a moto bundle bucket and bundle-state table,
settings, and REST proxy events.

Plain helpers, not fixtures (this package's conftest belongs to the builder's tests); each
test module wraps ``PullWorld`` in its own small fixture.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.credentials import Credentials, RefreshableCredentials
from moto import mock_aws
from ryuzen_bundle.pull_handler import PullRuntime, handle
from ryuzen_bundle.pull_settings import PullSettings
from ryuzen_contracts.audit_log import iso_millis
from ryuzen_contracts.bundle_state import BundleState, BundleStateStore
from ryuzen_contracts.key_layout import bundle_key, deletion_receipt_key
from ryuzen_contracts.signing import generate_local_key
from ryuzen_contracts.stack_config import StackConfig
from ryuzen_contracts.tables import audit_table_definition

REGION = "eu-west-1"
BUCKET = "ryuzen-test-bundles"
AUDIT_TABLE = "ryuzen-test-audit"
PRESIGN_ENDPOINT = "http://127.0.0.1:4599"
ACME_KEY_ID = "k-acme-0001"
NIMBUS_KEY_ID = "k-nimbus-0001"
INGEST_KEY_ID = "k-edge-gateway"  # an ingest client's key: the gateway lets it through
CONFIGURED_TTL = 900

STACK = StackConfig.from_pulumi_values(
    {
        "ryuzen-telemetry:partners": [
            {"id": "acme", "modelPrefixes": ["acme/"]},
            {"id": "nimbus-ai", "modelPrefixes": ["nimbus/"]},
        ],
        "ryuzen-telemetry:ingestClients": [
            {"id": "edge-gateway", "allowedPartners": ["acme", "nimbus-ai"]}
        ],
        "ryuzen-telemetry:presignedUrlTtlSeconds": CONFIGURED_TTL,
    }
)
API_KEY_PARTNERS = {ACME_KEY_ID: "acme", NIMBUS_KEY_ID: "nimbus-ai"}
# The builder's path through the bundle states; a test month is walked along it.
STATE_PATH = (
    BundleState.BUILDING,
    BundleState.BUILT,
    BundleState.DELIVERED,
    BundleState.CLEANED,
)


def pull_environ(public_key_file: Path) -> dict[str, str]:
    """The environment Pulumi / the local stack give the pull Lambda (local key file)."""
    return {
        "BUNDLES_BUCKET": BUCKET,
        "AUDIT_TABLE": AUDIT_TABLE,
        "STACK_CONFIG": STACK.to_json(),
        "API_KEY_PARTNERS": json.dumps(API_KEY_PARTNERS),
        "SIGNING_PUBLIC_KEY_FILE": str(public_key_file),
        "PRESIGN_ENDPOINT_URL": PRESIGN_ENDPOINT,
    }


class FakeSession:
    """Stands in for a boto3 Session: the credentials the handler signs URLs with."""

    def __init__(self, credentials: Any, region_name: str = REGION) -> None:
        self.credentials = credentials
        self.region_name = region_name

    def get_credentials(self) -> Any:
        return self.credentials


def static_credentials() -> Credentials:
    """Credentials without a visible expiry (what Lambda's environment variables give)."""
    return Credentials("AKIDSTATIC", "static-secret")


def expiring_credentials(seconds_left: float) -> RefreshableCredentials:
    """Temporary credentials expiring in ``seconds_left``, whose refresh cannot extend them."""
    expiry = datetime.now(UTC) + timedelta(seconds=seconds_left)

    def refresh() -> dict[str, str]:  # what an STS-backed provider would return
        return {
            "access_key": "ASIATEMPORARY",
            "secret_key": "temporary-secret",
            "token": "temporary-session-token",
            "expiry_time": expiry.isoformat(),
        }

    return RefreshableCredentials(
        "ASIATEMPORARY",
        "temporary-secret",
        "temporary-session-token",
        expiry,
        refresh,
        "assume-role",
    )


def proxy_event(
    path: str,
    *,
    key_id: str | None = ACME_KEY_ID,
    method: str = "GET",
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A REST proxy (v1) event as API Gateway sends it for ``method path``."""
    if resource is None:
        if path.startswith("/v1/bundles/"):
            resource = "/v1/bundles/{month}"
            path_parameters = {"month": path.rsplit("/", 1)[1]}
        else:
            resource = path
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Host": "api.example.com", "x-api-key": "secret-value-never-logged"},
        "multiValueHeaders": None,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "requestId": request_id,
            "stage": "prod",
            "identity": {
                "sourceIp": "203.0.113.10",
                "apiKey": "secret-value-never-logged" if key_id else None,
                "apiKeyId": key_id,
            },
        },
        "body": None,
        "isBase64Encoded": False,
    }


@dataclass
class Answer:
    """A handler answer, decoded."""

    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class PullWorld:
    """A moto bundle bucket and state table, the handler's runtime over them, and helpers."""

    s3: Any
    states: BundleStateStore
    runtime: PullRuntime
    public_key_file: Path
    uploaded: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def put_bundle(
        self,
        partner: str,
        month: str,
        data: bytes | None = None,
        *,
        sha256: str | None = None,
        state: BundleState | None = BundleState.DELIVERED,
        delivered_at: datetime | None = None,
        receipt: bytes | None = None,
    ) -> bytes:
        """Store a bundle as the builder does: whole-object SHA-256 in metadata ``sha256``,
        and the month's bundle state moved to ``state`` (None: no state at all).

        ``sha256`` overrides the metadata only; the state always records the real digest.
        ``delivered_at`` (default: now) is the time the ``DELIVERED`` state records.
        ``receipt``: a deletion receipt stored as cleanup stores it, before ``CLEANED``,
        whose state then records its digest (only when ``state`` is ``CLEANED``).
        """
        body = data if data is not None else f"zip of {partner} {month}".encode() * 10
        digest = hashlib.sha256(body).hexdigest()
        metadata = {"sha256": sha256 if sha256 is not None else digest}
        self.s3.put_object(
            Bucket=BUCKET, Key=bundle_key(partner, month), Body=body, Metadata=metadata
        )
        self.uploaded[(partner, month)] = body
        receipt_sha256 = None
        if receipt is not None:
            receipt_sha256 = self.put_receipt(partner, month, receipt)
        if state is not None:
            self.move_state(
                partner,
                month,
                state,
                digest,
                delivered_at=delivered_at,
                receipt_sha256=receipt_sha256,
            )
        return body

    def put_receipt(self, partner: str, month: str, body: bytes) -> str:
        """Store a deletion receipt beside the bundle as cleanup does; its SHA-256."""
        self.s3.put_object(
            Bucket=BUCKET,
            Key=deletion_receipt_key(partner, month),
            Body=body,
            ContentType="application/json",
            ChecksumAlgorithm="SHA256",
        )
        return hashlib.sha256(body).hexdigest()

    def move_state(
        self,
        partner: str,
        month: str,
        to: BundleState,
        sha256: str,
        *,
        delivered_at: datetime | None = None,
        receipt_sha256: str | None = None,
    ) -> None:
        """Walk a new month along the builder's (and cleanup's) path up to ``to``, with
        the attributes each records."""
        for state in STATE_PATH[: STATE_PATH.index(to) + 1]:
            attributes: dict[str, str | int | bool] | None = None
            if state is BundleState.DELIVERED:
                attributes = {
                    "sha256": sha256,
                    "checksum_verified": True,
                    "delivered_at": iso_millis(delivered_at or datetime.now(UTC)),
                }
            elif state is BundleState.CLEANED and receipt_sha256 is not None:
                attributes = {"receipt_sha256": receipt_sha256}
            self.states.transition(partner, month, state, attributes=attributes)

    def call(self, path: str, **options: Any) -> Answer:
        result = handle(proxy_event(path, **options), self.runtime)
        body = result.get("body") or ""
        if result.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        return Answer(result["statusCode"], dict(result.get("headers") or {}), body)


@contextmanager
def pull_world(
    tmp_path: Path,
    credentials: Any = None,
    *,
    environ: dict[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[PullWorld]:
    """A world inside ``mock_aws``; signing credentials default to static ones.

    ``environ`` adds to (or overrides) the pull environment; with ``PRESIGN_ROLE_ARN`` in
    it, the runtime assumes that role through moto's STS. ``clock`` is the runtime's clock.
    """
    public_key = tmp_path / "signing-key.pub.pem"
    generate_local_key(tmp_path / "signing-key.pem", public_key)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(**audit_table_definition(AUDIT_TABLE))
        settings = PullSettings.from_environ({**pull_environ(public_key), **(environ or {})})
        runtime = PullRuntime(
            settings,
            s3=s3,
            dynamodb=dynamodb,
            # moto's STS, made only when a role is to be assumed (a client costs ~80 ms)
            sts=boto3.client("sts", region_name=REGION) if settings.presign_role_arn else None,
            session=FakeSession(credentials or static_credentials()),
        )
        if clock is not None:
            runtime.clock = clock
        yield PullWorld(s3, BundleStateStore(dynamodb, AUDIT_TABLE), runtime, public_key)


def url_query(url: str) -> dict[str, str]:
    """The query parameters of a URL, one value each."""
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
