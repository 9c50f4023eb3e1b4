"""The gateway's resource templates: ``/v1/bundles/{month}`` fills ``pathParameters``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from ryuzen_tools.local_stack.api_gateway import ApiGateway, Route, match_resource
from ryuzen_tools.local_stack.stage_registry import HTTP_STAGES, load_callable, load_handler
from tools_support import REGION

KEY_VALUE = "partner-key-value-0123456789"
KEY_ID = "partnerkey01"
RESOURCES = ["/v1/bundles", "/v1/bundles/{month}", "/v1/bundles/latest", "/v1/keys/signing"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/v1/bundles", ("/v1/bundles", {}), id="literal"),
        pytest.param(
            "/v1/bundles/2026-10", ("/v1/bundles/{month}", {"month": "2026-10"}), id="template"
        ),
        pytest.param("/v1/bundles/latest", ("/v1/bundles/latest", {}), id="literal-wins"),
        pytest.param("/v1/bundles/", None, id="empty-segment"),
        pytest.param("/v1/bundles/2026-10/x", None, id="too-deep"),
        pytest.param("/v1/keys/other", None, id="unknown"),
    ],
)
def test_paths_match_the_most_specific_resource(
    path: str, expected: tuple[str, dict[str, str]] | None
) -> None:
    assert match_resource(RESOURCES, path) == expected


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200, "body": json.dumps({"resource": event["resource"]})}


@pytest.fixture
def gateway() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    routes = [Route("GET", path, recorder) for path in RESOURCES[:2]]
    api = ApiGateway(routes, {KEY_VALUE: KEY_ID}, region=REGION)
    url = api.start()
    yield url, recorder
    api.stop()


def test_the_event_carries_the_template_and_the_parameter(
    gateway: tuple[str, Recorder],
) -> None:
    url, recorder = gateway
    response = httpx.get(f"{url}/v1/bundles/2026-10", headers={"x-api-key": KEY_VALUE})
    assert response.status_code == 200
    (event,) = recorder.events
    assert event["resource"] == "/v1/bundles/{month}"
    assert event["requestContext"]["resourcePath"] == "/v1/bundles/{month}"
    assert event["path"] == "/v1/bundles/2026-10"
    assert event["pathParameters"] == {"month": "2026-10"}
    assert event["requestContext"]["identity"]["apiKeyId"] == KEY_ID


def test_a_literal_resource_has_no_path_parameters(gateway: tuple[str, Recorder]) -> None:
    url, recorder = gateway
    httpx.get(f"{url}/v1/bundles", headers={"x-api-key": KEY_VALUE})
    assert recorder.events[0]["pathParameters"] is None
    assert recorder.events[0]["resource"] == "/v1/bundles"


def test_a_template_route_answers_405_for_other_methods(gateway: tuple[str, Recorder]) -> None:
    url, recorder = gateway
    response = httpx.post(f"{url}/v1/bundles/2026-10", headers={"x-api-key": KEY_VALUE})
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert (
        httpx.get(f"{url}/v1/bundles/2026-10/x", headers={"x-api-key": KEY_VALUE}).status_code
        == 404
    )
    assert recorder.events == []


def test_the_registry_serves_the_pull_api_from_one_function() -> None:
    pull = [stage for stage in HTTP_STAGES if stage.name == "bundle-pull"]
    assert {(stage.method, stage.path) for stage in pull} == {
        ("GET", "/v1/bundles"),
        ("GET", "/v1/bundles/{month}"),
        ("GET", "/v1/keys/signing"),
    }
    from ryuzen_bundle import pull_handler

    for stage in pull:
        assert load_handler(stage.handler) is pull_handler.lambda_handler
        assert stage.reset is not None
        assert load_callable(stage.reset) is pull_handler.reset_runtime
