"""TelemetryEvent v1: the schema is the privacy policy, so every case here must fail closed.

Every table is checked twice, through ``model_validate`` (Python dicts, what a stage
builds) and ``model_validate_json`` (bytes, what a client sends): pydantic's two input
modes coerce differently, and either could let something through.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError
from ryuzen_contracts.telemetry_event import (
    ATTRIBUTE_VALUE_MAX_CHARS,
    ATTRIBUTES_MAX_KEYS,
    ERROR_MESSAGE_MAX_CHARS,
    MAX_DURATION_MS,
    MAX_TOKENS,
    TelemetryEvent,
)

ULID = "01JDQ3ZK9M8X7V6T5S4R3Q2P1N"
UUID = "3f2b8c1e-9d4a-4e7b-8c2d-1a5f6e7d8c9b"

MINIMAL_INFERENCE: dict[str, Any] = {
    "event_id": ULID,
    "schema_version": "1.0",
    "kind": "inference",
    "occurred_at": "2026-11-28T05:00:00Z",
    "model": {"id": "acme/titan-1"},
    "metrics": {"latency_ms": 812.5},
    "outcome": {"status": "ok"},
}

FULL_INFERENCE: dict[str, Any] = {
    "event_id": UUID,
    "schema_version": "1.0",
    "kind": "inference",
    "occurred_at": "2026-11-28T05:00:00.123456+00:00",
    "model": {"id": "acme/titan-1.5_large:beta", "version": "2026-11-01+build.7"},
    "region": "eu-west-1",
    "metrics": {
        "latency_ms": 812.5,
        "ttft_ms": 95.25,
        "input_tokens": 512,
        "output_tokens": 1024,
        "retries": 1,
        "cache_hit": False,
    },
    "outcome": {
        "status": "error",
        "http_status": 503,
        "error_code": "upstream.unavailable",
        "error_message": "backend pool exhausted after 1 retry",
        "finish_reason": "error",
    },
    "delivery": {"channel": "stream", "attempts": 2, "delivered": True, "bytes": 4096},
    "client": {"sdk": "ryuzen-python", "sdk_version": "1.4.2"},
    "attributes": {"tier": "pro", "batch.size": 8, "beta_user": True, "temperature": 0.7},
}

MINIMAL_DELIVERY: dict[str, Any] = {
    "event_id": ULID,
    "schema_version": "1.0",
    "kind": "delivery",
    "occurred_at": "2026-11-28T05:00:00Z",
    "model": {"id": "nimbus/cirrus"},
    "outcome": {"status": "ok"},
    "delivery": {"channel": "webhook", "attempts": 1, "delivered": True},
}

FULL_DELIVERY: dict[str, Any] = {
    **copy.deepcopy(FULL_INFERENCE),
    "kind": "delivery",
    "event_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "outcome": {"status": "timeout", "http_status": 504, "finish_reason": "cancelled"},
    "delivery": {"channel": "grpc", "attempts": 100, "delivered": False, "bytes": 0},
}


# --- helpers -------------------------------------------------------------------------


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with the dotted ``path`` set to ``value`` (parents created)."""
    event = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = event
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return event


def removed(base: dict[str, Any], path: str) -> dict[str, Any]:
    """A deep copy of ``base`` without the dotted ``path``."""
    event = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = event
    for part in parents:
        node = node[part]
    del node[last]
    return event


def via_python(data: dict[str, Any]) -> TelemetryEvent:
    return TelemetryEvent.model_validate(data)


def via_json(data: dict[str, Any]) -> TelemetryEvent:
    # json.dumps writes NaN / Infinity tokens for non-finite floats, as a sloppy client would.
    return TelemetryEvent.model_validate_json(json.dumps(data))


VALIDATORS = [
    pytest.param(via_python, id="python"),
    pytest.param(via_json, id="json"),
]


def assert_refused(
    validate: Callable[[dict[str, Any]], TelemetryEvent],
    data: dict[str, Any],
    loc: tuple[str | int, ...],
) -> ValidationError:
    """Validation fails, with an error located at (or under) ``loc``."""
    with pytest.raises(ValidationError) as caught:
        validate(data)
    locations = [error["loc"] for error in caught.value.errors()]
    assert any(tuple(found[: len(loc)]) == loc for found in locations), (
        f"expected an error at {loc}, got {locations}"
    )
    return caught.value


# --- valid events --------------------------------------------------------------------


@pytest.mark.parametrize("validate", VALIDATORS)
@pytest.mark.parametrize(
    "data",
    [
        pytest.param(MINIMAL_INFERENCE, id="inference-minimal"),
        pytest.param(FULL_INFERENCE, id="inference-full"),
        pytest.param(MINIMAL_DELIVERY, id="delivery-minimal"),
        pytest.param(FULL_DELIVERY, id="delivery-full"),
    ],
)
def test_valid_events_are_accepted(
    validate: Callable[[dict[str, Any]], TelemetryEvent], data: dict[str, Any]
) -> None:
    event = validate(data)

    assert event.event_id == data["event_id"]
    assert event.kind == data["kind"]
    assert event.model.id == data["model"]["id"]
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert event.attributes == data.get("attributes", {})


def test_full_event_keeps_every_value() -> None:
    event = via_json(FULL_INFERENCE)

    assert event.occurred_at == datetime(2026, 11, 28, 5, 0, 0, 123456, tzinfo=UTC)
    assert event.metrics is not None
    assert event.metrics.latency_ms == 812.5
    assert event.metrics.input_tokens == 512
    assert event.metrics.cache_hit is False
    assert event.outcome.http_status == 503
    assert event.delivery is not None
    assert event.delivery.bytes == 4096
    assert event.client is not None
    assert event.client.sdk == "ryuzen-python"
    # Smart-union: every attribute keeps its JSON type (no int turned float, no bool turned int).
    assert [type(value) for value in event.attributes.values()] == [str, int, bool, float]


def test_defaults_of_a_minimal_event() -> None:
    event = via_python(MINIMAL_INFERENCE)

    assert event.metrics is not None
    assert event.metrics.retries == 0
    assert event.region is None
    assert event.delivery is None
    assert event.client is None
    assert event.attributes == {}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(MINIMAL_INFERENCE, id="inference-minimal"),
        pytest.param(FULL_INFERENCE, id="inference-full"),
        pytest.param(MINIMAL_DELIVERY, id="delivery-minimal"),
        pytest.param(FULL_DELIVERY, id="delivery-full"),
    ],
)
def test_serialization_round_trips(data: dict[str, Any]) -> None:
    event = via_python(data)

    assert TelemetryEvent.model_validate_json(event.model_dump_json()) == event
    assert TelemetryEvent.model_validate(event.model_dump(mode="json")) == event
    # A stage re-validating a dumped event (datetime objects, not strings) must work too.
    assert TelemetryEvent.model_validate(event.model_dump()) == event


def test_event_is_frozen() -> None:
    event = via_python(MINIMAL_INFERENCE)

    with pytest.raises(ValidationError):
        event.kind = "delivery"  # type: ignore[misc]


# --- unknown fields: fail closed at every level ----------------------------------------


@pytest.mark.parametrize("validate", VALIDATORS)
@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param("prompt", "What is my diagnosis?", id="top-prompt"),
        pytest.param("messages", [{"role": "user", "content": "hi"}], id="top-messages"),
        pytest.param("completion", "Sure! Here is...", id="top-completion"),
        pytest.param("user_id", "u-123", id="top-user_id"),
        pytest.param("Event_Id", ULID, id="top-case-variant-of-known-key"),
        pytest.param("model.prompt", "hi", id="model-prompt"),
        pytest.param("model.messages", [], id="model-messages"),
        pytest.param("metrics.prompt", "hi", id="metrics-prompt"),
        pytest.param("metrics.prompt_tokens_text", "hi", id="metrics-unknown"),
        pytest.param("outcome.messages", ["hi"], id="outcome-messages"),
        pytest.param("outcome.completion", "text", id="outcome-completion"),
        pytest.param("delivery.prompt", "hi", id="delivery-prompt"),
        pytest.param("delivery.payload", "{...}", id="delivery-payload"),
        pytest.param("client.messages", [], id="client-messages"),
        pytest.param("client.user_agent", "Mozilla/5.0", id="client-unknown"),
    ],
)
def test_unknown_fields_are_refused_at_every_level(
    validate: Callable[[dict[str, Any]], TelemetryEvent], path: str, value: Any
) -> None:
    error = assert_refused(validate, changed(FULL_INFERENCE, path, value), tuple(path.split(".")))

    assert any(e["type"] == "extra_forbidden" for e in error.errors())


@pytest.mark.parametrize("validate", VALIDATORS)
def test_messages_as_an_attribute_value_is_refused(
    validate: Callable[[dict[str, Any]], TelemetryEvent],
) -> None:
    # The one open map cannot smuggle a chat transcript either: values are scalars only.
    data = changed(MINIMAL_INFERENCE, "attributes", {"messages": [{"role": "user"}]})

    assert_refused(validate, data, ("attributes", "messages"))


# --- boundaries: just inside is accepted, just outside is refused ----------------------

# ttft_ms 0 so that moving latency_ms down to 0 tests latency's bound, not ttft <= latency.
BOUNDARY_BASE = changed(FULL_INFERENCE, "metrics.ttft_ms", 0)

INSIDE = [
    pytest.param("metrics.latency_ms", 0, id="latency-zero"),
    pytest.param("metrics.latency_ms", 0.0, id="latency-zero-float"),
    pytest.param("metrics.latency_ms", MAX_DURATION_MS, id="latency-max"),
    pytest.param("metrics.latency_ms", 86_400_000, id="latency-max-int"),
    pytest.param("metrics.ttft_ms", 0, id="ttft-zero"),
    pytest.param("metrics.input_tokens", 0, id="input-tokens-zero"),
    pytest.param("metrics.input_tokens", MAX_TOKENS, id="input-tokens-max"),
    pytest.param("metrics.output_tokens", MAX_TOKENS, id="output-tokens-max"),
    pytest.param("metrics.retries", 0, id="retries-zero"),
    pytest.param("metrics.retries", 100, id="retries-max"),
    pytest.param("outcome.http_status", 100, id="http-status-min"),
    pytest.param("outcome.http_status", 599, id="http-status-max"),
    pytest.param("outcome.error_message", "x" * ERROR_MESSAGE_MAX_CHARS, id="error-message-1024"),
    pytest.param("outcome.error_message", "", id="error-message-empty"),
    pytest.param("outcome.error_code", "E" * 64, id="error-code-64"),
    pytest.param("delivery.attempts", 1, id="attempts-min"),
    pytest.param("delivery.attempts", 100, id="attempts-max"),
    pytest.param("delivery.bytes", 0, id="bytes-zero"),
    pytest.param("delivery.bytes", 10 * 2**30, id="bytes-max"),
    pytest.param("model.id", "a/b", id="model-id-shortest"),
    pytest.param("model.id", "acme/" + "m" * 123, id="model-id-128"),
    pytest.param("model.version", "v" * 64, id="model-version-64"),
    pytest.param("region", "eu", id="region-2"),
    pytest.param("client.sdk_version", "1" * 32, id="sdk-version-32"),
    pytest.param("attributes", {"note": "x" * ATTRIBUTE_VALUE_MAX_CHARS}, id="attribute-value-256"),
    pytest.param(
        "attributes", {f"k{i}": i for i in range(ATTRIBUTES_MAX_KEYS)}, id="attributes-16-keys"
    ),
    pytest.param("attributes", {"a" * 64: 1}, id="attribute-key-64"),
    pytest.param("attributes", {"a.b_c9": 1}, id="attribute-key-dot-underscore"),
    pytest.param("attributes", {"n": 2**53}, id="attribute-int-max"),
    pytest.param("attributes", {"n": -(2**53)}, id="attribute-int-min"),
    pytest.param("attributes", {"f": -1.5e15}, id="attribute-float"),
    pytest.param("attributes", {"s": ""}, id="attribute-empty-string"),
]


@pytest.mark.parametrize("validate", VALIDATORS)
@pytest.mark.parametrize(("path", "value"), INSIDE)
def test_values_just_inside_bounds_are_accepted(
    validate: Callable[[dict[str, Any]], TelemetryEvent], path: str, value: Any
) -> None:
    event = validate(changed(BOUNDARY_BASE, path, value))

    node: Any = event
    for part in path.split("."):
        node = getattr(node, part)
    assert node == value


OUTSIDE = [
    pytest.param("metrics.latency_ms", -0.001, id="latency-negative"),
    pytest.param("metrics.latency_ms", MAX_DURATION_MS + 0.001, id="latency-over-a-day"),
    pytest.param("metrics.ttft_ms", -1, id="ttft-negative"),
    pytest.param("metrics.input_tokens", -1, id="input-tokens-negative"),
    pytest.param("metrics.input_tokens", MAX_TOKENS + 1, id="input-tokens-over"),
    pytest.param("metrics.output_tokens", MAX_TOKENS + 1, id="output-tokens-over"),
    pytest.param("metrics.retries", -1, id="retries-negative"),
    pytest.param("metrics.retries", 101, id="retries-over"),
    pytest.param("outcome.http_status", 99, id="http-status-under"),
    pytest.param("outcome.http_status", 600, id="http-status-over"),
    pytest.param(
        "outcome.error_message", "x" * (ERROR_MESSAGE_MAX_CHARS + 1), id="error-message-1025"
    ),
    pytest.param("outcome.error_code", "E" * 65, id="error-code-65"),
    pytest.param("outcome.error_code", "not allowed", id="error-code-space"),
    pytest.param("outcome.status", "OK", id="status-not-in-enum"),
    pytest.param("outcome.finish_reason", "eos", id="finish-reason-not-in-enum"),
    pytest.param("delivery.attempts", 0, id="attempts-zero"),
    pytest.param("delivery.attempts", 101, id="attempts-over"),
    pytest.param("delivery.bytes", -1, id="bytes-negative"),
    pytest.param("delivery.bytes", 10 * 2**30 + 1, id="bytes-over"),
    pytest.param("delivery.channel", "email", id="channel-not-in-enum"),
    pytest.param("model.id", "acme/" + "m" * 124, id="model-id-129"),
    pytest.param("model.version", "v" * 65, id="model-version-65"),
    pytest.param("model.version", "", id="model-version-empty"),
    pytest.param("region", "e", id="region-1"),
    pytest.param("region", "EU-WEST-1", id="region-upper"),
    pytest.param("client.sdk", "", id="sdk-empty"),
    pytest.param("client.sdk", "Ryuzen SDK", id="sdk-space"),
    pytest.param("client.sdk_version", "1" * 33, id="sdk-version-33"),
    pytest.param("schema_version", "2.0", id="schema-version-2"),
    pytest.param("kind", "chat", id="kind-not-in-enum"),
    pytest.param(
        "attributes", {"note": "x" * (ATTRIBUTE_VALUE_MAX_CHARS + 1)}, id="attribute-value-257"
    ),
    pytest.param(
        "attributes",
        {f"k{i}": i for i in range(ATTRIBUTES_MAX_KEYS + 1)},
        id="attributes-17-keys",
    ),
    pytest.param("attributes", {"a" * 65: 1}, id="attribute-key-65"),
    pytest.param("attributes", {"User": 1}, id="attribute-key-upper"),
    pytest.param("attributes", {"1st": 1}, id="attribute-key-digit-first"),
    pytest.param("attributes", {"_x": 1}, id="attribute-key-underscore-first"),
    pytest.param("attributes", {"user email": 1}, id="attribute-key-space"),
    pytest.param("attributes", {"user-email": 1}, id="attribute-key-dash"),
    pytest.param("attributes", {"a/b": 1}, id="attribute-key-slash"),
    pytest.param("attributes", {"": 1}, id="attribute-key-empty"),
    pytest.param("attributes", {"tier\n": 1}, id="attribute-key-trailing-newline"),
    pytest.param("attributes", {"ti\u0435r": 1}, id="attribute-key-cyrillic-e"),
    pytest.param("attributes", {"n": 2**53 + 1}, id="attribute-int-over"),
    pytest.param("attributes", {"n": -(2**53) - 1}, id="attribute-int-under"),
    pytest.param("attributes", {"n": 2**60}, id="attribute-int-far-over"),
    pytest.param("attributes", {"f": 1e300}, id="attribute-float-huge"),
    pytest.param("attributes", {"v": None}, id="attribute-null"),
    pytest.param("attributes", {"v": ["a"]}, id="attribute-list"),
    pytest.param("attributes", {"v": {"a": 1}}, id="attribute-map"),
]


@pytest.mark.parametrize("validate", VALIDATORS)
@pytest.mark.parametrize(("path", "value"), OUTSIDE)
def test_values_just_outside_bounds_are_refused(
    validate: Callable[[dict[str, Any]], TelemetryEvent], path: str, value: Any
) -> None:
    assert_refused(validate, changed(BOUNDARY_BASE, path, value), tuple(path.split(".")))


def test_attribute_key_count_is_checked_on_the_map() -> None:
    data = changed(MINIMAL_INFERENCE, "attributes", {f"k{i}": "v" for i in range(17)})

    error = assert_refused(via_python, data, ("attributes",))

    assert "16" in str(error)


# --- ids -----------------------------------------------------------------------------


@pytest.mark.parametrize("validate", VALIDATORS)
@pytest.mark.parametrize(
    "event_id",
    [
        pytest.param(ULID, id="ulid"),
        pytest.param(UUID, id="uuid-lower"),
        pytest.param(UUID.upper(), id="uuid-upper"),
        pytest.param("7ZZZZZZZZZZZZZZZZZZZZZZZZZ", id="ulid-max"),
    ],
)
def test_event_id_accepts_uuid_and_ulid(
    validate: Callable[[dict[str, Any]], TelemetryEvent], event_id: str
) -> None:
    assert validate(changed(MINIMAL_INFERENCE, "event_id", event_id)).event_id == event_id


@pytest.mark.parametrize("validate", VALIDATORS)
@pytest.mark.parametrize(
    "event_id",
    [
        pytest.param("", id="empty"),
        pytest.param("event-1", id="free-text"),
        pytest.param(UUID.replace("-", ""), id="uuid-without-dashes"),
        pytest.param("{" + UUID + "}", id="uuid-braces"),
        pytest.param(UUID[:-1] + "g", id="uuid-non-hex"),
        pytest.param(ULID.lower(), id="ulid-lowercase"),
        pytest.param(ULID[:-1], id="ulid-25-chars"),
        pytest.param(ULID + "0", id="ulid-27-chars"),
        pytest.param("8" + ULID[1:], id="ulid-overflow-first-char"),
        pytest.param(ULID[:-1] + "U", id="ulid-letter-U"),
        pytest.param(ULID[:-1] + "I", id="ulid-letter-I"),
        pytest.param(ULID + "\n", id="ulid-trailing-newline"),
        pytest.param(" " + ULID, id="ulid-leading-space"),
        pytest.param("../" + ULID[3:], id="path-traversal"),
        pytest.param(ULID[:-1] + "\x00", id="nul"),
        pytest.param(ULID[:-1] + "\u041e", id="cyrillic-O"),
    ],
)
def test_bad_event_ids_are_refused(
    validate: Callable[[dict[str, Any]], TelemetryEvent], event_id: str
) -> None:
    assert_refused(validate, changed(MINIMAL_INFERENCE, "event_id", event_id), ("event_id",))


@pytest.mark.parametrize("validate", VALIDATORS)
@pytest.mark.parametrize(
    "model_id",
    [
        pytest.param("../etc/passwd", id="leading-traversal"),
        pytest.param("acme/../nimbus/x", id="inner-traversal"),
        pytest.param("acme/..", id="dotdot-name"),
        pytest.param("acme/x/../../y", id="nested-traversal"),
        pytest.param("acme//x", id="double-slash"),
        pytest.param("/acme/x", id="absolute"),
        pytest.param("acme\\x", id="backslash"),
        pytest.param("acme", id="no-slash"),
        pytest.param("acme/", id="empty-name"),
        pytest.param("\u0430cme/titan", id="cyrillic-a-in-owner"),
        pytest.param("acme/tit\u0430n", id="cyrillic-a-in-name"),
        pytest.param("\uff41cme/titan", id="fullwidth-a"),
        pytest.param("acme/ti\u200btan", id="zero-width-space"),
        pytest.param("acme/titan 1", id="space"),
        pytest.param(" acme/titan", id="leading-space"),
        pytest.param("acme/titan\x00", id="nul"),
        pytest.param("acme/titan\n", id="trailing-newline"),
        pytest.param("ACME/titan", id="upper-owner"),
        pytest.param("acme/titan--1", id="double-separator"),
        pytest.param("acme./titan", id="owner-ends-with-dot"),
    ],
)
def test_bad_model_ids_are_refused(
    validate: Callable[[dict[str, Any]], TelemetryEvent], model_id: str
) -> None:
    assert_refused(validate, changed(MINIMAL_INFERENCE, "model.id", model_id), ("model", "id"))


# --- occurred_at: RFC 3339, UTC only -----------------------------------------------------


@pytest.mark.parametrize("validate", VALIDATORS)
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-11-28T05:00:00Z", datetime(2026, 11, 28, 5, tzinfo=UTC), id="zulu"),
        pytest.param(
            "2026-11-28T05:00:00+00:00", datetime(2026, 11, 28, 5, tzinfo=UTC), id="plus-zero"
        ),
        pytest.param(
            "2026-11-28T05:00:00.5Z",
            datetime(2026, 11, 28, 5, 0, 0, 500000, tzinfo=UTC),
            id="tenths",
        ),
        pytest.param(
            "2026-11-28T05:00:00.123456Z",
            datetime(2026, 11, 28, 5, 0, 0, 123456, tzinfo=UTC),
            id="micros",
        ),
        pytest.param(
            "2028-02-29T23:59:59Z", datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC), id="leap"
        ),
    ],
)
def test_occurred_at_accepts_rfc3339_utc(
    validate: Callable[[dict[str, Any]], TelemetryEvent], text: str, expected: datetime
) -> None:
    event = validate(changed(MINIMAL_INFERENCE, "occurred_at", text))

    assert event.occurred_at == expected
    assert event.occurred_at.tzinfo == UTC


@pytest.mark.parametrize("validate", VALIDATORS)
@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026-11-28T07:00:00+02:00", id="plus-two-hours"),
        pytest.param("2026-11-28T00:00:00-05:00", id="minus-five-hours"),
        pytest.param("2026-11-28T05:00:00-00:00", id="minus-zero"),
        pytest.param("2026-11-28T05:00:00", id="no-offset"),
        pytest.param("2026-11-28", id="date-only"),
        pytest.param("05:00:00Z", id="time-only"),
        pytest.param(1_764_306_000, id="unix-int"),
        pytest.param(1_764_306_000.5, id="unix-float"),
        pytest.param("1764306000", id="unix-string"),
        pytest.param("2026-11-28 05:00:00Z", id="space-separator"),
        pytest.param("2026-11-28t05:00:00z", id="lowercase"),
        pytest.param("20261128T050000Z", id="basic-format"),
        pytest.param("2026-11-28T05:00:00.1234567Z", id="seven-fraction-digits"),
        pytest.param("2026-11-28T05:00Z", id="no-seconds"),
        pytest.param("2026-13-01T00:00:00Z", id="month-13"),
        pytest.param("2026-02-30T00:00:00Z", id="feb-30"),
        pytest.param("2026-11-28T24:00:00Z", id="hour-24"),
        pytest.param("2026-11-28T05:00:00Z\n", id="trailing-newline"),
        pytest.param(" 2026-11-28T05:00:00Z", id="leading-space"),
        pytest.param("\u0662\u0660\u0662\u0666-11-28T05:00:00Z", id="arabic-indic-digits"),
        pytest.param("Sat, 28 Nov 2026 05:00:00 GMT", id="http-date"),
        pytest.param("", id="empty"),
        pytest.param(None, id="null"),
    ],
)
def test_occurred_at_refuses_non_utc_or_non_rfc3339(
    validate: Callable[[dict[str, Any]], TelemetryEvent], value: Any
) -> None:
    assert_refused(validate, changed(MINIMAL_INFERENCE, "occurred_at", value), ("occurred_at",))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(datetime(2026, 11, 28, 5), id="naive-datetime"),
        pytest.param(
            datetime(2026, 11, 28, 7, tzinfo=timezone(timedelta(hours=2))), id="aware-plus-two"
        ),
        pytest.param(datetime(2026, 11, 28).date(), id="date-object"),
    ],
)
def test_occurred_at_refuses_non_utc_python_objects(value: Any) -> None:
    assert_refused(via_python, changed(MINIMAL_INFERENCE, "occurred_at", value), ("occurred_at",))


def test_occurred_at_accepts_an_aware_utc_datetime() -> None:
    moment = datetime(2026, 11, 28, 5, tzinfo=UTC)

    assert via_python(changed(MINIMAL_INFERENCE, "occurred_at", moment)).occurred_at == moment


# --- no type coercion ----------------------------------------------------------------


@pytest.mark.parametrize("validate", VALIDATORS)
@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param("metrics.latency_ms", "12", id="latency-string"),
        pytest.param("metrics.latency_ms", True, id="latency-bool"),
        pytest.param("metrics.latency_ms", math.nan, id="latency-nan"),
        pytest.param("metrics.latency_ms", math.inf, id="latency-inf"),
        pytest.param("metrics.ttft_ms", -math.inf, id="ttft-minus-inf"),
        pytest.param("metrics.ttft_ms", math.nan, id="ttft-nan"),
        pytest.param("metrics.input_tokens", "12", id="tokens-string"),
        pytest.param("metrics.input_tokens", 12.0, id="tokens-float"),
        pytest.param("metrics.input_tokens", 12.5, id="tokens-fraction"),
        pytest.param("metrics.output_tokens", True, id="tokens-bool"),
        pytest.param("metrics.retries", "1", id="retries-string"),
        pytest.param("metrics.retries", False, id="retries-bool"),
        pytest.param("metrics.cache_hit", 1, id="cache-hit-int"),
        pytest.param("metrics.cache_hit", "true", id="cache-hit-string"),
        pytest.param("metrics.cache_hit", 0, id="cache-hit-zero"),
        pytest.param("outcome.http_status", "404", id="http-status-string"),
        pytest.param("outcome.http_status", 404.0, id="http-status-float"),
        pytest.param("delivery.delivered", 1, id="delivered-int"),
        pytest.param("delivery.delivered", "yes", id="delivered-string"),
        pytest.param("delivery.attempts", "2", id="attempts-string"),
        pytest.param("schema_version", 1.0, id="schema-version-number"),
        pytest.param("event_id", 123, id="event-id-number"),
        pytest.param("model.id", ["acme/x"], id="model-id-list"),
        pytest.param("model", "acme/titan-1", id="model-as-string"),
        pytest.param("metrics", [], id="metrics-as-list"),
        pytest.param("attributes", [["k", "v"]], id="attributes-as-pairs"),
        pytest.param("attributes", {"f": math.nan}, id="attribute-nan"),
        pytest.param("attributes", {"f": math.inf}, id="attribute-inf"),
    ],
)
def test_type_coercion_is_refused(
    validate: Callable[[dict[str, Any]], TelemetryEvent], path: str, value: Any
) -> None:
    assert_refused(validate, changed(FULL_INFERENCE, path, value), tuple(path.split(".")))


def test_integer_attribute_is_not_turned_into_a_float() -> None:
    # 2**53 + 1 used to slip through the float branch of the attribute union and come out
    # as a (rounded) float; it must be refused instead.
    data = changed(MINIMAL_INFERENCE, "attributes", {"n": 2**53 + 1})

    with pytest.raises(ValidationError):
        via_python(data)


# --- kind / section consistency and cross-field rules ----------------------------------


@pytest.mark.parametrize("validate", VALIDATORS)
@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            removed(MINIMAL_INFERENCE, "metrics"),
            "inference event needs metrics",
            id="inference-without-metrics",
        ),
        pytest.param(
            changed(MINIMAL_INFERENCE, "metrics", None),
            "inference event needs metrics",
            id="inference-null-metrics",
        ),
        pytest.param(
            removed(MINIMAL_DELIVERY, "delivery"),
            "delivery event needs delivery",
            id="delivery-without-delivery",
        ),
        pytest.param(
            changed(MINIMAL_DELIVERY, "delivery", None),
            "delivery event needs delivery",
            id="delivery-null-delivery",
        ),
        pytest.param(
            changed(removed(MINIMAL_DELIVERY, "delivery"), "metrics", {"latency_ms": 1}),
            "delivery event needs delivery",
            id="delivery-with-only-metrics",
        ),
    ],
)
def test_kind_needs_its_section(
    validate: Callable[[dict[str, Any]], TelemetryEvent], data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        validate(data)


@pytest.mark.parametrize("validate", VALIDATORS)
def test_ttft_may_equal_latency(validate: Callable[[dict[str, Any]], TelemetryEvent]) -> None:
    data = changed(MINIMAL_INFERENCE, "metrics", {"latency_ms": 100, "ttft_ms": 100})

    assert validate(data).metrics is not None


@pytest.mark.parametrize("validate", VALIDATORS)
def test_ttft_greater_than_latency_is_refused(
    validate: Callable[[dict[str, Any]], TelemetryEvent],
) -> None:
    data = changed(MINIMAL_INFERENCE, "metrics", {"latency_ms": 100, "ttft_ms": 100.001})

    with pytest.raises(ValidationError, match="ttft_ms must not exceed latency_ms"):
        validate(data)


@pytest.mark.parametrize("validate", VALIDATORS)
@pytest.mark.parametrize(
    "path",
    [
        pytest.param("event_id", id="event_id"),
        pytest.param("schema_version", id="schema_version"),
        pytest.param("kind", id="kind"),
        pytest.param("occurred_at", id="occurred_at"),
        pytest.param("model", id="model"),
        pytest.param("model.id", id="model.id"),
        pytest.param("outcome", id="outcome"),
        pytest.param("outcome.status", id="outcome.status"),
        pytest.param("metrics.latency_ms", id="metrics.latency_ms"),
    ],
)
def test_required_fields_are_required(
    validate: Callable[[dict[str, Any]], TelemetryEvent], path: str
) -> None:
    assert_refused(validate, removed(MINIMAL_INFERENCE, path), tuple(path.split(".")))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("[]", "array", id="array"),
        pytest.param('{"event_id": ', "truncated", id="truncated"),
        pytest.param(
            json.dumps(MINIMAL_INFERENCE) + "x", "trailing garbage", id="trailing-garbage"
        ),
    ],
)
def test_malformed_json_is_refused(payload: str, reason: str) -> None:
    with pytest.raises(ValidationError):
        TelemetryEvent.model_validate_json(payload)
