"""DynamoDB table shapes shared by the Pulumi program, the local stack and the tests.

One definition, so the table AWS gets and the table moto gets cannot drift apart.
"""

from __future__ import annotations

from typing import Any

AUDIT_PK = "pk"
AUDIT_SK = "sk"
AUDIT_TTL_ATTRIBUTE = "expires_at"
AUDIT_EVENT_TYPE_INDEX = "event_type-sk-index"
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"


def audit_table_definition(table_name: str) -> dict[str, Any]:
    """``create_table`` arguments of the TelemetryAudit table (pk/sk plus the event-type GSI).

    The GSI is keyed ``event_type`` + ``sk`` (which starts with the ISO time), so "the
    newest ERROR events" is one query. It is sparse: bundle-state items carry no
    ``event_type`` and never appear in it.
    """
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": AUDIT_PK, "AttributeType": "S"},
            {"AttributeName": AUDIT_SK, "AttributeType": "S"},
            {"AttributeName": "event_type", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": AUDIT_PK, "KeyType": "HASH"},
            {"AttributeName": AUDIT_SK, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": AUDIT_EVENT_TYPE_INDEX,
                "KeySchema": [
                    {"AttributeName": "event_type", "KeyType": "HASH"},
                    {"AttributeName": AUDIT_SK, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def idempotency_table_definition(table_name: str) -> dict[str, Any]:
    """``create_table`` arguments of the table aws-lambda-powertools' idempotency utility uses."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    }
