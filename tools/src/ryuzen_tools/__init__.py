"""Ryuzen Telemetry tooling: the ryuzen CLI and the local stack."""

from importlib.metadata import version

__version__ = version("ryuzen-tools")
