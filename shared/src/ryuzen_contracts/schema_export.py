"""Write the committed JSON Schema file: ``python -m ryuzen_contracts.schema_export [PATH]``."""

from __future__ import annotations

import sys
from pathlib import Path

from ryuzen_contracts.telemetry_event import telemetry_event_json_schema

DEFAULT_PATH = Path("shared/schema/telemetry-event.v1.json")


def main(argv: list[str]) -> int:
    """Write the schema to ``argv[0]`` (default: the path inside the repository)."""
    path = Path(argv[0]) if argv else DEFAULT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(telemetry_event_json_schema(), encoding="utf-8")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
