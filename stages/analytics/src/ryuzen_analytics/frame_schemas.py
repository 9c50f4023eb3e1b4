"""The explicit polars schemas of the stage's input (SANITIZED) and output (ANALYTICS).

Both are built from the column contracts in ``ryuzen_contracts``, so the stage can never
drift from what sanitize writes or from what the Glue table declares. Telemetry is never
read with an inferred schema (polars infers from the first rows).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
from ryuzen_contracts.analytics_schema import ANALYTICS_COLUMNS, HiveType
from ryuzen_contracts.sanitized_schema import SANITIZED_COLUMNS, ColumnType

ATTRIBUTE_STRUCT = pl.Struct({"key": pl.String, "value": pl.String, "type": pl.String})

_SANITIZED_TYPES: dict[ColumnType, pl.DataType] = {
    "string": pl.String(),
    "float64": pl.Float64(),
    "int64": pl.Int64(),
    "int32": pl.Int32(),
    "bool": pl.Boolean(),
    "timestamp_us_utc": pl.Datetime("us", "UTC"),
    "attributes": pl.List(ATTRIBUTE_STRUCT),
}

# Hive types as Parquet physical/logical types that Athena reads back as declared:
# timestamp -> INT64 TIMESTAMP(MICROS, UTC), date -> INT32 DATE, bigint -> INT64, int -> INT32.
HIVE_TO_POLARS: dict[HiveType, pl.DataType] = {
    "string": pl.String(),
    "double": pl.Float64(),
    "bigint": pl.Int64(),
    "int": pl.Int32(),
    "boolean": pl.Boolean(),
    "timestamp": pl.Datetime("us", "UTC"),
    "date": pl.Date(),
    "array<struct<key:string,value:string,type:string>>": pl.List(ATTRIBUTE_STRUCT),
}

SANITIZED_SCHEMA = pl.Schema({name: _SANITIZED_TYPES[kind] for name, kind, _ in SANITIZED_COLUMNS})
ANALYTICS_SCHEMA = pl.Schema({name: HIVE_TO_POLARS[kind] for name, kind, _ in ANALYTICS_COLUMNS})


class SchemaMismatchError(ValueError):
    """A frame or file does not have the exact schema of its contract."""


def schema_differences(actual: Mapping[str, pl.DataType], expected: pl.Schema) -> list[str]:
    """What separates ``actual`` from ``expected``: missing, unexpected, retyped, reordered."""
    problems = [f"missing column {name}" for name in expected if name not in actual]
    # A foreign file's column names are arbitrary text: shown shortened, in a log line.
    problems += [f"unexpected column {name[:64]!r}" for name in actual if name not in expected]
    problems += [
        f"column {name} is {actual[name]}, expected {dtype}"
        for name, dtype in expected.items()
        if name in actual and actual[name] != dtype
    ]
    if not problems and list(actual) != list(expected):
        problems.append("columns are not in contract order")
    return problems


def require_schema(actual: Mapping[str, pl.DataType], expected: pl.Schema, what: str) -> None:
    """Raise SchemaMismatchError naming every difference (column names and types only)."""
    problems = schema_differences(actual, expected)
    if problems:
        shown = "; ".join(problems[:8]) + ("; ..." if len(problems) > 8 else "")
        raise SchemaMismatchError(f"not the {what} schema: {shown}")
