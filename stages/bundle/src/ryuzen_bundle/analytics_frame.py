"""The ANALYTICS column contract as a polars schema, and how a file is brought onto it.

The contract (``ryuzen_contracts.analytics_schema``) is written in Hive types; this maps
them to polars types once. Every ANALYTICS file is read against this explicit schema:
contract columns are selected by name (extra columns, such as partition columns a writer
may have kept, are dropped), each is cast to its contract type, and a column the file
lacks fails the build — a bundle never silently ships a column of nulls.
"""

from __future__ import annotations

import polars as pl
from ryuzen_contracts.analytics_schema import ANALYTICS_COLUMNS, HiveType

ATTRIBUTE_STRUCT = pl.Struct({"key": pl.String, "value": pl.String, "type": pl.String})
_POLARS_TYPES: dict[HiveType, pl.DataType] = {
    "string": pl.String(),
    "double": pl.Float64(),
    "bigint": pl.Int64(),
    "int": pl.Int32(),
    "boolean": pl.Boolean(),
    "timestamp": pl.Datetime("us", "UTC"),
    "date": pl.Date(),
    "array<struct<key:string,value:string,type:string>>": pl.List(ATTRIBUTE_STRUCT),
}
ANALYTICS_SCHEMA = pl.Schema({name: _POLARS_TYPES[kind] for name, kind, _ in ANALYTICS_COLUMNS})


class AnalyticsSchemaError(ValueError):
    """An ANALYTICS file lacks a contract column or holds one that cannot be cast."""


def column_expr(name: str, source: pl.DataType) -> pl.Expr:
    """The expression bringing column ``name`` of dtype ``source`` onto the contract type."""
    target = ANALYTICS_SCHEMA[name]
    column = pl.col(name)
    if isinstance(target, pl.Datetime) and isinstance(source, pl.Datetime):
        # A writer that dropped the zone still wrote UTC (the contract says so); a writer
        # that kept another zone is converted, never reinterpreted.
        column = (
            column.dt.replace_time_zone("UTC")
            if source.time_zone is None
            else column.dt.convert_time_zone("UTC")
        )
    elif isinstance(target, pl.Datetime) or isinstance(source, pl.Datetime):
        raise AnalyticsSchemaError(f"column {name}: {source} cannot become {target}")
    return column.cast(target, strict=True).alias(name)


def contract_columns(file_schema: pl.Schema, *, where: str) -> list[pl.Expr]:
    """The contract columns, in contract order, as expressions over a file of ``file_schema``."""
    missing = [name for name in ANALYTICS_SCHEMA if name not in file_schema]
    if missing:
        raise AnalyticsSchemaError(f"{where}: missing contract column(s) {', '.join(missing)}")
    return [column_expr(name, file_schema[name]) for name in ANALYTICS_SCHEMA]


def schema_fingerprint(file_schema: pl.Schema) -> tuple[tuple[str, str], ...]:
    """A hashable summary of a file's schema: files sharing it can be scanned together."""
    return tuple((name, str(dtype)) for name, dtype in file_schema.items())
