"""The sandbox's WSGI application: Linq's five v2 webhook-subscription endpoints, plus control routes.

Every rejected request gets the documented 4xx with one sentence per problem and
changes no state. Status codes and shapes follow ``shared/docs/linq-v2-api.md``:
401 (``Error`` shape) for a bad token, 404 for an unknown id or another
partner's id, 422 for validation, 400 for a body that is not JSON or lacks the
``webhook_subscription`` object, 413 for an oversized body, 429 with
``Retry-After`` when rate limited.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from werkzeug.wsgi import get_input_stream

from ..events import EVENT_TYPES, make_envelope, sample_data
from ..signing import canonical_json
from ..validation import subscription_problems
from .store import Store, partner_key

__all__ = ["SandboxApp", "TOKEN_HEADER", "API_PREFIX"]

TOKEN_HEADER = "X-LINQ-INTEGRATION-TOKEN"
API_PREFIX = "/api/partner/v2/webhook_subscriptions"

_STATUS_NAMES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}

# (path, endpoint, methods): six fixed routes, matched by a dict look-up on the hot path.
_ROUTES: dict[str, tuple[str, tuple[str, ...]]] = {
    API_PREFIX: ("collection", ("GET", "POST")),
    "/_sandbox/events": ("emit", ("POST",)),
    "/_sandbox/deliveries": ("deliveries", ("GET",)),
    "/_sandbox/faults": ("faults", ("POST",)),
    "/_sandbox/health": ("health", ("GET",)),
}
_MEMBER = ("member", ("GET", "PUT", "DELETE"))
_JSON = "application/json"
_PHRASES = {status.value: status.phrase for status in HTTPStatus}  # an injected 599 has none


def _route(path: str) -> tuple[str, tuple[str, ...], dict[str, str]] | None:
    """(endpoint, allowed methods, path arguments) for ``path``, or None. A trailing slash is fine."""
    path = path.rstrip("/") or "/"
    found = _ROUTES.get(path)
    if found is not None:
        return found[0], found[1], {}
    if path.startswith(API_PREFIX + "/"):
        sub_id = path[len(API_PREFIX) + 1:]
        if "/" not in sub_id:
            return _MEMBER[0], _MEMBER[1], {"sub_id": sub_id}
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
        """At most ``limit`` bytes of the body (werkzeug's stream never blocks past the body)."""
        return get_input_stream(self.environ, max_content_length=None).read(limit)


class ApiError(Exception):
    """A client's mistake, answered with ``status`` and the ``StandardError`` shape."""

    def __init__(self, status: int, message: str, errors: Iterable[str] = (), *, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = list(errors) or [message]
        self.code = code or _STATUS_NAMES.get(status, "error")
        self.headers = headers or {}


def standard_error(status: int, message: str, errors: Iterable[str] = (), *, code: str | None = None,
                   headers: dict[str, str] | None = None) -> Reply:
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


class RateLimiter:
    """At most ``limit`` requests per ``per_seconds`` for each partner (sliding window)."""

    def __init__(self, limit: int, per_seconds: float) -> None:
        if limit < 1 or per_seconds <= 0:
            raise ValueError("a rate limit needs limit >= 1 and per_seconds > 0")
        self.limit, self.per_seconds = limit, per_seconds
        self._hits: dict[str, deque[float]] = {}

    def check(self, partner: str, now: float) -> float | None:
        """None if allowed (and counted), else seconds to wait."""
        hits = self._hits.setdefault(partner, deque())
        while hits and hits[0] <= now - self.per_seconds:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.per_seconds - now
        hits.append(now)
        return None


class SandboxApp:
    """The WSGI callable. Holds the tokens, the store, the faults and the rate limits."""

    def __init__(self, store: Store, tokens: Iterable[str], *, max_body_bytes: int = 1_048_576,
                 on_enqueue: Callable[[], None] | None = None,
                 rate_limit: tuple[int, float] | None = None) -> None:
        self.store = store
        self.partners = {t: partner_key(t) for t in tokens}
        self.max_body_bytes = max_body_bytes
        self.on_enqueue = on_enqueue or (lambda: None)
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._limits: dict[str | None, RateLimiter] = {}
        if rate_limit:
            self.set_rate_limit(*rate_limit)

    # -- knobs ---------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def set_rate_limit(self, limit: int | None, per_seconds: float = 1.0, *, partner: str | None = None) -> None:
        """Limit every partner (``partner=None``) or one; ``limit=None`` lifts it."""
        with self._lock:
            if limit is None:
                self._limits.pop(partner, None)
            else:
                self._limits[partner] = RateLimiter(int(limit), float(per_seconds))

    def _take_fault(self, partner: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.partner in (None, partner):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _rate_limited(self, partner: str) -> float | None:
        with self._lock:
            limiter = self._limits.get(partner) or self._limits.get(None)
            return limiter.check(partner, time.monotonic()) if limiter else None

    # -- WSGI ----------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = SandboxRequest(environ.get("REQUEST_METHOD", "GET").upper(), environ.get("PATH_INFO") or "/",
                                 environ)
        try:
            reply = self.dispatch(request)
        except Exception:  # our bug, never the client's: say so without details
            reply = standard_error(500, "the sandbox failed unexpectedly; this is a linq_nb bug, please report it")
        return reply(start_response)

    def dispatch(self, request: SandboxRequest) -> Reply:
        route = _route(request.path)
        if route is None:
            return standard_error(404, f"no such endpoint: {request.path[:200]}; the API lives under {API_PREFIX}")
        endpoint, methods, args = route
        if request.method not in methods:
            allowed = ", ".join(methods)
            return standard_error(405, f"{request.method} is not allowed on {request.path[:200]}; use {allowed}",
                                  headers={"Allow": allowed})
        if endpoint == "health":
            return Reply(200, {"ok": True})

        token = request.environ.get("HTTP_" + TOKEN_HEADER.upper().replace("-", "_"))
        partner = self.partners.get(token or "")
        if partner is None:
            detail = (f"missing {TOKEN_HEADER} header" if not token
                      else f"the {TOKEN_HEADER} header does not match any integration token of this sandbox")
            return Reply(401, {"errors": [
                {"status": 401, "code": "unauthorized", "title": "Unauthorized", "detail": detail}]})

        api = endpoint in ("collection", "member")
        fault = self._take_fault(partner) if api else None
        if fault and not fault.after:
            time.sleep(fault.delay)
            if fault.status is not None:
                return self._fault_response(fault.status)
        if api:
            wait = self._rate_limited(partner)
            if wait is not None:
                seconds = max(1, math.ceil(wait))
                return standard_error(429, f"rate limit exceeded; retry after {seconds} s",
                                      headers={"Retry-After": str(seconds)})
        try:
            reply: Reply = getattr(self, f"_route_{endpoint}")(request, partner, **args)
        except ApiError as exc:
            reply = standard_error(exc.status, exc.message, exc.errors, code=exc.code, headers=exc.headers)
        if fault and fault.after:
            time.sleep(fault.delay)
            if fault.status is not None:
                return self._fault_response(fault.status)
        return reply

    @staticmethod
    def _fault_response(status: int) -> Reply:
        headers = {"Retry-After": "1"} if status == 429 else None
        return standard_error(status, f"injected fault: the sandbox was told to answer {status}", headers=headers)

    # -- helpers -------------------------------------------------------------------
    def _body(self, request: SandboxRequest) -> Any:
        length = request.content_length
        if length is not None and length > self.max_body_bytes:
            raise ApiError(413, f"request body of {length} bytes is over the {self.max_body_bytes}-byte limit")
        raw = request.read(self.max_body_bytes + 1)
        if len(raw) > self.max_body_bytes:
            raise ApiError(413, f"request body is over the {self.max_body_bytes}-byte limit")
        if not raw.strip():
            raise ApiError(400, "request body is empty; send a JSON object")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"request body is not valid JSON ({exc})") from None

    def _subscription_body(self, request: SandboxRequest) -> dict[str, Any]:
        body = self._body(request)
        inner = body.get("webhook_subscription") if isinstance(body, dict) else None
        if not isinstance(inner, dict):
            raise ApiError(400, 'request body must be a JSON object {"webhook_subscription": {...}}')
        problems = subscription_problems(inner, https_only_unless_loopback=True)
        if problems:
            raise ApiError(422, "Validation failed: " + "; ".join(problems), problems, code="validation_failed")
        return inner

    @staticmethod
    def _id(sub_id: str) -> int:
        if not sub_id.isdigit() or len(sub_id) > 18:
            raise ApiError(404, f"webhook subscription id {sub_id[:40]!r} is not a valid id; ids are integers")
        return int(sub_id)

    def _found(self, sub: dict[str, Any] | None, sub_id: int) -> dict[str, Any]:
        if sub is None:
            raise ApiError(404, f"webhook subscription {sub_id} not found")
        return sub

    # -- endpoints -----------------------------------------------------------------
    def _route_collection(self, request: SandboxRequest, partner: str) -> Reply:
        if request.method == "GET":
            return Reply(200, {"webhook_subscriptions": self.store.subscriptions(partner)})
        body = self._subscription_body(request)
        return Reply(201, {"webhook_subscription": self.store.create(partner, body)})

    def _route_member(self, request: SandboxRequest, partner: str, sub_id: str) -> Reply:
        sid = self._id(sub_id)
        if request.method == "GET":
            return Reply(200, {"webhook_subscription": self._found(self.store.get(partner, sid), sid)})
        if request.method == "PUT":
            body = self._subscription_body(request)
            return Reply(200, {"webhook_subscription": self._found(self.store.update(partner, sid, body), sid)})
        if not self.store.delete(partner, sid):
            self._found(None, sid)
        return Reply(204)

    def emit(self, partner: str, event_type: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create one event and queue it for every matching active subscription of ``partner``."""
        envelope = make_envelope(event_type, sample_data(event_type, data), event_id=str(uuid.uuid4()))
        queued = self.store.enqueue(partner, event_type, envelope["event_id"], canonical_json(envelope))
        if queued:
            self.on_enqueue()
        return {"event_id": envelope["event_id"], "event_type": event_type, "deliveries_queued": queued}

    def _route_emit(self, request: SandboxRequest, partner: str) -> Reply:
        body = self._body(request)
        if not isinstance(body, dict):
            raise ApiError(400, 'request body must be a JSON object {"event_type": "...", "data": {...}}')
        event_type, data = body.get("event_type"), body.get("data")
        problems = []
        if event_type not in EVENT_TYPES:
            problems.append(f"event_type must be one of: {', '.join(EVENT_TYPES)}; got {event_type!r}"[:600])
        if data is not None and not isinstance(data, dict):
            problems.append("data must be a JSON object (fields to override in the sample payload)")
        if problems:
            raise ApiError(422, "Validation failed: " + "; ".join(problems), problems, code="validation_failed")
        return Reply(202, self.emit(partner, str(event_type), data))

    def _route_deliveries(self, request: SandboxRequest, partner: str) -> Reply:
        return Reply(200, {"deliveries": self.store.attempts(partner)})

    def _route_faults(self, request: SandboxRequest, partner: str) -> Reply:
        body = self._body(request)
        if not isinstance(body, dict):
            raise ApiError(400, 'request body must be a JSON object such as {"fail_next": 2, "status": 503}')
        problems = []
        n, status, delay = body.get("fail_next", 0), body.get("status", 500), body.get("delay", 0.0)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            problems.append("fail_next must be a non-negative integer")
        if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
            problems.append("status must be an integer from 400 to 599, or null to only delay")
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= 60:
            problems.append("delay must be a number of seconds from 0 to 60")
        limit = body.get("rate_limit", ...)
        if limit is not ... and limit is not None and not (
            isinstance(limit, dict) and isinstance(limit.get("limit"), int) and limit["limit"] >= 1
            and isinstance(limit.get("per_seconds"), (int, float)) and limit["per_seconds"] > 0
        ):
            problems.append('rate_limit must be null or {"limit": <int >= 1>, "per_seconds": <number > 0>}')
        if problems:
            raise ApiError(422, "Validation failed: " + "; ".join(problems), problems, code="validation_failed")
        if n:
            self.add_fault(Fault(n, status, float(delay), bool(body.get("after", False)), partner))
        if limit is not ...:
            self.set_rate_limit(None if limit is None else limit["limit"],
                                limit["per_seconds"] if limit else 1.0, partner=partner)
        return Reply(200, {"ok": True})
