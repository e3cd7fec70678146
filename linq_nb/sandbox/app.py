"""The sandbox's WSGI application: Linq's v2 and v3 webhook-subscription endpoints, plus control routes.

Every rejected request gets the documented 4xx with one sentence per problem and
changes no state. v2 routes follow ``shared/docs/linq-v2-api.md``: 401 (``Error``
shape) for a bad token, 404 for an unknown id or another partner's id, 422 for
validation, 400 for a body that is not JSON or lacks the ``webhook_subscription``
object, 413 for an oversized body, 429 with ``Retry-After`` when rate limited. v3
routes (under ``/api/partner/v3/``) follow ``linq-v3-api.md``: Bearer auth, UUID ids,
400 for validation, 409 for a ``target_url`` already used, every error in v3's shape.
What differs is in :mod:`linq_nb.wire`; the endpoints take the version from the path.
The control routes (``/_sandbox/...``) take either version's auth header.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

from werkzeug.exceptions import ClientDisconnected
from werkzeug.wsgi import get_input_stream

from .. import catalog, wire
from ..validation import shorten
from .relay import Relay
from .store import Conflict, LimitReached, Store, partner_key

__all__ = ["SandboxApp", "TOKEN_HEADER", "API_PREFIX", "RateLimiter", "Caps"]

logger = logging.getLogger("linq_nb.sandbox")
_T = TypeVar("_T")

TOKEN_HEADER = wire.v2.AUTH_HEADER
API_PREFIX = wire.v2.COLLECTION_PATH
_STATUS_NAMES = wire.v2.STATUS_NAMES
#: Every event name the sandbox can trigger: v2's, then v3's that v2 lacks.
EVENT_NAMES: tuple[str, ...] = tuple(dict.fromkeys((*wire.v2.EVENT_TYPES, *wire.v3.EVENT_TYPES)))

# (path, endpoint, methods): fixed routes, matched by a dict look-up on the hot path. The API version of an
# endpoint is its path's (see _api_of); the collection and member endpoints serve every version.
_ROUTES: dict[str, tuple[str, tuple[str, ...]]] = {
    wire.v2.COLLECTION_PATH: ("collection", ("GET", "POST")),
    wire.v3.COLLECTION_PATH: ("collection", ("GET", "POST")),
    wire.v3.EVENTS_PATH or "": ("event_types", ("GET",)),
    "/_sandbox/events": ("emit", ("POST",)),
    "/_sandbox/deliveries": ("deliveries", ("GET",)),
    "/_sandbox/faults": ("faults", ("POST",)),
    "/_sandbox/health": ("health", ("GET",)),
    "/_sandbox/relay": ("relay", ("POST",)),  # relay sessions (relay.py)
}
_MEMBER = ("member", ("GET", "PUT", "DELETE"))
_JSON = "application/json"
DEFAULT_PAGE, MAX_PAGE = 1000, 1000  # attempts per page of GET /_sandbox/deliveries
_PHRASES = {status.value: status.phrase for status in HTTPStatus}  # an injected 599 has none


def _route(path: str) -> tuple[str, tuple[str, ...], dict[str, str]] | None:
    """(endpoint, allowed methods, path arguments) for ``path``, or None. A trailing slash is fine."""
    path = path.rstrip("/") or "/"
    found = _ROUTES.get(path)
    if found is not None:
        return found[0], found[1], {}
    for version in wire.VERSIONS.values():
        prefix = version.COLLECTION_PATH + "/"
        if path.startswith(prefix) and "/" not in path[len(prefix):]:
            return _MEMBER[0], _MEMBER[1], {"sub_id": path[len(prefix):]}
    if path.startswith("/_sandbox/relay/") and "/" not in path[16:]:
        return "relay_member", ("DELETE",), {"session_id": path[16:]}
    return None


def _api_of(path: str) -> str | None:
    """The API version a path belongs to ("v2", "v3"), or None for the control routes and unknown paths."""
    for name, version in wire.VERSIONS.items():
        if path.startswith(f"{version.BASE_PATH}/{name}/") or path.rstrip("/") == f"{version.BASE_PATH}/{name}":
            return name
    return None


@dataclass
class Reply:
    """An HTTP answer: status, JSON body (None: empty) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] | None = None

    def __call__(self, start_response: Callable[..., Any]) -> list[bytes]:
        data = b"" if self.body is None else json.dumps(self.body).encode()
        headers = [("Content-Length", str(len(data)))]
        if self.body is not None:
            headers.append(("Content-Type", _JSON))
        headers += list((self.headers or {}).items())
        start_response(f"{self.status} {_PHRASES.get(self.status, 'Error')}", headers)
        return [data]


@dataclass
class SandboxRequest:
    """What the endpoints need of a request; the body is read only when asked for."""

    method: str
    path: str
    environ: dict[str, Any]

    @property
    def content_length(self) -> int | None:
        try:
            return max(0, int(self.environ.get("CONTENT_LENGTH") or ""))
        except ValueError:
            return None

    def read(self, limit: int) -> bytes:
        """At most ``limit`` bytes of the body (werkzeug's stream never blocks past the body).

        A body cut short or badly chunked is the client's mistake: a 400, not a crash.
        """
        try:
            return get_input_stream(self.environ, max_content_length=None).read(limit)
        except (ClientDisconnected, OSError, ValueError):
            raise ApiError(400, "the request body could not be read: it is shorter than its Content-Length "
                                "or badly chunked; send the whole body") from None

    def query(self) -> dict[str, str]:
        """The query string's parameters (the last value of each)."""
        from urllib.parse import parse_qsl

        try:
            return dict(parse_qsl(self.environ.get("QUERY_STRING", ""), errors="strict"))
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the query string is not valid UTF-8 in %-encoding") from None


class ApiError(Exception):
    """A client's mistake, answered with ``status`` in the route's version's error shape.

    ``code`` is v2's error code (a name), ``number`` v3's; each version uses its own, or its default.
    """

    def __init__(self, status: int, message: str, errors: Iterable[str] = (), *, code: str | int | None = None,
                 number: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = list(errors) or [message]
        self.code = code
        self.number = number


def error_reply(api: str | None, status: int, message: str, errors: Iterable[str] = (), *,
                code: str | int | None = None, number: int | None = None,
                headers: dict[str, str] | None = None) -> Reply:
    """An error in the shape of version ``api`` (v2's for the control routes)."""
    version = wire.get(api or "v2")
    return Reply(status, version.error_body(status, message, errors, code=code, number=number), headers)


def standard_error(status: int, message: str, errors: Iterable[str] = (), *, code: str | None = None,
                   headers: dict[str, str] | None = None) -> Reply:
    """v2's ``StandardError``, whatever the status (waitress's own errors use it)."""
    body = {
        "status": _STATUS_NAMES.get(status, str(status)),
        "error_code": code or _STATUS_NAMES.get(status, "error"),
        "message": message,
        "errors": list(errors) or [message],
    }
    return Reply(status, body, headers)


@dataclass
class Fault:
    """Make the next ``remaining`` API requests slow, failing, or both."""

    remaining: int
    status: int | None
    delay: float
    after: bool
    partner: str | None  # None: anyone's requests


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows; send a finite number")


# A JSON escape of a UTF-16 surrogate: a lone one cannot be stored or sent, so it is looked for.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class RateLimiter:
    """At most ``limit`` requests per ``per_seconds`` for each partner, in constant memory per partner.

    The generic cell rate algorithm: a burst of ``limit`` requests, then one every
    ``per_seconds / limit`` seconds. One float per partner, whatever the window's length.
    """

    def __init__(self, limit: int, per_seconds: float) -> None:
        if (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
                or not isinstance(per_seconds, (int, float)) or not math.isfinite(per_seconds) or per_seconds <= 0):
            raise ValueError("a rate limit needs an integer limit >= 1 and a finite per_seconds > 0")
        self.limit, self.per_seconds = limit, float(per_seconds)
        self._interval = self.per_seconds / limit
        self._tat: dict[str, float] = {}  # partner -> theoretical arrival time of the next request

    def check(self, partner: str, now: float) -> float | None:
        """None if allowed (and counted), else seconds to wait."""
        tat = max(self._tat.get(partner, now), now)
        wait = tat - now - (self.per_seconds - self._interval)
        if wait > 0:
            return wait
        self._tat[partner] = tat + self._interval
        return None

    def tighter_than(self, other: RateLimiter) -> bool:
        """True when this limit allows no more, in burst and in rate, than ``other``."""
        return self.limit <= other.limit and self._interval >= other._interval


@dataclass(frozen=True)
class Caps:
    """What one partner may use; the operator sets them, no partner can change them.

    Defaults a classroom never hits: they stop a loop gone wrong or a hostile learner.
    """

    max_subscriptions: int = 100          # per partner
    max_event_bytes: int = 262_144        # one event's envelope, as delivered
    event_rate: tuple[int, float] | None = (100, 1.0)  # POST /_sandbox/events per partner: LIMIT per SECONDS
    max_faults: int = 20                  # injected faults queued per partner
    max_fault_delay: float = 30.0         # seconds one injected delay may last
    max_delayed: int = 2                  # requests of one partner held in an injected delay at once

    def __post_init__(self) -> None:
        for name in ("max_subscriptions", "max_event_bytes", "max_faults", "max_delayed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, not {value!r}")
        if not math.isfinite(self.max_fault_delay) or self.max_fault_delay < 0:
            raise ValueError(f"max_fault_delay must be a finite number >= 0, not {self.max_fault_delay!r}")
        if self.event_rate is not None:
            RateLimiter(*self.event_rate)  # raises on a bad one


class SandboxApp:
    """The WSGI callable. Holds the tokens, the store, the faults and the rate limits.

    The operator's settings (``rate_limit``, ``caps``) hold for every partner; through
    ``POST /_sandbox/faults`` a partner can only add a stricter limit of its own, and its
    injected faults touch only its own requests.
    """

    def __init__(self, store: Store, tokens: Iterable[str], *, max_body_bytes: int = 1_048_576,
                 on_enqueue: Callable[[], None] | None = None,
                 rate_limit: tuple[int, float] | None = None, caps: Caps | None = None) -> None:
        self.store = store
        self.partners = {t: partner_key(t) for t in tokens}
        self.max_body_bytes = max_body_bytes
        self.on_enqueue = on_enqueue or (lambda: None)
        self.caps = caps or Caps()
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._operator_limit: RateLimiter | None = None
        self._partner_limits: dict[str, RateLimiter] = {}
        self._event_limit = RateLimiter(*self.caps.event_rate) if self.caps.event_rate else None
        self._delayed: dict[str, int] = {}
        self.relay: Relay | None = None  # set by Sandbox: relay sessions for listeners
        if rate_limit:
            self.set_rate_limit(*rate_limit)

    # -- knobs ---------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def set_rate_limit(self, limit: int | None, per_seconds: float, *, partner: str | None = None) -> None:
        """The operator's limit for every partner (``partner=None``), or a partner's own extra one.

        ``limit=None`` lifts it. A partner's own limit applies on top of the operator's, so it can
        only make things stricter.
        """
        limiter = None if limit is None else RateLimiter(limit, per_seconds)
        with self._lock:
            if partner is None:
                self._operator_limit = limiter
            elif limiter is None:
                self._partner_limits.pop(partner, None)
            else:
                self._partner_limits[partner] = limiter

    def _take_fault(self, partner: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.partner in (None, partner):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _rate_limited(self, partner: str, *, api: bool, event: bool) -> float | None:
        """Seconds to wait, or None. The operator's limit counts every route; a partner's own only the API's
        (so that it can always lift it again), the events cap only ``POST /_sandbox/events``."""
        now = time.monotonic()
        with self._lock:
            limiters = [self._operator_limit, self._partner_limits.get(partner) if api else None]
            if event:
                limiters.append(self._event_limit)
            for limiter in limiters:
                wait = limiter.check(partner, now) if limiter else None
                if wait is not None:
                    return wait
        return None

    def _sleep(self, partner: str, seconds: float) -> None:
        """An injected delay; a partner holds at most ``caps.max_delayed`` server threads in one."""
        if seconds <= 0:
            return
        with self._lock:
            if self._delayed.get(partner, 0) >= self.caps.max_delayed:
                return  # answered at once: a partner cannot tie up the threads every partner shares
            self._delayed[partner] = self._delayed.get(partner, 0) + 1
        try:
            time.sleep(seconds)
        finally:
            with self._lock:
                self._delayed[partner] -= 1

    # -- WSGI ----------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = SandboxRequest(environ.get("REQUEST_METHOD", "GET").upper(), environ.get("PATH_INFO") or "/",
                                 environ)
        try:
            reply = self.dispatch(request)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                reply = self._server_fault(request)
            else:
                logger.warning("%s %s: the state database is busy (%s); answered 503", request.method,
                               request.path[:200], exc)
                reply = error_reply(_api_of(request.path), 503, "the sandbox's state database is busy (another "
                                    "process holds a lock on it); retry in a moment", headers={"Retry-After": "1"})
        except Exception:  # our bug, never the client's: a request id for the answer, the traceback for the log
            reply = self._server_fault(request)
        return reply(start_response)

    @staticmethod
    def _server_fault(request: SandboxRequest) -> Reply:
        request_id = uuid.uuid4().hex[:16]
        logger.exception("request %s: %s %s failed", request_id, request.method, request.path[:200])
        reply = error_reply(_api_of(request.path), 500, f"the sandbox failed unexpectedly (request id "
                            f"{request_id}); this is a linq_nb bug: please report it with that id")
        reply.body["request_id"] = request_id
        if "trace_id" in reply.body:
            reply.body["trace_id"] = request_id
        reply.headers = {"X-Request-ID": request_id}
        return reply

    def _token(self, api: str | None, environ: dict[str, Any]) -> tuple[str | None, str]:
        """(partner, why not) for a request: a version's route takes its own header, a control route either."""
        versions = [wire.get(api)] if api else list(wire.VERSIONS.values())
        for version in versions:
            token = version.token_from_environ(environ)
            if token:
                partner = self.partners.get(token)
                if partner is not None:
                    return partner, ""
                return None, f"the {version.AUTH_HEADER} header does not match any integration token of this sandbox"
        if api is None:
            return None, f"missing {' or '.join(v.AUTH_DESCRIPTION for v in versions)} header"
        others = [v for n, v in wire.VERSIONS.items() if n != api and v.token_from_environ(environ)]
        hint = (f"; {others[0].AUTH_HEADER} is {others[0].VERSION}'s header, this is a {api} route"
                if others else "")
        return None, f"missing {wire.get(api).AUTH_DESCRIPTION} header{hint}"

    def dispatch(self, request: SandboxRequest) -> Reply:
        api_version = _api_of(request.path)
        route = _route(request.path)
        if route is None:
            where = wire.get(api_version).COLLECTION_PATH if api_version else API_PREFIX
            return error_reply(api_version, 404, f"no such endpoint: {shorten(request.path)}; the API lives under "
                                                 f"{where}")
        endpoint, methods, args = route
        if request.method not in methods:
            allowed = ", ".join(methods)
            return error_reply(api_version, 405, f"{request.method[:20]} is not allowed on "
                                                 f"{shorten(request.path)}; use {allowed}", headers={"Allow": allowed})
        if endpoint == "health":
            return Reply(200, {"ok": True})

        partner, why = self._token(api_version, request.environ)
        if partner is None:
            return error_reply(api_version, 401, why)

        api = endpoint in ("collection", "member", "event_types")
        fault = self._take_fault(partner) if api else None
        if fault and not fault.after:
            self._sleep(partner, fault.delay)
            if fault.status is not None:
                return self._fault_response(api_version, fault.status)
        wait = self._rate_limited(partner, api=api, event=endpoint == "emit")
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            return error_reply(api_version, 429, f"rate limit exceeded; retry after {seconds} s",
                               headers={"Retry-After": str(seconds)})
        kwargs = {**args, "api": api_version} if api else args
        try:
            reply: Reply = getattr(self, f"_route_{endpoint}")(request, partner, **kwargs)
        except ApiError as exc:
            reply = error_reply(api_version, exc.status, exc.message, exc.errors, code=exc.code, number=exc.number)
        if fault and fault.after:
            self._sleep(partner, fault.delay)
            if fault.status is not None:
                return self._fault_response(api_version, fault.status)
        return reply

    @staticmethod
    def _fault_response(api: str | None, status: int) -> Reply:
        headers = {"Retry-After": "1"} if status == 429 else None
        return error_reply(api, status, f"injected fault: the sandbox was told to answer {status}", headers=headers)

    # -- helpers -------------------------------------------------------------------
    def _body(self, request: SandboxRequest) -> Any:
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise ApiError(413, f"request body of {length} bytes is over the {self.max_body_bytes}-byte limit")
        raw = request.read(self.max_body_bytes + 1)
        if len(raw) > self.max_body_bytes:
            raise ApiError(413, f"request body is over the {self.max_body_bytes}-byte limit")
        if not raw.strip():
            raise ApiError(400, "request body is empty; send a JSON object", number=1003)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(400, f"request body is not UTF-8 text (byte {exc.start}); send JSON in UTF-8",
                           number=1003) from None
        try:
            body = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise ApiError(400, "request body is JSON nested too deeply; send a flat object", number=1003) from None
        except ValueError as exc:
            raise ApiError(400, f"request body is not valid JSON ({shorten(str(exc), 160)})", number=1003) from None
        if _SURROGATE_ESCAPE.search(raw):
            try:
                json.dumps(body, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(400, "request body has a lone UTF-16 surrogate escape (such as \\ud800) in a "
                                    "string; send valid Unicode text", number=1003) from None
        return body

    def _subscription_body(self, request: SandboxRequest, api: str, *, create: bool) -> dict[str, Any]:
        version = wire.get(api)
        fields = version.fields_of(self._body(request))
        if fields is None:
            raise ApiError(400, f"request body must be a JSON object {version.BODY_HINT}", number=1003)
        relayed = self.relay is not None and self.relay.owns(str(fields.get(version.URL_FIELD)))  # the sandbox's own
        check = version.create_problems if create else version.update_problems
        problems = check(fields, https_only_unless_loopback=not relayed)
        if problems:
            raise ApiError(version.VALIDATION_STATUS, "Validation failed: " + "; ".join(problems), problems,
                           code=version.problem_code(problems), number=version.problem_code(problems))
        return fields

    @staticmethod
    def _id(sub_id: str, api: str) -> Any:
        found = wire.get(api).parse_id(sub_id)
        if found is None:
            raise ApiError(404, f"webhook subscription id {shorten(sub_id, 40)} is not a valid id; "
                                f"{wire.get(api).ID_DESCRIPTION}")
        return found

    def _found(self, sub: _T | None, sub_id: Any) -> _T:
        if sub is None:
            raise ApiError(404, f"webhook subscription {sub_id} not found")
        return sub

    # -- endpoints -----------------------------------------------------------------
    def _route_collection(self, request: SandboxRequest, partner: str, api: str) -> Reply:
        version = wire.get(api)
        if request.method == "GET":
            return Reply(200, version.list_body(self.store.subscriptions(partner, api)))
        body = self._subscription_body(request, api, create=True)
        secret = version.new_signing_secret()
        try:
            created = self.store.create(partner, body, max_per_partner=self.caps.max_subscriptions, api=api,
                                        secret=secret, unique_url=version.UNIQUE_URL)
        except LimitReached as exc:
            raise ApiError(422, str(exc), code="subscription_limit_reached", number=1005) from None
        except Conflict as exc:  # v3 only (v2 allows a URL twice); v3's code for a 409 is its default, 1005
            raise ApiError(409, str(exc)) from None
        self._changed(partner, api, None, created)
        return Reply(201, version.created_body(created, secret))

    def _route_member(self, request: SandboxRequest, partner: str, sub_id: str, api: str) -> Reply:
        version = wire.get(api)
        sid = self._id(sub_id, api)
        if request.method == "GET":
            return Reply(200, version.item_body(self._found(self.store.get(partner, sid, api), sid)))
        if request.method == "PUT":
            body = self._subscription_body(request, api, create=False)
            try:
                change = self.store.update(partner, sid, body, api=api, unique_url=version.UNIQUE_URL)
            except Conflict as exc:  # as for a create
                raise ApiError(409, str(exc)) from None
            before, after = self._found(change, sid)
            self._changed(partner, api, before, after)
            return Reply(200, version.item_body(after))
        gone = self._found(self.store.delete(partner, sid, api), sid)
        self._changed(partner, api, gone, None)
        return Reply(204)

    def _route_event_types(self, request: SandboxRequest, partner: str, api: str) -> Reply:
        return Reply(200, wire.v3.events_body())

    def _changed(self, partner: str, api: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        """Send the account events (v3's ``webhook_subscription.*``) a change makes; never fails the change."""
        for event_type, data in wire.get(api).change_events(before, after):
            try:
                self._emit_form(partner, api, event_type, data)
            except ValueError:  # over the size cap: the change stands, the event is not sent
                logger.warning("account event %s of a partner was over the size cap; not sent", event_type)

    def _emit_form(self, partner: str, api: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """Queue one event, in version ``api``'s envelope, for that version's matching subscriptions."""
        version = wire.get(api)
        envelope = version.make_envelope(event_type, data, partner_id=partner)  # a new event_id each time
        body = version.encode(envelope)
        queued = self.store.enqueue(partner, event_type, envelope["event_id"], body, api=api,  # size: see enqueue
                                    phone_number=version.event_phone_number(data), max_bytes=self.caps.max_event_bytes)
        if queued:
            self.on_enqueue()
        return {"event_id": envelope["event_id"], "event_type": event_type, "deliveries_queued": queued}

    def emit(self, partner: str, event_type: str, data: dict[str, Any] | None = None, *,
             phone_number: str | None = None) -> dict[str, Any]:
        """Create one event and queue it for every matching active subscription of ``partner``, in each version.

        Each version gets it under its own name for it (see :func:`linq_nb.catalog.name_in`), in its own
        envelope and sample; an event that one version lacks goes to the other only. ``data`` overrides
        fields of the sample of each version that knows the event under the name given; ``phone_number``
        makes it an event about that line (v3 ``phone_numbers`` filters on it). Returns ``{"event_id",
        "event_type", "deliveries_queued"}`` of the first version whose subscriptions got it (v2 first);
        when several did, ``deliveries_queued`` counts them all and ``forms`` has each version's own
        (so a v2-only partner sees exactly v2's answer). ValueError (LimitReached) if an envelope some
        subscription would get is over ``caps.max_event_bytes``; a form no one would get is not weighed.
        """
        forms: dict[str, dict[str, Any]] = {}
        for api, version in wire.VERSIONS.items():
            name = catalog.name_in(api, event_type)
            if name is None:
                continue
            sample = version.sample_data(name, data if name == event_type else None)
            if phone_number:
                sample = version.with_phone_number(sample, phone_number)
            forms[api] = self._emit_form(partner, api, name, sample)
        if not forms:
            raise ValueError(f"unknown event type {event_type!r}")
        reached = {api: form for api, form in forms.items() if form["deliveries_queued"]}
        answer = dict(next(iter(reached.values()), next(iter(forms.values()))))
        if len(reached) > 1:
            answer["deliveries_queued"] = sum(f["deliveries_queued"] for f in reached.values())
            answer["forms"] = reached
        return answer

    def _route_emit(self, request: SandboxRequest, partner: str) -> Reply:
        body = self._body(request)
        if not isinstance(body, dict):
            raise ApiError(400, 'request body must be a JSON object {"event_type": "...", "data": {...}}')
        event_type, data, phone = body.get("event_type"), body.get("data"), body.get("phone_number")
        problems = []
        if event_type not in EVENT_NAMES:
            problems.append(f"event_type must be a v2 or v3 event name, one of: {', '.join(EVENT_NAMES)}; "
                            f"got {shorten(event_type)}")
        if data is not None and not isinstance(data, dict):
            problems.append("data must be a JSON object (fields to override in the sample payload)")
        if phone is not None and (not isinstance(phone, str) or wire.v3.update_problems({"phone_numbers": [phone]})):
            problems.append(f"phone_number must be a phone number in E.164 format, such as +14155551234; "
                            f"got {shorten(phone, 30)}")
        if problems:
            raise ApiError(422, "Validation failed: " + "; ".join(problems), problems, code="validation_failed")
        try:
            return Reply(202, self.emit(partner, str(event_type), data, phone_number=phone))
        except ValueError as exc:
            raise ApiError(413, str(exc)) from None

    def _route_deliveries(self, request: SandboxRequest, partner: str) -> Reply:
        """One page of the partner's attempt log, oldest first: ``?limit=&cursor=&subscription_id=&event_id=``."""
        query = self.request_page(request.query())
        records, cursor = self.store.attempts_page(partner, **query)
        return Reply(200, {"deliveries": records, "next_cursor": cursor})

    @staticmethod
    def request_page(query: dict[str, str]) -> dict[str, Any]:
        problems: list[str] = []
        page: dict[str, Any] = {}
        for name, top in (("limit", MAX_PAGE), ("cursor", None), ("subscription_id", None)):
            if name not in query:
                continue
            text = query[name]
            if name == "subscription_id" and wire.v3.parse_id(text):  # a v3 subscription's UUID
                page[name] = wire.v3.parse_id(text)
                continue
            if not (text.isascii() and text.isdigit()) or len(text) > 18 or (top and not 1 <= int(text) <= top):
                bound = f" from 1 to {top}" if top else ""
                problems.append(f"{name} must be a whole number{bound}, got {shorten(text, 40)}")
            else:
                page[name] = int(text)
        if "event_id" in query:
            page["event_id"] = query["event_id"][:100]
        if problems:
            raise ApiError(422, "Validation failed: " + "; ".join(problems), problems, code="validation_failed")
        page.setdefault("limit", DEFAULT_PAGE)
        return page

    def _route_faults(self, request: SandboxRequest, partner: str) -> Reply:
        """Queue faults for the caller's next API requests, and/or set or lift its own rate limit.

        ``{"fail_next": N, "status": 500, "delay": 0, "after": false, "rate_limit": {"limit": L,
        "per_seconds": 1}}``, every key optional (``"rate_limit": null`` lifts it); ``{"ok": true}``,
        or 422 naming every problem and changing nothing.
        """
        body = self._body(request)
        if not isinstance(body, dict):
            raise ApiError(400, 'request body must be a JSON object such as {"fail_next": 2, "status": 503}')
        problems = []
        n, status, delay = body.get("fail_next", 0), body.get("status", 500), body.get("delay", 0.0)
        top = self.caps.max_fault_delay
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 1000:
            problems.append("fail_next must be an integer from 0 to 1000")
        if status is not None and (not isinstance(status, int) or isinstance(status, bool)
                                   or not 400 <= status <= 599):
            problems.append("status must be an integer from 400 to 599, or null to only delay")
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= top:
            problems.append(f"delay must be a number of seconds from 0 to {top:g}")
        limit = body.get("rate_limit", ...)
        if limit is not ... and limit is not None:
            try:
                if not isinstance(limit, dict) or set(limit) - {"limit", "per_seconds"}:
                    raise ValueError
                mine = RateLimiter(limit.get("limit"), limit.get("per_seconds", 1.0))  # type: ignore[arg-type]
            except (ValueError, TypeError):
                problems.append('rate_limit must be null or {"limit": <int >= 1>, "per_seconds": <number > 0>}')
            else:
                operator = self._operator_limit
                if operator is not None and not mine.tighter_than(operator):
                    problems.append(f"rate_limit may only be stricter than the sandbox's own limit of "
                                    f"{operator.limit} per {operator.per_seconds:g} s")
        with self._lock:
            queued = sum(1 for f in self._faults if f.partner == partner)
        if n and queued >= self.caps.max_faults:
            problems.append(f"{queued} faults are queued already, the most one partner may have; "
                            "let them run out first")
        if problems:
            raise ApiError(422, "Validation failed: " + "; ".join(problems), problems, code="validation_failed")
        if n:
            self.add_fault(Fault(n, status, float(delay), bool(body.get("after", False)), partner))
        if limit is not ...:
            self.set_rate_limit(None if limit is None else limit["limit"],
                                limit.get("per_seconds", 1.0) if limit else 1.0, partner=partner)
        return Reply(200, {"ok": True})

    # -- relay sessions (relay.py): a listener with no inbound port gets its deliveries over an outbound poll
    def _route_relay(self, request: SandboxRequest, partner: str) -> Reply:
        """Open (or reopen) the partner's relay session ``{"name": ...}``: its relay URL and poll URL."""
        body = self._body(request)
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            raise ApiError(422, 'Validation failed: name must be a string of 1 to 200 characters naming the listener',
                           code="validation_failed")
        if self.relay is None:
            raise ApiError(404, "this sandbox has no relay")
        scheme = request.environ.get("wsgi.url_scheme", "http")
        host = request.environ.get("HTTP_HOST") or f"{request.environ.get('SERVER_NAME')}:" \
            f"{request.environ.get('SERVER_PORT')}"
        try:
            return Reply(201, self.relay.open(partner, name, f"{scheme}://{host[:300]}"))
        except ValueError as exc:
            raise ApiError(422, str(exc), code="relay_session_limit_reached") from None

    def _route_relay_member(self, request: SandboxRequest, partner: str, session_id: str) -> Reply:
        """Close a relay session: deliveries held for it fail (and are retried) as unreachable."""
        if self.relay is None or not self.relay.close(partner, session_id):
            raise ApiError(404, f"relay session {shorten(session_id, 40)} not found")
        return Reply(204)
