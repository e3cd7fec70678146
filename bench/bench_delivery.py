"""Delivery: 2,000 signed events fanned out by the sandbox, vs the same signed bodies posted by a plain loop.

    python bench/bench_delivery.py

Four :class:`linq_nb.Receiver` s (each with its own secret, so every request is
verified) each have one subscription to ``message.received`` in a
``Sandbox(retry_delays=[...])``. The sandbox side emits 500 events (``sandbox.emit``),
fanned out to the 4 subscriptions: 2,000 signed deliveries, timed from the first emit
until ``wait_for_deliveries()`` returns and all 2,000 are accepted. The baseline posts
the very same bodies with the very same signature headers (computed beforehand) from
one ``requests.Session`` in a loop to the same receivers. Everything runs in this
process, so both sides share one interpreter: the comparison is of the work done per
delivery and of what parallel delivery buys, not of extra cores.

Runs alternate sandbox / loop; figures are medians. Target: the sandbox takes no
longer than the loop (time ratio <= 1.0).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests
from run_all import median, print_table, row

from linq_nb.receiver import Receiver
from linq_nb.sandbox import Sandbox
from linq_nb.signing import SIGNATURE_HEADER, canonical_json, sign

RECEIVERS = 4
EVENTS = 500  # x 4 subscriptions = 2,000 deliveries
ROUNDS = 3
TARGET = 1.0
EVENT = "message.received"


def _sandbox_round(sandbox: Sandbox, receivers: list[Receiver]) -> float:
    for r in receivers:
        r.clear()
    t0 = time.perf_counter()
    for _ in range(EVENTS):
        sandbox.emit(EVENT)
    if not sandbox.wait_for_deliveries(timeout=300):
        raise RuntimeError("the sandbox did not finish its deliveries within 300 s")
    for r in receivers:
        if not r.wait_for_events(EVENTS, timeout=60):
            raise RuntimeError(f"a receiver got {len(r.events)} of {EVENTS} events")
    elapsed = time.perf_counter() - t0
    _check(receivers)
    return elapsed


def _loop_round(session: requests.Session, posts: list[tuple[str, bytes, dict[str, str]]],
                receivers: list[Receiver]) -> float:
    for r in receivers:
        r.clear()
    t0 = time.perf_counter()
    for url, body, headers in posts:
        session.post(url, data=body, headers=headers, timeout=10).raise_for_status()
    elapsed = time.perf_counter() - t0
    _check(receivers)
    return elapsed


def _check(receivers: list[Receiver]) -> None:
    for r in receivers:
        reqs = r.requests
        if len(reqs) != EVENTS or not all(q["verified"] is True and q["status"] == 200 for q in reqs):
            raise RuntimeError(f"a receiver saw {len(reqs)} requests, not {EVENTS} verified ones")


def run() -> list[dict[str, Any]]:
    secrets = [f"whsec_bench_{i}" for i in range(RECEIVERS)]
    receivers = [Receiver(secrets=s).start() for s in secrets]
    sandbox = Sandbox("bench-delivery", retry_delays=[0.05, 0.1, 0.2]).start()
    session = requests.Session()
    session.trust_env = False
    try:
        client_headers = {"X-LINQ-INTEGRATION-TOKEN": sandbox.token}
        sub_ids = []
        for r, s in zip(receivers, secrets, strict=True):
            body = {"webhook_subscription": {"webhook_url": r.url, "version": 2, "events": [EVENT], "secret": s}}
            resp = session.post(sandbox.url + "/api/partner/v2/webhook_subscriptions", json=body,
                                headers=client_headers, timeout=10)
            resp.raise_for_status()
            sub_ids.append(resp.json()["webhook_subscription"]["id"])

        sandbox_times = [_sandbox_round(sandbox, receivers)]
        # The loop's bodies: exactly what the sandbox sent (the envelopes, canonical), same headers.
        keyed = []
        for k, (r, s, sid) in enumerate(zip(receivers, secrets, sub_ids, strict=True)):
            for i, envelope in enumerate(r.events):
                body = canonical_json(envelope)
                keyed.append(((i, k), (r.url, body, {"Content-Type": "application/json",
                                                     SIGNATURE_HEADER: sign(body, s), "X-Webhook-Event": EVENT,
                                                     "X-Webhook-Subscription-ID": str(sid)})))
        posts = [p for _, p in sorted(keyed, key=lambda kp: kp[0])]  # event by event, as the fan-out goes
        loop_times = [_loop_round(session, posts, receivers)]
        for _ in range(ROUNDS - 1):
            sandbox_times.append(_sandbox_round(sandbox, receivers))
            loop_times.append(_loop_round(session, posts, receivers))
    finally:
        session.close()
        sandbox.close()
        for r in receivers:
            r.stop()
    t_sandbox, t_loop = median(sandbox_times), median(loop_times)
    n = EVENTS * RECEIVERS
    return [
        row(f"delivery: {n:,} signed events to {RECEIVERS} verifying receivers (sandbox.emit + workers vs "
            "one requests loop)", t_sandbox, t_loop, "s", f"ratio <= {TARGET}", t_sandbox / t_loop <= TARGET),
        row("delivery: throughput", n / t_sandbox, n / t_loop, "deliveries/s", "report", None),
    ]


if __name__ == "__main__":
    print_table(run(), "Delivery (sandbox and receivers in this process)")
