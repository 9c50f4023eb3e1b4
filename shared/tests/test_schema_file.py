"""The committed JSON Schema is what clients validate against: it must match the model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ryuzen_contracts import schema_export
from ryuzen_contracts.analytics_schema import analytics_schema_document
from ryuzen_contracts.telemetry_event import SCHEMA_ID, telemetry_event_json_schema

SHARED = Path(__file__).resolve().parents[1]
SCHEMA_FILE = SHARED / "schema" / "telemetry-event.v1.json"
REGENERATE = "uv run python -m ryuzen_contracts.schema_export"


def object_schemas(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sub-schema that describes a JSON object, with a JSON-pointer-like path."""
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node or "patternProperties" in node:
            yield path, node
        for key, value in node.items():
            yield from object_schemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from object_schemas(value, f"{path}/{index}")


def test_committed_schema_file_matches_the_model() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8")

    assert committed == telemetry_event_json_schema(), (
        f"{SCHEMA_FILE} is out of date with TelemetryEvent; regenerate it from the "
        f"repository root with: {REGENERATE}"
    )


def test_schema_identifies_itself() -> None:
    schema = json.loads(telemetry_event_json_schema())

    assert schema["$id"] == SCHEMA_ID
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "TelemetryEvent"


def test_every_object_in_the_schema_is_closed() -> None:
    schema = json.loads(telemetry_event_json_schema())
    objects = list(object_schemas(schema))

    # The root, the five nested models and the attributes map, at least.
    assert len(objects) >= 7
    assert set(schema["$defs"]) >= {"Model", "Metrics", "Outcome", "Delivery", "ClientInfo"}
    open_objects = [path for path, node in objects if node.get("additionalProperties") is not False]
    assert open_objects == [], f"objects without additionalProperties: false: {open_objects}"


def test_every_definition_is_closed() -> None:
    schema = json.loads(telemetry_event_json_schema())

    for name, definition in schema["$defs"].items():
        assert definition["type"] == "object", name
        assert definition["additionalProperties"] is False, name


def test_schema_export_writes_the_same_text(tmp_path: Path) -> None:
    target = tmp_path / "nested"

    assert schema_export.main([str(target)]) == 0
    assert (target / "telemetry-event.v1.json").read_text(
        encoding="utf-8"
    ) == telemetry_event_json_schema()
    assert (target / "analytics-events.v1.json").read_text(
        encoding="utf-8"
    ) == analytics_schema_document()


def test_committed_analytics_schema_matches_the_code() -> None:
    committed = (SHARED / "schema" / "analytics-events.v1.json").read_text(encoding="utf-8")
    assert committed == analytics_schema_document(), f"regenerate with: {REGENERATE}"
    document = json.loads(committed)
    names = [column["name"] for column in document["columns"]]
    assert len(names) == len(set(names)) and "client_id" not in names
    assert [c["name"] for c in document["partition_columns"]] == ["partner", "month", "day"]


def test_schema_text_is_stable() -> None:
    # Sorted keys and a trailing newline: regenerating never produces a noisy diff.
    text = telemetry_event_json_schema()

    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


VALID_FOR_SCHEMA: dict[str, Any] = {
    "event_id": "01JDQ3ZK9M8X7V6T5S4R3Q2P1N",
    "schema_version": "1.0",
    "kind": "inference",
    "occurred_at": "2026-11-28T05:00:00Z",
    "model": {"id": "acme/titan-1"},
    "metrics": {"latency_ms": 12.5},
    "outcome": {"status": "ok"},
    "attributes": {"tier": "pro"},
}


class TestPublishedSchemaAgreesWithTheModel:
    """A client validating with the file must refuse what the model refuses."""

    @pytest.fixture
    def validator(self) -> Any:
        jsonschema = pytest.importorskip("jsonschema")
        schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
        return jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )

    def test_accepts_a_valid_event(self, validator: Any) -> None:
        assert list(validator.iter_errors(VALID_FOR_SCHEMA)) == []

    @pytest.mark.parametrize(
        ("mutate"),
        [
            pytest.param(lambda e: e.update(prompt="hi"), id="top-level-prompt"),
            pytest.param(lambda e: e["model"].update(messages=[]), id="nested-messages"),
            pytest.param(lambda e: e["attributes"].update({"User Email": "x"}), id="attr-key"),
            pytest.param(lambda e: e["attributes"].update(a="x" * 257), id="attr-value-257"),
            pytest.param(lambda e: e.update(occurred_at="2026-11-28T07:00:00+02:00"), id="tz"),
            pytest.param(lambda e: e["metrics"].update(latency_ms=-1), id="latency-negative"),
        ],
    )
    def test_refuses_what_the_model_refuses(self, validator: Any, mutate: Any) -> None:
        event = json.loads(json.dumps(VALID_FOR_SCHEMA))
        mutate(event)

        assert list(validator.iter_errors(event)) != []
