"""The sandbox's webhook delivery worker: sign, POST, retry with backoff, count.

Delivery follows the project's v2 rules (``shared/docs/linq-v2-api.md``): the
canonical JSON envelope is POSTed with ``X-Webhook-Signature`` when the
subscription has a secret; a 2xx is success; a 5xx, a 429, a timeout or a
connection error is retried after ``retry_delays[n]`` with the same
``event_id``; any other status is final. Every attempt moves
``delivery_attempts``; a success sets ``last_delivered_at``.

A dispatcher thread hands due jobs to a pool of worker threads, so one slow
receiver never holds up the others, and the API never waits for a delivery.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import urllib3

from .. import __version__
from ..signing import SIGNATURE_HEADER, sign
from .store import Job, Store, now_iso

__all__ = ["Deliverer", "LINQ_RETRY_DELAYS", "USER_AGENT"]

#: Ten retries over about 25 minutes, as Linq documents for v3.
LINQ_RETRY_DELAYS: tuple[float, ...] = (5, 10, 20, 40, 80, 160, 300, 300, 300, 300)
USER_AGENT = f"linq-nb-sandbox/{__version__} (Linq v2 imitation)"


def _retryable(status: int | None) -> bool:
    """No answer, a 429 or a 5xx is worth another try; anything else is final."""
    return status is None or status == 429 or status >= 500


class Deliverer:
    """Runs deliveries for a :class:`Store` until :meth:`stop`."""

    def __init__(self, store: Store, *, retry_delays: Sequence[float] = LINQ_RETRY_DELAYS,
                 timeout: float = 10.0, workers: int = 16) -> None:
        self.store = store
        self.retry_delays = tuple(float(d) for d in retry_delays)
        self.timeout = timeout
        self.workers = workers
        self._http = urllib3.PoolManager(num_pools=64, maxsize=workers, retries=False,
                                         timeout=urllib3.Timeout(total=timeout))
        self._cond = threading.Condition()
        self._inflight: set[int] = set()
        self._stopping = False
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping = False
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="linq-nb-delivery")
        self._thread = threading.Thread(target=self._dispatch, name="linq-nb-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._http.clear()

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

    # -- internals -----------------------------------------------------------------
    def _dispatch(self) -> None:
        assert self._pool is not None
        with self._cond:
            while not self._stopping:
                free = self.workers - len(self._inflight)
                next_at = None
                if free > 0:
                    jobs, next_at = self.store.due_jobs(time.time(), sorted(self._inflight), free)
                    for job in jobs:
                        self._inflight.add(job.id)
                        self._pool.submit(self._run, job)
                    if jobs:
                        continue  # more may be due already
                wait = 1.0 if next_at is None else min(max(next_at - time.time(), 0.005), 1.0)
                self._cond.wait(wait)

    def _run(self, job: Job) -> None:
        try:
            self._attempt(job)
        finally:
            with self._cond:
                self._inflight.discard(job.id)
                self._cond.notify_all()

    def _attempt(self, job: Job) -> None:
        target = self.store.target(job)
        if target is None:  # deleted or deactivated since: inactive subscriptions receive nothing
            self.store.drop(job)
            return
        url, secret = target
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Webhook-Event": job.event_type,
            "X-Webhook-Subscription-ID": str(job.subscription_id),
        }
        if secret:
            headers[SIGNATURE_HEADER] = sign(job.body, secret)
        started_at, t0 = now_iso(), time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            resp = self._http.request("POST", url, body=job.body, headers=headers, redirect=False)
            status = resp.status
        except urllib3.exceptions.NewConnectionError as exc:  # (a ConnectTimeoutError subclass in urllib3 2)
            error = f"connection error: {type(exc).__name__}"
        except urllib3.exceptions.TimeoutError:
            error = f"timeout after {self.timeout:g} s"
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            error = f"connection error: {type(exc).__name__}"
        duration_ms = (time.perf_counter() - t0) * 1000
        ok = status is not None and 200 <= status < 300
        retry_at = None
        if not ok and _retryable(status) and job.attempts < len(self.retry_delays):
            retry_at = time.time() + self.retry_delays[job.attempts]
        self.store.record_attempt(job, status_code=status, error=error, ok=ok, started_at=started_at,
                                  duration_ms=round(duration_ms, 3), retry_at=retry_at)
