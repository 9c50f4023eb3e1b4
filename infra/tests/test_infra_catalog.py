"""The Glue table is the schema the analytics stage publishes, projected over partner,
month and day; the Athena workgroup enforces encrypted results and a scan cutoff."""

from __future__ import annotations

import json

import pytest

from infra.catalog import load_schema, projection_parameters
from infra.program import SCHEMA_FILE
from infra.tests.pulumi_harness import ProgramRun


def _table(run: ProgramRun) -> dict:
    (table,) = run.of_type("aws:glue/catalogTable:CatalogTable")
    return table.inputs


def test_columns_are_the_published_schema(any_run: ProgramRun) -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    table = _table(any_run)
    assert table["name"] == schema["name"]
    columns = table["storageDescriptor"]["columns"]
    assert [(c["name"], c["type"]) for c in columns] == [
        (c["name"], c["type"]) for c in schema["columns"]
    ]
    assert [(c["name"], c["type"]) for c in table["partitionKeys"]] == [
        (c["name"], c["type"]) for c in schema["partition_columns"]
    ]
    assert "ParquetHiveSerDe" in table["storageDescriptor"]["serDeInfo"]["serializationLibrary"]


def test_partitions_are_projected_over_the_key_layout(any_run: ProgramRun, request) -> None:
    values = request.getfixturevalue(f"{any_run.stack}_values")
    parameters = _table(any_run)["parameters"]
    analytics = any_run.outputs["buckets"]["analytics"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.partner.values"] == ",".join(
        p["id"] for p in values["ryuzen-telemetry:partners"]
    )
    assert parameters["projection.month.format"] == "yyyy-MM"
    assert parameters["projection.day.digits"] == "2"
    assert parameters["storage.location.template"] == (
        f"s3://{analytics}/analytics/events/partner=${{partner}}/month=${{month}}/day=${{day}}/"
    )


def test_a_schema_with_other_partitions_is_refused() -> None:
    schema = load_schema(SCHEMA_FILE)
    schema["partition_columns"] = schema["partition_columns"][:2]
    with pytest.raises(ValueError, match="partner, month and day"):
        projection_parameters("s3://b/analytics/events/", ["acme"], schema)


def test_the_workgroup_enforces_encryption_and_a_cutoff(any_run: ProgramRun, request) -> None:
    values = request.getfixturevalue(f"{any_run.stack}_values")
    (workgroup,) = any_run.of_type("aws:athena/workgroup:Workgroup")
    configuration = workgroup.inputs["configuration"]
    assert configuration["enforceWorkgroupConfiguration"] is True
    assert configuration["bytesScannedCutoffPerQuery"] == values.get(
        "ryuzen-telemetry:athenaBytesScannedCutoff", 10 * 2**30
    )
    result = configuration["resultConfiguration"]
    assert result["encryptionConfiguration"]["encryptionOption"] == "SSE_KMS"
    athena = any_run.outputs["buckets"]["athena"]
    assert result["outputLocation"] == f"s3://{athena}/results/"
