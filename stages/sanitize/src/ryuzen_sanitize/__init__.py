"""Ryuzen Telemetry sanitize stage."""

from importlib.metadata import version

__version__ = version("ryuzen-sanitize")
