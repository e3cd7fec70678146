"""The relay at classroom scale: latency beside direct delivery, and 300 listeners on one sandbox.

    python bench/bench_relay.py                 # both runs
    python bench/bench_relay.py --listeners 300 --only listeners

1. The relay classroom (``classroom.run_relay_classroom``): 30 learners, each with
   ``linq-nb listen`` in its own process forwarding to its receiver, and a direct
   subscription to the same receiver, so that every event is delivered both ways in the
   same run: errors, cross-partner deliveries, exactly once, and p50/p99 from trigger to
   the local receiver, relay against direct (the baseline: what the sandbox did before).
2. 300 listeners: ONE sandbox process (``linq-nb sandbox``, 300 tokens) with 300 listeners
   connected to its relay (each one a waiting long poll) while the same 300 partners use
   the API. Reported against the same sandbox before any listener connected: API p99,
   the sandbox's RSS and its thread count (from ``/proc``), and one event per partner
   delivered through the relay.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from classroom import FAST_RETRY_DELAYS, REPO, SandboxProcess, run_relay_classroom  # noqa: E402

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from linq_nb.client import LinqClient  # noqa: E402
from linq_nb.listen import Listener  # noqa: E402
from linq_nb.receiver import Receiver  # noqa: E402


def _proc_status(pid: int) -> dict[str, int]:
    """VmRSS (kB) and Threads of a process, from /proc (Linux)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            out[key] = int(value.split()[0])
    return out


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))] if values else float("nan")


def _api_load(clients: list[LinqClient], calls_each: int, workers: int = 32) -> list[float]:
    """Every partner lists its subscriptions ``calls_each`` times; the latency of each call, ms."""
    def one(client: LinqClient) -> list[float]:
        out = []
        for _ in range(calls_each):
            t0 = time.perf_counter()
            client.list_subscriptions()
            out.append((time.perf_counter() - t0) * 1000)
        return out

    with ThreadPoolExecutor(workers) as pool:
        return [v for vs in pool.map(one, clients) for v in vs]


def run_listeners(n: int = 300, calls_each: int = 5) -> dict[str, Any]:
    tokens = [f"listener-{i:03d}" for i in range(n)]
    result: dict[str, Any] = {"listeners": n}
    with SandboxProcess(tokens, retry_delays=FAST_RETRY_DELAYS) as sandbox, Receiver() as receiver:
        clients = [LinqClient(token=t, base_url=sandbox.url, timeout=30.0) for t in tokens]
        try:
            _api_load(clients, 1)  # warm: connections made, code paths loaded
            before = _proc_status(sandbox.pid)
            base = _api_load(clients, calls_each)
            listeners: list[Listener] = []
            t0 = time.perf_counter()
            for i, client in enumerate(clients):
                listeners.append(Listener(client, f"{receiver.url}?l={i}", ["message.received"], secret="",
                                          name=f"bench-{i}").start())
            result["connect_s"] = time.perf_counter() - t0
            time.sleep(1.0)  # every listener is in a long poll now
            during = _api_load(clients, calls_each)
            with_listeners = _proc_status(sandbox.pid)
            sent = {}
            for i, client in enumerate(clients):
                sent[i] = client.sandbox_route("POST", "/_sandbox/events", {"event_type": "message.received"})
            deadline = time.monotonic() + 120
            while receiver.counts()["events"] < n and time.monotonic() < deadline:
                time.sleep(0.05)
            result["delivered"] = receiver.counts()["events"]
            result["problems"] = sum(len(li.problems) for li in listeners)
            stop = [threading.Thread(target=li.stop) for li in listeners]
            for t in stop:
                t.start()
            for t in stop:
                t.join(timeout=60)
            result["left"] = sum(len(c.list_subscriptions()) for c in clients)
        finally:
            for c in clients:
                c.close()
    result.update(base_p50=_pct(base, 50), base_p99=_pct(base, 99), p50=_pct(during, 50), p99=_pct(during, 99),
                  rss_before_mb=before["VmRSS"] / 1024, rss_mb=with_listeners["VmRSS"] / 1024,
                  threads_before=before["Threads"], threads=with_listeners["Threads"])
    return result


def run(listeners: int = 300, learners: int = 30) -> list[dict[str, Any]]:
    """Rows for ``bench/run_all.py``."""
    from run_all import row

    rows = []
    rep = run_relay_classroom(learners)
    print(rep.summary(), file=sys.stderr)
    n = f"relay classroom ({learners} learners, linq-nb listen each)"
    rows += [
        row(f"{n}: errors", len(rep.errors), None, "count", "0", not rep.errors),
        row(f"{n}: cross-partner deliveries", rep.cross, None, "count", "0", rep.cross == 0),
        row(f"{n}: delivered exactly once ({rep.expected} expected, {rep.retries} retries)",
            round(rep.exactly_once_pct, 1), None, "%", "100 %", rep.ok),
        row(f"{n}: trigger -> local receiver p50, relay vs direct", rep.percentile(50, "relay"),
            rep.percentile(50, "direct"), "ms", "report", None),
        row(f"{n}: trigger -> local receiver p99, relay vs direct", rep.percentile(99, "relay"),
            rep.percentile(99, "direct"), "ms", "report", None),
    ]
    res = run_listeners(listeners)
    print(res, file=sys.stderr)
    m = f"{listeners} listeners on one sandbox, API to the same {listeners} partners"
    rows += [
        row(f"{m}: API p99 (baseline: no listener connected)", res["p99"], res["base_p99"], "ms", "< 250 ms",
            res["p99"] < 250),
        row(f"{m}: sandbox RSS (baseline: before)", round(res["rss_mb"], 1), round(res["rss_before_mb"], 1), "MB",
            "bounded", None),
        row(f"{m}: sandbox threads (baseline: before)", res["threads"], res["threads_before"], "count",
            "not one per listener", res["threads"] - res["threads_before"] < 10),
        row(f"{m}: one event each delivered through the relay", res["delivered"], listeners, "count",
            f"{listeners}", res["delivered"] == listeners),
    ]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listeners", type=int, default=300)
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--only", choices=("classroom", "listeners"), default=None)
    args = parser.parse_args(argv)
    if args.only != "listeners":
        rep = run_relay_classroom(args.learners)
        print(rep.summary())
    if args.only != "classroom":
        print(run_listeners(args.listeners))
    return 0


if __name__ == "__main__":
    sys.exit(main())
