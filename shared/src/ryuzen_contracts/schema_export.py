"""Write the committed schema files: ``python -m ryuzen_contracts.schema_export [DIR]``.

- ``telemetry-event.v1.json``: the JSON Schema of TelemetryEvent v1, for clients;
- ``analytics-events.v1.json``: the ANALYTICS table's columns, for Glue and partners.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from ryuzen_contracts.analytics_schema import analytics_schema_document
from ryuzen_contracts.telemetry_event import telemetry_event_json_schema

DEFAULT_DIR = Path("shared/schema")
SCHEMA_FILES: dict[str, Callable[[], str]] = {
    "telemetry-event.v1.json": telemetry_event_json_schema,
    "analytics-events.v1.json": analytics_schema_document,
}


def main(argv: list[str]) -> int:
    """Write every schema file into ``argv[0]`` (default: the directory in the repository)."""
    directory = Path(argv[0]) if argv else DEFAULT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    for name, render in SCHEMA_FILES.items():
        (directory / name).write_text(render(), encoding="utf-8")
        print(directory / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
