"""Ryuzen Telemetry bundle stage: the monthly partner bundle and its delivery."""

from importlib.metadata import version

__version__ = version("ryuzen-bundle")
