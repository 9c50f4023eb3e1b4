"""moto's ThreadedMotoServer on loopback, with a port-0 free-port choice and a clean stop."""

from __future__ import annotations

import logging

from moto.server import ThreadedMotoServer

LOOPBACK = "127.0.0.1"
# Local credentials: moto accepts any, and fixed fake ones can never reach real AWS.
FAKE_ACCESS_KEY = "testing"
FAKE_SECRET_KEY = "testing"  # noqa: S105 - moto's documented fake credential


class MotoServer:
    """One embedded AWS endpoint. ``port=0`` lets the OS pick a free port."""

    def __init__(self, port: int = 0) -> None:
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
        self._running = False
        self.url = ""

    def start(self) -> str:
        """Start serving and return the endpoint URL (``http://127.0.0.1:PORT``)."""
        # moto logs every request through werkzeug's logger; keep it to warnings.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self._running = True
        return self.url

    def stop(self) -> None:
        """Stop serving and release the listening socket (moto's stop() leaves it open)."""
        if not self._running:
            return
        self._running = False
        self._server.stop()
        inner = getattr(self._server, "_server", None)
        if inner is not None:
            inner.server_close()
