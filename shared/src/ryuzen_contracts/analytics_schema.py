"""The ANALYTICS events table: the column contract of the analytics stage's Parquet.

One definition feeds the analytics stage (its explicit polars schema), the Glue table
(Hive types) and the bundle (``schema.json`` for partners). Partition columns live in
the hive path (``partner=/month=/day=``), not in the files.
``python -m ryuzen_contracts.schema_export`` writes it to
``shared/schema/analytics-events.v1.json``.
"""

from __future__ import annotations

import json
from typing import Literal

ANALYTICS_SCHEMA_VERSION = "1"

# Parquet key-value metadata of every ANALYTICS object: the SANITIZED rows its batch had
# (the certificate's ``counts.sanitized``) and how many in-batch duplicates analytics
# dropped. The bundle builder refuses to sign a month whose certified batches these do
# not account for, since cleanup deletes SANITIZED once the bundle is delivered.
SANITIZED_ROWS_KEY = "ryuzen.sanitized_rows"
DUPLICATES_REMOVED_KEY = "ryuzen.duplicates_removed"

HiveType = Literal[
    "string", "double", "bigint", "int", "boolean", "timestamp", "date",
    "array<struct<key:string,value:string,type:string>>",
]  # fmt: skip

# (name, Hive type, description). The ingest client id is deliberately absent: partners
# see their models' performance, not which of our customers sent each event.
ANALYTICS_COLUMNS: tuple[tuple[str, HiveType, str], ...] = (
    ("event_id", "string", "UUID or ULID of the event (unique within a bundle)"),
    ("kind", "string", "inference or delivery"),
    ("occurred_at", "timestamp", "when the event happened (client clock, UTC, microseconds)"),
    ("occurred_date", "date", "UTC date of occurred_at"),
    ("received_at", "timestamp", "when Ryuzen accepted the event (UTC); decides the month"),
    ("batch_id", "string", "ingest batch the event arrived in"),
    ("model_id", "string", "model id"),
    ("model_version", "string", "model version"),
    ("region", "string", "serving region"),
    ("latency_ms", "double", "end-to-end latency in milliseconds"),
    ("ttft_ms", "double", "time to first token in milliseconds"),
    ("input_tokens", "bigint", "prompt tokens (a count, never the text)"),
    ("output_tokens", "bigint", "completion tokens (a count, never the text)"),
    (
        "tokens_per_second",
        "double",
        "output_tokens / generation seconds ((latency_ms - ttft_ms) / 1000); null when undefined",
    ),
    ("retries", "int", "client retries"),
    ("cache_hit", "boolean", "served from cache"),
    ("status", "string", "ok, error, timeout, cancelled, rate_limited or filtered"),
    ("http_status", "int", "HTTP status code"),
    ("error_code", "string", "error code"),
    ("error_message", "string", "error message, PII redacted"),
    ("finish_reason", "string", "finish reason"),
    ("delivery_channel", "string", "delivery channel"),
    ("delivery_attempts", "int", "delivery attempts"),
    ("delivery_delivered", "boolean", "whether the response was delivered"),
    ("delivery_bytes", "bigint", "bytes delivered"),
    ("client_sdk", "string", "SDK that emitted the event"),
    ("client_sdk_version", "string", "SDK version"),
    ("late", "boolean", "occurred before the start of its receipt month"),
    (
        "attributes",
        "array<struct<key:string,value:string,type:string>>",
        "free-form attributes {key, value, type}, PII redacted",
    ),
)

PARTITION_COLUMNS: tuple[tuple[str, HiveType, str], ...] = (
    ("partner", "string", "partner owning the model"),
    ("month", "string", "receipt month, YYYY-MM"),
    ("day", "string", "receipt day of month, DD"),
)


def analytics_schema_document() -> str:
    """The published schema file: columns, partition columns, version (stable JSON)."""
    document = {
        "name": "ryuzen_telemetry_events",
        "version": ANALYTICS_SCHEMA_VERSION,
        "format": "parquet (zstd)",
        "columns": [{"name": n, "type": t, "description": d} for n, t, d in ANALYTICS_COLUMNS],
        "partition_columns": [
            {"name": n, "type": t, "description": d} for n, t, d in PARTITION_COLUMNS
        ],
    }
    return json.dumps(document, indent=2) + "\n"
