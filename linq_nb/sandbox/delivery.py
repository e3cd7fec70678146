"""The sandbox's webhook delivery worker: sign, POST, retry with backoff, count.

Delivery follows Linq's rules for the subscription's version (``shared/docs/linq-v2-api.md``,
``linq-v3-api.md``), its request built by :mod:`linq_nb.wire`: v2's canonical JSON envelope
with ``X-Webhook-Signature`` when the subscription has a secret; v3's envelope with both
header sets (Standard Webhooks and the legacy ``X-Webhook-*``), signed at each attempt.
A 2xx is success; a 5xx, a 429, a timeout or a connection error is retried after
``retry_delays[n]`` with the same ``event_id``; any other status is final. Every attempt
is logged; on v2 it moves ``delivery_attempts`` and a success sets ``last_delivered_at``.
The schedules are named profiles (:data:`RETRY_PROFILES`); the operator picks one.

Each attempt has one hard deadline for connecting, sending and reading together
(Linq's 10 s): a watchdog closes the socket of an attempt past it, so a receiver
that trickles its answer a byte at a time is cut off like a silent one. At most
``MAX_ANSWER_BYTES`` of an answer are read. A dispatcher thread hands due jobs to a
pool of worker threads, at most ``per_partner`` of them to one partner at a time, so
one partner's stalled endpoints never hold up another's deliveries, and the API
never waits for a delivery. ``stop()`` closes the sockets of attempts in flight.

Sending is one step, :meth:`Deliverer.send` (URL, body, headers, deadline in,
status or error out): the place to plug in another way of reaching a receiver. A
relay URL goes to :attr:`Deliverer.relay` instead of the network (see ``relay.py``),
and with a :attr:`Deliverer.policy` (a shared sandbox) any other URL the policy
refuses opens no connection: a :class:`Final` error, logged and not retried.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import sqlite3
import ssl
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .. import __version__, wire
from .store import Job, Store, Target, now_iso

if TYPE_CHECKING:  # pragma: no cover
    from .relay import DeliveryPolicy, Relay

__all__ = ["Deliverer", "Final", "LINQ_RETRY_DELAYS", "CLASSROOM_RETRY_DELAYS", "RETRY_PROFILES", "USER_AGENT",
           "MAX_ANSWER_BYTES"]

#: Ten retries over about 25 minutes, as Linq documents for v3.
LINQ_RETRY_DELAYS: tuple[float, ...] = (5, 10, 20, 40, 80, 160, 300, 300, 300, 300)
#: A fast schedule for notebooks and classrooms: five retries within about 15 seconds.
CLASSROOM_RETRY_DELAYS: tuple[float, ...] = (0.5, 1, 2, 4, 8)
#: Retry schedules by name: seconds before each retry. Linq's documented ones changed over 2026.
RETRY_PROFILES: dict[str, tuple[float, ...]] = {
    # "up to 10 times over ~25 minutes" (Linq's docs, March to August 2026): the default
    "linq": LINQ_RETRY_DELAYS,
    # 6 attempts, "2s, 4s, 8s, 16s, 30s" (the February 2026 OpenAPI spec)
    "linq-2026-02": (2, 4, 8, 16, 30),
    # "exponential backoff for up to 30 minutes" (linq-python 0.65.0, October 2026)
    "linq-2026-10": (5, 10, 20, 40, 80, 160, 320, 600, 600),
    "classroom": CLASSROOM_RETRY_DELAYS,
    "none": (),
}
USER_AGENT = f"linq-nb-sandbox/{__version__} (Linq imitation)"
#: The most of a receiver's answer that is read; the rest is never taken off the socket.
MAX_ANSWER_BYTES = 65_536

logger = logging.getLogger("linq_nb.sandbox")


class Final(str):
    """An error that ends the delivery at once (no retry): a destination the sandbox will not connect to."""


def _retryable(status: int | None) -> bool:
    """No answer, a 429 or a 5xx is worth another try; anything else is final."""
    return status is None or status == 429 or status >= 500


class _Watchdog:
    """Shuts down the socket of each attempt that passes its deadline (or all of them, on stop)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watched: dict[int, tuple[socket.socket, float]] = {}
        self._expired: set[int] = set()
        self._closing = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="linq-nb-delivery-watchdog", daemon=True)
        self._thread.start()

    def watch(self, key: int, sock: socket.socket, deadline: float) -> None:
        with self._cond:
            self._watched[key] = (sock, deadline)
            self._cond.notify_all()

    def release(self, key: int) -> bool:
        """Stop watching ``key``; True if its deadline had passed (it was cut off)."""
        with self._cond:
            self._watched.pop(key, None)
            if key in self._expired:
                self._expired.discard(key)
                return True
            return False

    def abort_all(self) -> None:
        with self._cond:
            self._closing = True
            for sock, _ in self._watched.values():
                _shutdown(sock)
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self) -> None:
        with self._cond:
            while not self._closing:
                now = time.monotonic()
                for key, (sock, deadline) in list(self._watched.items()):
                    if deadline <= now:
                        self._expired.add(key)
                        del self._watched[key]
                        _shutdown(sock)
                soonest = min((d for _, d in self._watched.values()), default=now + 1.0)
                self._cond.wait(min(max(soonest - now, 0.005), 1.0))


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class Deliverer:
    """Runs deliveries for a :class:`Store` until :meth:`stop`.

    Args:
        retry_delays: seconds before each retry.
        timeout: the hard deadline of one attempt, from connecting to the last byte read.
        workers: attempts in flight at most.
        per_partner: attempts of one partner in flight at most (default: a quarter of ``workers``).
    """

    def __init__(self, store: Store, *, retry_delays: Sequence[float] = LINQ_RETRY_DELAYS,
                 timeout: float = 10.0, workers: int = 16, per_partner: int | None = None) -> None:
        self.store = store
        self.retry_delays = tuple(float(d) for d in retry_delays)
        self.timeout = timeout
        self.workers = workers
        self.per_partner = max(1, workers // 4) if per_partner is None else per_partner
        self._ssl: ssl.SSLContext | None = None  # made on the first https delivery (loading CAs takes a while)
        self._cond = threading.Condition()
        self._inflight: set[int] = set()
        self._by_partner: Counter[str] = Counter()
        self._stopping = False
        self._watchdog = _Watchdog()
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self.relay: Relay | None = None  # relay sessions: deliveries held for listeners
        self.policy: DeliveryPolicy | None = None  # shared mode: where the sandbox may connect

    def start(self) -> None:
        self._stopping = False
        self._inflight.clear()
        self._by_partner.clear()
        self._watchdog.start()
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="linq-nb-delivery")
        self._thread = threading.Thread(target=self._dispatch, name="linq-nb-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop dispatching and cut short the attempts in flight (logged, and retried after a restart)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._watchdog.abort_all()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def wake(self) -> None:
        """New jobs were queued: look now rather than at the next due time."""
        with self._cond:
            self._cond.notify_all()

    def idle(self) -> bool:
        """Nothing in flight and nothing queued."""
        with self._cond:
            return not self._inflight and self.store.pending_count() == 0

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._inflight or self.store.pending_count():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # -- sending: the one step that reaches a receiver ------------------------------
    def send(self, key: int, url: str, body: bytes, headers: dict[str, str], deadline: float, *,
             partner: str | None = None) -> tuple[int | None, str | None]:
        """POST ``body`` to ``url`` before ``deadline`` (monotonic); (status, None) or (None, error).

        A relay URL is held for ``partner``'s listener instead; a URL the policy refuses is not touched.
        """
        if self.relay is not None and self.relay.owns(url):
            return self.relay.deliver(url, partner, body, headers, deadline)
        if self.policy is not None and (refused := self.policy.refusal(url)) is not None:
            return None, Final(refused)
        parts = urlsplit(url)
        left = max(deadline - time.monotonic(), 0.001)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=left, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=left)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        status: int | None = None
        error: str | None = None
        try:
            conn.connect()
            assert conn.sock is not None
            self._watchdog.watch(key, conn.sock, deadline)
            if self._stopping:
                _shutdown(conn.sock)
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read(MAX_ANSWER_BYTES)  # enough for any honest answer; the rest stays unread
            status = resp.status
        except TimeoutError:
            error = f"timeout after {self.timeout:g} s"
        except (OSError, http.client.HTTPException, ValueError) as exc:
            error = f"connection error: {type(exc).__name__}"
        finally:
            cut_off = self._watchdog.release(key)
            conn.close()
        if cut_off:  # whatever was parsed of an answer cut short at the deadline, it is a timeout
            return None, f"timeout after {self.timeout:g} s"
        if error is not None and self._stopping:
            return None, "interrupted: the sandbox stopped during the attempt"
        return status, error

    # -- internals -----------------------------------------------------------------
    def _dispatch(self) -> None:
        assert self._pool is not None
        with self._cond:
            while not self._stopping:
                free = self.workers - len(self._inflight)
                next_at = None
                if free > 0:
                    full = sorted(p for p, n in self._by_partner.items() if n >= self.per_partner)
                    try:
                        jobs, next_at = self.store.due_jobs(time.time(), sorted(self._inflight), free,
                                                            skip_partners=full)
                    except sqlite3.Error as exc:
                        logger.warning("delivery: cannot read the queue (%s); trying again", exc)
                        jobs = []
                    taken = 0
                    for job in jobs:
                        if self._by_partner[job.partner] >= self.per_partner:
                            continue  # a fair share each: the others' jobs go first
                        self._inflight.add(job.id)
                        self._by_partner[job.partner] += 1
                        self._pool.submit(self._run, job)
                        taken += 1
                    if taken:
                        continue  # more may be due already
                wait = 1.0 if next_at is None else min(max(next_at - time.time(), 0.005), 1.0)
                self._cond.wait(wait)

    def _run(self, job: Job) -> None:
        try:
            if not self._stopping:
                self._attempt(job)
        except Exception:
            logger.exception("delivery of event %s to subscription %s failed", job.event_id, job.subscription_id)
        finally:
            with self._cond:
                self._inflight.discard(job.id)
                self._by_partner[job.partner] -= 1
                if self._by_partner[job.partner] <= 0:
                    del self._by_partner[job.partner]
                self._cond.notify_all()

    def _attempt(self, job: Job) -> None:
        target = self.store.target(job)
        if target is None:  # deleted or deactivated since: inactive subscriptions receive nothing
            self.store.drop(job)
            return
        version = wire.get(target.api)
        body = self.store.body(job)
        headers = version.delivery_headers(  # signed now: a retry carries a fresh timestamp, the same event id
            body, secret=target.secret, event_type=job.event_type, event_id=job.event_id,
            subscription_id=target.subscription_id, timestamp=int(time.time()), user_agent=USER_AGENT,
            extra=version.routing_headers(target.routing_key_header, target.routing_id_header, body))
        started_at, t0 = now_iso(), time.perf_counter()
        status, error = self.send(job.id, target.url, body, headers, time.monotonic() + self.timeout,
                                  partner=job.partner)
        duration_ms = (time.perf_counter() - t0) * 1000
        ok = status is not None and 200 <= status < 300
        retry_at = None
        if not ok and _retryable(status) and not isinstance(error, Final) and job.attempts < len(self.retry_delays):
            retry_at = time.time() + (0 if self._stopping else self.retry_delays[job.attempts])
        self._record(job, target, status_code=status, error=error, ok=ok, started_at=started_at,
                     duration_ms=round(duration_ms, 3), retry_at=retry_at)

    def _record(self, job: Job, target: Target, **attempt: object) -> None:
        """Log the attempt; a busy database is waited out, so no attempt is sent twice unlogged."""
        for tries in range(1, 1000):
            try:
                self.store.record_attempt(job, target, **attempt)  # type: ignore[arg-type]
                return
            except sqlite3.OperationalError as exc:
                if self._stopping and tries >= 10:
                    raise
                if tries == 1:
                    logger.warning("delivery: the state database is busy (%s); waiting to log the attempt", exc)
                time.sleep(0.2)
