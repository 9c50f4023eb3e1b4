"""Audit: the TelemetryAudit table (audit events and bundle states) and ingest's idempotency table.

Both shapes come from ``ryuzen_contracts.tables``, the definitions the local stack gives
moto, so the table AWS gets and the table the tests use cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from ryuzen_contracts.tables import (
    AUDIT_TTL_ATTRIBUTE,
    IDEMPOTENCY_TTL_ATTRIBUTE,
    audit_table_definition,
    idempotency_table_definition,
)


@dataclass
class AuditArgs:
    """What the tables need from the stack config."""

    # Deletion protection (DynamoDB's, and Pulumi's protect): on outside dev.
    protect: bool


class Audit(pulumi.ComponentResource):
    """The TelemetryAudit table and the idempotency table."""

    audit_table: aws.dynamodb.Table
    idempotency_table: aws.dynamodb.Table

    def __init__(
        self, name: str, args: AuditArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ryuzen:index:Audit", name, None, opts)
        # The audit trail is the evidence of every deletion: point-in-time recovery on,
        # and deletion protection outside dev. TTL expires events after the retention the
        # audit writer stamps (``expires_at``).
        self.audit_table = aws.dynamodb.Table(
            f"{name}-audit",
            **table_args(audit_table_definition("unused")),
            point_in_time_recovery={"enabled": True},
            ttl={"attribute_name": AUDIT_TTL_ATTRIBUTE, "enabled": True},
            deletion_protection_enabled=args.protect,
            server_side_encryption={"enabled": True},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        # Idempotency records live 24 hours; losing them only re-opens a retry window.
        self.idempotency_table = aws.dynamodb.Table(
            f"{name}-idempotency",
            **table_args(idempotency_table_definition("unused")),
            ttl={"attribute_name": IDEMPOTENCY_TTL_ATTRIBUTE, "enabled": True},
            server_side_encryption={"enabled": True},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "audit_table": self.audit_table.name,
                "idempotency_table": self.idempotency_table.name,
            }
        )


def table_args(definition: dict[str, Any]) -> dict[str, Any]:
    """pulumi-aws ``Table`` arguments from boto3 ``create_table`` arguments (name left out:
    Pulumi names the table, so two stacks in one account never collide)."""
    keys = {key["KeyType"]: key["AttributeName"] for key in definition["KeySchema"]}
    args: dict[str, Any] = {
        "billing_mode": definition["BillingMode"],
        "hash_key": keys["HASH"],
        "attributes": [
            {"name": attribute["AttributeName"], "type": attribute["AttributeType"]}
            for attribute in definition["AttributeDefinitions"]
        ],
    }
    if "RANGE" in keys:
        args["range_key"] = keys["RANGE"]
    indexes = []
    for index in definition.get("GlobalSecondaryIndexes", []):
        index_keys = {key["KeyType"]: key["AttributeName"] for key in index["KeySchema"]}
        indexes.append(
            {
                "name": index["IndexName"],
                "hash_key": index_keys["HASH"],
                "range_key": index_keys.get("RANGE"),
                "projection_type": index["Projection"]["ProjectionType"],
            }
        )
    if indexes:
        args["global_secondary_indexes"] = indexes
    return args
