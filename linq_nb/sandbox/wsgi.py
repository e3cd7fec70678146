"""The sandbox as a WSGI application for a production WSGI server.

    LINQ_SANDBOX_TOKENS=alice,bob LINQ_SANDBOX_STATE=classroom.sqlite \\
        waitress-serve --threads 16 --port 8765 linq_nb.sandbox.wsgi:app

Environment: ``LINQ_SANDBOX_TOKENS`` (comma-separated, required), ``LINQ_SANDBOX_TOKENS_FILE``
(one per line), ``LINQ_SANDBOX_STATE`` (SQLite file), ``LINQ_SANDBOX_RETRY_DELAYS``
(comma-separated seconds), ``LINQ_SANDBOX_DELIVER_TO`` (comma-separated ``HOST[:PORT]``: a WSGI-served
sandbox is shared, so it delivers only to relay sessions and these), ``LINQ_SANDBOX_RELAY`` (``HOST:PORT``
the relay's listeners poll; default 127.0.0.1 and a free port). Run ONE process (threads are fine): each process would
otherwise have its own delivery worker and its own in-memory state.
"""

from __future__ import annotations

import os

from . import RETRY_DELAYS_ENV, Sandbox, parse_delays, read_tokens_file

__all__ = ["app", "create_app"]  # noqa: F822 - app is built lazily by __getattr__


def create_app() -> Sandbox:
    """Build a sandbox from the environment and start its delivery worker (not its own server)."""
    tokens = [t.strip() for t in os.environ.get("LINQ_SANDBOX_TOKENS", "").split(",") if t.strip()]
    tokens_file = os.environ.get("LINQ_SANDBOX_TOKENS_FILE")
    if tokens_file:
        tokens += read_tokens_file(tokens_file)
    if not tokens:
        raise RuntimeError("set LINQ_SANDBOX_TOKENS (comma-separated) or LINQ_SANDBOX_TOKENS_FILE for the sandbox")
    delays = os.environ.get(RETRY_DELAYS_ENV)
    relay_host, _, relay_port = os.environ.get("LINQ_SANDBOX_RELAY", "127.0.0.1:0").rpartition(":")
    deliver_to = [d.strip() for d in os.environ.get("LINQ_SANDBOX_DELIVER_TO", "").split(",") if d.strip()]
    sandbox = Sandbox(tokens, host=relay_host or "127.0.0.1", state=os.environ.get("LINQ_SANDBOX_STATE") or None,
                      retry_delays=parse_delays(delays) if delays else None, shared=True, deliver_to=deliver_to,
                      relay_port=int(relay_port or 0))
    sandbox.relay.start()
    sandbox.deliverer.start()
    return sandbox


_sandbox: Sandbox | None = None


def __getattr__(name: str) -> object:
    """``app`` is built on first access, so importing this module has no side effects."""
    global _sandbox
    if name == "app":
        if _sandbox is None:
            _sandbox = create_app()
        return _sandbox.app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
