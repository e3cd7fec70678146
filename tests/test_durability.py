"""kill -9 during a classroom's load, restart on the same state file: nothing acknowledged is lost.

A sandbox runs in another process with ``--state FILE``. Six partners hammer it with
creates, updates, deletes, lists and triggered events, each keeping a ledger of every
change the API acknowledged (answered 2xx). At a random moment the sandbox gets a
SIGKILL. It is restarted on the same file with the same tokens, and then:

- every acknowledged create exists with the fields of its last acknowledged change,
  unless it was acknowledged-deleted; acknowledged deletes are gone. The one request
  each partner had in flight at the kill may or may not have been applied (its answer
  was lost), so its outcome is accepted either way, and nothing else is;
- no partner sees another's subscriptions;
- the delivery log and counters observed before the kill are still there;
- deliveries pending at the kill resume: a "witness" receiver refused every delivery
  (503) until the kill, and after the restart receives each of its events exactly once.

The random seed and kill moment are in every assertion message, to replay a failure.
"""

from __future__ import annotations

import os
import random
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from classroom import SandboxProcess

from linq_nb.client import LinqClient
from linq_nb.errors import LinqConnectionError, LinqError, LinqTimeoutError
from linq_nb.events import EVENT_TYPES
from linq_nb.models import WebhookSubscription
from linq_nb.receiver import Receiver

PARTNERS = 6
WITNESS_EVENTS = 5
# Long enough that the witness's deliveries are still being retried at the kill and after the restart
# (40 retries, 10 s in all), short enough that they resume at once.
RETRY_DELAYS = [0.25] * 40

Fields = tuple[str, tuple[str, ...], bool, bool]  # webhook_url, events (sorted), active, secret_configured


def fields_of(sub: WebhookSubscription) -> Fields:
    return sub.webhook_url, tuple(sorted(sub.events)), sub.active, sub.secret_configured


@dataclass
class Ledger:
    """What one partner's API acknowledged, and the one request it had in flight when the server died."""

    acked: dict[int, Fields | None] = field(default_factory=dict)  # None: acknowledged deleted
    inflight: tuple[str, int | None, Fields | None] | None = None  # (kind, id, fields after it)
    changes: int = 0
    errors: list[str] = field(default_factory=list)
    cross: list[str] = field(default_factory=list)


class Partner(threading.Thread):
    """Random classroom-style changes until the server stops answering (or ``stop`` is set)."""

    def __init__(self, index: int, token: str, url: str, receiver: Receiver, seed: int, stop: threading.Event):
        super().__init__(name=f"partner-{index}", daemon=True)
        self.index = index
        self.client = LinqClient(token=token, base_url=url, max_retries=0, timeout=5)
        self.client.recovery_delays = (0.0,)  # a lost create is looked for once: the server is dead anyway
        self.receiver = receiver
        self.rng = random.Random(seed)
        self.stop = stop
        self.ledger = Ledger()

    def _live(self) -> list[int]:
        return [i for i, f in self.ledger.acked.items() if f is not None]

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.step()
        except (LinqConnectionError, LinqTimeoutError):
            pass  # the server died under us: the in-flight change stays marked as such
        except LinqError as exc:
            self.ledger.errors.append(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # pragma: no cover - reported by the test
            self.ledger.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.client.close()

    def step(self) -> None:
        rng, ledger, live = self.rng, self.ledger, self._live()
        roll = rng.random()
        if roll < 0.35 or len(live) < 2:
            url = f"{self.receiver.url}?p={self.index}&n={rng.randrange(10**6)}"
            events = tuple(sorted(rng.sample(EVENT_TYPES, rng.randint(1, 3))))
            active, secret = rng.random() < 0.8, rng.random() < 0.5
            ledger.inflight = ("create", None, (url, events, active, secret))
            sub = self.client.create_subscription(url, list(events), active=active, allow_duplicate=True,
                                                  secret="whsec_" + secrets.token_hex(8) if secret else None)
            ledger.acked[sub.id] = fields_of(sub)
        elif roll < 0.60:
            sid = rng.choice(live)
            current = ledger.acked[sid]
            assert current is not None
            url, events, active, secret = current
            change: dict[str, Any] = rng.choice([
                {"active": not active},
                {"events": sorted(rng.sample(EVENT_TYPES, rng.randint(1, 4)))},
                {"webhook_url": f"{self.receiver.url}?p={self.index}&u={rng.randrange(10**6)}"},
            ])
            after = (change.get("webhook_url", url), tuple(sorted(change.get("events", events))),
                     change.get("active", active), secret)
            ledger.inflight = ("update", sid, after)
            sub = self.client.update_subscription(sid, **change)
            ledger.acked[sid] = fields_of(sub)
        elif roll < 0.75:
            sid = rng.choice(live)
            ledger.inflight = ("delete", sid, None)
            self.client.delete_subscription(sid)
            ledger.acked[sid] = None
        elif roll < 0.90:
            ledger.inflight = None
            seen = {s.id for s in self.client.list_subscriptions()}
            if seen - set(ledger.acked):
                ledger.cross.append(f"partner {self.index} listed unknown ids {sorted(seen - set(ledger.acked))}")
            return
        else:
            ledger.inflight = None  # an event changes no subscription; it only adds delivery work
            self.client.sandbox_route("POST", "/_sandbox/events", {"event_type": rng.choice(EVENT_TYPES)})
            return
        ledger.inflight = None
        ledger.changes += 1


def check_partner(ledger: Ledger, found: dict[int, Fields], where: str) -> None:
    """Compare what the restarted sandbox holds for one partner with what it had acknowledged."""
    kind, in_id, in_fields = ledger.inflight or (None, None, None)
    for sid, expected in ledger.acked.items():
        allowed = [expected]
        if in_id == sid:
            allowed.append(in_fields)  # the in-flight update/delete may have been applied
        assert found.get(sid) in allowed, (
            f"{where}: subscription {sid} is {found.get(sid)}, acknowledged as {expected}"
            + (f" (in flight: {kind} -> {in_fields})" if in_id == sid else ""))
    extra = {sid: f for sid, f in found.items() if sid not in ledger.acked}
    if kind == "create":
        assert len(extra) <= 1 and all(f == in_fields for f in extra.values()), (
            f"{where}: unacknowledged subscriptions {extra}; only the in-flight create {in_fields} may be there")
    else:
        assert not extra, f"{where}: subscriptions nobody created (or acknowledged): {extra}"


@pytest.mark.slow
def test_sigkill_during_classroom_load_keeps_every_acknowledged_change_and_resumes_deliveries(
        tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    kill_after = rng.uniform(0.5, 2.0)
    where = f"seed={seed} kill_after={kill_after:.2f}s"
    state = tmp_path / "classroom.sqlite"
    tokens = [f"durable-{i}-{secrets.token_hex(6)}" for i in range(PARTNERS)]
    witness_token = "durable-witness-" + secrets.token_hex(6)
    witness_secret = "whsec_witness_" + secrets.token_hex(8)

    with Receiver() as sink, Receiver(secrets=witness_secret) as witness:
        witness.fail_next(10**6, 503)  # refuses everything until the kill
        first = SandboxProcess([*tokens, witness_token], state=state, retry_delays=RETRY_DELAYS).start()
        second: SandboxProcess | None = None
        try:
            with LinqClient(token=witness_token, base_url=first.url) as wc:
                wsub = wc.create_subscription(witness.url, ["message.received"], secret=witness_secret)
                event_ids = {wc.sandbox_route("POST", "/_sandbox/events", {"event_type": "message.received"})
                             ["event_id"] for _ in range(WITNESS_EVENTS)}

            stop = threading.Event()
            crowd = [Partner(i, tok, first.url, sink, rng.randrange(2**32), stop) for i, tok in enumerate(tokens)]
            for p in crowd:
                p.start()
            time.sleep(kill_after)  # the load runs; then, at a random moment:
            with LinqClient(token=witness_token, base_url=first.url, max_retries=0) as wc:
                log_before = wc.sandbox_route("GET", "/_sandbox/deliveries")["deliveries"]
                attempts_before = wc.get_subscription(wsub.id).delivery_attempts
            first.kill()
            stop.set()
            for p in crowd:
                p.join(timeout=30)
            assert not any(p.is_alive() for p in crowd), where
            assert sum(p.ledger.changes for p in crowd) >= 20, f"{where}: too little load before the kill"
            assert log_before, f"{where}: the witness had no failed attempt before the kill"
            witness.fail_next(0)  # the receiver is back

            second = SandboxProcess([*tokens, witness_token], state=state, retry_delays=RETRY_DELAYS).start()
            for p, tok in zip(crowd, tokens, strict=True):
                assert not p.ledger.errors, f"{where}: partner {p.index}: {p.ledger.errors}"
                assert not p.ledger.cross, f"{where}: {p.ledger.cross}"
                with LinqClient(token=tok, base_url=second.url) as c:
                    found = {s.id: fields_of(s) for s in c.list_subscriptions()}
                check_partner(p.ledger, found, f"{where} partner {p.index}")

            # Pending deliveries resume: each witness event arrives once, signed, with its original id.
            assert witness.wait_for_events(WITNESS_EVENTS, timeout=30), f"{where}: {len(witness.events)} arrived"
            assert {e["event_id"] for e in witness.events} == event_ids, where
            accepted = [r for r in witness.requests if r["status"] == 200]
            assert len(accepted) == WITNESS_EVENTS and all(r["verified"] for r in accepted), where
            with LinqClient(token=witness_token, base_url=second.url) as wc:
                assert second.pid != first.pid
                # the receiver has answered; the sandbox logs each attempt just after the answer reaches it
                deadline = time.monotonic() + 30
                while True:
                    log_after = wc.sandbox_route("GET", "/_sandbox/deliveries")["deliveries"]
                    if sum(d["ok"] for d in log_after) >= WITNESS_EVENTS or time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
                assert log_after[: len(log_before)] == log_before, f"{where}: the delivery log lost records"
                assert wc.get_subscription(wsub.id).delivery_attempts >= attempts_before, where
                ok = [d for d in log_after if d["ok"]]
                assert sorted(d["event_id"] for d in ok) == sorted(event_ids), where
                # they were retries of the same events, not new ones: numbering went on from before the kill
                assert all(d["attempt"] > 1 for d in ok), where
        finally:
            first.close()
            if second is not None:
                second.close()
