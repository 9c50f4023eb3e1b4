"""Ryuzen Telemetry contracts: the leaf package every stage and tool shares.

It never imports a stage or a tool (a test enforces this). Modules are imported
directly (``from ryuzen_contracts.key_layout import raw_key``) so a Lambda only pays
for what it uses at cold start.
"""

from importlib.metadata import version

__version__ = version("ryuzen-contracts")
