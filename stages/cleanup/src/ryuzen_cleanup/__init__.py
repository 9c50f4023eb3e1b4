"""Ryuzen Telemetry cleanup stage."""

from importlib.metadata import version

__version__ = version("ryuzen-cleanup")
