"""``python -m ryuzen_sanitize scan FILE``: the dry-run PII scanner."""

import sys

from ryuzen_sanitize.scan_file import main

raise SystemExit(main(sys.argv[1:]))
