"""Interactive latency: from ``trigger`` to the event in the ``Receiver``, embedded sandbox, against one plain POST.

    python bench/bench_latency.py

What a learner feels in notebook 03: ``client.sandbox_route("POST", "/_sandbox/events", ...)``
(the notebook's ``trigger``) until ``receiver.wait_for_events`` returns, with the sandbox
embedded in this process, as ``linq_nb.connect()`` starts it, delivering a signed event to a
``Receiver`` in this process. The floor is one plain loopback POST from the same process: the
same kind of signed envelope POSTed to the same Receiver with a ``requests.Session``, answered
and verified. A trigger is two such hops (client to sandbox, sandbox to receiver) plus the
sandbox's bookkeeping, so about 2x the floor is what the hops cost. Reports p50 and p99 of
each; no target (report only).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from run_all import print_table, row

from linq_nb.client import LinqClient
from linq_nb.events import make_envelope, sample_data
from linq_nb.receiver import Receiver
from linq_nb.sandbox import CLASSROOM_RETRY_DELAYS, Sandbox
from linq_nb.signing import SIGNATURE_HEADER, canonical_json, sign

SECRET = "whsec_bench-latency-secret-0123456789"
TRIGGERS = 200
WARM = 10


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p99 (linear interpolation)."""
    q = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values), q[98]


def measure(triggers: int = TRIGGERS) -> dict[str, tuple[float, float]]:
    sandbox = Sandbox(retry_delays=CLASSROOM_RETRY_DELAYS).start()
    receiver = Receiver(secrets=SECRET).start()
    try:
        with LinqClient(token=sandbox.token, base_url=sandbox.url) as client, requests.Session() as session:
            session.trust_env = False
            client.create_subscription(receiver.url, ["message.received"], secret=SECRET)

            def trigger() -> float:
                seen = receiver.counts()["events"]
                t0 = time.perf_counter()
                client.sandbox_route("POST", "/_sandbox/events", {"event_type": "message.received"})
                if not receiver.wait_for_events(seen + 1, timeout=10):
                    raise RuntimeError("the event did not arrive within 10 s")
                return time.perf_counter() - t0

            def plain_post(i: int) -> float:
                envelope = make_envelope("message.received", sample_data("message.received", None),
                                         event_id=f"plain-{i}")
                body = canonical_json(envelope)
                headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, SECRET)}
                t0 = time.perf_counter()
                resp = session.post(receiver.url, data=body, headers=headers, timeout=10)
                resp.raise_for_status()
                return time.perf_counter() - t0

            for i in range(WARM):
                trigger()
                plain_post(-i - 1)
            mine: list[float] = []
            floor: list[float] = []
            for i in range(triggers):  # alternate, so that drift hits both alike
                mine.append(trigger())
                floor.append(plain_post(i))
            assert sandbox.wait_for_deliveries(10)
    finally:
        receiver.stop()
        sandbox.stop()
    return {"trigger": percentiles(mine), "floor": percentiles(floor)}


def run() -> list[dict[str, Any]]:
    got = measure()
    (m50, m99), (f50, f99) = got["trigger"], got["floor"]
    return [
        row(f"latency: trigger -> event in the Receiver, embedded sandbox, p50 ({TRIGGERS} triggers)",
            m50 * 1e3, f50 * 1e3, "ms", "report (floor: one plain loopback POST)", None),
        row(f"latency: trigger -> event in the Receiver, embedded sandbox, p99 ({TRIGGERS} triggers)",
            m99 * 1e3, f99 * 1e3, "ms", "report (floor: one plain loopback POST)", None),
    ]


if __name__ == "__main__":
    print_table(run(), "Trigger-to-receiver latency")
