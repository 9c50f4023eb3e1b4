"""Fixtures for the ingest tests: moto AWS, a small stack, and API Gateway events from files."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from ryuzen_contracts.stack_config import StackConfig
from ryuzen_contracts.tables import audit_table_definition, idempotency_table_definition
from ryuzen_ingest import ingest_handler
from ryuzen_ingest.ingest_handler import IngestRuntime
from ryuzen_ingest.settings import IngestSettings

EVENTS_DIR = Path(__file__).parent / "events"
REGION = "eu-west-1"
RAW_BUCKET = "ryuzen-test-raw"
IDEMPOTENCY_TABLE = "ryuzen-test-idempotency"
AUDIT_TABLE = "ryuzen-test-audit"
EDGE_KEY_ID = "k1edgegw01"  # the apiKeyId in events/apigw_post_events.json
BATCH_KEY_ID = "k2batch0001"

STACK = StackConfig.from_pulumi_values(
    {
        "ryuzen-telemetry:partners": [
            {"id": "acme", "modelPrefixes": ["acme/"]},
            {"id": "nimbus-ai", "modelPrefixes": ["nimbus/", "nimbus-labs/"]},
            {"id": "orbital", "modelPrefixes": ["orbital/"]},
        ],
        "ryuzen-telemetry:ingestClients": [
            {"id": "edge-gateway", "allowedPartners": ["acme", "nimbus-ai", "orbital"]},
            {"id": "batch-runner", "allowedPartners": ["nimbus-ai"]},
        ],
    }
)
API_KEY_CLIENTS = {EDGE_KEY_ID: "edge-gateway", BATCH_KEY_ID: "batch-runner"}


def ingest_environ() -> dict[str, str]:
    """The environment the Pulumi program and the local stack give the ingest Lambda."""
    return {
        "RAW_BUCKET": RAW_BUCKET,
        "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        "AUDIT_TABLE": AUDIT_TABLE,
        "STACK_CONFIG": STACK.to_json(),
        "API_KEY_CLIENTS": json.dumps(API_KEY_CLIENTS),
    }


@pytest.fixture
def ingest_env() -> dict[str, str]:
    """A fresh copy of the ingest Lambda's environment."""
    return ingest_environ()


@cache
def _event_file(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def load_event() -> Callable[[str], Any]:
    """The one loader of ``tests/events/*.json``: a fresh deep copy each call."""
    return lambda name: copy.deepcopy(_event_file(name))


@pytest.fixture
def telemetry_events(load_event: Callable[[str], Any]) -> list[dict[str, Any]]:
    """Three valid-looking events, one per partner."""
    return load_event("telemetry_batch")


@pytest.fixture
def api_event(load_event: Callable[[str], Any]) -> Callable[..., dict[str, Any]]:
    """Build a REST proxy event (payload 1.0) from the fixture file.

    ``body`` may be str or bytes; bytes are sent base64-encoded (as API Gateway sends
    binary media types), or pass ``base64_body=True`` to force it; ``gzip_body=True``
    compresses; ``is_base64_flag`` overrides ``isBase64Encoded`` whatever the body is.
    """

    def build(
        body: str | bytes | None,
        *,
        content_type: str | None = "application/json",
        gzip_body: bool = False,
        base64_body: bool | None = None,
        api_key_id: str | None = EDGE_KEY_ID,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        path: str = "/v1/events",
        is_base64_flag: bool | None = None,
    ) -> dict[str, Any]:
        event = load_event("apigw_post_events")
        data = body.encode("utf-8") if isinstance(body, str) else body
        if gzip_body and data is not None:
            data = gzip.compress(data)
        send_base64 = (
            base64_body if base64_body is not None else isinstance(body, bytes) or gzip_body
        )
        wanted = {"Content-Type": content_type}
        if gzip_body:
            wanted["Content-Encoding"] = "gzip"
        wanted.update(headers or {})
        for name, value in wanted.items():
            event["headers"].pop(name, None)
            event["multiValueHeaders"].pop(name, None)
            if value is not None:
                event["headers"][name] = value
                event["multiValueHeaders"][name] = [value]
        if data is None:
            event["body"] = None
        elif send_base64:
            event["body"] = base64.b64encode(data).decode("ascii")
        else:
            event["body"] = data.decode("utf-8")
        event["isBase64Encoded"] = bool(send_base64 and data is not None)
        if is_base64_flag is not None:  # to send a body that claims base64 but is not
            event["isBase64Encoded"] = is_base64_flag
        event["httpMethod"] = method
        event["requestContext"]["httpMethod"] = method
        event["path"] = path
        event["resource"] = path
        event["requestContext"]["identity"]["apiKeyId"] = api_key_id
        return event

    return build


@dataclass(frozen=True)
class MotoAws:
    """One in-process moto per test module; creating boto3 clients is the slow part."""

    s3: Any
    dynamodb: Any

    def reset(self) -> None:
        """An empty RAW bucket and empty tables, as a fresh stack has them."""
        listing = self.s3.list_objects_v2(Bucket=RAW_BUCKET)
        for item in listing.get("Contents", []):
            self.s3.delete_object(Bucket=RAW_BUCKET, Key=item["Key"])
        existing = set(self.dynamodb.list_tables()["TableNames"])
        for table in existing & {AUDIT_TABLE, IDEMPOTENCY_TABLE}:
            self.dynamodb.delete_table(TableName=table)  # some tests delete one on purpose
        self._create_tables()

    def _create_tables(self) -> None:
        self.dynamodb.create_table(**audit_table_definition(AUDIT_TABLE))
        self.dynamodb.create_table(**idempotency_table_definition(IDEMPOTENCY_TABLE))


# Module scope, not session: while a mock_aws is active, every other package's own
# mock_aws nests inside it and starts with this one's leftovers instead of an empty AWS,
# so a session-long mock breaks the tests run after these in a combined pytest run.
@pytest.fixture(scope="module")
def moto_aws() -> Iterator[MotoAws]:
    """In-process moto with fake credentials; nothing leaves the machine."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        patch.delenv("AWS_PROFILE", raising=False)
        with mock_aws():
            s3 = boto3.client("s3", region_name=REGION)
            s3.create_bucket(
                Bucket=RAW_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
            aws = MotoAws(s3=s3, dynamodb=boto3.client("dynamodb", region_name=REGION))
            aws._create_tables()
            yield aws


@pytest.fixture
def aws(moto_aws: MotoAws) -> MotoAws:
    """The session's moto, emptied for this test."""
    moto_aws.reset()
    return moto_aws


@pytest.fixture
def s3(aws: MotoAws) -> Any:
    return aws.s3


@pytest.fixture
def dynamodb(aws: MotoAws) -> Any:
    return aws.dynamodb


@pytest.fixture
def settings() -> IngestSettings:
    return IngestSettings.from_environ(ingest_environ())


@pytest.fixture
def runtime(settings: IngestSettings, s3: Any, dynamodb: Any) -> IngestRuntime:
    """A runtime with the moto clients injected, as the handler would cache it."""
    return IngestRuntime.from_settings(settings, s3=s3, dynamodb=dynamodb)


@pytest.fixture
def call(runtime: IngestRuntime) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Answer one proxy event through ``ingest_handler.handle`` with the test runtime."""
    return lambda event: ingest_handler.handle(event, None, runtime)


@pytest.fixture
def raw_keys(s3: Any) -> Callable[[], list[str]]:
    """Every key in the RAW bucket."""

    def keys() -> list[str]:
        listing = s3.list_objects_v2(Bucket=RAW_BUCKET)
        return [item["Key"] for item in listing.get("Contents", [])]

    return keys


@pytest.fixture
def read_raw(s3: Any) -> Callable[[str], tuple[list[str], dict[str, Any]]]:
    """The lines of a RAW object and its head, after checking its stored SHA-256 checksum."""

    def read(key: str) -> tuple[list[str], dict[str, Any]]:
        head = s3.head_object(Bucket=RAW_BUCKET, Key=key, ChecksumMode="ENABLED")
        stored = s3.get_object(Bucket=RAW_BUCKET, Key=key)["Body"].read()
        assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(stored).digest()).decode()
        text = gzip.decompress(stored).decode("utf-8")
        assert text.endswith("\n")
        return text[:-1].split("\n"), head

    return read


@pytest.fixture(autouse=True)
def _fresh_handler_runtime() -> Iterator[None]:
    # lambda_handler caches its runtime per process; tests must not share one.
    ingest_handler.reset_runtime()
    yield
    ingest_handler.reset_runtime()
