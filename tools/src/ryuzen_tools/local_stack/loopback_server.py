"""A threaded WSGI server on 127.0.0.1, started and stopped on demand.

The local API Gateway and the presign proxy are both a WSGI app on loopback served from a
background thread; this is that serving, once.
"""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from ryuzen_tools.local_stack.moto_server import LOOPBACK


class LoopbackServer:
    """Serves ``app`` on ``127.0.0.1:port`` (0: a free port) from a daemon thread."""

    def __init__(
        self, app: Any, port: int, request_handler: type[WSGIRequestHandler], name: str
    ) -> None:
        self._app = app
        self._port = port
        self._request_handler = request_handler
        self._name = name
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Serve and return the base URL (``http://127.0.0.1:PORT``)."""
        self._server = make_server(
            LOOPBACK, self._port, self._app, threaded=True, request_handler=self._request_handler
        )
        # A short poll interval keeps stop() prompt (shutdown waits for one poll).
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name=self._name, daemon=True
        )
        self._thread.start()
        return f"http://{LOOPBACK}:{self._server.server_port}"

    def stop(self) -> None:
        """Stop accepting requests and close the socket (no-op when not serving)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
