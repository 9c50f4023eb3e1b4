"""Session fixtures: one moto server for the in-process tests, the repository root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ryuzen_tools.local_stack.aws import LocalClients
from ryuzen_tools.local_stack.moto_server import MotoServer
from tools_support import REGION, repo_root


@pytest.fixture(scope="session")
def project_dir() -> Path:
    return repo_root()


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = MotoServer(port=0)
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def aws(moto_url: str) -> LocalClients:
    return LocalClients(moto_url, REGION)
