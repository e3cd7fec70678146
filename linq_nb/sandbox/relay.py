"""Relay sessions: deliveries held for a listener that has no inbound port, and the shared-mode policy.

A learner on Binder, a JupyterHub pod or a laptop behind NAT has no address the
sandbox can reach. Its listener (``linq-nb listen``, ``Receiver.listen``) opens a
*relay session* through the API (``POST /_sandbox/relay``) and gets a relay URL,
``<sandbox>/_relay/<session id>``, to use as a subscription's ``webhook_url``. A
delivery to a relay URL is never POSTed anywhere: :meth:`Relay.deliver` holds it,
byte for byte with every header the sandbox would have sent, until the listener
takes it with a long poll, forwards it to its local receiver and reports the answer
(status, or the error it got). That answer is the attempt's result, exactly as if
the sandbox had POSTed: a 2xx is delivered, a 5xx, a 429 or no answer is retried on
the schedule, another 4xx is final, and the attempt's 10 s deadline covers the hold,
the forward and the report. A session with no listener connected (no poll waiting,
nothing handed out, nothing heard for ``grace`` seconds) is an unreachable endpoint:
the attempt fails at once ("no listener connected") and is retried, so a listener
back within the retry window gets the event. After the last retry the event is
dropped for that subscription, as Linq does (the attempt log keeps every failed try).

The listener's side of the protocol, on the relay port (``poll_url``), authenticated
by the session's ``listen_key`` (header ``X-Linq-Relay-Key``), never by the token::

    GET  /_relay/sessions/<id>/next?wait=25   -> 200 {"deliveries": [{"delivery_id", "headers",
                                                  "body" (base64), "deadline_in"}, ...]}
    POST /_relay/sessions/<id>/answers        <- {"delivery_id", "status" | "error", "duration_ms"}

Why an event loop on its own port (the design note). The API is served by
waitress with a fixed pool of worker threads, and a WSGI app holds its worker until
it returns: a long poll answered by the app would hold one worker for every waiting
listener, so 16 waiting listeners would stop the API. The relay's waiting
connections are therefore served by one asyncio event loop (HTTP/1.1 framing by
h11, the sans-I/O parser httpx and uvicorn use) in one thread, on a port of its
own: a waiting poll is a suspended coroutine of a few kilobytes, not a thread; 300
listeners cost one thread. A delivery waits for its answer in the delivery worker
that makes the attempt, as a direct POST does, never in an API worker. Long polling
over plain HTTP(S) was chosen over WebSockets because every proxy in front of a
JupyterHub or Binder kernel passes it, and ``requests`` speaks it.

Shared mode (:class:`DeliveryPolicy`). A sandbox on a non-loopback address or with
several tokens accepts any valid ``webhook_url``, but connects only to relay URLs and
to the destinations its operator allows (``--deliver-to HOST[:PORT]``). Any other
delivery opens no connection, is logged as failed with the same sentence whatever the
URL (so the log says nothing about the operator's network), and is not retried.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import h11

__all__ = ["Relay", "DeliveryPolicy", "RELAY_PATH", "KEY_HEADER", "REFUSED", "parse_destination"]

logger = logging.getLogger("linq_nb.sandbox")

RELAY_PATH = "/_relay/"
KEY_HEADER = "X-Linq-Relay-Key"
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_RELAY_URL_PATH = re.compile(r"/_relay/([A-Za-z0-9_-]{22})/?")
MAX_WAIT = 30.0            # seconds a poll may wait for a delivery
BATCH = 16                 # deliveries handed out by one poll at most
MAX_ANSWER_BYTES = 4096    # an answer report is small
MAX_NAME = 200

#: What a shared sandbox logs for a delivery it will not make (the same for every URL).
REFUSED = ("not delivered, and no connection made: this shared sandbox delivers only to relay sessions "
           "(run `linq-nb listen --forward-to YOUR_URL`, or receiver.listen(client) in a notebook) and to "
           "destinations its operator allows with --deliver-to HOST[:PORT]; not retried")


# --------------------------------------------------------------------------- shared-mode policy

def parse_destination(text: str) -> tuple[str, int | None]:
    """``"hooks.example.com"`` / ``"10.0.0.5:9000"`` / ``"[::1]:8000"`` -> (host, port or None: any port)."""
    raw = text.strip()
    host, port = raw, None
    if raw.startswith("["):
        close = raw.find("]")
        host, rest = raw[1:close], raw[close + 1:]
        if rest:
            port = rest.lstrip(":")
    elif raw.count(":") == 1:
        host, port = raw.split(":")
    host = host.lower().rstrip(".")
    try:
        number = None if port is None else int(port)
    except ValueError:
        number = -1
    if not host or "/" in host or (number is not None and not 0 < number < 65536):
        raise ValueError(f"--deliver-to takes HOST or HOST:PORT, such as hooks.example.com:443; got {raw[:80]!r}")
    return host, number


class DeliveryPolicy:
    """Where a shared sandbox may connect: exactly the operator's ``HOST[:PORT]`` destinations.

    Names are compared as written (lowercased, without a final dot): another spelling of
    an allowed address is refused, never let through.
    """

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.allowed = [parse_destination(a) for a in allowed]

    def refusal(self, url: str) -> str | None:
        """None if the sandbox may connect to ``url``, else the sentence to log."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").rstrip(".")
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            return REFUSED
        for allowed_host, allowed_port in self.allowed:
            if host == allowed_host and allowed_port in (None, port):
                return None
        return REFUSED


# --------------------------------------------------------------------------- sessions


@dataclass
class _Held:
    """One attempt's delivery, held until its listener answers (or its deadline passes)."""

    id: str
    headers: dict[str, str]
    body: bytes
    deadline: float  # monotonic
    answer: concurrent.futures.Future[tuple[int | None, str | None]] = field(
        default_factory=concurrent.futures.Future)


@dataclass
class _Session:
    id: str
    partner: str
    name: str
    key_digest: bytes
    relay_url: str
    queue: deque[_Held] = field(default_factory=deque)
    outstanding: dict[str, _Held] = field(default_factory=dict)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    retired: deque[bytes] = field(default_factory=lambda: deque(maxlen=8))  # keys of listeners taken over
    last_seen: float = field(default_factory=time.monotonic)

    def connected(self, now: float, grace: float) -> bool:
        return bool(self.waiters or self.outstanding) or now - self.last_seen < grace


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "replace")).digest()


class Relay:
    """Relay sessions and the event loop that serves their listeners.

    Args:
        host, port: where the relay's listeners connect (port 0: a free one).
        public_url: the base of ``poll_url`` as listeners must write it (behind a proxy, say);
            default ``http://<the host the listener used for the API>:<port>``.
        grace: seconds a session counts as connected after its listener was last heard from.
        max_sessions: sessions one partner may hold (an idle one is forgotten after ``idle`` s).
        max_connections: connections the relay port keeps open at once.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, public_url: str | None = None,
                 grace: float = 2.0, max_sessions: int = 50, idle: float = 1800.0,
                 max_connections: int = 2000, channel_timeout: float = 10.0) -> None:
        self.host, self.port = host, port
        self.public_url = public_url.rstrip("/") if public_url else None
        self.grace, self.max_sessions, self.idle = grace, max_sessions, idle
        self.max_connections, self.channel_timeout = max_connections, channel_timeout
        self._lock = threading.Lock()  # guards _sessions and _by_name (the loop and API threads both use them)
        self._sessions: dict[str, _Session] = {}
        self._by_name: dict[tuple[str, str], str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._connections = 0
        self._stopping = False

    # -- life cycle ----------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Relay:
        if self.running:
            return self
        self._stopping = False
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="linq-nb-relay", daemon=True)
        self._thread.start()
        ready.result(timeout=10)
        return self

    def _run(self, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_server(
                self._connection, self.host.strip("[]"), self.port, backlog=1024))
            self.port = self._server.sockets[0].getsockname()[1]
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        """Stop serving; attempts waiting on a listener end as interrupted (and are retried after a restart)."""
        self._stopping = True
        with self._lock:
            held = [h for s in self._sessions.values() for h in (*s.queue, *s.outstanding.values())]
        for h in held:
            _resolve(h, None, "interrupted: the sandbox stopped during the attempt")
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return

        async def shut() -> None:
            if self._server is not None:
                self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            if tasks:  # each connection closes its socket on the way out
                await asyncio.wait(tasks, timeout=1.0)
            await asyncio.sleep(0)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shut(), loop)
        thread.join(timeout=3)

    # -- sessions (called from the API's threads) -----------------------------------
    def open(self, partner: str, name: str, api_base: str) -> dict[str, Any]:
        """The partner's session called ``name`` (made if new), with a fresh listen key.

        The same name gives the same session (and so the same relay URL) while the sandbox
        runs: a listener restarted within the retry window picks up where it left off.
        """
        now = time.monotonic()
        key = secrets.token_urlsafe(24)
        host = (urlsplit(api_base).hostname or "127.0.0.1")
        host = f"[{host}]" if ":" in host else host
        poll_base = self.public_url or f"http://{host}:{self.port}"
        with self._lock:
            self._forget_idle(now)
            sid = self._by_name.get((partner, name))
            session = self._sessions.get(sid) if sid else None
            if session is None:
                if sum(1 for s in self._sessions.values() if s.partner == partner) >= self.max_sessions:
                    raise ValueError(f"this partner has {self.max_sessions} relay sessions open, the most this "
                                     "sandbox allows; stop a listener (its session closes) before starting another")
                sid = secrets.token_urlsafe(16)  # 22 characters, unguessable
                session = _Session(sid, partner, name, _digest(key), f"{api_base.rstrip('/')}{RELAY_PATH}{sid}")
                self._sessions[sid] = session
                self._by_name[(partner, name)] = sid
            else:  # the newest listener of a name takes the session over; the one before is told, and stops
                session.retired.append(session.key_digest)
                session.key_digest = _digest(key)
                if self._loop is not None:
                    for w in session.waiters:
                        self._loop.call_soon_threadsafe(_wake, w)
            session.last_seen = now
            return {"session_id": session.id, "relay_url": session.relay_url, "listen_key": key,
                    "poll_url": f"{poll_base}/_relay/sessions/{session.id}"}

    def close(self, partner: str, session_id: str) -> bool:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.partner != partner:
                return False
            del self._sessions[session_id]
            self._by_name.pop((partner, session.name), None)
        for h in (*session.queue, *session.outstanding.values()):
            _resolve(h, None, "connection error: the listener closed its relay session")
        if self._loop is not None:
            for w in session.waiters:
                self._loop.call_soon_threadsafe(_wake, w)
        return True

    def _forget_idle(self, now: float) -> None:
        for sid, s in list(self._sessions.items()):
            if not s.connected(now, self.grace) and now - s.last_seen > self.idle:
                del self._sessions[sid]
                self._by_name.pop((s.partner, s.name), None)

    # -- deliveries (called from the delivery workers) ------------------------------
    @staticmethod
    def owns(url: str) -> bool:
        """True when ``url`` is a relay URL (its path is ``/_relay/<session id>``): never POSTed anywhere."""
        try:
            return bool(_RELAY_URL_PATH.fullmatch(urlsplit(url).path))
        except ValueError:
            return False

    def deliver(self, url: str, partner: str | None, body: bytes, headers: dict[str, str], deadline: float
                ) -> tuple[int | None, str | None]:
        """Hold one attempt for the session's listener; (status, None) or (None, error), like a POST."""
        match = _RELAY_URL_PATH.fullmatch(urlsplit(url).path)
        sid = match.group(1) if match else ""
        now = time.monotonic()
        held = _Held(uuid.uuid4().hex, dict(headers), body, deadline)
        with self._lock:
            session = self._sessions.get(sid)
            # Another partner's session is answered as a missing one: nothing crosses partners.
            if self._stopping or session is None or session.partner != partner or not session.connected(
                    now, self.grace):
                return None, "connection error: no listener connected to this relay session"
            session.queue.append(held)
            waiter = session.waiters[0] if session.waiters else None
        if waiter is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)
        try:
            return held.answer.result(timeout=max(deadline - time.monotonic(), 0.001))
        except concurrent.futures.TimeoutError:
            with self._lock:
                with contextlib.suppress(ValueError):
                    session.queue.remove(held)
                session.outstanding.pop(held.id, None)
            if held.answer.done():  # answered just now
                return held.answer.result()
            return None, "timeout: the listener did not report its receiver's answer within the deadline"

    def sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    # -- the listeners' HTTP side (the event loop) ----------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._connections >= self.max_connections:
            writer.close()
            return
        self._connections += 1
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16_384)
        try:
            while True:
                request, body = await self._read_request(conn, reader)
                if request is None:
                    break
                status, payload = await self._answer(request, body, reader, conn)
                data = json.dumps(payload).encode()
                writer.write(conn.send(h11.Response(status_code=status, headers=[
                    ("Content-Type", "application/json"), ("Content-Length", str(len(data)))])) or b"")
                writer.write(conn.send(h11.Data(data=data)) or b"")
                writer.write(conn.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (h11.ProtocolError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("relay: a listener's connection failed")
        finally:
            self._connections -= 1
            writer.close()

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader
                            ) -> tuple[h11.Request | None, bytes]:
        request: h11.Request | None = None
        chunks: list[bytes] = []
        size = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(65_536), self.channel_timeout)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_ANSWER_BYTES:
                    raise h11.RemoteProtocolError("body too large", error_status_hint=413)
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return request, b"".join(chunks)
            else:  # ConnectionClosed, or PAUSED
                return None, b""

    async def _answer(self, request: h11.Request, body: bytes, reader: asyncio.StreamReader,
                      conn: h11.Connection) -> tuple[int, dict[str, Any]]:
        target = request.target.decode("ascii", "replace")
        path, _, query = target.partition("?")
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["_relay", "sessions"] or parts[3] not in ("next", "answers"):
            return 404, {"error": "no such relay endpoint; a listener polls GET /_relay/sessions/<id>/next"}
        key = dict(request.headers).get(KEY_HEADER.lower().encode(), b"").decode("latin-1")
        with self._lock:
            session = self._sessions.get(parts[2]) if _SESSION_ID.fullmatch(parts[2]) else None
            digest = _digest(key)
            if session is not None and digest in session.retired:
                return 409, {"error": "another listener opened this relay session (the same name) and took it over; "
                                      "this one stops (give each listener its own --name to run both)"}
            if session is None or not hmac.compare_digest(session.key_digest, digest):
                return 404, {"error": "no such relay session, or a wrong listen key: open a session again "
                                      "(POST /_sandbox/relay)"}
            session.last_seen = time.monotonic()
        method = request.method.decode("ascii", "replace")
        if parts[3] == "next":
            if method != "GET":
                return 405, {"error": "poll with GET"}
            taken = await self._next(session, digest, query, reader, conn)
            if taken is None:
                return 409, {"error": "another listener opened this relay session (the same name) and took it over; "
                                      "this one stops (give each listener its own --name to run both)"}
            return 200, {"deliveries": taken}
        if method != "POST":
            return 405, {"error": "report an answer with POST"}
        return self._report(session, body)

    async def _next(self, session: _Session, digest: bytes, query: str, reader: asyncio.StreamReader,
                    conn: h11.Connection) -> list[dict[str, Any]] | None:
        """Deliveries for the session's listener (waiting up to ``wait`` s for one); None if it was taken over."""
        try:
            wait = float(dict(parse_qsl(query)).get("wait", "25"))
        except ValueError:
            wait = 25.0
        wait = min(max(wait, 0.0), MAX_WAIT) if math.isfinite(wait) else 25.0
        taken = self._take(session)
        if taken or wait <= 0:
            return taken
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        with self._lock:
            session.waiters.append(waiter)
        gone = asyncio.ensure_future(reader.read(65_536))  # b"" when the listener hangs up
        try:
            deadline = loop.time() + wait
            while not taken:
                left = deadline - loop.time()
                if left <= 0:
                    break
                pending: set[asyncio.Future[Any]] = {waiter, gone}
                done, _ = await asyncio.wait(pending, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                if gone in done:
                    data = gone.result()
                    if not data:
                        raise ConnectionError("the listener hung up")
                    conn.receive_data(data)  # a pipelined request: h11 keeps it for the next cycle
                    gone = asyncio.ensure_future(reader.read(65_536))
                with self._lock:
                    closed = self._sessions.get(session.id) is not session
                    if session.key_digest != digest:
                        return None
                if closed:
                    return []
                taken = self._take(session)
                if waiter.done():
                    with self._lock:
                        session.waiters.remove(waiter)
                    waiter = loop.create_future()
                    with self._lock:
                        session.waiters.append(waiter)
            return taken
        finally:
            gone.cancel()
            with self._lock:
                with contextlib.suppress(ValueError):
                    session.waiters.remove(waiter)
                session.last_seen = time.monotonic()

    def _take(self, session: _Session) -> list[dict[str, Any]]:
        now = time.monotonic()
        out: list[dict[str, Any]] = []
        with self._lock:
            while session.queue and len(out) < BATCH:
                held = session.queue.popleft()
                if held.answer.done() or held.deadline <= now:
                    continue
                session.outstanding[held.id] = held
                out.append({"delivery_id": held.id, "headers": held.headers,
                            "body": base64.b64encode(held.body).decode("ascii"),
                            "deadline_in": round(held.deadline - now, 3)})
        return out

    def _report(self, session: _Session, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            report = json.loads(body)
        except (ValueError, RecursionError):
            return 400, {"error": "the answer must be a JSON object"}
        if not isinstance(report, dict):
            return 400, {"error": "the answer must be a JSON object"}
        status, error = report.get("status"), report.get("error")
        if status is not None and (isinstance(status, bool) or not isinstance(status, int)
                                   or not 100 <= status <= 599):
            return 422, {"error": "status must be the local receiver's HTTP status (100 to 599), or null"}
        if status is None and not isinstance(error, str):
            return 422, {"error": "an answer without a status needs an error saying why"}
        with self._lock:
            held = session.outstanding.pop(str(report.get("delivery_id")), None)
        if held is None:
            return 404, {"error": "no such delivery outstanding: its attempt passed its deadline (it is retried)"}
        if status is not None:
            _resolve(held, status, None)
        elif str(error).startswith("timeout"):  # recorded as a direct POST's timeout is
            _resolve(held, None, f"timeout: the listener's local receiver did not answer in time ({str(error)[:160]})")
        else:
            _resolve(held, None, f"connection error: the listener's local receiver did not answer "
                                 f"({str(error)[:160]})")
        return 200, {"ok": True}


def _resolve(held: _Held, status: int | None, error: str | None) -> None:
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        held.answer.set_result((status, error))


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
