"""The program refuses a bad stack config or missing artifacts before it declares anything."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ryuzen_contracts.stack_config import StackConfig, StackConfigError

from infra import build_artifacts
from infra.artifacts import ArtifactError, load_artifacts
from infra.tests.conftest import write_fake_artifacts
from infra.tests.pulumi_harness import ProgramRun, RecordingMocks, engine_config, run_program

PARTNERS = "ryuzen-telemetry:partners"
CLIENTS = "ryuzen-telemetry:ingestClients"


def _broken(values: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    changed = copy.deepcopy(values)
    change(changed)
    return changed


def _contracts_message(values: dict[str, Any]) -> str:
    with pytest.raises(StackConfigError) as refused:
        StackConfig.from_pulumi_values({k: v for k, v in values.items() if k.startswith("ryuzen")})
    return str(refused.value)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: c[PARTNERS].append(dict(c[PARTNERS][0])), id="duplicate-partner"),
        pytest.param(lambda c: c[PARTNERS][0].update(id="Acme!"), id="bad-partner-id"),
        pytest.param(
            lambda c: c[CLIENTS][0]["allowedPartners"].append("ghost"), id="unknown-partner"
        ),
        pytest.param(lambda c: c.update({"ryuzen-telemetry:parnters": []}), id="misspelt-key"),
        pytest.param(
            lambda c: c.update({"ryuzen-telemetry:bundleTask": {"cpu": 1024, "memoryMb": 30720}}),
            id="fargate-size",
        ),
        pytest.param(
            lambda c: c.update({"ryuzen-telemetry:logRetentionDays": 31}), id="log-retention"
        ),
    ],
)
def test_invalid_config_fails_before_any_resource(
    dev_values: dict[str, Any], fake_dist: Path, change: Callable[[dict[str, Any]], None]
) -> None:
    values = _broken(dev_values, change)
    mocks = RecordingMocks()
    with pytest.raises(StackConfigError) as refused:
        run_program(values, stack="dev", dist=fake_dist, mocks=mocks)
    # The contracts' own message, word for word: the local stack says the same.
    assert str(refused.value) == _contracts_message(values)
    assert mocks.created == []
    assert mocks.calls == []


def _no_quota(section: str, entry: str, key: str) -> Callable[[dict[str, Any]], None]:
    def change(values: dict[str, Any]) -> None:
        (found,) = [e for e in values[section] if e["id"] == entry]
        found[key] = None

    return change


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        pytest.param(
            [_no_quota(CLIENTS, "batch-runner", "dailyQuota")],
            ["ingestClients[1] 'batch-runner': dailyQuota is required outside dev"],
            id="client",
        ),
        pytest.param(
            [_no_quota(PARTNERS, "orbital", "pullDailyQuota")],
            ["partners[2] 'orbital': pullDailyQuota is required outside dev"],
            id="partner",
        ),
        pytest.param(
            [
                _no_quota(CLIENTS, "edge-gateway", "dailyQuota"),
                _no_quota(PARTNERS, "acme", "pullDailyQuota"),
            ],
            [
                "ingestClients[0] 'edge-gateway': dailyQuota is required outside dev",
                "partners[0] 'acme': pullDailyQuota is required outside dev",
            ],
            id="both",
        ),
    ],
)
def test_outside_dev_a_usage_plan_without_quota_fails_before_any_resource(
    prod_values: dict[str, Any],
    fake_dist: Path,
    changes: list[Callable[[dict[str, Any]], None]],
    problems: list[str],
) -> None:
    values = copy.deepcopy(prod_values)
    for change in changes:
        change(values)
    StackConfig.from_pulumi_values(  # valid for the contracts (dev may go without quotas)
        {k: v for k, v in values.items() if k.startswith("ryuzen-telemetry:")}
    )
    mocks = RecordingMocks()
    with pytest.raises(StackConfigError) as refused:
        run_program(values, stack="prod", dist=fake_dist, mocks=mocks)
    assert str(refused.value) == (
        "stack 'prod': " + "; ".join(problems) + " (requests per day of its usage plan)"
    )
    assert mocks.created == []
    assert mocks.calls == []


def test_the_dev_stack_file_without_quotas_is_refused_under_another_name(
    dev_values: dict[str, Any], fake_dist: Path
) -> None:
    # "Outside dev" is the stack's name, as for deletion protection's default.
    assert not any("dailyQuota" in client for client in dev_values[CLIENTS])
    mocks = RecordingMocks()
    with pytest.raises(StackConfigError, match=r"^stack 'staging': ingestClients\[0\]"):
        run_program(dev_values, stack="staging", dist=fake_dist, mocks=mocks)
    assert mocks.created == []


def test_the_example_prod_stack_sets_every_quota(prod_values: dict[str, Any]) -> None:
    # Ingest clients have no default quota: the prod file names each one's.
    assert all(client.get("dailyQuota") for client in prod_values[CLIENTS])
    config = StackConfig.from_pulumi_values(
        {k: v for k, v in prod_values.items() if k.startswith("ryuzen-telemetry:")}
    )
    assert all(partner.pull_daily_quota for partner in config.partners)


def test_missing_artifacts_fail_before_any_resource(
    dev_values: dict[str, Any], tmp_path: Path
) -> None:
    mocks = RecordingMocks()
    with pytest.raises(ArtifactError, match=r"nox -s build") as refused:
        run_program(dev_values, stack="dev", dist=tmp_path / "empty", mocks=mocks)
    for stage in build_artifacts.STAGES:
        assert f"nox -s build -- {stage}" in str(refused.value)
    assert mocks.created == []


def test_a_zip_changed_after_its_build_is_refused(tmp_path: Path) -> None:
    write_fake_artifacts(tmp_path)
    stage = build_artifacts.STAGES["sanitize"]
    with stage.zip_path(tmp_path).open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ArtifactError, match=r"sanitize.*changed after it was built"):
        load_artifacts(tmp_path)


def test_an_artifact_built_from_older_sources_is_refused(tmp_path: Path) -> None:
    write_fake_artifacts(tmp_path)
    stage = build_artifacts.STAGES["ingest"]
    manifest = json.loads(stage.zip_manifest_path(tmp_path).read_text())
    manifest["source_fingerprint"] = "0" * 64
    stage.zip_manifest_path(tmp_path).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"stale.*nox -s build -- ingest"):
        load_artifacts(tmp_path)


def test_a_missing_image_context_is_refused(tmp_path: Path) -> None:
    write_fake_artifacts(tmp_path)
    shutil.rmtree(build_artifacts.STAGES["bundle"].image_context_path(tmp_path))
    with pytest.raises(ArtifactError, match=r"image.*missing.*nox -s build -- bundle"):
        load_artifacts(tmp_path)


def test_the_example_prod_stack_is_valid(prod_values: dict[str, Any]) -> None:
    config = StackConfig.from_pulumi_values(
        {k: v for k, v in prod_values.items() if k.startswith("ryuzen-telemetry:")}
    )
    assert config.alarm_email and config.functions["sanitize"].memory_mb == 3008


def test_deletion_protection_outside_dev(dev_run: ProgramRun, prod_run: ProgramRun) -> None:
    def audit_table(run: ProgramRun) -> dict[str, Any]:
        return run.named(f"ryuzen-{run.stack}-audit-audit").inputs

    assert audit_table(prod_run)["deletionProtectionEnabled"] is True
    assert audit_table(dev_run)["deletionProtectionEnabled"] is False
    for run in (dev_run, prod_run):
        table = audit_table(run)
        assert table["pointInTimeRecovery"] == {"enabled": True}
        assert table["ttl"] == {"attributeName": "expires_at", "enabled": True}
        assert table["billingMode"] == "PAY_PER_REQUEST"
        (index,) = table["globalSecondaryIndexes"]
        assert (index["hashKey"], index["rangeKey"]) == ("event_type", "sk")


def test_deletion_protection_can_be_set_explicitly(
    run: Callable[..., ProgramRun], dev_values: dict[str, Any]
) -> None:
    protected = run({**dev_values, "ryuzen-telemetry:deletionProtection": True}, "dev")
    assert protected.named("ryuzen-dev-audit-audit").inputs["deletionProtectionEnabled"] is True


def test_pulumi_runs_this_program_in_the_build_sessions_venv() -> None:
    import yaml

    from infra.tests.pulumi_harness import PROJECT, REPO_ROOT

    project = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))
    assert project["name"] == PROJECT
    assert project["main"] == "infra/"
    assert (REPO_ROOT / "infra" / "__main__.py").is_file()
    # `nox -s build` makes the venv Pulumi runs the program with (never `uv sync`).
    assert project["runtime"]["options"] == {"toolchain": "pip", "virtualenv": ".nox/build"}
    assert "def build(session" in (REPO_ROOT / "noxfile.py").read_text(encoding="utf-8")


def test_the_config_the_engine_passes_in_the_environment_is_read_whole(
    dev_values: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `pulumi up` hands the program its stack config in PULUMI_CONFIG (JSON strings, the
    # engine's encoding), not through the in-process store the mocks fill: the program
    # must read the whole namespace from there too (a private SDK detail, pinned here).
    from pulumi.runtime import config as runtime_config

    from infra import program

    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(engine_config(dev_values)))
    token = runtime_config.CONFIG.set({})
    try:
        read = program.read_stack_config()
    finally:
        runtime_config.CONFIG.reset(token)

    expected = StackConfig.from_pulumi_values(
        {k: v for k, v in dev_values.items() if k.startswith("ryuzen-telemetry:")}
    )
    assert read == expected
    assert [p.id for p in read.partners] == [p.id for p in expected.partners] != []
