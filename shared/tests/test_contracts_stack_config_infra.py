"""The stack config's deployment knobs: safe defaults, named errors, and the short runtime
JSON the Pulumi program puts in each Lambda's STACK_CONFIG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ryuzen_contracts.stack_config import (
    DEPLOYMENT_FIELDS,
    BundleTask,
    StackConfig,
    StackConfigError,
    load_stack_config,
)


def _repo_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "Pulumi.yaml").is_file():
            return parent
    raise RuntimeError("no Pulumi.yaml above the tests")


REPO = _repo_root()
MINIMAL: dict[str, Any] = {"partners": [{"id": "acme", "modelPrefixes": ["acme/"]}]}


def test_the_repository_stack_files_load() -> None:
    dev = load_stack_config(REPO / "Pulumi.dev.yaml")
    assert dev.functions == {} and dev.alarm_email is None
    prod_file = REPO / "Pulumi.prod.yaml"
    if prod_file.is_file():  # the infra issue's example stack
        prod = load_stack_config(prod_file)
        assert prod.bundle_task.cpu == 2048


def test_defaults_are_safe_for_production() -> None:
    config = StackConfig.from_pulumi_values(MINIMAL)
    assert config.deletion_protection is None  # on everywhere but a stack named "dev"
    assert config.log_retention_days == 30
    assert config.working_data_backstop_days == 100
    assert config.athena_bytes_scanned_cutoff == 10 * 2**30
    assert config.bundle_task == BundleTask(cpu=1024, memory_mb=4096, ephemeral_storage_gib=50)
    assert config.manage_api_gateway_account is True
    (partner,) = config.partners
    assert (partner.pull_rate_limit, partner.pull_burst_limit, partner.pull_daily_quota) == (
        5.0,
        10,
        1_000,
    )


def test_knobs_are_read_in_the_stack_file_spelling() -> None:
    config = StackConfig.from_pulumi_values(
        {
            **MINIMAL,
            "ryuzen-telemetry:functions": {
                "sanitize": {"memoryMb": 3008, "reservedConcurrency": 20},
                "bundlePull": {"timeoutSeconds": 15},
            },
            "ryuzen-telemetry:ingestClients": [
                {"id": "edge", "allowedPartners": ["acme"], "dailyQuota": 1000}
            ],
            "ryuzen-telemetry:alarmEmail": "oncall@example.com",
            "ryuzen-telemetry:bundleTask": {"cpu": 4096, "memoryMb": 16384},
        }
    )
    assert config.functions["sanitize"].memory_mb == 3008
    assert config.functions["sanitize"].timeout_seconds is None
    assert config.functions["bundlePull"].timeout_seconds == 15
    assert config.ingest_clients[0].daily_quota == 1000
    assert config.bundle_task.memory_mb == 16384


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param(
            {"bundleTask": {"cpu": 1024, "memoryMb": 16384}},
            "bundleTask: memoryMb 16384 does not fit cpu 1024",
            id="fargate-memory",
        ),
        pytest.param({"bundleTask": {"cpu": 512}}, "bundleTask.cpu", id="fargate-cpu"),
        pytest.param({"functions": {"ingset": {}}}, "functions.ingset", id="unknown-function"),
        pytest.param(
            {"functions": {"ingest": {"timeoutSeconds": 901}}},
            "functions.ingest.timeoutSeconds",
            id="lambda-timeout",
        ),
        pytest.param({"logRetentionDays": 31}, "logRetentionDays", id="cloudwatch-retention"),
        pytest.param({"alarmEmail": "not-an-address"}, "alarmEmail", id="email"),
        pytest.param({"workingDataBackstopDays": 31}, "workingDataBackstopDays", id="backstop"),
        pytest.param(
            {"partners": [{"id": "acme", "modelPrefixes": ["acme/"], "pullDailyQuota": 0}]},
            "partners[0] 'acme' pullDailyQuota",
            id="partner-quota",
        ),
    ],
)
def test_bad_knobs_are_named(values: dict[str, Any], message: str) -> None:
    with pytest.raises(StackConfigError) as refused:
        StackConfig.from_pulumi_values({**MINIMAL, **values})
    assert message in str(refused.value)


def _deployment_keys(document: dict[str, Any]) -> set[str]:
    camel = {
        "stack": {"functions", "bundleTask", "alarmEmail", "logRetentionDays",
                  "workingDataBackstopDays", "athenaBytesScannedCutoff", "deletionProtection",
                  "scrubViolationAlarmThreshold", "manageApiGatewayAccount"},
        "partners": {"pullRateLimit", "pullBurstLimit", "pullDailyQuota"},
        "ingest_clients": {"dailyQuota"},
    }  # fmt: skip
    found = set(document) & camel["stack"]
    for partner in document.get("partners", []):
        found |= set(partner) & camel["partners"]
    for client in document.get("ingestClients", []):
        found |= set(client) & camel["ingest_clients"]
    return found


def test_runtime_json_leaves_out_deployment_knobs_and_defaults() -> None:
    config = (
        load_stack_config(REPO / "Pulumi.prod.yaml")
        if (REPO / "Pulumi.prod.yaml").is_file()
        else load_stack_config(REPO / "Pulumi.dev.yaml")
    )
    runtime = config.to_runtime_json()
    document = json.loads(runtime)
    assert _deployment_keys(document) == set()
    assert len(runtime) < len(config.to_json())
    assert "presignedUrlTtlSeconds" not in document  # the default: left for from_json


def test_runtime_json_reads_back_to_the_same_runtime_config() -> None:
    config = StackConfig.from_pulumi_values(
        {
            "partners": [
                {"id": "acme", "modelPrefixes": ["acme/"], "bundleRetentionDays": 30,
                 "awsAccountId": "111122223333", "pullDailyQuota": 5},
                {"id": "nimbus", "modelPrefixes": ["nimbus/"]},
            ],
            "ingestClients": [{"id": "edge", "allowedPartners": ["acme"], "rateLimit": 7}],
            "retention": {"rawHours": 3, "quarantineDays": 9},
            "presignedUrlTtlSeconds": 600,
            "onPii": "quarantine",
            "quarantineRawLines": True,
            "alarmEmail": "oncall@example.com",
        }
    )  # fmt: skip
    back = StackConfig.from_json(config.to_runtime_json())
    deployment = set(DEPLOYMENT_FIELDS["stack"])
    runtime_fields = set(StackConfig.model_fields) - deployment - {"partners", "ingest_clients"}
    for name in runtime_fields:
        assert getattr(back, name) == getattr(config, name), name
    for original, restored in zip(config.partners, back.partners, strict=True):
        assert original.model_dump(exclude=set(DEPLOYMENT_FIELDS["partners"])) == (
            restored.model_dump(exclude=set(DEPLOYMENT_FIELDS["partners"]))
        )
    assert back.ingest_clients[0].rate_limit == 7
    assert back.alarm_email is None  # deployment-only: not in a stage's environment


def test_every_deployment_field_is_a_real_field() -> None:
    from ryuzen_contracts.stack_config import IngestClient, Partner

    assert DEPLOYMENT_FIELDS["stack"] <= set(StackConfig.model_fields)
    assert DEPLOYMENT_FIELDS["partners"] <= set(Partner.model_fields)
    assert DEPLOYMENT_FIELDS["ingest_clients"] <= set(IngestClient.model_fields)
