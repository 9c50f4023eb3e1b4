"""Helpers the tools tests share (conftest holds only fixtures)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).parent / "events"
REGION = "eu-west-1"


def repo_root() -> Path:
    """The directory holding Pulumi.yaml, found upwards from this file."""
    for directory in Path(__file__).resolve().parents:
        if (directory / "Pulumi.yaml").is_file():
            return directory
    raise RuntimeError("no Pulumi.yaml above the tests")


def load_event(name: str) -> dict[str, Any]:
    """A sample AWS event from tests/events/."""
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


def unique(prefix: str) -> str:
    """A short name no other test uses in the shared moto backend."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
