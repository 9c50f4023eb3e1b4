"""Ryuzen Telemetry ingest stage."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Read lazily: importlib.metadata costs tens of milliseconds of Lambda cold start, and
    # the handler never needs the version on the request path.
    if name == "__version__":
        from importlib.metadata import version

        return version("ryuzen-ingest")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
