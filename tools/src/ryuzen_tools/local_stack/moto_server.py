"""moto's ThreadedMotoServer on loopback, with a port-0 free-port choice and a clean stop.

moto appends every model instance it ever creates — each S3 key with its buffer, each
SQS message, each DynamoDB item — to a class-level list that only its web dashboard and
its reset read. In a stack that runs for hours every deleted object would stay in memory
(the soak benchmark saw RSS climb by ~12 MiB per 90,000 events with the working buckets
emptied). So the server lets go of those lists every few seconds with moto's own
``reset_model_data``: the backends keep their live state, and a deleted object becomes
garbage. The cost is that moto's dashboard lists only recent instances.
"""

from __future__ import annotations

import logging
import warnings

from moto.core.model_instances import reset_model_data
from moto.server import ThreadedMotoServer

from ryuzen_tools.local_stack.repeating_thread import RepeatingThread

LOOPBACK = "127.0.0.1"
# Local credentials: moto accepts any, and fixed fake ones can never reach real AWS.
FAKE_ACCESS_KEY = "testing"
FAKE_SECRET_KEY = "testing"  # noqa: S105 - moto's documented fake credential
RELEASE_TRACKED_EVERY_S = 5.0

# moto's S3 delete pops a key without closing its buffer and then, once the key is
# garbage, closes it in __del__ with this warning: expected here, not a fault.
warnings.filterwarnings(
    "ignore", message="S3 key was not disposed of in time", category=ResourceWarning
)


class MotoServer:
    """One embedded AWS endpoint. ``port=0`` lets the OS pick a free port."""

    def __init__(self, port: int = 0, release_every_s: float = RELEASE_TRACKED_EVERY_S) -> None:
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
        self._running = False
        self._releaser = RepeatingThread("moto-release-tracked", reset_model_data, release_every_s)
        self.url = ""

    def start(self) -> str:
        """Start serving and return the endpoint URL (``http://127.0.0.1:PORT``)."""
        # moto logs every request through werkzeug's logger; keep it to warnings.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self._running = True
        self._releaser.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and release the listening socket (moto's stop() leaves it open)."""
        if not self._running:
            return
        self._running = False
        self._releaser.stop()
        self._server.stop()
        inner = getattr(self._server, "_server", None)
        if inner is not None:
            inner.server_close()
