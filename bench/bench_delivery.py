"""Delivery: 2,000 signed events fanned out by the sandbox, vs the same signed bodies posted by a plain loop.

    python bench/bench_delivery.py

Four :class:`linq_nb.Receiver` s (each with its own secret, so every request is
verified) each have one subscription to ``message.received`` in a
``Sandbox(retry_delays=[...])`` running in this process. The sandbox side emits 500
events (``sandbox.emit``), fanned out to the 4 subscriptions: 2,000 signed deliveries,
timed from the first emit until ``wait_for_deliveries()`` returns and the receivers
have accepted all 2,000. The baseline posts the very same bodies with the very same
signature headers (computed beforehand) from one ``requests.Session`` in a loop to the
same receivers. Runs alternate sandbox / loop; figures are medians.

Two set-ups, because they answer different questions:

- receivers in another process (pinned to the other core), as webhook receivers always
  are: what delivering in parallel buys against a serial loop. Target: the sandbox is at
  least as fast as the loop (time ratio <= 1.0).
- receivers in this process, sharing one interpreter (one GIL) with the sandbox's
  delivery workers or with the loop: nothing can overlap, so this compares the CPU
  work per delivery (the sandbox's bookkeeping in SQLite, its thread hand-offs) with
  the loop's. Reported, no target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests
from classroom import REPO
from run_all import median, pinned, print_table, row, split_cpus

from linq_nb.receiver import Receiver
from linq_nb.sandbox import Sandbox
from linq_nb.signing import SIGNATURE_HEADER, canonical_json, sign

RECEIVERS = 4
EVENTS = 500  # x 4 subscriptions = 2,000 deliveries
ROUNDS = 3
TARGET = 1.0
EVENT = "message.received"
SECRETS = [f"whsec_bench_{i}" for i in range(RECEIVERS)]


class Receivers(Protocol):
    urls: list[str]

    def clear(self) -> None: ...
    def wait(self, n: int, timeout: float) -> bool: ...
    def verified(self) -> list[int]: ...  # per receiver: requests answered 200 with a verified signature
    def requests(self) -> list[int]: ...  # per receiver: requests seen
    def envelopes(self) -> list[list[dict[str, Any]]]: ...
    def close(self) -> None: ...


class LocalReceivers:
    """The receivers in this process."""

    def __init__(self) -> None:
        self.receivers = [Receiver(secrets=s).start() for s in SECRETS]
        self.urls = [r.url for r in self.receivers]

    def clear(self) -> None:
        for r in self.receivers:
            r.clear()

    def wait(self, n: int, timeout: float) -> bool:
        return all(r.wait_for_events(n, timeout=timeout) for r in self.receivers)

    def verified(self) -> list[int]:
        return [sum(1 for q in r.requests if q["verified"] is True and q["status"] == 200) for r in self.receivers]

    def requests(self) -> list[int]:
        return [len(r.requests) for r in self.receivers]

    def envelopes(self) -> list[list[dict[str, Any]]]:
        return [r.events for r in self.receivers]

    def close(self) -> None:
        for r in self.receivers:
            r.stop()


class RemoteReceivers:
    """The receivers in a child process, driven line by line over its stdin/stdout."""

    def __init__(self, cpus: set[int] | None) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-receivers"], cwd=REPO, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if cpus and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(self.proc.pid, cpus)
        self.urls = self._ask("urls")

    def _ask(self, *command: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the receivers' process ended")
        return json.loads(line)

    def clear(self) -> None:
        self._ask("clear")

    def wait(self, n: int, timeout: float) -> bool:
        return bool(self._ask("wait", n, timeout))

    def verified(self) -> list[int]:
        return list(self._ask("verified"))

    def requests(self) -> list[int]:
        return list(self._ask("requests"))

    def envelopes(self) -> list[list[dict[str, Any]]]:
        return list(self._ask("envelopes"))

    def close(self) -> None:
        if self.proc.poll() is None:
            self._ask("quit")
            self.proc.wait(timeout=10)


def serve_receivers() -> None:
    """The child process of :class:`RemoteReceivers`: answer one JSON command per line."""
    local = LocalReceivers()
    for line in sys.stdin:
        command, *args = json.loads(line)
        if command == "quit":
            print(json.dumps(True), flush=True)
            break
        result = local.urls if command == "urls" else getattr(local, command)(*args)
        print(json.dumps(True if result is None else result), flush=True)
    local.close()


def _check(receivers: Receivers) -> None:
    seen, ok = receivers.requests(), receivers.verified()
    if seen != [EVENTS] * RECEIVERS or ok != seen:
        raise RuntimeError(f"the receivers saw {seen} requests, {ok} verified; expected {EVENTS} each, all verified")


def _sandbox_round(sandbox: Sandbox, receivers: Receivers) -> float:
    receivers.clear()
    t0 = time.perf_counter()
    for _ in range(EVENTS):
        sandbox.emit(EVENT)
    if not sandbox.wait_for_deliveries(timeout=300):
        raise RuntimeError("the sandbox did not finish its deliveries within 300 s")
    if not receivers.wait(EVENTS, 60):
        raise RuntimeError("the receivers did not get every event")
    elapsed = time.perf_counter() - t0
    _check(receivers)
    return elapsed


def _loop_round(session: requests.Session, posts: list[tuple[str, bytes, dict[str, str]]],
                receivers: Receivers) -> float:
    receivers.clear()
    t0 = time.perf_counter()
    for url, body, headers in posts:
        session.post(url, data=body, headers=headers, timeout=10).raise_for_status()
    elapsed = time.perf_counter() - t0
    _check(receivers)
    return elapsed


def compare(receivers: Receivers) -> tuple[float, float]:
    """Median seconds for the sandbox and for the loop to deliver EVENTS x RECEIVERS signed events."""
    sandbox = Sandbox("bench-delivery", retry_delays=[0.05, 0.1, 0.2]).start()
    session = requests.Session()
    session.trust_env = False
    try:
        sub_ids = []
        for url, secret in zip(receivers.urls, SECRETS, strict=True):
            body = {"webhook_subscription": {"webhook_url": url, "version": 2, "events": [EVENT], "secret": secret}}
            resp = session.post(sandbox.url + "/api/partner/v2/webhook_subscriptions", json=body,
                                headers={"X-LINQ-INTEGRATION-TOKEN": sandbox.token}, timeout=10)
            resp.raise_for_status()
            sub_ids.append(resp.json()["webhook_subscription"]["id"])

        sandbox_times = [_sandbox_round(sandbox, receivers)]
        # The loop's bodies: exactly what the sandbox sent (canonical envelopes), with the same headers.
        keyed = []
        for k, (url, secret, sid, envelopes) in enumerate(
                zip(receivers.urls, SECRETS, sub_ids, receivers.envelopes(), strict=True)):
            for i, envelope in enumerate(envelopes):
                body = canonical_json(envelope)
                keyed.append(((i, k), (url, body, {"Content-Type": "application/json",
                                                   SIGNATURE_HEADER: sign(body, secret), "X-Webhook-Event": EVENT,
                                                   "X-Webhook-Subscription-ID": str(sid)})))
        posts = [p for _, p in sorted(keyed, key=lambda kp: kp[0])]  # event by event, as the fan-out goes
        loop_times = [_loop_round(session, posts, receivers)]
        for _ in range(ROUNDS - 1):
            sandbox_times.append(_sandbox_round(sandbox, receivers))
            loop_times.append(_loop_round(session, posts, receivers))
    finally:
        session.close()
        sandbox.close()
    return median(sandbox_times), median(loop_times)


def run() -> list[dict[str, Any]]:
    n = EVENTS * RECEIVERS
    mine, theirs = split_cpus()
    remote = RemoteReceivers(theirs)
    try:
        with pinned(mine):
            t_sandbox, t_loop = compare(remote)
    finally:
        remote.close()
    local = LocalReceivers()
    try:
        l_sandbox, l_loop = compare(local)
    finally:
        local.close()
    return [
        row(f"delivery: {n:,} signed events to {RECEIVERS} verifying receivers in another process "
            "(sandbox.emit + workers vs one requests loop)", t_sandbox, t_loop, "s", f"ratio <= {TARGET}",
            t_sandbox / t_loop <= TARGET),
        row("delivery: the same with the receivers in the sandbox's process (one GIL: CPU work per delivery)",
            l_sandbox, l_loop, "s", "report", None),
    ]


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve-receivers"]:
        serve_receivers()
    else:
        print_table(run(), "Delivery")
