"""``python -m ryuzen_bundle build --partner P [--month YYYY-MM]``: the ECS task entry point."""

import sys

from ryuzen_bundle.command_line import main

raise SystemExit(main(sys.argv[1:]))
