"""A local imitation of the Linq Partner API's webhook subscriptions, v2 and v3, over real HTTP.

>>> from linq_nb import Sandbox
>>> with Sandbox() as sandbox:                      # 127.0.0.1, a free port
...     client = LinqClient(token=sandbox.token, base_url=sandbox.url)

It serves the five v2 endpoints exactly as ``shared/docs/linq-v2-api.md``
describes them and v3's six as ``linq-v3-api.md`` does (Linq's own SDK drives it:
``linq.LinqAPIV3(api_key=sandbox.token, base_url=sandbox.url + "/api/partner")``),
delivers signed webhooks in each version's form with Linq's retry rules, and adds a
few control routes under ``/_sandbox/`` for teaching: trigger an event, read the
delivery log, inject faults. Several tokens mean several isolated partners; each has
a v2 list and a separate v3 list. Its relay (``relay.py``) holds deliveries for
listeners with no inbound port (``linq-nb listen``, ``Receiver.listen``); a shared
sandbox (a network address, or several tokens) delivers only to relay sessions and
to its operator's ``deliver_to``.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from .. import wire
from .._server import ServerThread
from ..validation import is_loopback_host
from .app import API_PREFIX, EVENT_NAMES, TOKEN_HEADER, Caps, Fault, SandboxApp, standard_error
from .delivery import CLASSROOM_RETRY_DELAYS, LINQ_RETRY_DELAYS, RETRY_PROFILES, Deliverer
from .relay import DeliveryPolicy, Relay
from .store import DEFAULT_MAX_ATTEMPTS, LimitReached, StateInUse, Store, partner_key

__all__ = ["Sandbox", "LINQ_RETRY_DELAYS", "CLASSROOM_RETRY_DELAYS", "RETRY_PROFILES", "TOKEN_HEADER", "API_PREFIX",
           "new_token", "parse_delays", "read_tokens_file", "RETRY_DELAYS_ENV", "TOKENS_ENV", "Caps", "StateInUse",
           "LimitReached", "EVENT_NAMES"]

#: Environment variable with comma-separated retry delays, e.g. ``0.1,0.2,0.4``, or a profile's name.
RETRY_DELAYS_ENV = "LINQ_SANDBOX_RETRY_DELAYS"
#: Environment variable with the sandbox's tokens, separated by commas or white space (kept out of ``ps``).
TOKENS_ENV = "LINQ_SANDBOX_TOKENS"


def read_tokens_file(path: str | Path) -> list[str]:
    """Tokens from a file, one per line; blank lines and ``#`` comments are skipped."""
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip() and not line.lstrip().startswith("#")]


def parse_delays(text: str) -> list[float]:
    """``"0.1,0.2,0.4"`` -> ``[0.1, 0.2, 0.4]``, or a profile's name (``"classroom"``) -> its delays;
    ValueError saying what is wrong otherwise."""
    if text.strip().lower() in RETRY_PROFILES:
        return list(RETRY_PROFILES[text.strip().lower()])
    if text.strip() and not any(c.isdigit() for c in text):
        raise ValueError(f"unknown retry profile {text[:40]!r}; the profiles are {', '.join(RETRY_PROFILES)}, "
                         "or give seconds separated by commas, such as 0.1,0.2,0.4")
    try:
        delays = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"retry delays are seconds separated by commas, such as 0.1,0.2,0.4; got {text[:80]!r}"
                         ) from None
    if not all(0 <= d < 86_400 for d in delays):  # also refuses nan and inf
        raise ValueError(f"retry delays must be finite seconds from 0 to 86400; got {text[:80]!r}")
    return delays


def new_token() -> str:
    """A fresh random sandbox token."""
    return "sandbox_" + secrets.token_hex(12)


class Sandbox:
    """The Linq v2 sandbox: an API server and a delivery worker, started together.

    Args:
        tokens: one token or several (one isolated partner each); a random one if None.
        host, port: where to listen; port 0 picks a free port.
        state: a SQLite file that keeps everything across restarts; None keeps it in memory.
        retry_delays: seconds to wait before each retry of a failed delivery (so also how
            many retries), or the name of one of :data:`RETRY_PROFILES` (``"linq"``,
            ``"linq-2026-02"``, ``"linq-2026-10"``, ``"classroom"``, ``"none"``); Linq's
            schedule of 10 retries over ~25 min by default. No partner can change it.
        delivery_timeout: seconds a receiver has to answer (Linq: 10).
        rate_limit: ``(limit, per_seconds)`` per partner, or None.
        max_body_bytes: larger request bodies get a 413.
        workers: deliveries made in parallel; ``per_partner_workers`` of them at most for one
            partner (default a quarter), so one partner's stalled endpoints never delay another's.
        max_subscriptions, max_event_bytes, event_rate: per-partner caps (subscriptions, size of one
            event's envelope, ``(limit, per_seconds)`` of ``POST /_sandbox/events``; None: no rate cap).
        max_attempts: attempts kept in the delivery log per partner (the oldest go first).
        threads, channel_timeout: the HTTP server's worker threads, and the seconds it keeps an idle
            or half-sent connection.
        connection_limit: connections the API keeps open at once (an idle keep-alive one costs no
            thread): 300 partners' clients each keep one.
        shared: deliver only to relay sessions and ``deliver_to`` (None: when ``host`` is not a
            loopback address or there are several tokens; the embedded single-user sandbox delivers
            directly to any URL, loopback ones included).
        deliver_to: ``"HOST"`` or ``"HOST:PORT"`` destinations a shared sandbox may connect to.
        relay_port, relay_url: the port listeners poll (0: a free one), and its public base URL if
            listeners reach it through a proxy (default ``http://<API host>:<relay_port>``).

    What is set here no partner can loosen over HTTP: a partner's ``POST /_sandbox/faults`` may add
    a stricter rate limit of its own and faults for its own requests only.
    """

    def __init__(
        self,
        tokens: str | Iterable[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state: str | Path | None = None,
        retry_delays: Sequence[float] | str | None = None,
        delivery_timeout: float = 10.0,
        rate_limit: tuple[int, float] | None = None,
        max_body_bytes: int = 1_048_576,
        workers: int = 16,
        per_partner_workers: int | None = None,
        max_subscriptions: int = 100,
        max_event_bytes: int = 262_144,
        event_rate: tuple[int, float] | None = (100, 1.0),
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        threads: int = 16,
        channel_timeout: float = 10.0,
        shared: bool | None = None,
        deliver_to: Iterable[str] = (),
        relay_port: int = 0,
        relay_url: str | None = None,
        connection_limit: int = 1000,
    ) -> None:
        if tokens is None:
            tokens = [new_token()]
        elif isinstance(tokens, str):
            tokens = [tokens]
        self.tokens: list[str] = [t for t in dict.fromkeys(tokens) if t]
        if not self.tokens:
            raise ValueError("Sandbox needs at least one non-empty token (or tokens=None for a random one)")
        if isinstance(retry_delays, str):
            if retry_delays not in RETRY_PROFILES:
                raise ValueError(f"unknown retry profile {retry_delays!r}; the profiles are "
                                 f"{', '.join(RETRY_PROFILES)}")
            retry_delays = RETRY_PROFILES[retry_delays]
        delays = LINQ_RETRY_DELAYS if retry_delays is None else tuple(retry_delays)
        if not all(isinstance(d, (int, float)) and 0 <= d < 86_400 for d in delays):
            raise ValueError("retry_delays must be finite numbers of seconds from 0 to 86400")
        if not (isinstance(delivery_timeout, (int, float)) and 0 < delivery_timeout <= 600):
            raise ValueError(f"delivery_timeout must be a finite number of seconds from 0 to 600, "
                             f"not {delivery_timeout!r}")
        self.shared = (not is_loopback_host(host) or len(self.tokens) > 1) if shared is None else bool(shared)
        policy = DeliveryPolicy(deliver_to)  # ValueError on a bad destination, shared or not
        self.relay = Relay(host, relay_port, public_url=relay_url, max_connections=connection_limit)
        caps = Caps(max_subscriptions=max_subscriptions, max_event_bytes=max_event_bytes, event_rate=event_rate)
        self.store = Store(state, max_attempts=max_attempts)
        try:
            self.deliverer = Deliverer(self.store, retry_delays=delays, timeout=delivery_timeout, workers=workers,
                                       per_partner=per_partner_workers)
            self.app = SandboxApp(self.store, self.tokens, max_body_bytes=max_body_bytes,
                                  on_enqueue=self.deliverer.wake, rate_limit=rate_limit, caps=caps)
            self.deliverer.relay = self.app.relay = self.relay
            self.deliverer.policy = policy if self.shared else None
        except BaseException:
            self.store.close()
            raise
        self._server = ServerThread(self.app, host, port, name="linq-nb-sandbox", threads=threads,
                                    channel_timeout=channel_timeout, connection_limit=connection_limit,
                                    max_request_body_size=2 * max_body_bytes + 65_536,  # past it, waitress says 413
                                    error_body=lambda status, message: standard_error(status, message).body)

    # -- life cycle ----------------------------------------------------------------
    @property
    def token(self) -> str:
        """The first partner's token."""
        return self.tokens[0]

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        return self._server.url

    @property
    def running(self) -> bool:
        return self._server.running

    def start(self) -> Sandbox:
        """Serve in a background thread and start delivering; returns once it answers."""
        if not self.running:
            self.relay.start()
            self.deliverer.start()
            self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and delivering. Pending deliveries stay in the state file, if any."""
        self._server.stop()
        self.relay.stop()
        self.deliverer.stop()

    def close(self) -> None:
        self.stop()
        self.store.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def serve_forever(self, ready: Callable[[str], None] | None = None) -> None:
        """Serve in the foreground (the ``linq-nb sandbox`` command) until interrupted.

        ``ready`` is called with the base URL once the port is bound.
        """
        self.relay.start()
        self.deliverer.start()
        try:
            self._server.serve_forever(ready)
        finally:
            self.relay.stop()
            self.deliverer.stop()

    # -- teaching and testing ------------------------------------------------------
    def _partner(self, token: str | None) -> str:
        token = token or self.token
        if token not in self.tokens:
            raise ValueError("that token is not one of this sandbox's tokens")
        return partner_key(token)

    def emit(self, event_type: str, data: dict[str, Any] | None = None, *, token: str | None = None,
             phone_number: str | None = None) -> dict[str, Any]:
        """Create an event with a realistic payload and queue it for every matching subscription.

        ``event_type`` is a v2 or a v3 name: v2 subscriptions get it in v2's form and v3 ones in
        v3's, each under its own version's name (an event one version lacks goes to the other only).
        ``phone_number`` makes it about that line (v3's ``phone_numbers`` filter). Returns
        ``{"event_id", "event_type", "deliveries_queued"}`` (and ``forms``, each version's, when it
        went out in more than one); deliveries happen in the background (see :meth:`wait_for_deliveries`).
        """
        if event_type not in EVENT_NAMES:
            raise ValueError(f"unknown event type {event_type!r}; valid: {', '.join(EVENT_NAMES)}")
        return self.app.emit(self._partner(token), event_type, data, phone_number=phone_number)

    def deliveries(self, token: str | None = None) -> list[dict[str, Any]]:
        """The delivery log, one record per HTTP attempt, oldest first."""
        return self.store.attempts(self._partner(token))

    def subscriptions(self, token: str | None = None, *, api: str = "v2") -> list[dict[str, Any]]:
        """The partner's subscriptions of version ``api`` as the API would return them (for asserting state)."""
        return self.store.subscriptions(self._partner(token), wire.get(api).VERSION)

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Block until no delivery is queued or in flight (True), or ``timeout`` passes (False)."""
        return self.deliverer.wait_idle(timeout)

    def fail_next(self, n: int = 1, status: int | None = 500, *, delay: float = 0.0, after: bool = False,
                  token: str | None = None) -> None:
        """Make the next ``n`` API requests slow (``delay`` s) and/or fail with ``status``.

        With ``after=False`` the request is not processed at all. With ``after=True`` it
        is processed (a create is stored) and only the answer is lost: the imitation of
        a response that never reached the client. ``token`` limits it to one partner.
        """
        if not (isinstance(delay, (int, float)) and 0 <= delay <= 600):  # also refuses nan and inf
            raise ValueError(f"delay must be a finite number of seconds from 0 to 600, not {delay!r}")
        self.app.add_fault(Fault(n, status, delay, after, partner_key(token) if token else None))

    def set_rate_limit(self, limit: int | None, per_seconds: float = 1.0) -> None:
        """At most ``limit`` requests per ``per_seconds`` for each partner, counting every route (the API's
        and ``/_sandbox/...``); over it a request gets a 429 with ``Retry-After``. None lifts it."""
        self.app.set_rate_limit(limit, per_seconds)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        where = self.url if self.running else "not started"
        return f"<Sandbox {state} at {where}, {len(self.tokens)} partner(s), state={self.store.path!r}>"

    def _repr_html_(self) -> str:
        return (f"<b>Linq v2+v3 sandbox</b> {'running' if self.running else 'stopped'} at "
                f"<code>{html.escape(self.url)}</code> · {len(self.tokens)} partner(s)")
