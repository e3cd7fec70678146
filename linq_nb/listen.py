"""The relay's client end: deliveries for a receiver the sandbox cannot reach, pulled over outbound HTTP.

A shared sandbox cannot POST to a learner on Binder, a JupyterHub pod or a laptop
behind NAT. A :class:`Listener` opens a relay session in the sandbox, points a
temporary subscription at its relay URL, and then long-polls the sandbox (plain
HTTP(S) on ``requests``, which every proxy in front of a kernel passes), forwards
each delivery to a local URL with its original bytes and headers (so signatures
verify), and reports the local answer back: the sandbox counts and retries it
exactly as if it had POSTed itself.

    linq-nb listen --forward-to http://127.0.0.1:8000/hook --events message.received

    listener = receiver.listen(client, ["message.received"])     # in a notebook
    listener.subscription, listener.counts()
    listener.stop()                                              # deletes the subscription

It never fails silently: a local endpoint that does not answer, a lost connection
to the sandbox (reconnected with backoff; the subscription is moved to a new relay
URL if the sandbox forgot the session) and a sandbox that refuses are all reported
(printed by the command, logged and kept in :attr:`Listener.problems` in a notebook).
The same ``name`` (by default: this machine, the local URL and the events) reopens
the same session, so a listener restarted within the retry window gets the events
its predecessor missed (the newest listener of a name takes the session over; the one
before stops with a :class:`ListenError` saying so). ``stop()`` (Ctrl-C or SIGTERM for the command) deletes the
subscription and closes the session.
"""

from __future__ import annotations

import base64
import contextlib
import html
import logging
import secrets as _secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

import requests

from .errors import LinqConnectionError, LinqError, LinqTimeoutError, NotFoundError, ServerError
from .events import EVENT_TYPES
from .validation import is_loopback_url

__all__ = ["Listener", "listen", "new_secret", "KEY_HEADER"]

logger = logging.getLogger("linq_nb.listen")

KEY_HEADER = "X-Linq-Relay-Key"
#: Seconds between reconnection attempts: doubling up to the last.
BACKOFF = (0.5, 1, 2, 4, 8, 15)
#: Headers not copied to the local request (requests sets its own for the connection).
_HOP = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}


def new_secret() -> str:
    """A fresh webhook secret for a temporary subscription."""
    return "whsec_" + _secrets.token_urlsafe(24)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ListenError(LinqError):
    """The sandbox refused the listener (or has no relay): listening cannot go on."""


class Listener:
    """Forwards a sandbox's deliveries for a temporary subscription to ``forward_to``.

    Args:
        client: a :class:`~linq_nb.client.LinqClient` bound to a sandbox (embedded or shared).
        forward_to: the local URL each delivery is POSTed to (a receiver on this machine).
        events: the events to subscribe to (default: all).
        secret: the subscription's secret (None: a new one, see :attr:`secret`; ``""``: unsigned).
        name: names the relay session; the same name reopens it (default: host, URL and events).
        on_delivery: called with each delivery's record (time, event, status, duration, error).
        on_problem: called with each problem's sentence (lost connection, endpoint not answering).
        poll_wait: seconds one poll waits for a delivery.
    """

    def __init__(self, client: Any, forward_to: str, events: Iterable[str] | None = None, *,
                 secret: str | None = None, name: str | None = None,
                 on_delivery: Callable[[dict[str, Any]], None] | None = None,
                 on_problem: Callable[[str], None] | None = None, poll_wait: float = 25.0, history: int = 1000) -> None:
        if isinstance(events, str):
            raise TypeError(f"events must be a list of event names such as [{events!r}], not a single string")
        self.client = client
        self.forward_to = forward_to
        self.events = list(events) if events is not None else list(EVENT_TYPES)
        self._secret = new_secret() if secret is None else secret
        self.name = name or f"{socket.gethostname()} {forward_to} {','.join(self.events)}"[:200]
        self.on_delivery = on_delivery
        self.on_problem = on_problem
        self.poll_wait = poll_wait
        self.subscription: Any = None
        self.session: dict[str, Any] = {}
        self.records: deque[dict[str, Any]] = deque(maxlen=history)
        self.problems: deque[str] = deque(maxlen=100)
        self.error: BaseException | None = None  # what stopped a background listener, if anything
        self._totals = dict.fromkeys(("deliveries", "delivered", "failed", "reconnects", "moves"), 0)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        # True while the loop forwards a batch it took; stop() waits for it (under _batch) before closing the session.
        self._busy = False
        self._batch = threading.Condition()
        self._thread: threading.Thread | None = None
        self._poll = requests.Session()
        self._forward = requests.Session()
        if is_loopback_url(forward_to):
            self._forward.trust_env = False  # a local receiver is never reached through a proxy

    # -- what it is -----------------------------------------------------------------
    @property
    def secret(self) -> str:
        """The subscription's webhook secret (shown only when asked for; never in repr)."""
        return self._secret

    @property
    def relay_url(self) -> str | None:
        return self.session.get("relay_url")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def counts(self) -> dict[str, int]:
        """``deliveries`` forwarded, ``delivered`` (a 2xx), ``failed``, ``reconnects``, ``moves``."""
        with self._lock:
            return dict(self._totals)

    def __repr__(self) -> str:
        c = self.counts()
        sub = getattr(self.subscription, "id", None)
        return (f"<Listener {'running' if self.running else 'stopped'}: subscription {sub} -> {self.forward_to}; "
                f"{c['deliveries']} forwarded, {c['delivered']} delivered, {c['failed']} failed>")

    def _repr_html_(self) -> str:
        c = self.counts()
        last = f"<div style='color:#c0392b'>{html.escape(self.problems[-1])}</div>" if self.problems else ""
        return (f'<div class="linq-listener" style="border-left:4px solid #8e44ad;padding:4px 10px"><b>Listener</b> '
                f"({'running' if self.running else 'stopped'}): subscription "
                f"<code>{getattr(self.subscription, 'id', '-')}</code> via the sandbox's relay to "
                f"<code>{html.escape(self.forward_to)}</code><div>{c['deliveries']} forwarded · "
                f"{c['delivered']} delivered · {c['failed']} failed · {c['reconnects']} reconnects</div>{last}</div>")

    # -- life cycle -----------------------------------------------------------------
    def open(self) -> Listener:
        """Open the relay session and create (or take over) the temporary subscription; raises if refused."""
        self._open_session()
        relay_url = self.session["relay_url"]
        secret = self._secret or None
        for sub in self.client.list_subscriptions():
            if sub.webhook_url == relay_url:  # this listener's, left by a run that was killed: take it over
                self.subscription = self.client.update_subscription(sub, events=self.events, secret=secret,
                                                                    active=True)
                break
        else:
            self.subscription = self.client.create_subscription(relay_url, self.events, secret=secret)
        return self

    def start(self) -> Listener:
        """:meth:`open`, then listen in a daemon thread (for a notebook); returns at once."""
        if self.running:
            return self
        if self.subscription is None:
            self.open()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._background, name="linq-nb-listener", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the background listener ends (stopped, or :attr:`error`); True if it has."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def stop(self) -> None:
        """Stop listening, delete the temporary subscription and close the session. Safe to call twice.

        Deliveries the loop holds are forwarded and reported first (each within its deadline), so that
        one already at the local receiver is not then counted as failed and retried; no new batch is taken.
        Then the session is closed (that ends a waiting poll at once), and only then is the subscription
        deleted: nothing the loop does can outlive the call.
        """
        with self._batch:
            self._stopping.set()
            if self._thread is not threading.current_thread():  # not from an on_delivery callback
                self._batch.wait_for(lambda: not self._busy, timeout=15)
        closed = self._close_session()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=15)
        sub, self.subscription = self.subscription, None
        if sub is not None:
            try:
                self.client.delete_subscription(sub)
            except NotFoundError:
                pass
            except LinqError as exc:
                self._problem(f"could not delete the temporary subscription {sub.id}: {exc}; delete it by hand")
        if self.session.get("session_id") not in (None, closed):  # reopened meanwhile
            self._close_session()
        self._poll.close()
        self._forward.close()

    def _close_session(self) -> str | None:
        sid = self.session.get("session_id")
        if sid:
            with contextlib.suppress(LinqError):
                self.client.sandbox_route("DELETE", f"/_sandbox/relay/{sid}")
        return sid

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------
    def _problem(self, text: str) -> None:
        self.problems.append(text)
        logger.warning("linq-nb listen: %s", text)
        if self.on_problem is not None:
            self.on_problem(text)

    def _open_session(self) -> None:
        try:
            self.session = self.client.sandbox_route("POST", "/_sandbox/relay", {"name": self.name})
        except NotFoundError as exc:
            raise ListenError("this sandbox has no relay (an older linq-nb?); upgrade it, or deliver directly",
                              hint="Run a linq-nb sandbox of this version.") from exc
        if self.session.get("listen_key") is None:
            raise ListenError("the sandbox's answer to POST /_sandbox/relay has no listen key")
        self._poll.trust_env = not is_loopback_url(self.session["poll_url"])  # a proxy only for a remote sandbox

    def _reopen(self) -> None:
        """The sandbox forgot the session (it restarted): open a new one and move the subscription to it."""
        before = self.session.get("relay_url")
        self._open_session()
        if self.subscription is None or self._stopping.is_set():
            return
        if self.session["relay_url"] == before:
            return
        try:
            self.subscription = self.client.update_subscription(self.subscription,
                                                                webhook_url=self.session["relay_url"])
        except NotFoundError:  # the sandbox lost it too (no --state): make it again
            self.subscription = self.client.create_subscription(self.session["relay_url"], self.events,
                                                                secret=self._secret or None)
        with self._lock:
            self._totals["moves"] += 1
        self._problem(f"the sandbox had forgotten the relay session: subscription {self.subscription.id} "
                      f"moved to {self.session['relay_url']}")

    def _background(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # kept and logged: the notebook shows it in the repr
            self.error = exc
            self._problem(f"stopped listening: {exc}")

    def _loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                resp = self._poll.get(self.session["poll_url"] + "/next", params={"wait": self.poll_wait},
                                      headers={KEY_HEADER: self.session["listen_key"]},
                                      timeout=(5, self.poll_wait + 10))
            except requests.RequestException as exc:
                if self._stopping.is_set():
                    return
                failures += 1
                pause = BACKOFF[min(failures, len(BACKOFF)) - 1]
                self._problem(f"lost the connection to the sandbox ({type(exc).__name__}); reconnecting in "
                              f"{pause:g} s")
                self._stopping.wait(pause)
                if failures >= 2 and not self._stopping.is_set():  # a restarted sandbox may poll on another port
                    with contextlib.suppress(LinqConnectionError, LinqTimeoutError, ServerError):
                        self._reopen()
                continue
            if resp.status_code == 404:  # the session is gone (the sandbox restarted), or our key is stale
                if self._stopping.is_set():
                    return
                try:
                    self._reopen()
                except (LinqConnectionError, LinqTimeoutError, ServerError) as exc:  # not back yet: try again
                    failures += 1
                    pause = BACKOFF[min(failures, len(BACKOFF)) - 1]
                    self._problem(f"could not reopen the relay session ({exc}); trying again in {pause:g} s")
                    self._stopping.wait(pause)
                continue
            if resp.status_code == 409:  # the same name was opened elsewhere: the newest listener wins
                raise ListenError(_message(resp, "another listener took over this relay session"),
                                  hint="Stop the other listener, or give each one its own --name (name=...).")
            if resp.status_code != 200:
                failures += 1
                pause = BACKOFF[min(failures, len(BACKOFF)) - 1]
                self._problem(f"the sandbox's relay answered {resp.status_code} ({resp.text[:200]}); "
                              f"trying again in {pause:g} s")
                self._stopping.wait(pause)
                continue
            if failures:
                failures = 0
                with self._lock:
                    self._totals["reconnects"] += 1
                self._problem("reconnected to the sandbox")
            deliveries = resp.json().get("deliveries", [])
            with self._batch:
                if self._stopping.is_set():  # stop() is closing the session, which hands these back to be retried
                    return
                self._busy = True
            try:
                for delivery in deliveries:
                    self._handle(delivery)
            finally:
                with self._batch:
                    self._busy = False
                    self._batch.notify_all()

    def _handle(self, delivery: dict[str, Any]) -> None:
        headers = {k: v for k, v in delivery["headers"].items() if k.lower() not in _HOP}
        body = base64.b64decode(delivery["body"])
        timeout = max(min(float(delivery.get("deadline_in", 10)) - 0.3, 10.0), 0.2)
        record: dict[str, Any] = {"received_at": _now(), "event_type": headers.get("X-Webhook-Event"),
                                  "subscription_id": headers.get("X-Webhook-Subscription-ID"), "status": None,
                                  "error": None, "duration_ms": 0.0}
        started = time.perf_counter()
        try:
            with self._forward.post(self.forward_to, data=body, headers=headers, timeout=timeout, stream=True,
                                    allow_redirects=False) as answer:
                record["status"] = answer.status_code
        except requests.Timeout:
            record["error"] = f"timeout: the local endpoint did not answer within {timeout:.1f} s"
        except requests.RequestException as exc:
            record["error"] = f"{type(exc).__name__}: the local endpoint did not answer"
        record["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        report = {"delivery_id": delivery["delivery_id"], "status": record["status"], "error": record["error"],
                  "duration_ms": record["duration_ms"]}
        with self._lock:
            self._totals["deliveries"] += 1
            ok = record["status"] is not None and 200 <= record["status"] < 300
            self._totals["delivered" if ok else "failed"] += 1
            self.records.append(record)
        if self.on_delivery is not None:
            self.on_delivery(record)
        if record["error"]:
            self._problem(f"{self.forward_to} did not answer ({record['error']}): is your endpoint running? "
                          "The sandbox retries the delivery")
        try:
            done = self._poll.post(self.session["poll_url"] + "/answers", json=report,
                                   headers={KEY_HEADER: self.session["listen_key"]}, timeout=10)
            if done.status_code != 200:
                self._problem(f"the sandbox did not take the answer ({done.status_code}: {done.text[:200]}); "
                              "it retries the delivery")
        except requests.RequestException as exc:
            self._problem(f"could not report the answer to the sandbox ({type(exc).__name__}); it retries the "
                          "delivery")


def _message(resp: requests.Response, default: str) -> str:
    try:
        return str(resp.json().get("error") or default)[:300]
    except ValueError:
        return default


def listen(client: Any, forward_to: str, events: Iterable[str] | None = None, **kwargs: Any) -> Listener:
    """A started :class:`Listener`: ``client``'s sandbox delivers to ``forward_to`` through its relay."""
    return Listener(client, forward_to, events, **kwargs).start()


def format_record(record: dict[str, Any]) -> str:
    """One line per delivery, as ``linq-nb listen`` prints it."""
    when = record["received_at"].strftime("%H:%M:%S.%f")[:-3]
    status = str(record["status"]) if record["status"] is not None else "no answer"
    line = f"{when}  {record['event_type'] or '-':<18} -> {status:<9} {record['duration_ms']:8.1f} ms"
    return line + (f"  ({record['error']})" if record["error"] else "")
