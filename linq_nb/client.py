"""``LinqClient``: the Linq Partner API v2 webhook-subscription client, and ``connect()``.

>>> from linq_nb.client import connect
>>> client = connect()                    # live if LINQ_INTEGRATION_TOKEN is set, else an embedded sandbox
>>> sub = client.create_subscription("https://example.com/hook", ["message.received"], secret="whsec_...")
>>> client.update_subscription(sub.id, active=False).active
False
>>> print(client.preview_delete(sub.id).curl)   # the same request as curl, token masked
>>> client.delete_subscription(sub.id)

How it is built (see ``../shared/docs/linq-v2-api.md`` for the wire format):

- One ``requests.Session`` per client. The token travels in ``X-LINQ-INTEGRATION-TOKEN``,
  added by a small ``requests.auth.AuthBase`` whose repr never shows it.
- Every HTTP call goes through one method, :meth:`LinqClient.request`: base URL, auth,
  timeout, logging (method, path, status, time; never headers or bodies), and the mapping
  of failures to :mod:`linq_nb.errors` (``error_from_response`` for HTTP errors,
  :class:`LinqConnectionError` / :class:`LinqTimeoutError` when no answer came back).
- GET, PUT and DELETE are retried by urllib3's ``Retry`` on the session's adapter: on
  429/500/502/503/504, dropped connections and timeouts, with exponential backoff, waiting
  as long as a ``Retry-After`` header asks (up to ``max_retry_after`` seconds; a longer
  wait is not attempted and surfaces as :class:`RateLimitError` with ``retry_after``).
- A create (POST) is never resent: a second POST is exactly the duplicate subscription
  Linq warns about. After an ambiguous failure (timeout, dropped connection, 5xx) the
  client lists the subscriptions and returns the one the lost request created, if any.
- Values are validated with :mod:`linq_nb.validation` before anything is sent.

The token and webhook secrets appear in no repr, str, exception, log line or preview.
This module never imports the sandbox at import time (only inside :func:`connect`),
nor pandas or ipywidgets.
"""

from __future__ import annotations

import difflib
import functools
import gc
import html
import inspect
import json as jsonlib
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import repeat
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Final, ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import (
    ConnectTimeoutError,
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.util.retry import Retry

from . import __version__, wire
from .errors import (
    ConfigurationError,
    DuplicateSubscriptionError,
    LinqConnectionError,
    LinqError,
    LinqTimeoutError,
    ServerError,
    ValidationError,
    error_from_response,
)
from .events import EVENT_TYPES
from .models import SubscriptionList, WebhookSubscription
from .validation import is_loopback_url, subscription_problems, url_problems
from .wire import v2 as wire_v2

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Self

    from .sandbox import Sandbox

__all__ = ["LinqClient", "connect", "DEFAULT_BASE_URL", "RequestPreview", "embedded_sandbox"]

logger = logging.getLogger(__name__)

#: The live Linq API. Any other base URL (a loopback or classroom sandbox) is "sandbox" mode.
DEFAULT_BASE_URL: Final = "https://api.linqapp.com"
TOKEN_ENV: Final = "LINQ_INTEGRATION_TOKEN"
BASE_URL_ENV: Final = "LINQ_API_BASE_URL"
#: ``v2`` (the default) or ``v3``: which API version :func:`connect` speaks.
API_VERSION_ENV: Final = "LINQ_API_VERSION"
TOKEN_HEADER: Final = "X-LINQ-INTEGRATION-TOKEN"
#: How previews show the token, as Linq's own docs do.
TOKEN_PLACEHOLDER: Final = "<X-LINQ-INTEGRATION-TOKEN>"
#: How previews show a webhook secret.
SECRET_PLACEHOLDER: Final = "<webhook-secret>"
API_PATH: Final = "/api/partner/v2/webhook_subscriptions"
SANDBOX_PREFIX: Final = "/_sandbox"

RETRY_METHODS: Final = frozenset({"GET", "PUT", "DELETE"})
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
#: How far the server's created_at may lag the client's clock and still count as "after the attempt".
CLOCK_SKEW: Final = timedelta(minutes=5)

#: What the methods accept as a subscription id: 12, "12" or the WebhookSubscription itself.
SubscriptionRef = int | str | WebhookSubscription

_USER_AGENT = f"linq-nb/{__version__} python-requests/{requests.__version__}"
_UNSET: Any = type("_Unset", (), {"__repr__": lambda self: "<unchanged>"})()


#: Keyword slips worth a "did you mean" beyond what difflib finds.
_KEYWORD_HINTS: Final = {
    "url": "webhook_url", "webhook": "webhook_url", "endpoint": "webhook_url", "target_url": "webhook_url",
    "event": "events", "event_types": "events", "types": "events",
    "enabled": "active", "is_active": "active",
    "webhook_secret": "secret", "signing_secret": "secret",
}
#: The same for v3's names (v2's keywords used with a v3 client, and slips).
_KEYWORD_HINTS_V3: Final = {
    "url": "target_url", "webhook_url": "target_url", "webhook": "target_url", "endpoint": "target_url",
    "event": "subscribed_events", "events": "subscribed_events", "event_types": "subscribed_events",
    "enabled": "is_active", "active": "is_active", "phones": "phone_numbers", "phone_number": "phone_numbers",
}
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _keyword_hints(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn Python's bare "unexpected keyword argument" into one that names the right keyword.

    Costs nothing on a good call: the keywords are looked at only once the call has failed.
    """
    names = [n for n in inspect.signature(method).parameters if n != "self"]

    @functools.wraps(method)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except TypeError:
            unknown = [k for k in kwargs if k not in names]
            if not unknown:
                raise
            name = unknown[0]
            better = next((h for h in (_KEYWORD_HINTS.get(name), _KEYWORD_HINTS_V3.get(name)) if h in names),
                          None) or next(iter(difflib.get_close_matches(name, names, n=1)), None)
            guess = f"; did you mean {better}=?" if better in names else ""
            raise TypeError(f"{method.__name__}() got an unexpected keyword argument {name!r}{guess} "
                            f"It takes: {', '.join(names)}.") from None

    return checked


# --------------------------------------------------------------------------- auth and retries


class _TokenAuth(AuthBase):
    """Adds the token's header(s) (v2 ``X-LINQ-INTEGRATION-TOKEN``, v3 ``Authorization: Bearer``, as the
    version's wire module says) to requests for one base URL; its repr never shows the token."""

    __slots__ = ("_headers", "_origin", "_token")

    def __init__(self, token: str, base_url: str, wire: ModuleType = wire_v2) -> None:
        self._token = token
        self._headers: dict[str, str] = wire.auth_headers(token)
        self._origin = _origin(base_url)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        # Only ever send the token to the API it belongs to (never to another host).
        if r.url and _origin(r.url) == self._origin:
            r.headers.update(self._headers)
        return r

    def __repr__(self) -> str:
        return f"<_TokenAuth {'/'.join(self._headers)}=[secure]>"

    __str__ = __repr__


class _Retry(Retry):
    """urllib3 ``Retry`` that will not wait longer than ``max_retry_after`` for a ``Retry-After``.

    A server asking for a longer pause gets no retry: its 429/503 is returned at once and
    becomes a :class:`RateLimitError` / :class:`ServerError` the caller can act on, instead
    of a notebook cell silently hanging.
    """

    max_retry_after: float = 30.0

    def new(self, **kw: Any) -> _Retry:
        retry = super().new(**kw)
        retry.max_retry_after = self.max_retry_after
        return retry

    def increment(self, method: str | None = None, url: str | None = None, response: Any = None,
                  error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None) -> _Retry:
        if response is not None and error is None and self.respect_retry_after_header:
            value = response.headers.get("Retry-After")
            if value is not None:
                try:
                    wait = self.parse_retry_after(value)
                except Exception:  # an unparseable header: let urllib3 decide as usual
                    wait = 0.0
                if wait > self.max_retry_after:
                    raise MaxRetryError(_pool, url or "", None)
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def get_retry_after(self, response: Any) -> float | None:
        # A garbled Retry-After is the server's slip: back off as if it had sent none. (urllib3 raises
        # InvalidHeader here, which reached the caller as "the request could not be built".)
        try:
            return super().get_retry_after(response)
        except InvalidHeader:
            return None


# --------------------------------------------------------------------------- small helpers


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _normalize_base_url(url: str) -> str:
    """``https://API.linqapp.com/`` -> ``https://api.linqapp.com`` (scheme/host lowercased, no trailing slash)."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    for prefix in ("/api/partner/v2", "/api/partner/v3", "/api/partner"):  # common pastes (the SDK's base_url
        if path.endswith(prefix):                                          # ends in /api/partner): the API
            path = path[: -len(prefix)]                                    # prefix is added per call
            break
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, "", ""))


def _normalize_webhook_url(url: str) -> str:
    """For duplicate detection: scheme and host are case-insensitive; the path is kept as is."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def _events_list(events: object, catalogue: Sequence[str] = EVENT_TYPES) -> object:
    """Lists and tuples keep their order; sets follow the catalogue's order; repeats are dropped."""
    if isinstance(events, (set, frozenset)):
        return [e for e in catalogue if e in events] + sorted(str(e) for e in events if e not in catalogue)
    if isinstance(events, (list, tuple)):
        seen: list[Any] = []
        for e in events:
            if e not in seen:
                seen.append(e)
        return seen
    return events  # let validation say what is wrong with it


def _subscription_id(value: object) -> int:
    """An API id from an int, a digit string or a :class:`WebhookSubscription`; else ValidationError."""
    if isinstance(value, WebhookSubscription):
        return value.id
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise ValidationError(
        f"subscription id must be a positive integer, got {value!r}"[:200],
        hint="Use the id shown by list_subscriptions() (an integer such as 12).",
    )


#: Bodies at least this large are parsed with the cyclic garbage collector paused (see _json_of).
_LARGE_BODY: Final = 64 << 10


@functools.cache
def _msgspec() -> tuple[Callable[[bytes], Any], type[Exception]]:
    """msgspec's JSON decoder and its error, imported on the first answer (17 ms off ``import linq_nb.client``)."""
    import msgspec

    return msgspec.json.Decoder().decode, msgspec.DecodeError


def _json_of(response: requests.Response) -> Any:
    """The body's JSON, parsed by msgspec (about twice as fast as ``json``), else as ``response.json()`` does.

    msgspec reads the bytes as UTF-8 straight into Python objects (no intermediate document: its
    peak memory is below the standard library's, where orjson's is four times it) and refuses
    what strict JSON does not allow (``NaN``, invalid UTF-8); such a body goes to
    ``response.json()``, so what parses is the same either way.

    For a large body the cyclic garbage collector is paused meanwhile: parsing a big list creates
    millions of dicts, lists and strings, and each batch of new containers sets off a collection
    that walks them all again (a third of the time for 100,000 subscriptions). Parsed JSON has no
    reference cycles, so those walks find nothing; the only cost of the pause is that other
    threads' cycles wait until the parse ends. A caller who turned the collector off keeps it off.
    """
    body = response.content
    decode, error = _msgspec()
    pause = len(body) >= _LARGE_BODY and gc.isenabled()
    if pause:
        gc.disable()
    try:
        try:
            return decode(body)
        except error:
            return response.json()
    finally:
        if pause:
            gc.enable()


def _validation_error(action: str, problems: list[str]) -> ValidationError:
    head = problems[0] if len(problems) == 1 else f"{len(problems)} problems"
    return ValidationError(
        f"{action} was not sent: {head}",
        errors=problems,
        hint="Correct the values listed and try again; nothing was sent to the API.",
    )


def _shell_quote(text: str) -> str:
    """Single-quote for POSIX shells (like ``shlex.quote`` but always quoting, as Linq's docs do)."""
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _masked_body(body: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if body is None:
        return None
    masked = jsonlib.loads(jsonlib.dumps(body))  # deep copy of plain JSON
    inner = masked.get("webhook_subscription")
    if isinstance(inner, dict) and "secret" in inner:
        inner["secret"] = SECRET_PLACEHOLDER
    return masked


# --------------------------------------------------------------------------- preview


@dataclass(frozen=True)
class RequestPreview:
    """A request exactly as the client would send it, with the token and any secret masked.

    >>> p = client.preview_create("https://example.com/hook", ["message.sent"], secret="s3cret")
    >>> print(p.curl)
    curl --request POST \\
      --url https://api.linqapp.com/api/partner/v2/webhook_subscriptions \\
      --header 'Content-Type: application/json' \\
      --header 'X-LINQ-INTEGRATION-TOKEN: <X-LINQ-INTEGRATION-TOKEN>' \\
      --data '{ ... "secret": "<webhook-secret>" ... }'
    """

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    #: How the token is shown in ``headers`` (``<X-LINQ-INTEGRATION-TOKEN>`` in v2, ``<token>`` in v3).
    token_placeholder: str = field(default=TOKEN_PLACEHOLDER, repr=False)

    @property
    def json(self) -> str:
        """The body as indented JSON (empty string when the request has no body)."""
        return "" if self.body is None else jsonlib.dumps(self.body, indent=2, ensure_ascii=False)

    @property
    def curl(self) -> str:
        """The request as a curl command, in the form Linq's docs use."""
        lines = [f"curl --request {self.method}", f"  --url {self.url}"]
        lines += [f"  --header {_shell_quote(f'{k}: {v}')}" for k, v in self.headers.items()]
        if self.body is not None:
            lines.append(f"  --data {_shell_quote(self.json)}")
        return " \\\n".join(lines)

    def __str__(self) -> str:
        return self.curl

    def _repr_html_(self) -> str:
        body = (f"<div><b>JSON body</b></div><pre>{html.escape(self.json)}</pre>" if self.body is not None else "")
        return (
            '<div class="linq-preview">'
            f"<div><b>{html.escape(self.method)}</b> <code>{html.escape(self.url)}</code></div>"
            f"<pre>{html.escape(self.curl)}</pre>{body}"
            f'<div style="opacity:.7">Replace {html.escape(self.token_placeholder)} with your token'
            + (f" and {html.escape(SECRET_PLACEHOLDER)} with the secret" if SECRET_PLACEHOLDER in self.json else "")
            + " before running it.</div></div>"
        )


# --------------------------------------------------------------------------- the client


class _ApiClient:
    """What every version's client shares: the session, auth, retries, the one HTTP choke point, error
    mapping, previews and sandbox routes. A subclass names its version's wire module (``wire``) and
    adds the typed subscription methods; nothing here branches on the version.

    Args:
        token: the integration token; defaults to ``$LINQ_INTEGRATION_TOKEN``.
        base_url: defaults to ``$LINQ_API_BASE_URL``, then ``https://api.linqapp.com`` (live).
        timeout: seconds to wait for each HTTP attempt.
        max_retries: retries of GET/PUT/DELETE on 429/5xx/connection errors/timeouts (0: none).
        backoff_factor: urllib3 backoff: ``backoff_factor * 2 ** (retry - 1)`` seconds between retries.
        max_retry_after: the longest ``Retry-After`` (seconds) the client waits for before retrying;
            a longer one raises at once (:class:`RateLimitError` carries ``retry_after``).

    >>> with LinqClient(token="...", base_url="http://127.0.0.1:8765") as client:
    ...     client.mode, len(client.list_subscriptions())
    ('sandbox', 0)

    Attributes:
        recovery_delays: seconds to wait before each look for a subscription a lost create may have
            made (the request may still be in flight after a timeout).
    """

    recovery_delays: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    #: The version's wire module (:mod:`linq_nb.wire.v2` or ``v3``): paths, auth header, bodies, error shape.
    wire: ClassVar[ModuleType] = wire_v2
    #: How previews show the token in the auth header.
    token_placeholder: ClassVar[str] = TOKEN_PLACEHOLDER
    #: The subscription's URL field, as the version names it (in warnings).
    _url_field: ClassVar[str] = "webhook_url"
    #: The keyword arguments of ``create_subscription`` / ``update_subscription`` for what every version's
    #: form has (``url`` and ``events`` are the first two positional arguments of a create). The widgets
    #: build their calls from this; a name missing from an operation is one the version does not take there.
    FORM_FIELDS: ClassVar[Mapping[str, Mapping[str, str]]] = {
        "create": {"secret": "secret", "active": "active", "allow_duplicate": "allow_duplicate"},
        "update": {"url": "webhook_url", "events": "events", "active": "active", "secret": "secret"},
    }

    def __init__(self, token: str | None = None, base_url: str | None = None, *, timeout: float = 10.0,
                 max_retries: int = 3, backoff_factor: float = 0.2, max_retry_after: float = 30.0) -> None:
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        token = (token or "").strip()
        if not token:
            raise ConfigurationError(
                f"no Linq integration token: pass token=... or set the environment variable {TOKEN_ENV}",
                hint=f"Set {TOKEN_ENV} to your token (or call linq_nb.connect() to use the built-in sandbox).",
            )
        if not token.isprintable() or any(c.isspace() for c in token):
            raise ConfigurationError(
                "the integration token contains spaces or control characters (a bad copy-paste?)",
                hint=f"Paste the token again, exactly as Linq issued it, into {TOKEN_ENV} or token=.",
            )
        raw_url = base_url if base_url is not None else (os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL)
        problems = url_problems(raw_url)
        if problems:
            source = "base_url" if base_url is not None else BASE_URL_ENV
            raise ConfigurationError(
                f"{source} is not a usable API address: {problems[0].replace('webhook_url', 'the URL')}",
                hint=f"Use something like {DEFAULT_BASE_URL} or http://127.0.0.1:8765 (a sandbox).",
            )
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if not (isinstance(max_retries, int) and max_retries >= 0):
            raise ConfigurationError(f"max_retries must be an integer >= 0, got {max_retries!r}")

        self._base_url = _normalize_base_url(raw_url)
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self._closed = False
        self._create_lock = threading.Lock()  # one create at a time, so the duplicate guard holds across threads

        retry = _Retry(
            total=max_retries, connect=max_retries, read=max_retries, status=max_retries, other=0, redirect=0,
            allowed_methods=RETRY_METHODS, status_forcelist=RETRY_STATUSES, backoff_factor=backoff_factor,
            respect_retry_after_header=True, raise_on_status=False, raise_on_redirect=False,
        )
        retry.max_retry_after = float(max_retry_after)
        session = requests.Session()
        session.auth = _TokenAuth(token, self._base_url, self.wire)
        session.headers.update({"User-Agent": _USER_AGENT, "Accept": "application/json"})
        if is_loopback_url(self._base_url):
            session.trust_env = False  # never send sandbox traffic through an HTTP(S)_PROXY
        adapter = HTTPAdapter(max_retries=retry)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        self._session = session  # only its auth object keeps the token
        self._settings: dict[str, Any] = {"timeout": self.timeout, "max_retries": max_retries,
                                          "backoff_factor": backoff_factor, "max_retry_after": max_retry_after}

    def for_api(self, api: str) -> _ApiClient:
        """A client of API version ``api`` with this one's token, base URL and settings (itself if the same).

        Linq's token works on both versions, so one setting serves a v2 -> v3 move.

        >>> connect().for_api("v3").api
        'v3'
        """
        cls = client_class(api)
        if isinstance(self, cls):
            return self
        auth = self._session.auth
        other = cls(token=auth._token, base_url=self._base_url, **self._settings)  # type: ignore[union-attr]
        other.recovery_delays = self.recovery_delays
        return other

    # ------------------------------------------------------------------ identity and display

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._base_url

    @property
    def mode(self) -> str:
        """``"live"`` for the real Linq API (``DEFAULT_BASE_URL``), ``"sandbox"`` for any other base URL."""
        return "live" if self._base_url == DEFAULT_BASE_URL else "sandbox"

    @property
    def api(self) -> str:
        """The API version this client speaks: ``"v2"`` or ``"v3"``."""
        return str(self.wire.VERSION)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} mode={self.mode!r} base_url={self._base_url!r}>"

    def __str__(self) -> str:
        return f"{type(self).__name__} ({self.mode} mode) at {self._base_url}"

    def _repr_html_(self) -> str:
        colour, note = (("#c0392b", "the live Linq API: changes are real") if self.mode == "live"
                        else ("#2980b9", "a sandbox: nothing here reaches Linq"))
        return (
            f'<div class="linq-client" style="border-left:4px solid {colour};padding:4px 10px">'
            f"<b>{type(self).__name__}</b> · <b>{self.mode}</b> mode · <code>{html.escape(self._base_url)}</code>"
            f'<div style="opacity:.7">{note}</div></div>'
        )

    # ------------------------------------------------------------------ lifecycle

    def __reduce__(self) -> Any:
        raise TypeError(f"a {type(self).__name__} holds an integration token and is not pickled, so the token never "
                        "lands in a file or another process by accident; create a new client there (linq_nb.connect())")

    def close(self) -> None:
        """Close the HTTP session (its pooled connections). Safe to call twice."""
        self._closed = True
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the choke point

    def request(self, method: str, path: str, json: Any = None, *, ok_if_retried: Collection[int] = ()) -> Any:
        """Send one request to the API and return its parsed JSON body (None for an empty body).

        Every call the client makes goes through here: base URL, token, timeout, retries
        (GET/PUT/DELETE only, by the session's adapter) and error mapping.

        ``ok_if_retried``: error statuses that mean success when they answer a *retry* after a try
        whose fate is unknown (it timed out or its connection dropped after sending), because that
        try may have gone through and only its answer was lost (a DELETE then gets a 404); the
        call then returns None. After a 5xx or 429 ("not done") such a status is a real error.

        >>> client.request("GET", "/api/partner/v2/webhook_subscriptions")
        {'webhook_subscriptions': [...]}

        Raises:
            LinqError: the subclass :func:`linq_nb.errors.error_from_response` picks for an
                HTTP error; :class:`LinqTimeoutError` / :class:`LinqConnectionError` when no
                answer came back; :class:`ServerError` for a success that is not JSON.
        """
        method = method.upper()
        if not path.startswith("/"):
            path = "/" + path
        if self._closed:
            raise ConfigurationError(f"this {type(self).__name__} was closed", method=method, path=path,
                                     hint="Create a new client (or call linq_nb.connect() again).")
        secrets = self._secrets_in(json)
        started = time.perf_counter()
        try:
            response = self._session.request(method, self._base_url + path, json=json, timeout=self.timeout,
                                             allow_redirects=False)
        except requests.RequestException as exc:
            error = self._no_answer_error(exc, method, path, secrets)
            logger.debug("%s %s -> no answer (%s) after %.1f ms", method, path, type(error).__name__,
                         (time.perf_counter() - started) * 1000)
            raise error from None
        elapsed = (time.perf_counter() - started) * 1000
        history = getattr(getattr(response.raw, "retries", None), "history", ()) or ()
        # Only a try whose fate is unknown (timed out or cut off after it was sent) may have done the work.
        # A 5xx or 429 means "not done", and a connection never made sent nothing.
        unknown = any(h.error is not None and not isinstance(h.error, (NewConnectionError, ConnectTimeoutError))
                      for h in history)
        logger.debug("%s %s -> %s in %.1f ms%s", method, path, response.status_code, elapsed,
                     f" after {len(history)} retr{'y' if len(history) == 1 else 'ies'}" if history else "")
        if unknown and response.status_code in ok_if_retried:
            logger.info("%s %s: HTTP %s on a retry; an earlier attempt went through", method, path,
                        response.status_code)
            return None
        if not 200 <= response.status_code < 300:
            body = self._redact(response.text, secrets)
            raise error_from_response(response.status_code, body, method=method, path=path,
                                      headers=dict(response.headers))
        if not response.content.strip():
            return None
        try:
            return _json_of(response)
        except ValueError:
            raise ServerError(
                f"the server answered HTTP {response.status_code} but its body is not JSON",
                status=response.status_code, method=method, path=path,
                hint="Check that the base URL points at the Linq API (or a linq-nb sandbox).",
            ) from None

    def _secrets_in(self, body: Any) -> list[str]:
        inner = body.get("webhook_subscription") if isinstance(body, Mapping) else None
        secret = inner.get("secret") if isinstance(inner, Mapping) else None
        return [secret] if isinstance(secret, str) and secret else []

    def _redact(self, text: str, secrets: Iterable[str] = ()) -> str:
        auth = self._session.auth
        token = auth._token if isinstance(auth, _TokenAuth) else ""
        if token:
            text = text.replace(token, self.token_placeholder)
        for secret in secrets:
            text = text.replace(secret, SECRET_PLACEHOLDER)
        return text

    def _no_answer_error(self, exc: requests.RequestException, method: str, path: str,
                         secrets: list[str]) -> LinqError:
        """Map a requests exception (no HTTP answer) to LinqTimeoutError / LinqConnectionError."""
        reason: BaseException = exc
        if exc.args and isinstance(exc.args[0], MaxRetryError) and exc.args[0].reason is not None:
            reason = exc.args[0].reason
        elif exc.args and isinstance(exc.args[0], BaseException):
            reason = exc.args[0]
        timed_out = isinstance(exc, requests.Timeout) or (
            isinstance(reason, (ReadTimeoutError, ConnectTimeoutError, Urllib3TimeoutError, TimeoutError))
            and not isinstance(reason, NewConnectionError)
        )
        detail = self._redact(str(reason), secrets)
        detail = re.sub(r"<urllib3\.[^>]*>: ", "", detail)[:300]
        tries = "" if method not in RETRY_METHODS or not self.max_retries else f" (tried {self.max_retries + 1} times)"
        if timed_out:
            return LinqTimeoutError(
                f"no answer from {self._base_url} within {self.timeout:g} s{tries}",
                method=method, path=path, errors=[detail] if detail else (),
            )
        if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader,
                            requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)):
            return ConfigurationError(f"the request could not be built: {detail}", method=method, path=path)
        return LinqConnectionError(
            f"could not reach {self._base_url}{tries}", method=method, path=path, errors=[detail] if detail else (),
        )

    # ------------------------------------------------------------------ sandbox control routes

    def sandbox_route(self, method: str, path: str, json: Any = None) -> Any:
        """Call a sandbox control route (``/_sandbox/...``) through the same choke point.

        Works against the embedded sandbox and a shared (classroom) one; refused in live mode.

        >>> client.sandbox_route("POST", "/_sandbox/events", {"event_type": "message.received"})
        {'event_id': '...', 'deliveries_queued': 1}
        >>> client.sandbox_route("GET", "deliveries")["deliveries"]   # the prefix may be left out
        [...]
        """
        if self.mode == "live":
            raise ConfigurationError(
                f"{method.upper()} {path}: sandbox routes exist only in a sandbox, and this client talks to "
                f"the live API at {self._base_url}",
                hint="Skip this step when live, or use linq_nb.connect() without a token to get a sandbox.",
            )
        path = "/" + path.lstrip("/")
        if not (path == SANDBOX_PREFIX or path.startswith(SANDBOX_PREFIX + "/")):
            path = SANDBOX_PREFIX + path
        return self.request(method, path, json=json)

    # ------------------------------------------------------------------ shared internals

    def _preview(self, method: str, path: str, body: dict[str, Any] | None) -> RequestPreview:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        headers.update(self.wire.auth_headers(self.token_placeholder))
        return RequestPreview(method=method, url=self._base_url + path, headers=headers, body=_masked_body(body),
                              token_placeholder=self.token_placeholder)

    def _warn_about_url(self, url: str) -> None:
        if self.mode != "live":
            return
        if is_loopback_url(url):
            warnings.warn(f"{self._url_field} {url!r} points at this machine: Linq's servers cannot deliver to it. "
                          "Use a public https URL (or a tunnel), or the sandbox for local testing.",
                          UserWarning, stacklevel=4)
        elif urlsplit(url).scheme.lower() != "https":
            warnings.warn(f"{self._url_field} {url!r} uses plain http: webhook bodies would travel unencrypted. "
                          "Use https for the live API.", UserWarning, stacklevel=4)

    @staticmethod
    def _ambiguous(exc: LinqError) -> bool:
        """Could the server have acted on a request that failed this way?"""
        if isinstance(exc, LinqConnectionError):
            return True
        return isinstance(exc, ServerError) and (exc.status is None or exc.status >= 500 or exc.status < 300)

    def _post_once(self, path: str, body: dict[str, Any], recover: Callable[[datetime], Any]) -> Any:
        """POST a create exactly once. After an answer lost in a way the server may have acted on
        (timeout, dropped connection, 5xx), ``recover(started)`` looks for what it created; the
        original error is raised when nothing shows up. Never resends."""
        started = datetime.now(timezone.utc)
        try:
            return self._created(self.request("POST", path, json=body), path)
        except LinqError as exc:
            if not self._ambiguous(exc):
                raise
            logger.info("create_subscription: the answer was lost (%s); looking for what it created",
                        type(exc).__name__)
            found = recover(started)
            if found is None:
                raise
            logger.info("create_subscription: the lost request created subscription %s", found.id)
            return self._recovered(found, exc)

    def _created(self, data: Any, path: str) -> Any:
        """The subscription in a create's answer."""
        return self._one("POST", path, data)

    def _recovered(self, found: Any, exc: LinqError) -> Any:
        """What a create returns when its lost answer's subscription was found (the subscription itself)."""
        return found

    def _one(self, method: str, path: str, data: Any) -> Any:  # pragma: no cover - each version has its own
        raise NotImplementedError

    def list_subscriptions(self) -> Sequence[Any]:  # pragma: no cover - each version has its own
        raise NotImplementedError

    def _find_created(self, before_ids: Collection[Any], started: datetime, matches: Callable[[Any], bool], *,
                      order: Callable[[Any], Any]) -> Any:
        """A subscription that was not in ``before_ids``, was created after ``started`` (less the clock
        skew) and ``matches``; looked for after each of ``recovery_delays``. None if none shows up."""
        earliest = started - CLOCK_SKEW
        for delay in self.recovery_delays:
            if delay:
                time.sleep(delay)
            try:
                subs = self.list_subscriptions()
            except LinqError as exc:
                logger.info("create_subscription: could not list subscriptions to recover (%s)", type(exc).__name__)
                return None
            candidates = [s for s in subs if s.id not in before_ids and matches(s)
                          and (s.created_at is None or s.created_at >= earliest)]
            if candidates:
                if len(candidates) > 1:
                    logger.warning("create_subscription: %d new subscriptions match the lost request (%s); "
                                   "returning the first", len(candidates), ", ".join(str(s.id) for s in candidates))
                return min(candidates, key=order)
        return None

    def _shape_error(self, method: str, path: str, what: str) -> ServerError:
        return _ShapeError(method, path, what, self.api)()


class LinqClient(_ApiClient):
    """Client for Linq Partner API v2 webhook subscriptions (live API or a sandbox).

    Args:
        token: the integration token; defaults to ``$LINQ_INTEGRATION_TOKEN``.
        base_url: defaults to ``$LINQ_API_BASE_URL``, then ``https://api.linqapp.com`` (live).
        timeout: seconds to wait for each HTTP attempt.
        max_retries: retries of GET/PUT/DELETE on 429/5xx/connection errors/timeouts (0: none).
        backoff_factor: urllib3 backoff: ``backoff_factor * 2 ** (retry - 1)`` seconds between retries.
        max_retry_after: the longest ``Retry-After`` (seconds) the client waits for before retrying;
            a longer one raises at once (:class:`RateLimitError` carries ``retry_after``).

    >>> with LinqClient(token="...", base_url="http://127.0.0.1:8765") as client:
    ...     client.mode, len(client.list_subscriptions())
    ('sandbox', 0)

    v3 is :class:`linq_nb.client_v3.LinqClientV3` (``connect(api="v3")``), on the same machinery.

    Attributes:
        recovery_delays: seconds to wait before each look for a subscription a lost create may have
            made (the request may still be in flight after a timeout).
    """

    wire: ClassVar[ModuleType] = wire_v2

    # ------------------------------------------------------------------ subscriptions

    def list_subscriptions(self) -> SubscriptionList:
        """Every webhook subscription of this token, as a read-only list of :class:`WebhookSubscription`.

        The result keeps the parsed JSON and builds each subscription when it is first read
        (:class:`~linq_nb.models.SubscriptionList`), so the call costs no more than ``requests`` and
        ``json`` would; ``subscriptions_frame(result)`` reads the JSON directly.

        >>> [s.id for s in client.list_subscriptions()]
        [1, 2]
        """
        data = self.request("GET", API_PATH)
        items = data.get("webhook_subscriptions") if isinstance(data, dict) else None
        # A cheap look at every item now (a JSON object with an id); the rest is checked as it is read.
        try:
            shaped = isinstance(items, list) and all(map(dict.__contains__, items, repeat("id")))
        except TypeError:  # an item that is not a JSON object
            shaped = False
        if not shaped or items is None:
            raise self._shape_error("GET", API_PATH, "webhook_subscriptions")
        return SubscriptionList(items, _ShapeError("GET", API_PATH, "subscription object"))

    def get_subscription(self, id: SubscriptionRef) -> WebhookSubscription:
        """One subscription by id (a :class:`NotFoundError` if this token has no such id).

        >>> client.get_subscription(12).events
        ('message.received',)
        """
        path = f"{API_PATH}/{_subscription_id(id)}"
        return self._one("GET", path, self.request("GET", path))

    @_keyword_hints
    def create_subscription(self, webhook_url: str, events: Iterable[str], *, secret: str | None = None,
                            active: bool = True, version: int = 2,
                            allow_duplicate: bool = False) -> WebhookSubscription:
        """Create a subscription and return it.

        Refuses (:class:`DuplicateSubscriptionError`) when a subscription with the same URL
        already receives one of these events, unless ``allow_duplicate=True``: Linq would
        deliver each such event twice. The request is never resent; if its answer is lost,
        the subscription it created is found and returned.

        Creates through one client are serialised (a lock), so the duplicate check holds for
        threads sharing it; separate clients or processes can still race past each other.

        >>> sub = client.create_subscription("https://example.com/hook", ["message.sent"], secret="s3cret")
        >>> sub.secret_configured
        True

        Raises:
            ValidationError: a bad value (before anything is sent) or a 400/422 from the API.
            DuplicateSubscriptionError: see above.
        """
        body = self._build_body("create_subscription", webhook_url, events, secret=secret, active=active,
                                version=version)
        with self._create_lock:
            return self._create(body, allow_duplicate)

    def _create(self, body: dict[str, Any], allow_duplicate: bool) -> WebhookSubscription:
        inner = body["webhook_subscription"]
        before = self.list_subscriptions()
        if not allow_duplicate:
            self._refuse_duplicates(before, inner["webhook_url"], inner["events"])
        return self._post_once(API_PATH, body, lambda started: self._recover_create(inner, {s.id for s in before},
                                                                                    started))

    @_keyword_hints
    def update_subscription(self, id: SubscriptionRef, *, webhook_url: str = _UNSET,
                            events: Iterable[str] = _UNSET, secret: str | None = _UNSET,
                            active: bool = _UNSET) -> WebhookSubscription:
        """Change some fields of a subscription; the others keep their current values.

        The current subscription is fetched first so that a full, valid body is sent.
        Leaving ``secret`` out (or ``None``) keeps the stored secret; a string replaces it.
        With no field to change it raises :class:`ValidationError` and sends nothing.

        >>> client.update_subscription(12, active=False).active
        False
        """
        path, body = self._update_request(id, webhook_url=webhook_url, events=events, secret=secret, active=active)
        return self._one("PUT", path, self.request("PUT", path, json=body))

    def delete_subscription(self, id: SubscriptionRef) -> None:
        """Delete a subscription (:class:`NotFoundError` if this token has no such id).

        >>> client.delete_subscription(12)
        """
        # A 404 answering a retry means the first attempt deleted it and only its answer was lost.
        self.request("DELETE", f"{API_PATH}/{_subscription_id(id)}", ok_if_retried=(404,))

    @_keyword_hints
    def find_duplicates(self, webhook_url: str, events: Iterable[str]) -> list[tuple[WebhookSubscription,
                                                                                      tuple[str, ...]]]:
        """Existing subscriptions with this URL that share events with ``events``.

        Returns ``[(subscription, overlapping_events), ...]``; empty when creating would be safe.

        >>> client.find_duplicates("https://example.com/hook", ["message.sent", "message.read"])
        [(WebhookSubscription(id=3, ...), ('message.sent',))]
        """
        return self._duplicates_in(self.list_subscriptions(), webhook_url, events)

    # ------------------------------------------------------------------ previews

    @_keyword_hints
    def preview_create(self, webhook_url: str, events: Iterable[str], *, secret: str | None = None,
                       active: bool = True, version: int = 2) -> RequestPreview:
        """The create request as it would be sent (validated; nothing is sent).

        >>> print(client.preview_create("https://example.com/hook", ["message.sent"]).curl)
        """
        body = self._build_body("create_subscription", webhook_url, events, secret=secret, active=active,
                                version=version, warn=False)
        return self._preview("POST", API_PATH, body)

    @_keyword_hints
    def preview_update(self, id: SubscriptionRef, *, webhook_url: str = _UNSET,
                       events: Iterable[str] = _UNSET, secret: str | None = _UNSET,
                       active: bool = _UNSET) -> RequestPreview:
        """The update request as it would be sent: fetches the current subscription, changes nothing.

        >>> client.preview_update(12, active=False).body["webhook_subscription"]["active"]
        False
        """
        path, body = self._update_request(id, webhook_url=webhook_url, events=events, secret=secret,
                                          active=active, warn=False)
        return self._preview("PUT", path, body)

    def preview_delete(self, id: SubscriptionRef) -> RequestPreview:
        """The delete request as it would be sent (nothing is sent).

        >>> client.preview_delete(12).curl.splitlines()[0]
        'curl --request DELETE \\\\'
        """
        return self._preview("DELETE", f"{API_PATH}/{_subscription_id(id)}", None)

    # ------------------------------------------------------------------ internals

    def _build_body(self, action: str, webhook_url: object, events: object, *, secret: object, active: object,
                    version: object, warn: bool = True) -> dict[str, Any]:
        """The ``{"webhook_subscription": {...}}`` body, validated; raises ValidationError listing every problem."""
        inner: dict[str, Any] = {"webhook_url": webhook_url, "version": version}
        problems: list[str] = []
        if secret is not None:
            inner["secret"] = secret  # an empty one is refused by subscription_problems
        inner["active"] = active
        inner["events"] = _events_list(events)
        if isinstance(events, str):  # a classic slip: "message.sent" for ["message.sent"]
            problems.append(f"events must be a list of event names such as [{events!r}], not a single string"[:200])
            inner["events"] = [events]
        problems = subscription_problems(inner) + problems
        if problems:
            raise _validation_error(action, problems)
        if warn:
            self._warn_about_url(str(webhook_url))
        return {"webhook_subscription": inner}

    def _update_request(self, id: object, *, webhook_url: Any, events: Any, secret: Any, active: Any,
                        warn: bool = True) -> tuple[str, dict[str, Any]]:
        sub_id = _subscription_id(id)
        if all(value is _UNSET for value in (webhook_url, events, active)) and secret in (_UNSET, None):
            raise ValidationError(
                f"update_subscription was not sent: nothing to change for subscription {sub_id}",
                hint="Pass the fields to change, e.g. update_subscription(id, active=False); the others keep "
                     "their values. Its keywords: webhook_url=, events=, secret=, active=.",
            )
        # Validate what was given (with placeholders for the rest) before fetching: a typo costs no request.
        self._build_body(
            "update_subscription",
            "https://example.com/" if webhook_url is _UNSET else webhook_url,
            [EVENT_TYPES[0]] if events is _UNSET else events,
            secret=None if secret is _UNSET else secret,
            active=True if active is _UNSET else active,
            version=2,
            warn=False,
        )
        current = self.get_subscription(sub_id)
        body = self._build_body(
            "update_subscription",
            current.webhook_url if webhook_url is _UNSET else webhook_url,
            list(current.events) if events is _UNSET else events,
            secret=None if secret is _UNSET else secret,
            active=current.active if active is _UNSET else active,
            version=2,
            warn=warn,
        )
        return f"{API_PATH}/{sub_id}", body

    def _refuse_duplicates(self, existing: Sequence[WebhookSubscription], webhook_url: str, events: list[str]) -> None:
        dups = self._duplicates_in(existing, webhook_url, events)
        if not dups:
            return
        ids = [s.id for s, _ in dups]
        overlap = [e for e in EVENT_TYPES if any(e in common for _, common in dups)]
        which = ", ".join(f"#{s.id} ({', '.join(common)}{'' if s.active else '; inactive'})" for s, common in dups)
        raise DuplicateSubscriptionError(
            f"{webhook_url} already receives {', '.join(overlap)} through subscription"
            f"{'s' if len(ids) > 1 else ''} {which}",
            existing_ids=ids, overlapping_events=overlap,
        )

    @staticmethod
    def _duplicates_in(subs: Iterable[WebhookSubscription], webhook_url: str,
                       events: Iterable[str]) -> list[tuple[WebhookSubscription, tuple[str, ...]]]:
        target = _normalize_webhook_url(str(webhook_url))
        wanted = set(events)
        out = []
        for sub in subs:
            if _normalize_webhook_url(sub.webhook_url) != target:
                continue
            common = tuple(e for e in sub.events if e in wanted)
            if common:
                out.append((sub, common))
        return out

    def _recover_create(self, inner: Mapping[str, Any], before_ids: set[int],
                        started: datetime) -> WebhookSubscription | None:
        """After a lost create: the subscription it made, if one shows up; never resends."""
        want_events = set(inner["events"])
        want_url = _normalize_webhook_url(inner["webhook_url"])
        want_secret = bool(inner.get("secret"))
        return self._find_created(before_ids, started, lambda s: (
            _normalize_webhook_url(s.webhook_url) == want_url
            and set(s.events) == want_events
            and s.active == inner["active"]
            and s.secret_configured == want_secret
        ), order=lambda s: s.id)

    def _parse(self, obj: Any, method: str, path: str) -> WebhookSubscription:
        try:
            return WebhookSubscription.from_api(obj)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise self._shape_error(method, path, "subscription object") from None

    def _one(self, method: str, path: str, data: Any) -> WebhookSubscription:
        obj = data.get("webhook_subscription") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            raise self._shape_error(method, path, "webhook_subscription")
        return self._parse(obj, method, path)


@dataclass(frozen=True)
class _ShapeError:
    """Makes the ServerError for an answer of the wrong shape (a SubscriptionList raises it on a bad item)."""

    method: str
    path: str
    what: str
    api: str = "v2"

    def __call__(self) -> ServerError:
        return ServerError(f"the server's answer has no valid {self.what!r}", method=self.method, path=self.path,
                           hint=f"Check that the base URL points at the Linq {self.api} API (or a linq-nb sandbox).")


# --------------------------------------------------------------------------- connect()

_embedded: Sandbox | None = None
_embedded_lock = threading.Lock()


def embedded_sandbox() -> Sandbox | None:
    """The sandbox :func:`connect` started in this process, or None if it never started one.

    >>> connect(); embedded_sandbox().emit("message.received")
    """
    return _embedded


def _start_embedded() -> Sandbox:
    global _embedded
    with _embedded_lock:
        if _embedded is None or not getattr(_embedded, "running", True):  # never started, or stopped by hand
            # lazily: the client does not depend on the sandbox
            from .sandbox import CLASSROOM_RETRY_DELAYS, RETRY_DELAYS_ENV, Sandbox, parse_delays

            # A notebook should see retries happen within seconds, not Linq's 25 minutes.
            delays = os.environ.get(RETRY_DELAYS_ENV)
            _embedded = Sandbox(retry_delays=parse_delays(delays) if delays else CLASSROOM_RETRY_DELAYS).start()
            logger.info("linq_nb: started an embedded sandbox at %s", _embedded.url)
        return _embedded


def client_class(api: str | int | None = None) -> type[_ApiClient]:
    """The client class of an API version (``"v2"``, ``"v3"``; None: ``$LINQ_API_VERSION``, else v2).

    The one place a version picks a client; everything else takes the version's wire module.
    """
    raw = api if api is not None else (os.environ.get(API_VERSION_ENV) or "v2")
    try:
        version = wire.get(raw.strip() if isinstance(raw, str) else raw).VERSION
    except ValueError:
        source = "api" if api is not None else API_VERSION_ENV
        raise ConfigurationError(f"{source}={raw!r} is not a Linq API version linq_nb speaks",
                                 hint=f"Use 'v2' or 'v3' (connect(api='v3') or {API_VERSION_ENV}=v3).") from None
    if version == "v3":
        from .client_v3 import LinqClientV3

        return LinqClientV3
    return LinqClient


def connect(api: str | None = None, **kwargs: Any) -> Any:
    """A ready client: the live API if a token is set, else an embedded sandbox (one per process).

    ``api`` (or ``$LINQ_API_VERSION``) picks the version: ``"v2"`` (the default) gives a
    :class:`LinqClient`, ``"v3"`` a :class:`linq_nb.client_v3.LinqClientV3`. The same token
    and the same sandbox serve both, so the three modes (embedded sandbox, shared sandbox,
    live) work for either version.

    With ``LINQ_INTEGRATION_TOKEN`` (or ``token=``) set, returns ``LinqClient(**kwargs)``, which
    talks to ``LINQ_API_BASE_URL`` (or ``base_url=``), default the live API. Otherwise starts
    a :class:`linq_nb.sandbox.Sandbox` in this process (once; later calls reuse it) and returns
    a client bound to it. The mode is logged; the returned client's repr shows it too.

    >>> client = connect()
    >>> client
    <LinqClient mode='sandbox' base_url='http://127.0.0.1:51234'>
    >>> connect(api="v3")
    <LinqClientV3 mode='sandbox' base_url='http://127.0.0.1:51234'>

    Raises:
        ConfigurationError: ``LINQ_API_BASE_URL`` (or ``base_url=``) is set without a token:
            a shared sandbox or the live API needs one, and silently using a private sandbox
            instead would hide the mistake. Or the version is not v2 or v3.
    """
    cls = client_class(api)
    token = kwargs.get("token") or os.environ.get(TOKEN_ENV)
    if token and token.strip():
        client = cls(**kwargs)
        logger.info("linq_nb: %s mode, API %s at %s", client.mode, client.api, client.base_url)
        return client
    base_url = kwargs.get("base_url") or os.environ.get(BASE_URL_ENV)
    if base_url:
        source = "base_url" if kwargs.get("base_url") else BASE_URL_ENV
        raise ConfigurationError(
            f"{source} is set ({base_url}) but {TOKEN_ENV} is not: that API needs a token",
            hint=f"Set {TOKEN_ENV} to the token you were given, or unset {BASE_URL_ENV} to use the built-in sandbox.",
        )
    options = {k: v for k, v in kwargs.items() if k not in ("token", "base_url")}
    sandbox = _start_embedded()
    client = cls(token=sandbox.token, base_url=sandbox.url, **options)
    logger.info("linq_nb: sandbox mode, embedded sandbox at %s (set %s to use the live API)",
                client.base_url, TOKEN_ENV)
    return client
