"""A one-line-per-request access log for a WSGI app, for the terminal of ``linq-nb sandbox``.

    12:01:02 127.0.0.1 partner 2 POST /api/partner/v2/webhook_subscriptions 201 3.1 ms

The token is never written: a request is named by the position of its token in the sandbox's
list ("partner 2"), or "no token" / "unknown token". The query string is left out too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["AccessLog"]

TOKEN_ENVIRON_KEY = "HTTP_X_LINQ_INTEGRATION_TOKEN"


class AccessLog:
    """Wrap ``app``; after each response write one line to ``out`` (a text stream)."""

    def __init__(self, app: WSGIApplication, out: IO[str], tokens: Sequence[str] = ()) -> None:
        self.app = app
        self.out = out
        self._partners = {token: f"partner {i}" for i, token in enumerate(tokens, start=1)}

    def who(self, environ: WSGIEnvironment) -> str:
        """How the log names the caller: never the token itself."""
        token = environ.get(TOKEN_ENVIRON_KEY)
        if not token:
            return "no token"
        return self._partners.get(token, "unknown token")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        status: list[str] = []

        def recording_start_response(code: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], object]:
            status.append(code.split(" ", 1)[0])
            return start_response(code, headers, exc_info)

        try:
            return self.app(environ, recording_start_response)
        finally:
            took = (time.perf_counter() - started) * 1000
            line = " ".join((
                datetime.now().strftime("%H:%M:%S"),
                str(environ.get("REMOTE_ADDR", "-")),
                self.who(environ),
                str(environ.get("REQUEST_METHOD", "-")),
                str(environ.get("PATH_INFO", "") or "/"),
                status[-1] if status else "-",
                f"{took:.1f} ms",
            ))
            with suppress(OSError, ValueError):  # a closed terminal must not break the request
                print(line, file=self.out, flush=True)
