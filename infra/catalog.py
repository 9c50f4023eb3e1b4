"""Catalog: the Glue table over ANALYTICS and the Athena workgroup that queries it.

The columns are the ones the analytics stage publishes in
``shared/schema/analytics-events.v1.json`` (``ryuzen_contracts.schema_export``), read at
deploy time, so the table cannot drift from what the stage writes. Partitions are
*projected* (partner from the stack config, month from the first month on, day 01-31),
so a new partition is queryable the moment its first object lands — no crawler, no
``MSCK REPAIR``; adding a partner to the stack config adds it to the projection.

The workgroup enforces its own settings on every query: results go to the Athena results
bucket encrypted with SSE-KMS, and a query stops after the stack's bytes-scanned cutoff.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

ANALYTICS_PREFIX = "analytics/events"
# The first receipt month a query can name; projection enumerates months from here.
FIRST_MONTH = "2025-01"


def load_schema(path: Path) -> dict[str, Any]:
    """The published analytics schema document (``columns``, ``partition_columns``)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    if not document.get("columns") or not document.get("partition_columns"):
        raise ValueError(
            f"{path}: no columns or partition_columns; regenerate it with "
            "`python -m ryuzen_contracts.schema_export`"
        )
    return dict(document)


@dataclass
class CatalogArgs:
    """The schema, where the data is, whose partitions exist and the query limits."""

    schema: dict[str, Any]
    database_name: str
    partner_ids: Sequence[str]
    analytics_bucket: aws.s3.Bucket
    results_bucket: aws.s3.Bucket
    results_key: aws.kms.Key
    bytes_scanned_cutoff: int
    protect: bool


class Catalog(pulumi.ComponentResource):
    """The Glue database and table, and the Athena workgroup."""

    database: aws.glue.CatalogDatabase
    table: aws.glue.CatalogTable
    workgroup: aws.athena.Workgroup

    def __init__(
        self, name: str, args: CatalogArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ryuzen:index:Catalog", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.database = aws.glue.CatalogDatabase(
            f"{name}-database",
            name=args.database_name,
            description="Ryuzen Telemetry: normalized, partner-partitioned telemetry",
            opts=child,
        )
        location = args.analytics_bucket.bucket.apply(lambda b: f"s3://{b}/{ANALYTICS_PREFIX}/")
        self.table = aws.glue.CatalogTable(
            f"{name}-events",
            database_name=self.database.name,
            name=str(args.schema["name"]),
            description=f"Analytics events, schema version {args.schema.get('version')}",
            table_type="EXTERNAL_TABLE",
            parameters=location.apply(
                lambda base: projection_parameters(base, args.partner_ids, args.schema)
            ),
            partition_keys=[
                aws.glue.CatalogTablePartitionKeyArgs(name=name, type=kind, comment=comment)
                for name, kind, comment in map(_column, args.schema["partition_columns"])
            ],
            storage_descriptor=aws.glue.CatalogTableStorageDescriptorArgs(
                location=location,
                input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                ser_de_info=aws.glue.CatalogTableStorageDescriptorSerDeInfoArgs(
                    serialization_library=(
                        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    )
                ),
                columns=[
                    aws.glue.CatalogTableStorageDescriptorColumnArgs(
                        name=name, type=kind, comment=comment
                    )
                    for name, kind, comment in map(_column, args.schema["columns"])
                ],
            ),
            opts=child,
        )
        results = args.results_bucket.bucket.apply(lambda b: f"s3://{b}/results/")
        self.workgroup = aws.athena.Workgroup(
            f"{name}-workgroup",
            description="Ryuzen Telemetry analytics queries",
            force_destroy=not args.protect,
            configuration={
                "enforce_workgroup_configuration": True,
                "publish_cloudwatch_metrics_enabled": True,
                "bytes_scanned_cutoff_per_query": args.bytes_scanned_cutoff,
                "result_configuration": {
                    "output_location": results,
                    "encryption_configuration": {
                        "encryption_option": "SSE_KMS",
                        "kms_key_arn": args.results_key.arn,
                    },
                },
            },
            opts=child,
        )
        self.register_outputs(
            {
                "database": self.database.name,
                "table": self.table.name,
                "workgroup": self.workgroup.name,
            }
        )


def _column(column: dict[str, Any]) -> tuple[str, str, str]:
    """(name, type, comment) of a schema column; Glue keeps 255 characters of a comment."""
    return str(column["name"]), str(column["type"]), str(column.get("description", ""))[:255]


def projection_parameters(
    location: str, partner_ids: Sequence[str], schema: dict[str, Any]
) -> dict[str, str]:
    """Table parameters: Parquet, and partition projection over partner, month and day."""
    partitions = [c["name"] for c in schema["partition_columns"]]
    if partitions != ["partner", "month", "day"]:
        raise ValueError(
            f"the analytics schema's partitions are {partitions}; this catalog projects "
            "partner, month and day (key_layout.analytics_key)"
        )
    return {
        "classification": "parquet",
        "EXTERNAL": "TRUE",
        "projection.enabled": "true",
        "projection.partner.type": "enum",
        "projection.partner.values": ",".join(partner_ids),
        "projection.month.type": "date",
        "projection.month.format": "yyyy-MM",
        "projection.month.range": f"{FIRST_MONTH},NOW",
        "projection.month.interval": "1",
        "projection.month.interval.unit": "MONTHS",
        "projection.day.type": "integer",
        "projection.day.range": "1,31",
        "projection.day.digits": "2",
        "storage.location.template": (
            f"{location}partner=${{partner}}/month=${{month}}/day=${{day}}/"
        ),
    }
