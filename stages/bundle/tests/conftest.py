"""Fixtures of the builder tests: moto S3 + DynamoDB + EventBridge (+ SQS to catch events),
the dev stack config and a ``BundleStack`` over them (``bundle_build_stack.py``).

Only fixtures live here; test modules import helpers from their own uniquely named
modules, never from ``conftest``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bundle_build_stack import REGION, ROOT, BundleStack, make_stack
from moto import mock_aws
from ryuzen_contracts.stack_config import StackConfig, load_stack_config


@pytest.fixture(scope="session")
def dev_config() -> StackConfig:
    return load_stack_config(ROOT / "Pulumi.dev.yaml")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def stack(dev_config: StackConfig, tmp_path: Path, aws_env: None) -> Iterator[BundleStack]:
    with mock_aws():
        yield make_stack(dev_config, tmp_path)
