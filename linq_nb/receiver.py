"""A local webhook endpoint that verifies, records and answers Linq deliveries, v2 and v3.

``Receiver`` is a small WSGI app (werkzeug) served on 127.0.0.1 on a free port
in a daemon thread. Give its ``.url`` to a subscription as the ``webhook_url``
(v3: ``target_url``); it checks each request's signature against one or more
secrets, in the scheme the request's headers speak (v2 ``sha256=``, v3's
Standard Webhooks ``webhook-*`` headers, or v3's legacy ``X-Webhook-Timestamp``
pair; see :mod:`linq_nb.signing`, and ``scheme=`` to accept one only), records
every request it gets, good or bad, and keeps the events it accepted::

    from linq_nb import Receiver

    with Receiver(secrets="whsec_...") as receiver:
        client.create_subscription(receiver.url, ["message.received"], secret="whsec_...")
        ...                                   # trigger an event
        receiver.wait_for_events(1)
        receiver.events                       # the envelopes, once per event_id
        receiver.frame()                      # every request as a DataFrame

It behaves as a good receiver should: it answers fast (``200 {"ok": true}``),
treats a repeated ``event_id`` as a duplicate (answered 200, flagged, not added
to ``.events`` again), and refuses what it cannot trust with a 4xx and a reason:

    =====  ==================================================================
    400    the body is not a JSON object
    401    missing or wrong signature, or a stale timestamp (only when secrets are
           configured); ``reason`` says precisely what is wrong
    404    another path; 405 another method than POST
    413    the body is larger than ``max_body_bytes``
    =====  ==================================================================

To show retries in a notebook, ``fail_next(n, status)`` makes it answer the next
``n`` deliveries it would have accepted with ``status`` (the event is not
accepted), and ``delay(seconds)`` makes it answer slowly.

The secrets are never shown: not in ``repr``, the notebook view, the records,
the frame or the command line's output.
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import logging
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Request, Response

from ._server import ServerThread, stop_on_ctrl_c
from .errors import SignatureVerificationError
from .signing import SCHEMES, verify_delivery
from .validation import is_loopback_host

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from .listen import Listener

__all__ = ["Receiver", "main", "DEFAULT_PATH", "DEFAULT_MAX_BODY_BYTES", "DEFAULT_HISTORY", "REQUEST_FIELDS",
           "SECRET_ENV"]

DEFAULT_PATH = "/webhooks"
DEFAULT_MAX_BODY_BYTES = 1_048_576
#: Requests (and events) a receiver keeps by default; its counts stay exact beyond that.
DEFAULT_HISTORY = 10_000
#: Environment variable with the receiver's secret (kept out of ``ps``, unlike ``--secret``).
SECRET_ENV = "LINQ_WEBHOOK_SECRET"
logger = logging.getLogger("linq_nb.receiver")
SUBSCRIPTION_HEADER = "X-Webhook-Subscription-ID"
EVENT_HEADER = "X-Webhook-Event"

#: The keys of every record in :attr:`Receiver.requests`, in the order :meth:`Receiver.frame` shows them.
REQUEST_FIELDS: tuple[str, ...] = (
    "received_at",  # datetime, UTC: when the request arrived
    "event_id",  # str | None: from the envelope
    "event_type",  # str | None: from the envelope, else the X-Webhook-Event header
    "subscription_id",  # int | str | None: the X-Webhook-Subscription-ID header, an int when it is one
    "verified",  # True / False; None when no secret is configured or the request was refused before checking
    "reason",  # str | None: why the request was not accepted
    "status",  # int: the HTTP status the receiver answered
    "duplicate",  # bool: accepted, but this event_id had already been accepted
    "method",  # str: the HTTP method
    "path",  # str: the request path
    "duration_ms",  # float: from arrival to answer, including any delay()
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _normalise_path(path: str) -> str:
    path = "/" + path.strip().strip("/")
    return path


def _check_secret(secret: object) -> str | bytes:
    if not isinstance(secret, (str, bytes)):
        raise TypeError(f"a webhook secret must be a str or bytes, not {type(secret).__name__}")
    if not secret:
        raise ValueError("a webhook secret cannot be empty")
    return secret


def _parse_subscription_id(value: str | None) -> int | str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return int(value)
    except ValueError:
        return value


# What an unverified body claims, for the record only: looked for in its start, never parsed as JSON.
_CLAIM = re.compile(rb'"(event_id|event_type)"\s*:\s*"([^"\\]{1,200})"')


def _record_claims(body: bytes, record: dict[str, Any]) -> None:
    """Fill ``record``'s event_id/event_type from what a body that failed verification claims."""
    for key, value in _CLAIM.findall(body[:4096]):
        name = key.decode()
        if (name == "event_id" and record["event_id"] is None) or name == "event_type":
            record[name] = value.decode("utf-8", "replace")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


class Receiver:
    """A local webhook endpoint that verifies signatures and records every request.

    Args:
        secrets: the subscription's secret, several (to rotate one without losing
            events: a request verifies if any matches), or None to accept unsigned
            requests without checking (``verified`` is then None).
        host: interface to listen on; the default keeps it on this machine.
        port: 0 picks a free port.
        path: the path deliveries are POSTed to; others get 404.
        max_body_bytes: larger bodies are refused with 413 without being read.
        history: the newest requests (and events) kept; older ones are forgotten, the counts stay
            exact, and a repeated ``event_id`` is recognised among the newest ``history`` events.
        scheme: None (the default) verifies each request in the scheme its headers speak, Standard
            Webhooks first; ``"v2"``, ``"standard"`` or ``"legacy"`` accepts that scheme only.
            Secrets may mix v2 secrets and v3 signing secrets (``whsec_...``).
    """

    def __init__(
        self,
        secrets: str | bytes | Iterable[str | bytes] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = DEFAULT_PATH,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        history: int = DEFAULT_HISTORY,
        scheme: str | None = None,
    ) -> None:
        if scheme is not None and scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, or None to follow the headers; "
                             f"not {scheme!r}")
        self.scheme = scheme
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise ValueError(f"history must be a positive integer, not {history!r}")
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int) or max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be a positive integer, not {max_body_bytes!r}")
        if not isinstance(path, str):
            raise TypeError(f"path must be a string such as {DEFAULT_PATH!r}, not {type(path).__name__}")
        if secrets is None:
            given: list[str | bytes] = []
        elif isinstance(secrets, (str, bytes)):
            given = [secrets]
        else:
            given = list(secrets)
        self._secrets: list[str | bytes] = []
        for s in given:
            s = _check_secret(s)
            if s not in self._secrets:
                self._secrets.append(s)
        self.host = host
        self.path = _normalise_path(path)
        self.max_body_bytes = max_body_bytes
        self._server = ServerThread(self.app, host, port, name="linq-nb-receiver", server="werkzeug", threads=32)
        self._cond = threading.Condition(threading.Lock())
        self._stopping = threading.Event()
        self.history = history
        self._requests: deque[dict[str, Any]] = deque(maxlen=history)
        self._events: deque[dict[str, Any]] = deque(maxlen=history)
        self._seen_ids: dict[str, None] = {}  # insertion-ordered: the oldest is forgotten first
        self._totals = dict.fromkeys(("requests", "events", "duplicates", "rejected"), 0)
        self._fail_remaining = 0
        self._fail_status = 500
        self._delay = 0.0
        self._in_flight = 0  # requests being answered right now (a slow answer is counted here)
        self.listener: Listener | None = None  # the last listen() started, if any

    # --- life cycle --------------------------------------------------------------------------------------------

    def start(self) -> Receiver:
        """Serve in a background thread; return once it accepts connections."""
        self._stopping.clear()
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving (a slow answer in progress is cut short). Safe to call twice; the records stay."""
        self._stopping.set()
        self._server.stop()

    @property
    def running(self) -> bool:
        return self._server.running

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port it listens on (0 until started with port=0)."""
        return self._server.port

    @property
    def base_url(self) -> str:
        """``http://host:port``, without the path."""
        return self._server.url

    @property
    def url(self) -> str:
        """The full URL to give a subscription as its ``webhook_url`` (includes the path)."""
        if not self._server.port:
            raise RuntimeError("the receiver has no port yet: call .start() first (or use it in a with block)")
        return self._server.url + self.path

    # --- settings ----------------------------------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500) -> None:
        """Answer the next ``n`` deliveries it would have accepted with ``status``, and not accept them.

        Bad requests (which get their own 4xx) do not use up the count. ``n=0`` cancels.
        A 5xx or 429 makes Linq (and the sandbox) retry; another 4xx is final.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"fail_next needs a count >= 0, not {n!r}")
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError(f"status must be an HTTP status between 200 and 599, not {status!r}")
        with self._cond:
            self._fail_remaining = n
            self._fail_status = status

    def delay(self, seconds: float) -> None:
        """Wait ``seconds`` before answering each request (0 to answer fast again).

        Linq gives up on a delivery after 10 s and retries it, so a delay above that
        shows a slow receiver causing retries and duplicates.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < 86_400:
            raise ValueError(f"delay needs a finite number of seconds >= 0, not {seconds!r}")
        with self._cond:
            self._delay = float(seconds)

    def add_secret(self, secret: str | bytes) -> None:
        """Also accept requests signed with ``secret`` (rotate: add the new one, then remove the old)."""
        secret = _check_secret(secret)
        with self._cond:
            if secret not in self._secrets:
                self._secrets.append(secret)

    def remove_secret(self, secret: str | bytes) -> None:
        """Stop accepting ``secret``. Removing the last one turns verification off."""
        with self._cond:
            if secret not in self._secrets:
                raise ValueError("that secret is not one of this receiver's secrets (secrets are never shown)")
            self._secrets.remove(secret)

    @property
    def secret_count(self) -> int:
        """How many secrets it verifies with (the secrets themselves are never shown)."""
        with self._cond:
            return len(self._secrets)

    def listen(self, client: Any, events: Iterable[str] | None = None, **kwargs: Any) -> Listener:
        """Receive ``client``'s sandbox deliveries here through its relay, even from a sandbox that cannot reach
        this machine (a shared one): a started :class:`~linq_nb.listen.Listener` with a temporary subscription
        (``.subscription``) signed with this receiver's first secret. ``stop()`` it to delete the subscription.

        >>> listener = receiver.listen(client, ["message.received"])
        """
        from .listen import Listener

        if "secret" not in kwargs:
            with self._cond:
                kwargs["secret"] = self._secrets[0] if self._secrets else ""
                if isinstance(kwargs["secret"], bytes):
                    kwargs["secret"] = kwargs["secret"].decode()
        listener = Listener(client, self.url, events, **kwargs).start()
        self.listener = listener
        return listener

    # --- what it saw -------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """One record per HTTP request, in the order they were answered (a copy); keys: :data:`REQUEST_FIELDS`."""
        with self._cond:
            return [dict(r) for r in self._requests]

    @property
    def events(self) -> list[dict[str, Any]]:
        """The accepted envelopes, each ``event_id`` once, in the order accepted (a copy)."""
        with self._cond:
            return copy.deepcopy(list(self._events))

    def counts(self) -> dict[str, int]:
        """``{"requests", "events", "duplicates", "rejected"}``: rejected means answered other than 2xx."""
        with self._cond:
            return dict(self._totals)

    def clear(self) -> None:
        """Forget the records and events (and so which event ids were seen). Settings stay."""
        with self._cond:
            self._requests.clear()
            self._events.clear()
            self._seen_ids.clear()
            self._totals = dict.fromkeys(self._totals, 0)
            self._cond.notify_all()

    def wait_for_events(self, n: int, timeout: float | None = 10.0) -> bool:
        """Wait until at least ``n`` events were accepted; False if ``timeout`` seconds pass first."""
        return self._wait(lambda: self._totals["events"] >= n, timeout)

    def wait_for_requests(self, n: int, timeout: float | None = 10.0) -> bool:
        """Wait until at least ``n`` requests were answered; False if ``timeout`` seconds pass first."""
        return self._wait(lambda: self._totals["requests"] >= n, timeout)

    def _wait(self, done: Callable[[], bool], timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not done():
                if deadline is None:
                    self._cond.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _records_from(self, start: int) -> list[dict[str, Any]]:
        with self._cond:
            skip = max(0, start - (self._totals["requests"] - len(self._requests)))  # start counts from the first
            return [dict(r) for r in list(self._requests)[skip:]]

    def frame(self) -> pd.DataFrame:
        """The request records as a pandas DataFrame, one row per request.

        Columns (:data:`REQUEST_FIELDS`): received_at datetime64[ns, UTC], event_id, event_type
        and reason object, subscription_id Int64 (object if some id is not an integer),
        verified boolean (nullable), status Int64, duplicate bool, method and path object,
        duration_ms float64.
        """
        import pandas as pd

        records = self.requests
        columns: dict[str, Any] = {}
        columns["received_at"] = pd.to_datetime(
            pd.Series([r["received_at"] for r in records], dtype=object), utc=True
        ).astype("datetime64[ns, UTC]")
        for name in ("event_id", "event_type"):
            columns[name] = pd.Series([r[name] for r in records], dtype=object)
        sub_ids = [r["subscription_id"] for r in records]
        if all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in sub_ids):
            columns["subscription_id"] = pd.Series(sub_ids, dtype="Int64")
        else:
            columns["subscription_id"] = pd.Series(sub_ids, dtype=object)
        columns["verified"] = pd.Series([r["verified"] for r in records], dtype="boolean")
        columns["reason"] = pd.Series([r["reason"] for r in records], dtype=object)
        columns["status"] = pd.Series([r["status"] for r in records], dtype="Int64")
        columns["duplicate"] = pd.Series([r["duplicate"] for r in records], dtype=bool)
        for name in ("method", "path"):
            columns[name] = pd.Series([r[name] for r in records], dtype=object)
        columns["duration_ms"] = pd.Series([r["duration_ms"] for r in records], dtype="float64")
        return pd.DataFrame(columns, columns=list(REQUEST_FIELDS))

    # --- display -----------------------------------------------------------------------------------------------

    def _where(self) -> str:
        return self.url if self._server.port else f"http://{self.host}:<not started>{self.path}"

    def __repr__(self) -> str:
        c = self.counts()
        n = self.secret_count
        state = "running" if self.running else "stopped"
        verifying = f"verifying with {_plural(n, 'secret')}" if n else "not verifying signatures"
        return (
            f"<Receiver {self._where()} {state}: {_plural(c['requests'], 'request')}, {_plural(c['events'], 'event')}, "
            f"{_plural(c['duplicates'], 'duplicate')}, {c['rejected']} rejected; {verifying}>"
        )

    def _repr_html_(self) -> str:
        esc = html.escape
        c = self.counts()
        n = self.secret_count
        with self._cond:
            fail, fail_status, delay = self._fail_remaining, self._fail_status, self._delay
            last = [dict(r) for r in list(self._requests)[-5:]]
        notes = [f"verifying signatures with {_plural(n, 'secret')}" if n
                 else "not verifying signatures (no secret configured)"]
        if fail:
            what = "delivery" if fail == 1 else f"{fail} deliveries"
            notes.append(f"will answer the next {what} with HTTP {fail_status}")
        if delay:
            notes.append(f"answers after {delay:g} s")
        counts = " · ".join(f"<b>{v}</b> {esc(k)}" for k, v in c.items())
        rows = "".join(
            "<tr>"
            f"<td>{esc(r['received_at'].strftime('%H:%M:%S.%f')[:-3])}</td>"
            f"<td>{r['status']}</td>"
            f"<td>{esc(str(r['event_type'] or ''))}</td>"
            f"<td><code>{esc(str(r['event_id'] or ''))}</code></td>"
            f"<td>{'' if r['verified'] is None else ('✓' if r['verified'] else '✗')}</td>"
            f"<td>{'duplicate' if r['duplicate'] else esc(r['reason'] or '')}</td>"
            "</tr>"
            for r in reversed(last)
        )
        table = (
            '<table style="font-size:90%"><tr><th>received (UTC)</th><th>status</th><th>event type</th>'
            f"<th>event id</th><th>verified</th><th>note</th></tr>{rows}</table>"
            if rows else "<div><i>no requests yet</i></div>"
        )
        state = "running" if self.running else "stopped"
        return (
            '<div class="linq-receiver" style="border-left:4px solid #2980b9;padding:4px 10px">'
            f"<b>Receiver</b> ({state}) at <code>{esc(self._where())}</code>"
            f"<div>{counts}</div>"
            f'<div style="opacity:.7;font-size:90%">{esc("; ".join(notes))}</div>'
            f"{table}</div>"
        )

    # --- the WSGI app ------------------------------------------------------------------------------------------

    def app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI application (serve it with any WSGI server to run the receiver elsewhere)."""
        started = time.monotonic()
        with self._cond:
            self._in_flight += 1
        try:
            return self._answer(environ, start_response, started)
        finally:
            with self._cond:
                self._in_flight -= 1

    def _answer(self, environ: WSGIEnvironment, start_response: StartResponse, started: float) -> Iterable[bytes]:
        record: dict[str, Any] = dict.fromkeys(REQUEST_FIELDS)
        record.update(received_at=_now(), verified=None, duplicate=False,
                      method=environ.get("REQUEST_METHOD", ""), path=environ.get("PATH_INFO", ""))
        envelope: dict[str, Any] | None = None
        try:
            request = Request(environ)
            status, reason, envelope = self._check(request, record)
        except (ClientDisconnected, OSError, ValueError):  # a framing error: the sender's, and not worth a retry
            status, reason = 400, "the body could not be read: shorter than its Content-Length, or badly chunked"
        except Exception:  # never let a request crash the receiver; the details go to the log only
            logger.exception("the receiver failed on a request to %s", str(record["path"])[:200])
            status, reason = 500, "internal error in the receiver (see its log)"
        with self._cond:
            delay = self._delay
        if delay:
            self._stopping.wait(delay)  # stop() cuts it short
        with self._cond:
            if status == 200 and self._fail_remaining > 0:
                self._fail_remaining -= 1
                status = self._fail_status
                reason = f"fail_next: answered {status} as told ({self._fail_remaining} more to fail)"
            elif status == 200 and envelope is not None:
                event_id = record["event_id"]
                if event_id is not None and event_id in self._seen_ids:
                    record["duplicate"] = True
                    self._totals["duplicates"] += 1
                else:
                    if event_id is not None:
                        self._seen_ids[event_id] = None
                        if len(self._seen_ids) > self.history:
                            del self._seen_ids[next(iter(self._seen_ids))]
                    self._events.append(envelope)
                    self._totals["events"] += 1
            record["status"] = status
            record["reason"] = reason
            record["duration_ms"] = (time.monotonic() - started) * 1000.0
            self._requests.append(record)
            self._totals["requests"] += 1
            if not 200 <= status < 300:
                self._totals["rejected"] += 1
            self._cond.notify_all()
        if 200 <= status < 300:
            body: dict[str, Any] = {"ok": True}
            if record["duplicate"]:
                body["duplicate"] = True
        else:
            body = {"ok": False, "error": reason}
        headers = {"Allow": "POST"} if status == 405 else None
        response = Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)
        return response(environ, start_response)

    def _check(self, request: Request, record: dict[str, Any]) -> tuple[int, str | None, dict[str, Any] | None]:
        """Decide the answer for ``request``, filling ``record``; no shared state is touched."""
        record["subscription_id"] = _parse_subscription_id(request.headers.get(SUBSCRIPTION_HEADER))
        record["event_type"] = request.headers.get(EVENT_HEADER) or None
        if _normalise_path(request.path) != self.path:
            return 404, f"no webhook endpoint at {request.path[:200]!r}; deliveries go to {self.path!r}", None
        if request.method != "POST":
            return 405, f"method {request.method} not allowed; deliveries are POSTed", None

        limit = self.max_body_bytes
        declared = request.content_length  # for a chunked body, waitress's count of what it received
        if declared is not None and declared > limit:
            return 413, f"body of {declared} bytes is over the limit of {limit} bytes", None
        body = self._read_body(request, limit)
        if len(body) > limit:
            return 413, f"body is over the limit of {limit} bytes", None

        with self._cond:
            secrets = list(self._secrets)
        if secrets:  # checked before the body is parsed: a forged body is never looked into
            try:
                verify_delivery(body, dict(request.headers.items()), secrets, scheme=self.scheme)
            except SignatureVerificationError as exc:
                record["verified"] = False
                _record_claims(body, record)
                return 401, exc.message, None
            record["verified"] = True

        parsed: Any = None
        json_problem: str | None = None
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError) as exc:
            json_problem = f"body is not JSON ({type(exc).__name__}: {str(exc)[:120]})"
        else:
            if not isinstance(parsed, dict):
                json_problem = f"body is JSON but not an object (got {type(parsed).__name__}); expected the envelope"
        if isinstance(parsed, dict):
            event_id = parsed.get("event_id")
            record["event_id"] = None if event_id is None else str(event_id)[:200]
            event_type = parsed.get("event_type")
            if event_type is not None:
                record["event_type"] = str(event_type)[:200]
        if json_problem is not None:
            return 400, json_problem, None
        return 200, None, parsed

    @staticmethod
    def _read_body(request: Request, limit: int) -> bytes:
        """At most ``limit + 1`` bytes of the body: enough to tell whether it is too big."""
        stream = request.stream
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = stream.read(limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)


# --- command line --------------------------------------------------------------------------------------------------

def _format_record(r: dict[str, Any]) -> str:
    verified = {True: "verified", False: "NOT verified", None: "unchecked"}[r["verified"]]
    parts = [
        r["received_at"].strftime("%H:%M:%S.%f")[:-3],
        str(r["status"]),
        r["method"],
        r["event_type"] or "-",
        f"event_id={r['event_id'] or '-'}",
        f"sub={r['subscription_id'] if r['subscription_id'] is not None else '-'}",
        verified,
    ]
    if r["duplicate"]:
        parts.append("duplicate")
    if r["reason"]:
        parts.append(f"({r['reason']})")
    return " ".join(parts)


def main(argv: list[str] | None = None, *, out: IO[str] | None = None) -> int:
    """``linq-nb receiver``: serve a Receiver in the foreground, print one line per request, stop on Ctrl-C."""
    out = out or sys.stdout
    stop_on_ctrl_c()  # before the banner: whoever reads it may send SIGINT at once
    parser = argparse.ArgumentParser(
        prog="linq-nb receiver",
        description="A local webhook endpoint that verifies Linq signatures (v2, and v3's Standard Webhooks and "
                    "legacy headers) and prints each request.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8766, help="port (default 8766; 0 picks a free one)")
    parser.add_argument("--path", default=DEFAULT_PATH, help=f"webhook path (default {DEFAULT_PATH})")
    parser.add_argument("--secret", action="append", default=[], metavar="SECRET",
                        help="verify signatures with this secret; repeat to accept several (rotation). "
                             f"Shows in ps: prefer --secret-file or ${SECRET_ENV}")
    parser.add_argument("--secret-file", action="append", default=[], metavar="PATH",
                        help="read secrets from a file, one per line (blank lines and # comments skipped)")
    parser.add_argument("--scheme", choices=SCHEMES, default=None,
                        help="accept only this signature scheme (default: the one each request's headers speak)")
    parser.add_argument("--history", type=int, default=DEFAULT_HISTORY,
                        help=f"requests kept in memory; counts stay exact (default {DEFAULT_HISTORY})")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                        help=f"refuse larger bodies with 413 (default {DEFAULT_MAX_BODY_BYTES})")
    parser.add_argument("--fail-next", type=int, default=0, metavar="N",
                        help="answer the first N deliveries with --fail-status (to watch retries)")
    parser.add_argument("--fail-status", type=int, default=500, help="status for --fail-next (default 500)")
    parser.add_argument("--delay", type=float, default=0.0, metavar="SECONDS",
                        help="wait this long before answering each request")
    args = parser.parse_args(argv)

    secrets = list(args.secret)
    try:
        for path in args.secret_file:
            with open(path, encoding="utf-8") as fh:
                secrets += [ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
    except OSError as exc:
        parser.error(f"--secret-file: cannot read {exc.filename}: {exc.strerror}")
    if os.environ.get(SECRET_ENV):
        secrets.append(os.environ[SECRET_ENV].strip())
    try:
        receiver = Receiver(secrets or None, host=args.host, port=args.port, path=args.path,
                            max_body_bytes=args.max_body_bytes, history=args.history, scheme=args.scheme)
        receiver.fail_next(args.fail_next, args.fail_status)
        receiver.delay(args.delay)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    try:
        from .cli import _check_port

        _check_port(args.host, args.port)  # werkzeug would print its own message and exit, naming no option
        receiver.start()
    except OSError as exc:
        hint = " (choose another with --port; --port 0 picks a free one)" if args.port else ""
        print(f"linq-nb receiver: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}{hint}",
              file=sys.stderr)
        return 1
    n = receiver.secret_count
    verifying = f"verifying signatures with {_plural(n, 'secret')}" if n else "NOT verifying signatures (no --secret)"
    printed = 0
    try:  # from the banner on: whoever reads it may press Ctrl-C at once
        print(f"Linq webhook receiver at {receiver.url} ({verifying}); Ctrl-C to stop", file=out, flush=True)
        if not is_loopback_host(args.host):
            print(f"warning: listening on {args.host}: anyone who can reach this port can post to it", file=out,
                  flush=True)
        while True:
            if receiver.wait_for_requests(printed + 1, timeout=0.5):
                for record in receiver._records_from(printed):
                    print(_format_record(record), file=out, flush=True)
                    printed += 1
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    c = receiver.counts()
    print(f"stopped: {_plural(c['requests'], 'request')}, {_plural(c['events'], 'event')}, "
          f"{_plural(c['duplicates'], 'duplicate')}, {c['rejected']} rejected", file=out, flush=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
