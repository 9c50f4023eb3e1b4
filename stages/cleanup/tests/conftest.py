"""Shared fixtures: one in-process moto per test module, the stage's buckets, a signing key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cleanup_fixtures import REGION, CleanupStack, fresh_stack
from moto import mock_aws
from ryuzen_contracts.signing import LocalSigner, generate_local_key


@pytest.fixture(scope="session")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A P-256 key pair on disk, as the local stack keeps it: (private PEM, public PEM)."""
    directory = tmp_path_factory.mktemp("signing")
    private, public = directory / "signing-key.pem", directory / "signing-key.pub.pem"
    generate_local_key(private, public)
    return private, public


@pytest.fixture(scope="session")
def signer(key_files: tuple[Path, Path]) -> LocalSigner:
    return LocalSigner.from_file(key_files[0])


@pytest.fixture(scope="module")
def moto_aws() -> Iterator[tuple[Any, Any, Any]]:
    """One in-process moto per test module, with its clients (creating a client costs ~0.2 s).

    Module scope, not session: the mock and the environment are undone when the module's
    tests are done, so they never reach another package's tests in the same run.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            patch.setenv(name, value)
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        with mock_aws() as mock:
            yield (
                mock,
                boto3.client("s3", region_name=REGION),
                boto3.client("dynamodb", region_name=REGION),
            )


@pytest.fixture
def stack(moto_aws: tuple[Any, Any, Any], signer: LocalSigner) -> CleanupStack:
    """Every test starts from nothing."""
    return fresh_stack(moto_aws, signer)
