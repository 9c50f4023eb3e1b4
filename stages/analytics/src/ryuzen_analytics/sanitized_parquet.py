"""Reading one SANITIZED Parquet object, and refusing anything that is not one.

The file's own schema is compared with the SANITIZED contract *before* any row is read:
a file with a missing, extra, retyped or reordered column is refused, never coerced or
inferred. Then its rows must agree with the key they were found under — the partner, the
receipt month and the batch decide where the ANALYTICS rows land and which partner's
bundle ships them, so a disagreement is refused too (a row of another partner must never
reach this partner's prefix).
"""

from __future__ import annotations

import io

import polars as pl
from ryuzen_contracts.key_layout import SanitizedKey

from ryuzen_analytics.frame_schemas import SANITIZED_SCHEMA, require_schema


class SanitizedObjectError(ValueError):
    """The object is not a SANITIZED Parquet file consistent with its key."""


def read_sanitized(body: bytes) -> pl.DataFrame:
    """The rows of SANITIZED Parquet ``body``, in the contract schema; raise when it differs."""
    try:
        schema = pl.read_parquet_schema(io.BytesIO(body))
    except pl.exceptions.PolarsError as error:
        raise SanitizedObjectError(f"not a Parquet file ({type(error).__name__})") from None
    require_schema(schema, SANITIZED_SCHEMA, "SANITIZED")
    # schema= makes polars check the file against the contract again rather than trust it.
    return pl.read_parquet(io.BytesIO(body), schema=SANITIZED_SCHEMA)


def check_matches_key(frame: pl.DataFrame, key: SanitizedKey) -> None:
    """Raise SanitizedObjectError unless every row's partner, batch and receipt month match."""
    problems = []
    disagreeing = frame.select(
        partner=(pl.col("partner") != key.partner).fill_null(True).sum(),
        batch_id=(pl.col("batch_id") != key.batch_id).fill_null(True).sum(),
        month=(pl.col("received_at").dt.strftime("%Y-%m") != key.month).fill_null(True).sum(),
    ).row(0, named=True)
    for column, count in disagreeing.items():
        if count:
            # Counts only: the values themselves stay out of logs and audit details.
            problems.append(f"{count} rows with another or no {column}")
    if problems:
        raise SanitizedObjectError(f"rows disagree with their key: {'; '.join(problems)}")
