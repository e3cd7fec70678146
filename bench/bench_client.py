"""Client overhead: ``LinqClient.list_subscriptions()`` / ``get_subscription()`` vs ``requests`` + ``.json()``.

    python bench/bench_client.py

The baseline is what a user writes without linq_nb: a ``requests.Session`` carrying the
token header, ``raise_for_status()`` and ``.json()`` (a Session, not ``requests.get``, which
would open a new connection each time and flatter the client). It gets the same
``trust_env = False`` the client sets for loopback URLs, so only the client's own work
differs (auth hook, retry adapter, error mapping, logging, the result type).

"From the response": both sides GET the same bytes from :mod:`canned`, a server in another
process that answers at once, so the ratio is what each side adds on top of one GET. Then
the same against a real sandbox process (its own time included), and ``get_subscription``.
Rounds alternate which side goes first; the figures are median per-call times, the ratio is
the median of the per-round ratios, with their range. Target: ratio <= 1.10.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests
from canned import CannedServer
from classroom import SandboxProcess
from run_all import paired, pinned, print_table, row, split_cpus

from linq_nb.client import API_PATH, TOKEN_HEADER, LinqClient

TOKEN = "bench-client-token"
SEED = 50
BIG = 2_000
TARGET = 1.10
#: (subscriptions listed, rounds, calls per round)
CANNED_SIZES: tuple[tuple[int, int, int], ...] = ((50, 25, 20), (2_000, 25, 4))


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


def _session() -> requests.Session:
    session = requests.Session()
    session.headers[TOKEN_HEADER] = TOKEN
    session.trust_env = False  # as LinqClient does for a loopback base URL
    return session


def _bare(session: requests.Session, url: str) -> Callable[[], Any]:
    def call() -> Any:
        resp = session.get(url, timeout=10)
        resp.raise_for_status()
        return resp.json()
    return call


def _row(name: str, linq: Callable[[], Any], base: Callable[[], Any], rounds: int, calls: int) -> dict[str, Any]:
    got = paired(linq, base, rounds, calls, warm=3)
    return row(name, got.a * 1e6, got.b * 1e6, "µs/call", f"ratio <= {TARGET:.2f}", None, ratio=got.ratio,
               spread=got.spread, limit=TARGET)


def run() -> list[dict[str, Any]]:
    rows = []
    load_cpus, server_cpus = split_cpus()
    with CannedServer(cpus=server_cpus) as canned, pinned(load_cpus):
        for n, rounds, calls in CANNED_SIZES:
            with LinqClient(token=TOKEN, base_url=canned.url(n)) as client, _session() as session:
                bare = _bare(session, canned.url(n) + API_PATH)
                assert len(client.list_subscriptions()) == n == len(bare()["webhook_subscriptions"])
                rows.append(_row(f"client list_subscriptions() of {n:,}, from the response", client.list_subscriptions,
                                 bare, rounds, calls))
    # The large account is over the sandbox's default per-partner cap (100): raise it, as an operator would.
    with SandboxProcess([TOKEN], cpus=server_cpus, extra_args=["--max-subscriptions", str(BIG)]) as sandbox, \
            pinned(load_cpus):
        ids = _seed(sandbox.url, SEED)
        one = ids[len(ids) // 2]
        with LinqClient(token=TOKEN, base_url=sandbox.url) as client, _session() as session:
            list_url, get_url = sandbox.url + API_PATH, f"{sandbox.url}{API_PATH}/{one}"
            assert len(client.list_subscriptions()) == SEED == len(_bare(session, list_url)()["webhook_subscriptions"])
            rows.append(_row(f"client list_subscriptions() of {SEED}, sandbox in another process",
                             client.list_subscriptions, _bare(session, list_url), 25, 20))
            rows.append(_row("client get_subscription(id), sandbox in another process",
                             lambda: client.get_subscription(one), _bare(session, get_url), 25, 20))
            _seed(sandbox.url, BIG - SEED)
            assert len(client.list_subscriptions()) == BIG
            rows.append(_row(f"client list_subscriptions() of {BIG:,}, sandbox in another process",
                             client.list_subscriptions, _bare(session, list_url), 15, 4))
    return rows


if __name__ == "__main__":
    print_table(run(), "Client overhead")
