"""Serve a WSGI app in a daemon thread: free port, readiness wait, clean stop.

The sandbox and the receiver both use this; neither writes socket code of its own.
The sandbox, which a classroom shares, is served by waitress: it reads each request
whole in one event loop before a worker thread sees it, so half-sent and idle
connections cost no thread and are closed after ``channel_timeout`` seconds; a fixed
number of threads run the app; at most ``connection_limit`` connections are open at
once (werkzeug's development server starts a thread per connection). The receiver,
a local tool that must see even a request whose declared body is too big to buffer,
is served by werkzeug, with ``channel_timeout`` on each connection's socket and at
most ``threads`` connections served at once.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import ErrorTask
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

__all__ = ["ServerThread", "QuietHandler"]

# "Task queue depth is N" is waitress telling an operator its threads are busy; in a notebook it is noise.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)


class ServerThread:
    """``app`` served on ``host:port`` (port 0: a free one) by waitress, with bounded threads and timeouts.

    Args:
        threads: worker threads running the app (requests beyond them wait their turn).
        channel_timeout: seconds an idle or half-sent connection is kept.
        connection_limit: open connections at most; more wait in the listen backlog.
        max_request_body_size: waitress refuses larger bodies (413) before the app reads them.
        error_body: ``(status, message) -> JSON-able body`` for the errors waitress answers itself
            (a bad chunk, a body over ``max_request_body_size``), so they look like the app's own.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, name: str = "linq-nb-server",
                 threads: int = 16, channel_timeout: float = 10.0, connection_limit: int = 500,
                 max_request_body_size: int = 16 * 1_048_576, server: str = "waitress",
                 error_body: Callable[[int, str], Any] | None = None) -> None:
        if server not in ("waitress", "werkzeug"):
            raise ValueError(f"server must be 'waitress' or 'werkzeug', not {server!r}")
        self.server = server
        self.error_body = error_body
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self.threads = threads
        self.channel_timeout = channel_timeout
        self.connection_limit = connection_limit
        self.max_request_body_size = max_request_body_size
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._phase = "serving"  # then "draining" (no new connections), then "closing"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> str:
        """``http://host:port``, without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _bind(self) -> Any:
        if self.server == "werkzeug":
            handler = type("TimedHandler", (QuietHandler,), {"timeout": self.channel_timeout})
            wz = _BoundedServer(self.host, self.port, self.app, handler)
            wz.slots = threading.BoundedSemaphore(self.threads)
            self.port = wz.server_port
            return wz
        host = self.host.strip("[]")
        server = create_server(
            self.app, listen=f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}",
            threads=self.threads, channel_timeout=self.channel_timeout,
            cleanup_interval=max(1, self.channel_timeout / 2),
            connection_limit=self.connection_limit, max_request_body_size=self.max_request_body_size,
            ident="linq-nb", expose_tracebacks=False, asyncore_use_poll=True,
        )
        if not hasattr(server, "effective_port"):  # one name, several addresses (e.g. localhost: v4 and v6)
            server.close()
            raise OSError(f"{self.host!r} resolves to several addresses; give one, such as 127.0.0.1")
        if self.error_body is not None:
            server.channel_class = _json_errors(self.error_body)
        self.port = int(server.effective_port)
        return server

    def serve_forever(self, ready: Callable[[str], None] | None = None) -> None:
        """Serve in the foreground (for command-line use) until interrupted; ``ready(url)`` once bound."""
        server = self._bind()
        if ready is not None:
            ready(self.url)
        if self.server == "werkzeug":
            try:
                server.serve_forever()
            finally:
                server.server_close()
            return
        try:
            server.run()
        finally:
            server.task_dispatcher.shutdown(timeout=2)
            wasyncore.close_all(server._map)

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Bind, serve in a daemon thread, and return once the port accepts connections."""
        if self.running:
            return self
        self._server = self._bind()
        self._phase = "serving"
        run = self._server.serve_forever if self.server == "werkzeug" else self._loop
        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((self.host.strip("[]"), self.port), timeout=1):
                    return self
            except OSError as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} did not start listening on {self.url} within {timeout} s") from exc
                time.sleep(0.02)

    def stop(self) -> None:
        """Stop serving and free the port; requests being answered get up to 2 s. Safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        if self.server == "werkzeug":
            server.shutdown()
            server.server_close()
            if thread is not None:
                thread.join(timeout=5)
            return
        # Only the event loop's thread may touch the sockets: it reads _phase between polls (see _loop).
        self._phase = "draining"
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=2)  # answers being made are finished
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and any(getattr(ch, "total_outbufs_len", 0)
                                                  for ch in list(server._map.values())):
            time.sleep(0.01)  # ... and sent
        self._phase = "closing"
        if thread is not None:
            thread.join(timeout=5)
        if thread is None or thread.is_alive():
            wasyncore.close_all(server._map, ignore_all=True)

    def _loop(self) -> None:
        """waitress's event loop, a poll at a time, so that stop() needs no signal into it."""
        server = self._server
        try:
            while self._phase != "closing" and server._map:
                if self._phase == "draining" and server.accepting:
                    wasyncore.dispatcher.close(server)  # no new connections; the open ones finish
                wasyncore.loop(timeout=0.05, map=server._map, use_poll=True, count=1)
        finally:
            wasyncore.close_all(server._map, ignore_all=True)


class QuietHandler(WSGIRequestHandler):
    """werkzeug's request handler without its per-request log lines (for bench baselines that use werkzeug)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            super().log(type, message, *args)


class _BoundedServer(ThreadedWSGIServer):
    """werkzeug's threaded server with at most ``slots`` connections served at once.

    A connection that finds every thread busy for a second is closed unanswered (a sender retries).
    """

    slots: threading.BoundedSemaphore

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(timeout=1.0):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def _json_errors(error_body: Callable[[int, str], Any]) -> type[HTTPChannel]:
    """A waitress channel whose own error answers are JSON bodies made by ``error_body``."""

    class JsonErrorTask(ErrorTask):
        def execute(self) -> None:
            error = self.request.error
            body = json.dumps(error_body(error.code, f"{error.reason}: {error.body}"[:300])).encode()
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    return type("JsonErrorChannel", (HTTPChannel,), {"error_task_class": JsonErrorTask})


def stop_on_ctrl_c() -> None:
    """Let Ctrl-C (SIGINT) stop a command that serves in the foreground, as its banner promises.

    A shell without job control (a script's ``cmd &``, some CI runners) starts background
    commands with SIGINT ignored, and Python keeps it ignored: ``kill -INT`` and Ctrl-C then did
    nothing. Restores Python's KeyboardInterrupt there (only when SIGINT is ignored, and only
    from the main thread, where a handler can be set); a handler someone installed is kept.
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
