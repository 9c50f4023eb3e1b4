"""Ryuzen Telemetry contracts: the leaf package every stage and tool shares.

It never imports a stage or a tool (a test enforces this). Modules are imported
directly (``from ryuzen_contracts.key_layout import raw_key``) so a Lambda only pays
for what it uses at cold start.
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Read lazily: importlib.metadata costs tens of milliseconds of Lambda cold start.
    if name == "__version__":
        from importlib.metadata import version

        return version("ryuzen-contracts")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
