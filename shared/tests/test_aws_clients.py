"""The AWS client factory: the stack's endpoint, path-style S3, standard retries, SigV4."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import EndpointConnectionError
from ryuzen_contracts.aws_clients import DEFAULT_MAX_ATTEMPTS, client_config, make_client

LOCAL = "http://127.0.0.1:4566"
ENVIRON = {"AWS_ENDPOINT_URL": LOCAL, "AWS_REGION": "eu-west-1"}


@pytest.fixture(autouse=True)
def _no_endpoint_in_the_process(fake_aws_env: None) -> None:
    """The process environment carries no endpoint: only the ``environ`` passed may set one."""


def test_s3_client_for_the_local_stack() -> None:
    s3 = make_client("s3", environ=ENVIRON)

    config = s3.meta.config
    assert s3.meta.endpoint_url == LOCAL
    assert s3.meta.region_name == "eu-west-1"
    assert config.s3["addressing_style"] == "path"
    assert config.signature_version == "s3v4"
    assert config.retries["mode"] == "standard"
    assert config.retries["total_max_attempts"] == DEFAULT_MAX_ATTEMPTS


def test_path_style_addressing_is_really_used() -> None:
    s3 = make_client("s3", environ=ENVIRON)

    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "ryuzen-bundles", "Key": "acme/2026-11/b.zip"}
    )

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == LOCAL
    assert parts.path == "/ryuzen-bundles/acme/2026-11/b.zip"
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in parts.query  # SigV4, not SigV2


def test_s3_client_for_aws() -> None:
    s3 = make_client("s3", environ={"AWS_REGION": "eu-west-1"})

    assert "amazonaws.com" in s3.meta.endpoint_url
    assert s3.meta.config.s3["addressing_style"] == "auto"
    assert s3.meta.config.signature_version == "s3v4"
    assert s3.meta.config.retries["mode"] == "standard"


@pytest.mark.parametrize("service", ["dynamodb", "sqs", "kms"])
def test_other_services_use_the_endpoint_and_standard_retries(service: str) -> None:
    client = make_client(service, environ=ENVIRON, max_attempts=3)

    assert client.meta.endpoint_url == LOCAL
    assert client.meta.config.retries["mode"] == "standard"
    assert client.meta.config.retries["total_max_attempts"] == 3


@pytest.mark.parametrize("attempts", [1, 3])
def test_max_attempts_counts_the_first_call(monkeypatch: pytest.MonkeyPatch, attempts: int) -> None:
    # Given an endpoint that never answers (and no real back-off sleeps)...
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    client = make_client("dynamodb", environ=ENVIRON, max_attempts=attempts)
    calls: list[str] = []

    def unreachable(request: Any, **kwargs: Any) -> None:
        calls.append(request.url)
        raise EndpointConnectionError(endpoint_url=request.url)

    client.meta.events.register("before-send.dynamodb", unreachable)

    # ...the client gives up after exactly max_attempts calls, the first one included.
    with pytest.raises(EndpointConnectionError):
        client.list_tables()
    assert len(calls) == attempts


def test_explicit_arguments_win_over_the_environment() -> None:
    client = make_client(
        "dynamodb", region="us-east-2", endpoint_url="http://localhost:9000", environ=ENVIRON
    )

    assert client.meta.endpoint_url == "http://localhost:9000"
    assert client.meta.region_name == "us-east-2"


def test_region_falls_back_to_aws_default_region() -> None:
    client = make_client("dynamodb", environ={"AWS_DEFAULT_REGION": "ap-south-1"})

    assert client.meta.region_name == "ap-south-1"


def test_an_empty_endpoint_variable_means_aws() -> None:
    client = make_client("dynamodb", environ={"AWS_ENDPOINT_URL": "", "AWS_REGION": "eu-west-1"})

    assert "amazonaws.com" in client.meta.endpoint_url


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", LOCAL)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    assert make_client("s3").meta.endpoint_url == LOCAL


@pytest.mark.parametrize(
    ("service", "endpoint", "expected"),
    [
        pytest.param("s3", LOCAL, {"signature_version": "s3v4", "addressing": "path"}, id="s3-l"),
        pytest.param("s3", None, {"signature_version": "s3v4", "addressing": "auto"}, id="s3-aws"),
        pytest.param("sqs", LOCAL, {"signature_version": None, "addressing": None}, id="sqs"),
    ],
)
def test_client_config(service: str, endpoint: str | None, expected: dict[str, Any]) -> None:
    config: Any = client_config(service, endpoint_url=endpoint)  # botocore sets attributes

    assert config.retries == {"mode": "standard", "total_max_attempts": DEFAULT_MAX_ATTEMPTS}
    assert config.signature_version == expected["signature_version"]
    assert (config.s3 or {}).get("addressing_style") == expected["addressing"]
    assert config.connect_timeout == 5
    assert config.read_timeout == 30
