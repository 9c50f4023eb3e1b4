"""The Pulumi program's entry point: ``pulumi up`` runs this file (``main: infra/``).

Pulumi runs the directory as a script, so ``infra`` is not importable as a package until
the repository root is on ``sys.path``. Everything else happens in ``program.main``: the
tests run that same function under Pulumi's mocks.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program import main

main()
