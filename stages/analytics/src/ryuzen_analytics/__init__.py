"""Ryuzen Telemetry analytics stage."""

from importlib.metadata import version

__version__ = version("ryuzen-analytics")
