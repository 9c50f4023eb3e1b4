"""TelemetryEvent v1 — the schema *is* the privacy policy, so it fails closed.

Every field is a bounded metric, an enum, an id with a strict pattern, or one of the
few bounded free-text fields (``outcome.error_message``, ``attributes`` values) that the
sanitize stage scrubs. ``extra="forbid"`` at every level turns an unknown field such as
``prompt`` or ``messages`` into a validation error instead of a silently dropped key,
and ``strict=True`` refuses type coercion (``"12"`` is not a number, ``1`` is not
``true``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from ryuzen_contracts.ids import EVENT_ID_PATTERN

SCHEMA_VERSION = "1.0"
SCHEMA_ID = "https://ryuzen.dev/schemas/telemetry-event.v1.json"

ERROR_MESSAGE_MAX_CHARS = 1024
ATTRIBUTE_VALUE_MAX_CHARS = 256
ATTRIBUTES_MAX_KEYS = 16
ATTRIBUTE_KEY_PATTERN = r"^[a-z][a-z0-9_.]{0,63}$"

# One day in milliseconds: no single request legitimately takes longer.
MAX_DURATION_MS = 86_400_000.0
MAX_TOKENS = 10_000_000

# RFC 3339 in UTC only: a "Z" or "+00:00" offset, at most microsecond precision. ASCII
# digits only ([0-9], not \d, which in Python also matches digits such as "٢"); applied
# with fullmatch, since "$" would also accept a trailing newline. Published in the schema.
RFC3339_UTC_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|\+00:00)$"
)
_RFC3339_UTC = re.compile(RFC3339_UTC_PATTERN.removeprefix("^").removesuffix("$"))

# Model ids are "<owner>/<name>": ASCII only (no homoglyphs), single separators only (no
# "..", so no path traversal), and the owner part is what partner prefixes match on.
MODEL_ID_PATTERN = r"^[a-z0-9]+(?:[-_.][a-z0-9]+)*/[A-Za-z0-9]+(?:[-_.:][A-Za-z0-9]+)*$"
VERSION_PATTERN = r"^[A-Za-z0-9]+(?:[-_.+][A-Za-z0-9]+)*$"
REGION_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+){0,4}$"
ERROR_CODE_PATTERN = r"^[A-Za-z0-9]+(?:[_.:-][A-Za-z0-9]+)*$"
SDK_PATTERN = r"^[a-z0-9]+(?:[-_.][a-z0-9]+)*$"


def _float_only(value: Any) -> Any:
    if isinstance(value, int):
        raise ValueError(f"integer attribute values must be within ±2**53, got {value}")
    return value


Duration = Annotated[float, Field(strict=True, ge=0, le=MAX_DURATION_MS, allow_inf_nan=False)]
TokenCount = Annotated[StrictInt, Field(ge=0, le=MAX_TOKENS)]
AttributeValue = (
    Annotated[str, Field(strict=True, max_length=ATTRIBUTE_VALUE_MAX_CHARS)]
    | StrictBool
    | Annotated[StrictInt, Field(ge=-(2**53), le=2**53)]
    | Annotated[
        float,
        # Even a strict float accepts an int, so an int beyond the int branch's bound
        # (2**60) used to land here and come out as a rounded float: take floats only.
        BeforeValidator(_float_only),
        Field(strict=True, allow_inf_nan=False, ge=-(2**53), le=2**53),
    ]
)
AttributeKey = Annotated[str, Field(pattern=ATTRIBUTE_KEY_PATTERN)]


class _Closed(BaseModel):
    """Base for every level of the event: unknown keys and type coercion are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Model(_Closed):
    """The model that served the request; ``id`` routes the event to its partner."""

    id: Annotated[str, Field(min_length=3, max_length=128, pattern=MODEL_ID_PATTERN)]
    version: Annotated[str, Field(min_length=1, max_length=64, pattern=VERSION_PATTERN)] | None = (
        None
    )


class Metrics(_Closed):
    """Runtime metrics of one inference."""

    latency_ms: Duration
    ttft_ms: Duration | None = None
    input_tokens: TokenCount | None = None
    output_tokens: TokenCount | None = None
    retries: Annotated[StrictInt, Field(ge=0, le=100)] = 0
    cache_hit: StrictBool | None = None

    @model_validator(mode="after")
    def _ttft_within_latency(self) -> Metrics:
        if self.ttft_ms is not None and self.ttft_ms > self.latency_ms:
            raise ValueError("ttft_ms must not exceed latency_ms")
        return self


class Outcome(_Closed):
    """How the request ended. ``error_message`` is bounded free text (scrubbed downstream)."""

    status: Literal["ok", "error", "timeout", "cancelled", "rate_limited", "filtered"]
    http_status: Annotated[StrictInt, Field(ge=100, le=599)] | None = None
    error_code: Annotated[str, Field(max_length=64, pattern=ERROR_CODE_PATTERN)] | None = None
    error_message: Annotated[str, Field(max_length=ERROR_MESSAGE_MAX_CHARS)] | None = None
    finish_reason: (
        Literal["stop", "length", "content_filter", "tool_calls", "error", "cancelled"] | None
    ) = None


class Delivery(_Closed):
    """The delivery outcome of a response to its consumer."""

    channel: Literal["sync", "stream", "batch", "webhook", "websocket", "grpc"]
    attempts: Annotated[StrictInt, Field(ge=1, le=100)]
    delivered: StrictBool
    bytes: Annotated[StrictInt, Field(ge=0, le=10 * 2**30)] | None = None


class ClientInfo(_Closed):
    """The SDK that emitted the event."""

    sdk: Annotated[str, Field(min_length=1, max_length=64, pattern=SDK_PATTERN)]
    sdk_version: Annotated[str, Field(min_length=1, max_length=32, pattern=VERSION_PATTERN)]


class TelemetryEvent(_Closed):
    """One runtime-metrics or delivery-outcome event. Never prompt or completion text."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        title="TelemetryEvent",
        json_schema_extra={
            "$id": SCHEMA_ID,
            "$schema": "https://json-schema.org/draft/2020-12/schema",
        },
    )

    event_id: Annotated[str, Field(pattern=EVENT_ID_PATTERN, description="UUID or ULID")]
    schema_version: Literal["1.0"]
    kind: Literal["inference", "delivery"]
    occurred_at: Annotated[
        datetime,
        Field(
            description="RFC 3339 timestamp in UTC",
            json_schema_extra={"pattern": RFC3339_UTC_PATTERN},
        ),
    ]
    model: Model
    region: Annotated[str, Field(min_length=2, max_length=32, pattern=REGION_PATTERN)] | None = None
    metrics: Metrics | None = None
    outcome: Outcome
    delivery: Delivery | None = None
    client: ClientInfo | None = None
    # additionalProperties=false in the published schema: without it a JSON Schema
    # validator accepts any key that misses the key pattern, while this model refuses it.
    attributes: Annotated[
        dict[AttributeKey, AttributeValue],
        Field(
            max_length=ATTRIBUTES_MAX_KEYS,
            json_schema_extra={"additionalProperties": False},
        ),
    ] = Field(default_factory=dict)

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _rfc3339_utc(cls, value: Any) -> datetime:
        # Runs before the strict datetime check: only an RFC 3339 UTC string is accepted,
        # never a Unix number, a date or a local-time offset. A timezone-aware datetime in
        # UTC is accepted too, so model_validate(event.model_dump()) round-trips.
        if isinstance(value, datetime) and value.utcoffset() == timedelta(0):
            return value.astimezone(UTC)
        if not isinstance(value, str) or not _RFC3339_UTC.fullmatch(value):
            raise ValueError(
                "occurred_at must be an RFC 3339 UTC timestamp such as 2026-11-28T05:00:00Z"
            )
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)

    @model_validator(mode="after")
    def _kind_has_its_section(self) -> TelemetryEvent:
        if self.kind == "inference" and self.metrics is None:
            raise ValueError("an inference event needs metrics")
        if self.kind == "delivery" and self.delivery is None:
            raise ValueError("a delivery event needs delivery")
        return self


def telemetry_event_json_schema() -> str:
    """The JSON Schema of TelemetryEvent v1, serialized exactly as the committed file."""
    schema = TelemetryEvent.model_json_schema()
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
