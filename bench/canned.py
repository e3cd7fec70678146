"""A baseline server that answers at once with canned bytes, and the list bodies it serves.

    python bench/canned.py --port 8766        # serves until killed (CannedServer starts it for you)

``GET /n/<N>/api/partner/v2/webhook_subscriptions`` answers the JSON text of a v2 list response
with ``N`` varied subscriptions (:func:`make_body`, built once per ``N`` and kept), with
``Content-Type: application/json`` and a ``Content-Length``, over HTTP/1.1 keep-alive. A client
whose base URL is ``http://127.0.0.1:<port>/n/<N>`` therefore lists ``N`` subscriptions. No
token is checked: the server does no work of its own, so a benchmark against it measures what
the client side adds on top of one GET. It runs in its own process (:class:`CannedServer`),
pinned to the other core than the load when there are two.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

from linq_nb.events import EVENT_TYPES  # noqa: E402 (standard library only: the server stays light)

API_PATH = "/api/partner/v2/webhook_subscriptions"


def _stamps(ms: np.ndarray) -> list[str]:
    """Milliseconds since the epoch as the API's timestamp form: ISO 8601, UTC, milliseconds, ``Z``."""
    text = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms")
    return [t + "Z" for t in text.tolist()]


def make_records(n: int, seed: int = 2) -> list[dict[str, Any]]:
    """``n`` varied subscription objects as the API returns them (a quarter never delivered).

    Vectorised with numpy (a million in a few seconds); every record has its own objects, as
    after ``json.loads``.
    """
    rng = np.random.default_rng(seed)
    start = 1_735_689_600_000  # 2025-01-01T00:00:00Z in ms
    created = start + (np.arange(1, n + 1) * 37_500) + rng.integers(0, 1000, n)
    updated = created + rng.integers(0, 86_400_000, n)
    delivered_ms = updated + rng.integers(0, 3_600_000, n)
    never = rng.random(n) < 0.25
    attempts = np.where(never, 0, rng.integers(1, 501, n)).tolist()
    active = (rng.random(n) > 0.1).tolist()
    secret = (rng.random(n) > 0.3).tolist()
    counts = rng.integers(1, 5, n).tolist()
    offsets = rng.integers(0, len(EVENT_TYPES), n).tolist()
    created_s, updated_s, delivered_s = _stamps(created), _stamps(updated), _stamps(delivered_ms)
    never_l = never.tolist()
    events = list(EVENT_TYPES) * 2
    return [
        {
            "id": i + 1,
            "webhook_url": f"https://hooks.example.com/linq/{i + 1}",
            "version": 2,
            "events": events[offsets[i]:offsets[i] + counts[i]],
            "active": active[i],
            "secret_configured": secret[i],
            "last_delivered_at": None if never_l[i] else delivered_s[i],
            "delivery_attempts": attempts[i],
            "created_at": created_s[i],
            "updated_at": updated_s[i],
        }
        for i in range(n)
    ]


def make_body(n: int, seed: int = 2) -> bytes:
    """The list response with ``n`` subscriptions, as the bytes the API would send."""
    return json.dumps({"webhook_subscriptions": make_records(n, seed)}).encode()


_PATH = re.compile(r"^/n/(\d+)" + re.escape(API_PATH) + r"/?$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    bodies: ClassVar[dict[int, bytes]] = {}

    def do_GET(self) -> None:
        match = _PATH.match(self.path.split("?", 1)[0])
        if match is None:
            body, status = b'{"error": {"message": "not found"}}', 404
        else:
            n = int(match.group(1))
            body = self.bodies.get(n) or self.bodies.setdefault(n, make_body(n))
            status = 200
        head = (f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.wfile.write(head + body)  # one write: no Nagle / delayed-ACK stall between head and body

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


def serve(port: int) -> None:
    with ThreadingHTTPServer(("127.0.0.1", port), _Handler) as server:
        server.daemon_threads = True
        server.serve_forever()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CannedServer:
    """``python bench/canned.py`` in a subprocess on a free port; ``url(n)`` is a base URL listing ``n``."""

    def __init__(self, cpus: set[int] | None = None) -> None:
        self.port = _free_port()
        self.cpus = cpus
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, n: int) -> str:
        return f"http://127.0.0.1:{self.port}/n/{n}"

    def __enter__(self) -> CannedServer:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--port", str(self.port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        if self.cpus and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.proc.pid, self.cpus)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__(None, None, None)
                    raise RuntimeError("the canned server did not start") from None
                time.sleep(0.02)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)
