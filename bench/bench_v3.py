"""The v3 client against Linq's own SDK: ``LinqClientV3`` vs ``linq.LinqAPIV3`` on the same sandbox.

    python bench/bench_v3.py

The sandbox runs in another process (``python -m linq_nb sandbox``) seeded with 50 v3
subscriptions. The baseline is what a v3 user would write instead of linq_nb: Linq's
official SDK (linq-python 0.65.0, ``linq.LinqAPIV3(api_key=..., base_url=.../api/partner)``)
calling ``webhook_subscriptions.list()`` and ``.retrieve(id)``, each giving typed objects
(pydantic models there, ``WebhookSubscriptionV3`` here). Both clients are built once and
reused, as a notebook would. Runs are interleaved in rounds (``run_all.paired``), alternating
which side goes first; the figures are median per-call times and the ratio (linq_nb / SDK) is
the median of the per-round ratios, with their range. The sandbox and this process are pinned
to different cores.
Target: ratio <= 1.10 (no slower than the SDK, within noise).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests
from classroom import SandboxProcess
from run_all import paired, pinned, print_table, row, split_cpus

from linq_nb.client_v3 import LinqClientV3
from linq_nb.wire import v3 as wire_v3

TOKEN = "bench-v3-token"
SEED = 50
TARGET = 1.10


def _seed(url: str, n: int) -> list[str]:
    ids = []
    with requests.Session() as s:
        s.headers.update(wire_v3.auth_headers(TOKEN))
        s.trust_env = False
        for i in range(n):
            body = {"target_url": f"http://127.0.0.1:9/hook/{i}",
                    "subscribed_events": ["message.received", "message.sent"]}
            if i % 3 == 0:
                body["phone_numbers"] = [f"+1415555{i:04d}"]
            resp = s.post(url + wire_v3.COLLECTION_PATH, json=body, timeout=10)
            resp.raise_for_status()
            ids.append(resp.json()["id"])
    return ids


def run() -> list[dict[str, Any]]:
    try:
        import linq
    except ImportError:  # the SDK is a test dependency (pip install -e '.[test]')
        return [row("v3 client vs Linq's SDK: linq-python not installed", None, None, "", "", None)]
    rows = []
    load_cpus, server_cpus = split_cpus()
    with SandboxProcess([TOKEN], cpus=server_cpus) as sandbox, pinned(load_cpus):
        ids = _seed(sandbox.url, SEED)
        one = ids[len(ids) // 2]
        client = LinqClientV3(token=TOKEN, base_url=sandbox.url)
        sdk = linq.LinqAPIV3(api_key=TOKEN, base_url=sandbox.url + "/api/partner")
        assert len(client.list_subscriptions()) == SEED
        assert len(sdk.webhook_subscriptions.list().subscriptions) == SEED
        assert client.get_subscription(one).id == sdk.webhook_subscriptions.retrieve(one).id == one
        cases = [
            (f"v3 client list_subscriptions() ({SEED} subs) vs SDK webhook_subscriptions.list()",
             client.list_subscriptions, sdk.webhook_subscriptions.list),
            ("v3 client get_subscription(id) vs SDK webhook_subscriptions.retrieve(id)",
             lambda: client.get_subscription(one), lambda: sdk.webhook_subscriptions.retrieve(one)),
        ]
        try:
            for name, ours, theirs in cases:
                got = paired(ours, theirs, 25, 20, warm=5)
                rows.append(row(name, got.a * 1e6, got.b * 1e6, "µs/call", f"ratio <= {TARGET:.2f}", None,
                                ratio=got.ratio, spread=got.spread, limit=TARGET))
        finally:
            client.close()
            sdk.close()
    return rows


if __name__ == "__main__":
    print_table(run(), "v3 client vs Linq's SDK (sandbox in another process)")
