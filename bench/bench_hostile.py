"""A shared sandbox under a hostile learner: fairness between partners, and memory under abusive answers.

    python bench/bench_hostile.py

- Fairness: partner bob's delivery latency (emit -> his Receiver has the event) while
  partner alice has 16 stalled endpoints (each answers one byte every 0.2 s, so each
  attempt runs to the 10 s deadline), against the same latency with no stalled
  endpoints, in the same process. Target: at most 1 s worse (the issue's rule).
- Memory: the sandbox's RSS growth (peak minus before, in a fresh process each) while
  a receiver answers one delivery with a 300 MB error body, and while one 900 kB
  event goes to 200 subscriptions. The baseline is the size of the data a naive
  sandbox would hold: the 300 MB body; 200 copies of the 900 kB body.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from run_all import median, print_table, row

TOKENS = ["bench-alice", "bench-bob"]


def _stalled_endpoint(done: threading.Event) -> str:
    """A webhook URL whose every answer trickles in one byte every 0.2 s."""
    server = socket.create_server(("127.0.0.1", 0))

    def trickle(conn: socket.socket) -> None:
        with conn:
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 1000:
                if done.wait(0.2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def accept() -> None:
        server.settimeout(0.2)
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()
        server.close()

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/hook"


def fairness(rounds: int = 5) -> tuple[float, float]:
    """(bob's median latency with alice's 16 stalled endpoints, without), in ms."""
    from linq_nb import Receiver, Sandbox

    def latencies(sb: Any, receiver: Any) -> list[float]:
        out = []
        for _ in range(rounds):
            want = receiver.counts()["events"] + 1
            t0 = time.perf_counter()
            sb.emit("message.received", token=TOKENS[1])
            assert receiver.wait_for_events(want, timeout=30)
            out.append((time.perf_counter() - t0) * 1000)
        return out

    done = threading.Event()
    with Sandbox(TOKENS, retry_delays=[], deliver_to=["127.0.0.1"]) as sb, Receiver() as receiver:
        sb.store.create(sb._partner(TOKENS[1]), {"webhook_url": receiver.url, "events": ["message.received"],
                                                 "version": 2})
        quiet = median(latencies(sb, receiver))
        url = _stalled_endpoint(done)
        for _ in range(16):
            sb.store.create(sb._partner(TOKENS[0]), {"webhook_url": url, "events": ["message.sent"], "version": 2})
        sb.emit("message.sent", token=TOKENS[0])
        time.sleep(0.5)  # alice's attempts are in flight and stalled
        loaded = median(latencies(sb, receiver))
        done.set()
    return loaded, quiet


_MEMORY_CHILD = r"""
import json, socket, sys, threading, time
from linq_nb import Sandbox
from linq_nb._server import ServerThread

def rss_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])

case = sys.argv[1]
if case == "error-body":
    server = socket.create_server(("127.0.0.1", 0))
    def flood():
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 300000000\r\n\r\n")
            chunk = b"e" * 65536
            try:
                for _ in range(300_000_000 // 65536):
                    conn.sendall(chunk)
            except OSError:
                pass
    threading.Thread(target=flood, daemon=True).start()
    url, subs, data = f"http://127.0.0.1:{server.getsockname()[1]}/hook", 1, None
else:
    def sink(environ, start_response):
        stream = environ["wsgi.input"]
        while stream.read(65536):
            pass
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    receiver = ServerThread(sink, threads=4).start()
    url, subs, data = receiver.url + "/hook", 200, {"text": "x" * 900_000}
with Sandbox("bench", retry_delays=[], max_subscriptions=subs, max_event_bytes=1_000_000) as sb:
    for _ in range(subs):
        sb.store.create(sb._partner("bench"), {"webhook_url": url, "events": ["message.sent"], "version": 2},
                        max_per_partner=subs)
    before = rss_kb("VmRSS:")
    sb.emit("message.sent", data)
    assert sb.wait_for_deliveries(timeout=60)
    print(json.dumps({"growth_mb": (rss_kb("VmHWM:") - before) / 1024, "attempts": len(sb.deliveries())}))
"""


def memory(case: str) -> float:
    out = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, case], capture_output=True, text=True, timeout=120,
                         check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["growth_mb"])


def run() -> list[dict[str, Any]]:
    loaded, quiet = fairness()
    error_body = memory("error-body")
    fan_out = memory("fan-out")
    return [
        row("bob's delivery latency while alice has 16 stalled endpoints (vs none)", round(loaded, 1),
            round(quiet, 1), "ms", "<= +1000 ms", loaded - quiet <= 1000),
        row("sandbox RSS growth, one 300 MB error body (vs the body's size)", round(error_body, 1), 300.0, "MB",
            "<= 0.1x", error_body <= 30),
        row("sandbox RSS growth, 900 kB event to 200 subscriptions (vs 200 copies)", round(fan_out, 1),
            round(900_000 * 200 / 1_048_576, 1), "MB", "<= 0.1x", fan_out <= 17),
    ]


if __name__ == "__main__":
    print_table(run(), "hostile learner")
