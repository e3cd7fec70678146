"""Serve a WSGI app with werkzeug in a daemon thread: free port, readiness wait, clean stop.

The sandbox and the receiver both use this; neither writes socket code of its own.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

__all__ = ["ServerThread", "QuietHandler"]


class QuietHandler(WSGIRequestHandler):
    """A request handler that keeps werkzeug's per-request log lines out of notebooks."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            super().log(type, message, *args)


class ServerThread:
    """``app`` served on ``host:port`` (port 0: a free one) by a threaded werkzeug server."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, name: str = "linq-nb-server") -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> str:
        """``http://host:port``, without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _bind(self) -> BaseWSGIServer:
        server = make_server(self.host, self.port, self.app, threaded=True, request_handler=QuietHandler)
        self.port = server.server_port
        return server

    def serve_forever(self, ready: Callable[[str], None] | None = None) -> None:
        """Serve in the foreground (for command-line use) until interrupted; ``ready(url)`` once bound."""
        server = self._bind()
        if ready is not None:
            ready(self.url)
        try:
            server.serve_forever()
        finally:
            server.server_close()

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Bind, serve in a daemon thread, and return once the port accepts connections."""
        if self.running:
            return self
        self._server = self._bind()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return self
            except OSError as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} did not start listening on {self.url} within {timeout} s") from exc
                time.sleep(0.02)

    def stop(self) -> None:
        """Stop serving and free the port. Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
