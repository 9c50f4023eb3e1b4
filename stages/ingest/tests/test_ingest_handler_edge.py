"""The Lambda edge: settings from the environment, read once; a misconfiguration answers 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from ryuzen_contracts.settings import SettingsError
from ryuzen_ingest import ingest_handler
from ryuzen_ingest.settings import IngestSettings


class FakeLambdaContext:
    """The attributes of the Lambda context object the handler and powertools read."""

    function_name = "ryuzen-ingest"
    aws_request_id = "0d4e3a40-1111-2222-3333-444455556666"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@pytest.fixture
def environment(
    monkeypatch: pytest.MonkeyPatch, ingest_env: dict[str, str], aws: Any
) -> dict[str, str]:
    for name, value in ingest_env.items():
        monkeypatch.setenv(name, value)
    return ingest_env


def test_lambda_handler_reads_the_environment_once(
    environment: dict[str, str],
    api_event: Callable[..., dict[str, Any]],
    raw_keys: Callable[[], list[str]],
    telemetry_events: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = api_event(json.dumps(telemetry_events), headers={"Idempotency-Key": "edge-1"})
    first = ingest_handler.lambda_handler(request, FakeLambdaContext())
    assert first["statusCode"] == 202, first["body"]

    # A changed environment is not re-read: the runtime lives as long as the process.
    monkeypatch.setenv("RAW_BUCKET", "some-other-bucket")
    second = ingest_handler.lambda_handler(
        api_event(json.dumps(telemetry_events)), FakeLambdaContext()
    )
    assert second["statusCode"] == 202
    assert len(raw_keys()) == 2


def test_lambda_handler_works_without_a_context(
    environment: dict[str, str],
    api_event: Callable[..., dict[str, Any]],
    telemetry_events: list[dict[str, Any]],
) -> None:
    request = api_event(json.dumps(telemetry_events), headers={"Idempotency-Key": "edge-2"})
    assert ingest_handler.lambda_handler(request, None)["statusCode"] == 202


def test_missing_variable_answers_500_and_logs_its_name(
    environment: dict[str, str],
    api_event: Callable[..., dict[str, Any]],
    telemetry_events: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("RAW_BUCKET")
    with caplog.at_level(logging.INFO):
        response = ingest_handler.lambda_handler(api_event(json.dumps(telemetry_events)), None)
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {
        "error": "internal_error",
        "detail": "ingest is misconfigured",
    }
    assert any("RAW_BUCKET" in str(getattr(record, "error", "")) for record in caplog.records)

    # Once the environment is fixed, the next request builds the runtime.
    monkeypatch.setenv("RAW_BUCKET", environment["RAW_BUCKET"])
    assert (
        ingest_handler.lambda_handler(api_event(json.dumps(telemetry_events)), None)["statusCode"]
        == 202
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        pytest.param("STACK_CONFIG", "{not json", "STACK_CONFIG", id="stack-config-not-json"),
        pytest.param("STACK_CONFIG", '{"partners": []}', "STACK_CONFIG", id="stack-config-invalid"),
        pytest.param("API_KEY_CLIENTS", "[1, 2]", "API_KEY_CLIENTS", id="key-map-not-object"),
        pytest.param(
            "API_KEY_CLIENTS", '{"k": "ghost-client"}', "ghost-client", id="key-map-unknown-client"
        ),
        pytest.param("RAW_BUCKET", "  ", "RAW_BUCKET", id="blank-bucket"),
    ],
)
def test_invalid_settings_name_the_variable(
    ingest_env: dict[str, str], name: str, value: str, message: str
) -> None:
    ingest_env[name] = value
    with pytest.raises(SettingsError, match=message):
        IngestSettings.from_environ(ingest_env)


def test_settings_parse_the_stack_and_key_map(ingest_env: dict[str, str]) -> None:
    settings = IngestSettings.from_environ(ingest_env)
    assert settings.stack_config.client("batch-runner") is not None
    assert settings.api_key_clients["k2batch0001"] == "batch-runner"
    assert settings.raw_bucket == "ryuzen-test-raw"
