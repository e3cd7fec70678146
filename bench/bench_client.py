"""Client overhead: ``LinqClient.list_subscriptions()`` / ``get_subscription()`` vs a bare ``requests.Session``.

    python bench/bench_client.py

The sandbox runs in another process (``python -m linq_nb sandbox``) seeded with 50
subscriptions. The baseline is the same request made with a ``requests.Session``
carrying the token header, ``raise_for_status()`` and ``.json()``; it gets the same
``trust_env = False`` the client sets for loopback URLs, so only the client's own work
differs (auth hook, retry adapter, error mapping, logging, parsing into
``WebhookSubscription``). Runs are interleaved in rounds, alternating which side goes
first; the figures are median per-call times and the ratio is the median of the per-round
ratios. The sandbox and this process are pinned to different cores. Target: ratio <= 1.10.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests
from classroom import SandboxProcess
from run_all import median, pinned, print_table, row, split_cpus

from linq_nb.client import API_PATH, TOKEN_HEADER, LinqClient

TOKEN = "bench-client-token"
SEED = 50
ROUNDS = 25
CALLS_PER_ROUND = 20
TARGET = 1.10


def _seed(url: str, n: int) -> list[int]:
    ids = []
    with requests.Session() as s:
        s.headers[TOKEN_HEADER] = TOKEN
        for i in range(n):
            body = {"webhook_subscription": {"webhook_url": f"http://127.0.0.1:9/hook/{i}", "version": 2,
                                             "events": ["message.received", "message.sent"], "secret": f"s{i}",
                                             "active": i % 5 != 0}}
            resp = s.post(url + API_PATH, json=body, timeout=10)
            resp.raise_for_status()
            ids.append(resp.json()["webhook_subscription"]["id"])
    return ids


def _per_call(fn: Callable[[], Any], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def compare(linq: Callable[[], Any], bare: Callable[[], Any], rounds: int = ROUNDS,
            calls: int = CALLS_PER_ROUND) -> tuple[float, float, float]:
    """Median per-call seconds of ``linq`` and ``bare``, and the median of their per-round ratios.

    Rounds interleave the two, alternating which goes first, so drift (a busy moment,
    CPU frequency) hits both alike; the paired ratio cancels most of what is left.
    """
    for _ in range(5):  # warm both paths
        linq()
        bare()
    a: list[float] = []
    b: list[float] = []
    for i in range(rounds):
        if i % 2:
            b.append(_per_call(bare, calls))
            a.append(_per_call(linq, calls))
        else:
            a.append(_per_call(linq, calls))
            b.append(_per_call(bare, calls))
    return median(a), median(b), median(x / y for x, y in zip(a, b, strict=True))


def run() -> list[dict[str, Any]]:
    rows = []
    load_cpus, server_cpus = split_cpus()
    with SandboxProcess([TOKEN], cpus=server_cpus) as sandbox, pinned(load_cpus):
        ids = _seed(sandbox.url, SEED)
        one = ids[len(ids) // 2]
        client = LinqClient(token=TOKEN, base_url=sandbox.url)
        session = requests.Session()
        session.headers[TOKEN_HEADER] = TOKEN
        session.trust_env = False  # as LinqClient does for a loopback base URL
        list_url, get_url = sandbox.url + API_PATH, f"{sandbox.url}{API_PATH}/{one}"

        def bare(url: str) -> Callable[[], Any]:
            def call() -> Any:
                resp = session.get(url, timeout=10)
                resp.raise_for_status()
                return resp.json()
            return call

        assert len(client.list_subscriptions()) == SEED and len(bare(list_url)()["webhook_subscriptions"]) == SEED
        cases = [
            (f"client list_subscriptions() ({SEED} subs)", client.list_subscriptions, bare(list_url)),
            ("client get_subscription(id)", lambda: client.get_subscription(one), bare(get_url)),
        ]
        try:
            for name, linq, base in cases:
                t_linq, t_base, ratio = compare(linq, base)
                rows.append(row(name, t_linq * 1e6, t_base * 1e6, "µs/call", f"ratio <= {TARGET:.2f}",
                                ratio <= TARGET, ratio=ratio))
        finally:
            client.close()
            session.close()
    return rows


if __name__ == "__main__":
    print_table(run(), "Client overhead (sandbox in another process)")
