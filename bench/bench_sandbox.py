"""Sandbox throughput: requests/s under 8 concurrent clients, vs a minimal WSGI app on the same server.

    python bench/bench_sandbox.py

Three processes: the server under test, a load generator, and this one, which starts
them and reads the results. The servers are ``python -m linq_nb sandbox`` (in memory,
eight partners) and, as the baseline, a WSGI app returning one fixed JSON body, served
by the same server (werkzeug's threaded ``make_server`` with linq_nb's quiet handler).
The load generator is a separate process with 8 threads, each a partner with its own
keep-alive-capable ``http.client`` connection (werkzeug closes after every response, so
each request is a new TCP connection, for both servers alike), cycling through
list, get, create, update and delete (the delete removes what the create added, so
the lists stay the same size). On two cores the load generator and the server are
pinned to one core each; the load generator's CPU use is reported, so a saturated load
generator (a ceiling on both figures) would show.

Runs alternate sandbox / baseline, a few seconds each, and the figures are medians.
Target: the sandbox serves at least 0.7 of the baseline's requests per second.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from classroom import REPO, SandboxProcess, free_port, http_ok
from run_all import median, print_table, row, split_cpus

THREADS = 8
SECONDS = 3.0
WARMUP = 0.5
ROUNDS = 2
SEED_PER_PARTNER = 5
TARGET = 0.7
API = "/api/partner/v2/webhook_subscriptions"
HEADER = "X-LINQ-INTEGRATION-TOKEN"
# The baseline's one answer: a realistic subscription object, so the load generator can read an id from it.
FIXED_BODY = json.dumps({"webhook_subscription": {
    "id": 1, "webhook_url": "http://127.0.0.1:9/hook", "version": 2, "events": ["message.received"],
    "active": True, "secret_configured": True, "last_delivered_at": None, "delivery_attempts": 0,
    "created_at": "2025-01-01T00:00:00.000Z", "updated_at": "2025-01-01T00:00:00.000Z"}}).encode()


# --------------------------------------------------------------------------- the baseline server


def minimal_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Read the body (so the connection stays sane) and answer the fixed JSON body."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(FIXED_BODY)))])
    return [FIXED_BODY]


def serve_baseline(port: int) -> None:
    """Serve :func:`minimal_app` exactly as the sandbox CLI serves its app (until killed)."""
    from werkzeug.serving import make_server

    from linq_nb._server import QuietHandler

    make_server("127.0.0.1", port, minimal_app, threaded=True, request_handler=QuietHandler).serve_forever()


# --------------------------------------------------------------------------- the load generator


def _body(i: int) -> bytes:
    return json.dumps({"webhook_subscription": {
        "webhook_url": f"http://127.0.0.1:9/hook/{i}", "version": 2, "secret": "whsec_bench",
        "events": ["message.received", "message.sent"], "active": True}}).encode()


class _Worker:
    def __init__(self, host: str, port: int, token: str, index: int) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=30)
        self.headers = {HEADER: token, "Content-Type": "application/json"}
        self.index = index
        self.ids: list[int] = []
        self.done = 0
        self.errors = 0
        self.statuses: dict[int, int] = {}

    def call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        try:
            self.conn.request(method, path, body=body, headers=self.headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.errors += 1
            return b""
        if not 200 <= resp.status < 300:
            self.errors += 1
            self.statuses[resp.status] = self.statuses.get(resp.status, 0) + 1
        return data

    def create(self) -> int:
        data = self.call("POST", API, _body(self.index))
        try:
            return int(json.loads(data)["webhook_subscription"]["id"])
        except (ValueError, KeyError, TypeError):
            return 0

    def seed(self, n: int) -> None:
        self.ids = [self.create() for _ in range(n)]

    def loop(self, start: threading.Barrier, stop: threading.Event) -> None:
        start.wait()
        ids, k, created = self.ids, 0, 0
        update = _body(self.index + 1000)
        while not stop.is_set():
            op = k % 10
            one = ids[k % len(ids)]
            if op in (0, 4, 8):
                self.call("GET", API)
            elif op in (1, 2, 6, 9):
                self.call("GET", f"{API}/{one}")
            elif op == 3:
                created = self.create()
            elif op == 5:
                self.call("PUT", f"{API}/{one}", update)
            else:
                self.call("DELETE", f"{API}/{created}")
            self.done += 1
            k += 1


def process_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system, all threads) used so far by process ``pid`` (Linux), else None."""
    if not pid:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(url: str, tokens: list[str], seconds: float, warmup: float, server_pid: int | None = None
         ) -> dict[str, Any]:
    """Hit ``url`` from ``len(tokens)`` threads for ``seconds`` (after ``warmup``).

    Returns requests/s, errors, the load generator's CPU use (cores) and, given the
    server's pid, the server's CPU time per request.
    """
    host, _, port = url.removeprefix("http://").partition(":")
    workers = [_Worker(host, int(port), tok, i) for i, tok in enumerate(tokens)]
    for w in workers:
        w.seed(SEED_PER_PARTNER)
    start, stop = threading.Barrier(len(workers) + 1), threading.Event()
    threads = [threading.Thread(target=w.loop, args=(start, stop), daemon=True) for w in workers]
    for t in threads:
        t.start()
    start.wait()
    time.sleep(warmup)
    n0 = sum(w.done for w in workers)
    e0 = sum(w.errors for w in workers)
    s0, ru0, t0 = process_cpu(server_pid), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    time.sleep(seconds)
    n1 = sum(w.done for w in workers)
    s1, ru1, t1 = process_cpu(server_pid), resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    statuses: dict[str, int] = {}
    for w in workers:
        for code, count in w.statuses.items():
            statuses[str(code)] = statuses.get(str(code), 0) + count
    return {"rps": (n1 - n0) / (t1 - t0), "requests": n1 - n0, "errors": sum(w.errors for w in workers) - e0,
            "statuses": statuses, "loadgen_cpu": cpu / (t1 - t0),
            "server_cpu_us": None if s0 is None or s1 is None else (s1 - s0) / max(1, n1 - n0) * 1e6}


def _run_loadgen(url: str, tokens: list[str], cpus: set[int] | None, server_pid: int) -> dict[str, Any]:
    """The load generator in its own process (its own GIL), pinned to ``cpus``."""
    proc = subprocess.Popen([sys.executable, __file__, "--loadgen"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            cwd=REPO, text=True)
    if cpus and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, cpus)
    cfg = {"url": url, "tokens": tokens, "seconds": SECONDS, "warmup": WARMUP, "server_pid": server_pid}
    out, _ = proc.communicate(json.dumps(cfg),
                              timeout=SECONDS + WARMUP + 120)
    if proc.returncode:
        raise RuntimeError(f"the load generator failed with exit code {proc.returncode}")
    return json.loads(out)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- the benchmark


def run() -> list[dict[str, Any]]:
    tokens = [f"bench-sandbox-{i}" for i in range(THREADS)]
    load_cpus, server_cpus = split_cpus()
    port = free_port()
    baseline = subprocess.Popen([sys.executable, __file__, "--baseline-server", str(port)], cwd=REPO,
                                stdin=subprocess.DEVNULL)
    try:
        if server_cpus and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(baseline.pid, server_cpus)
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not http_ok(base_url, "/"):
            if baseline.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the baseline server did not start")
            time.sleep(0.02)
        sandbox_runs: list[dict[str, Any]] = []
        base_runs: list[dict[str, Any]] = []
        with SandboxProcess(tokens, cpus=server_cpus) as sandbox:
            for _ in range(ROUNDS):
                sandbox_runs.append(_run_loadgen(sandbox.url, tokens, load_cpus, sandbox.pid))
                base_runs.append(_run_loadgen(base_url, tokens, load_cpus, baseline.pid))
    finally:
        baseline.kill()
        baseline.wait(timeout=10)
    s_rps, b_rps = median(r["rps"] for r in sandbox_runs), median(r["rps"] for r in base_runs)
    errors = sum(r["errors"] for r in sandbox_runs + base_runs)
    cpu = max(r["loadgen_cpu"] for r in sandbox_runs + base_runs)
    for r in sandbox_runs + base_runs:
        print(f"   {r}", file=sys.stderr)
    rows = [
        row(f"sandbox throughput, {THREADS} clients, list/get/create/update/delete mix "
            f"(load generator at ≤{cpu:.0%} of a core; {errors} errors)",
            s_rps, b_rps, "req/s", f"ratio >= {TARGET}", s_rps / b_rps >= TARGET and errors == 0),
    ]
    s_cpu = [r["server_cpu_us"] for r in sandbox_runs if r["server_cpu_us"] is not None]
    b_cpu = [r["server_cpu_us"] for r in base_runs if r["server_cpu_us"] is not None]
    if s_cpu and b_cpu:
        rows.append(row("sandbox: server CPU time per request, same load", median(s_cpu), median(b_cpu), "µs/req",
                        "report", None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        cfg = json.loads(sys.stdin.read())
        print(json.dumps(load(cfg["url"], cfg["tokens"], cfg["seconds"], cfg["warmup"], cfg.get("server_pid"))))
    elif args.baseline_server:
        serve_baseline(args.baseline_server)
    else:
        print_table(run(), "Sandbox throughput (server and load generator in separate processes)")


if __name__ == "__main__":
    main()
