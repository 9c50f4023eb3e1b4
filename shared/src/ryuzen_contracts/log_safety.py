"""Logging an error without its message: where it happened, never what it said.

An exception's message can quote the data that caused it (pydantic and polars both
do), and telemetry logs must never carry a payload. Stages log these fields instead of
``logger.exception``.
"""

from __future__ import annotations

import traceback
from pathlib import PurePath


def error_fields(error: BaseException) -> dict[str, str]:
    """``{"error_type", "error_at"}``: the exception's class and the file:line that raised it."""
    fields = {"error_type": type(error).__name__}
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        fields["error_at"] = f"{PurePath(frames[-1].filename).name}:{frames[-1].lineno}"
    return fields
