"""The column contract of SANITIZED Parquet, between the sanitize and analytics stages.

Declared here without polars (the contracts package stays light for the ingest Lambda);
each stage turns it into an explicit polars schema. Telemetry is never read with an
inferred schema: polars infers from the first rows and silently drops unseen keys.
"""

from __future__ import annotations

from typing import Literal

SANITIZED_SCHEMA_VERSION = "1"

ColumnType = Literal[
    "string", "float64", "int64", "int32", "bool", "timestamp_us_utc", "attributes"
]

# (name, type, description). "attributes" is a list of {key, value, type} structs: the
# value as a string and its JSON type ("string", "int", "float", "bool"), so one column
# holds every attribute without a per-key schema.
SANITIZED_COLUMNS: tuple[tuple[str, ColumnType, str], ...] = (
    ("event_id", "string", "UUID or ULID of the event, as sent"),
    ("schema_version", "string", "TelemetryEvent schema version"),
    ("kind", "string", "inference or delivery"),
    ("occurred_at", "timestamp_us_utc", "when the event happened (client clock, UTC)"),
    ("received_at", "timestamp_us_utc", "when ingest accepted the batch (UTC)"),
    ("batch_id", "string", "ingest batch (RAW object) the event arrived in"),
    ("client_id", "string", "ingest client that sent the event"),
    ("partner", "string", "partner owning the model"),
    ("model_id", "string", "model id"),
    ("model_version", "string", "model version"),
    ("region", "string", "serving region"),
    ("latency_ms", "float64", "end-to-end latency in milliseconds"),
    ("ttft_ms", "float64", "time to first token in milliseconds"),
    ("input_tokens", "int64", "prompt tokens (a count, never the text)"),
    ("output_tokens", "int64", "completion tokens (a count, never the text)"),
    ("retries", "int32", "client retries"),
    ("cache_hit", "bool", "served from cache"),
    ("status", "string", "outcome status"),
    ("http_status", "int32", "HTTP status code"),
    ("error_code", "string", "error code"),
    ("error_message", "string", "error message, PII redacted"),
    ("finish_reason", "string", "finish reason"),
    ("delivery_channel", "string", "delivery channel"),
    ("delivery_attempts", "int32", "delivery attempts"),
    ("delivery_delivered", "bool", "whether the response was delivered"),
    ("delivery_bytes", "int64", "bytes delivered"),
    ("client_sdk", "string", "SDK that emitted the event"),
    ("client_sdk_version", "string", "SDK version"),
    ("attributes", "attributes", "free-form attributes {key, value, type}, PII redacted"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _, _ in SANITIZED_COLUMNS)
