"""Fixtures: a fake ``dist/`` of artifacts, the stack files, and cached program runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra import build_artifacts
from infra.tests.pulumi_harness import REPO_ROOT, ProgramRun, run_program, stack_file_config

DEV_STACK = REPO_ROOT / "Pulumi.dev.yaml"
PROD_STACK = REPO_ROOT / "Pulumi.prod.yaml"


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_aws warns about its own deprecated resources as its modules load.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws")


def write_fake_artifacts(dist: Path) -> None:
    """Tiny but well-formed artifacts, with manifests fingerprinting today's sources."""
    for stage in build_artifacts.STAGES.values():
        tree = dist / ".tree" / stage.name
        (tree / stage.import_name).mkdir(parents=True, exist_ok=True)
        (tree / stage.import_name / "__init__.py").write_text("# fake\n")
        entries = build_artifacts.tree_entries(tree)
        sha256 = build_artifacts.write_deterministic_zip(entries, stage.zip_path(dist))
        fingerprint = build_artifacts.source_fingerprint(stage)
        stage.zip_manifest_path(dist).write_text(
            json.dumps(
                {
                    "sha256": sha256,
                    "unzipped_bytes": build_artifacts.unzipped_size(entries),
                    "source_fingerprint": fingerprint,
                }
            )
        )
        if stage.image:
            context = stage.image_context_path(dist)
            context.mkdir(parents=True, exist_ok=True)
            (context / "Dockerfile").write_text("FROM scratch\n")
            stage.image_manifest_path(dist).write_text(
                json.dumps({"context_sha256": "c" * 64, "source_fingerprint": fingerprint})
            )


@pytest.fixture(scope="session")
def fake_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    write_fake_artifacts(dist)
    return dist


@pytest.fixture(scope="session")
def dev_values() -> dict[str, Any]:
    return stack_file_config(DEV_STACK)


@pytest.fixture(scope="session")
def prod_values() -> dict[str, Any]:
    return stack_file_config(PROD_STACK)


@pytest.fixture(scope="session")
def run(fake_dist: Path) -> Callable[[dict[str, Any], str], ProgramRun]:
    """Run the program with a config mapping as the named stack."""

    def runner(values: dict[str, Any], stack: str) -> ProgramRun:
        return run_program(values, stack=stack, dist=fake_dist)

    return runner


@pytest.fixture(scope="session")
def dev_run(run: Callable[..., ProgramRun], dev_values: dict[str, Any]) -> ProgramRun:
    return run(dev_values, "dev")


@pytest.fixture(scope="session")
def prod_run(run: Callable[..., ProgramRun], prod_values: dict[str, Any]) -> ProgramRun:
    return run(prod_values, "prod")


@pytest.fixture(params=["dev", "prod"])
def any_run(request: pytest.FixtureRequest) -> ProgramRun:
    """Each test using it runs against both stacks."""
    return request.getfixturevalue(f"{request.param}_run")


@pytest.fixture(scope="session")
def reduced_dev_values(dev_values: dict[str, Any]) -> dict[str, Any]:
    """The dev stack with partner nimbus-ai (and its only client, batch-runner) removed."""
    values = dict(dev_values)
    values["ryuzen-telemetry:partners"] = [
        p for p in dev_values["ryuzen-telemetry:partners"] if p["id"] != "nimbus-ai"
    ]
    clients = []
    for client in dev_values["ryuzen-telemetry:ingestClients"]:
        allowed = [p for p in client["allowedPartners"] if p != "nimbus-ai"]
        if allowed:
            clients.append({**client, "allowedPartners": allowed})
    values["ryuzen-telemetry:ingestClients"] = clients
    return values


@pytest.fixture(scope="session")
def reduced_dev_run(
    run: Callable[..., ProgramRun], reduced_dev_values: dict[str, Any]
) -> ProgramRun:
    return run(reduced_dev_values, "dev")
