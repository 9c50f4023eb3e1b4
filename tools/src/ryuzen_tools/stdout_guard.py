"""Keep stdout for our own output: everything else that writes to it goes to stderr.

``ryuzen local up`` promises that its ready line is the only thing on stdout, so a parent
process can read it. Stage handlers run in-process and may log to stdout (powertools'
Logger does by default, and captures ``sys.stdout`` when it is created), so file
descriptor 1 itself is pointed at stderr and the command writes through a private
duplicate of the original stdout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


@contextmanager
def reserved_stdout() -> Iterator[TextIO]:
    """Yield a stream on the real stdout while fd 1 and ``sys.stdout`` go to stderr."""
    sys.stdout.flush()
    original = os.dup(1)
    os.dup2(2, 1)
    previous = sys.stdout
    sys.stdout = sys.stderr
    stream = os.fdopen(os.dup(original), "w", encoding="utf-8", buffering=1)
    try:
        yield stream
    finally:
        stream.flush()
        stream.close()
        sys.stderr.flush()
        os.dup2(original, 1)
        os.close(original)
        sys.stdout = previous
