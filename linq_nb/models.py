"""The subscription objects the API returns: ``WebhookSubscription`` (v2) and ``WebhookSubscriptionV3``.

Both carry ``api_version`` ("v2" / "v3") and ``has_counters`` (v3 has no ``delivery_attempts`` or
``last_delivered_at``), and both answer to the same generic names (``webhook_url``, ``events``,
``active``, ``secret_configured``) so that frames and widgets take either. Standard library only.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, ClassVar, overload
from urllib.parse import parse_qs, urlsplit

__all__ = ["WebhookSubscription", "WebhookSubscriptionV3", "SubscriptionList", "parse_datetime", "format_datetime",
           "humanize_since"]

DOCS_URL = "https://docs.linqapp.com/"


def parse_datetime(value: object) -> datetime | None:
    """An API timestamp as a timezone-aware UTC datetime; None for null or empty.

    Accepts ``...Z`` and ``+hh:mm`` offsets; a timestamp without an offset is taken as UTC.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return _as_utc(value)
    return _parse_text(str(value))


def _as_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> datetime:
    """Cached: a list call (or a Monitor polling it) sees the same timestamps again and again."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return _as_utc(datetime.fromisoformat(text))


def format_datetime(dt: datetime | None) -> str | None:
    """The API's form of a timestamp: ISO 8601 in UTC with a ``Z``, milliseconds kept."""
    if dt is None:
        return None
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def humanize_since(dt: datetime | None, now: datetime | None = None) -> str:
    """``"3 min ago"``-style relative time; ``"never"`` for None."""
    if dt is None:
        return "never"
    seconds = ((now or datetime.now(timezone.utc)) - dt).total_seconds()
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


@dataclass(frozen=True)
class WebhookSubscription:
    """One webhook subscription, as the API returned it (immutable).

    Timestamps are timezone-aware UTC datetimes; ``last_delivered_at`` is None
    until a delivery succeeds. The secret itself is never returned by the API,
    only ``secret_configured``.
    """

    #: The API version the object comes from; v2 counts deliveries on the object, v3 does not.
    api_version: ClassVar[str] = "v2"
    has_counters: ClassVar[bool] = True

    id: int
    webhook_url: str
    version: int
    events: tuple[str, ...]
    active: bool
    secret_configured: bool
    delivery_attempts: int
    last_delivered_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> WebhookSubscription:
        """Build from the JSON object the API returns; tolerant of missing optional fields."""
        fields = {
            "id": int(obj["id"]),
            "webhook_url": str(obj.get("webhook_url", "")),
            "version": int(obj.get("version", 2)),
            "events": tuple(obj.get("events") or ()),
            "active": bool(obj.get("active", True)),
            "secret_configured": bool(obj.get("secret_configured", False)),
            "delivery_attempts": int(obj.get("delivery_attempts") or 0),
            "last_delivered_at": parse_datetime(obj.get("last_delivered_at")),
            "created_at": parse_datetime(obj.get("created_at")),
            "updated_at": parse_datetime(obj.get("updated_at")),
        }
        # Every list call builds one per subscription: filling __dict__ directly skips the frozen
        # dataclass's ten guarded setattr calls (half the cost) and gives an equal, still frozen object.
        sub = object.__new__(cls)
        sub.__dict__.update(fields)
        return sub

    def to_api(self) -> dict[str, Any]:
        """The JSON object as the API returns it."""
        return {
            "id": self.id,
            "webhook_url": self.webhook_url,
            "version": self.version,
            "events": list(self.events),
            "active": self.active,
            "secret_configured": self.secret_configured,
            "last_delivered_at": format_datetime(self.last_delivered_at),
            "delivery_attempts": self.delivery_attempts,
            "created_at": format_datetime(self.created_at),
            "updated_at": format_datetime(self.updated_at),
        }

    @property
    def never_delivered(self) -> bool:
        """No delivery has succeeded yet."""
        return self.last_delivered_at is None

    def _repr_html_(self) -> str:
        esc = html.escape
        colour = "#27ae60" if self.active else "#7f8c8d"
        events = " ".join(
            f'<code style="background:rgba(127,127,127,.15);padding:0 3px">{esc(e)}</code>' for e in self.events
        )
        rows = [
            ("URL", f"<code>{esc(self.webhook_url)}</code>"),
            ("Events", events),
            ("Active", "yes" if self.active else "<b>no</b> (receives nothing)"),
            ("Secret", "configured" if self.secret_configured else "none (deliveries are unsigned)"),
            ("Attempts", str(self.delivery_attempts)),
            ("Last delivered", esc(humanize_since(self.last_delivered_at))),
        ]
        body = "".join(
            f'<tr><th style="text-align:left;padding-right:8px">{k}</th><td style="text-align:left">{v}</td></tr>'
            for k, v in rows
        )
        return (
            f'<div class="linq-subscription" style="border-left:4px solid {colour};padding:4px 10px">'
            f"<b>Webhook subscription #{self.id}</b> "
            f'<span style="opacity:.7">v{self.version}</span>'
            f"<table>{body}</table></div>"
        )


class SubscriptionList(Sequence[WebhookSubscription]):
    """What ``list_subscriptions()`` returns: a read-only list of :class:`WebhookSubscription`, built on access.

    It keeps the API's parsed JSON objects (:attr:`records`) and builds each subscription the
    first time it is read (then keeps it), so a list call costs what ``requests`` + ``json``
    cost, and :func:`linq_nb.frames.subscriptions_frame` builds its columns straight from the
    records. It behaves as a list for reading: ``len``, indexing, slicing (a ``list``),
    iteration, ``in``, ``==`` with a list (or another ``SubscriptionList``) of subscriptions,
    ``+``; ``list(result)`` gives a real list.

    A record that is not a valid subscription object raises ``on_error()`` when it is read
    (the client passes a :class:`~linq_nb.errors.ServerError` factory).
    """

    __slots__ = ("_built", "_on_error", "_records")

    def __init__(self, records: Sequence[Mapping[str, Any]],
                 on_error: Callable[[], Exception] | None = None) -> None:
        self._records = records
        self._built: list[WebhookSubscription | None] | None = None
        self._on_error = on_error

    @property
    def records(self) -> Sequence[Mapping[str, Any]]:
        """The JSON objects as the API returned them (shared, not copied: do not change them)."""
        return self._records

    def _build(self, i: int) -> WebhookSubscription:
        built = self._built
        if built is None:
            built = self._built = [None] * len(self._records)
        sub = built[i]
        if sub is None:
            try:
                sub = built[i] = WebhookSubscription.from_api(self._records[i])
            except (KeyError, TypeError, ValueError, AttributeError):
                if self._on_error is None:
                    raise
                raise self._on_error() from None
        return sub

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> WebhookSubscription: ...
    @overload
    def __getitem__(self, index: slice) -> list[WebhookSubscription]: ...
    def __getitem__(self, index: int | slice) -> WebhookSubscription | list[WebhookSubscription]:
        if isinstance(index, slice):
            return [self._build(i) for i in range(*index.indices(len(self._records)))]
        n = len(self._records)
        i = index.__index__()
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("SubscriptionList index out of range")
        return self._build(i)

    def __iter__(self) -> Iterator[WebhookSubscription]:
        for i in range(len(self._records)):
            yield self._build(i)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, SubscriptionList)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking, like a list

    def __add__(self, other: Sequence[WebhookSubscription]) -> list[WebhookSubscription]:
        return [*self, *other]

    def __radd__(self, other: Sequence[WebhookSubscription]) -> list[WebhookSubscription]:
        return [*other, *self]

    def __repr__(self) -> str:
        return repr(list(self))

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        """IPython shows it exactly as the list it stands for."""
        p.pretty(list(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (SubscriptionList, (list(self._records),))  # pickles as its records, without the error hook


_MASK = "[secure]"


@dataclass(frozen=True, repr=False)
class WebhookSubscriptionV3:
    """One v3 webhook subscription, as the API returned it (immutable).

    v3 names its fields ``target_url``, ``subscribed_events`` and ``is_active``; the v2 names
    (``webhook_url``, ``events``, ``active``) are read-only aliases, so code written for both
    versions reads either object. Ids are UUID strings. **v3 has no delivery counters**: there
    is no ``delivery_attempts`` or ``last_delivered_at`` (``has_counters`` is False); see a
    receiver's or the sandbox's attempt log for delivery health instead.

    ``signing_secret`` is set only on the object ``create_subscription`` returned, the one time
    the API shows it. It is masked in every repr and left out of equality and ``to_api()``;
    read the attribute itself to store it somewhere safe.
    """

    api_version: ClassVar[str] = "v3"
    has_counters: ClassVar[bool] = False

    id: str
    target_url: str
    subscribed_events: tuple[str, ...]
    is_active: bool
    phone_numbers: tuple[str, ...] | None
    routing_key_header: str | None
    routing_id_header: str | None
    created_at: datetime | None
    updated_at: datetime | None
    signing_secret: str | None = field(default=None, compare=False)

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> WebhookSubscriptionV3:
        """Build from the JSON object the API returns (the create answer's ``signing_secret`` kept)."""
        phones = obj.get("phone_numbers")
        secret = obj.get("signing_secret")
        fields = {
            "id": str(obj["id"]),
            "target_url": str(obj.get("target_url", "")),
            "subscribed_events": tuple(str(e) for e in obj.get("subscribed_events") or ()),
            "is_active": bool(obj.get("is_active", True)),
            "phone_numbers": tuple(str(p) for p in phones) if phones else None,
            "routing_key_header": obj.get("routing_key_header") or None,
            "routing_id_header": obj.get("routing_id_header") or None,
            "created_at": parse_datetime(obj.get("created_at")),
            "updated_at": parse_datetime(obj.get("updated_at")),
            "signing_secret": str(secret) if isinstance(secret, str) and secret else None,
        }
        sub = object.__new__(cls)
        sub.__dict__.update(fields)  # as WebhookSubscription.from_api: same object, no guarded setattr
        return sub

    def to_api(self) -> dict[str, Any]:
        """The JSON object as list and retrieve return it (never the signing secret)."""
        return {
            "id": self.id,
            "target_url": self.target_url,
            "subscribed_events": list(self.subscribed_events),
            "is_active": self.is_active,
            "phone_numbers": list(self.phone_numbers) if self.phone_numbers else None,
            "routing_key_header": self.routing_key_header,
            "routing_id_header": self.routing_id_header,
            "created_at": format_datetime(self.created_at),
            "updated_at": format_datetime(self.updated_at),
        }

    # --- the generic names frames and widgets read ------------------------------------------------------------

    @property
    def webhook_url(self) -> str:
        """v2's name for :attr:`target_url`."""
        return self.target_url

    @property
    def events(self) -> tuple[str, ...]:
        """v2's name for :attr:`subscribed_events`."""
        return self.subscribed_events

    @property
    def active(self) -> bool:
        """v2's name for :attr:`is_active`."""
        return self.is_active

    @property
    def secret_configured(self) -> bool:
        """Always True: every v3 subscription signs its deliveries (with the secret create returned)."""
        return True

    @property
    def webhook_version(self) -> str | None:
        """The payload version the target URL asks for (``?version=2026-02-03``), or None (the newest)."""
        values = parse_qs(urlsplit(self.target_url).query).get("version")
        return values[0] if values else None

    # --- display ----------------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        secret = f", signing_secret={_MASK!r}" if self.signing_secret else ""
        return (f"WebhookSubscriptionV3(id={self.id!r}, target_url={self.target_url!r}, "
                f"subscribed_events={self.subscribed_events!r}, is_active={self.is_active!r}, "
                f"phone_numbers={self.phone_numbers!r}{secret})")

    __str__ = __repr__

    def __reduce_ex__(self, protocol: Any) -> Any:
        if self.signing_secret:
            raise TypeError("this WebhookSubscriptionV3 holds its signing_secret and is not pickled, so the secret "
                            "never lands in a file by accident; store sub.signing_secret in a secret store, and "
                            "pickle dataclasses.replace(sub, signing_secret=None) if you must")
        return super().__reduce_ex__(protocol)

    def _repr_html_(self) -> str:
        esc = html.escape
        colour = "#27ae60" if self.is_active else "#7f8c8d"
        events = " ".join(
            f'<code style="background:rgba(127,127,127,.15);padding:0 3px">{esc(e)}</code>'
            for e in self.subscribed_events
        )
        secret = ("shown once, kept on this object as <code>.signing_secret</code> (masked here): store it now"
                  if self.signing_secret else "not shown again (only the create answer has it)")
        rows = [
            ("Target URL", f"<code>{esc(self.target_url)}</code>"),
            ("Events", events),
            ("Active", "yes" if self.is_active else "<b>no</b> (receives nothing)"),
            ("Phone numbers", esc(", ".join(self.phone_numbers)) if self.phone_numbers else "all"),
            ("Signing secret", secret),
            ("Counters", "none in v3: see the receiver's or the sandbox's attempt log"),
        ]
        if self.routing_key_header:
            rows.append(("Routing headers", esc(f"{self.routing_key_header} / {self.routing_id_header or ''}")))
        body = "".join(
            f'<tr><th style="text-align:left;padding-right:8px">{k}</th><td style="text-align:left">{v}</td></tr>'
            for k, v in rows
        )
        return (
            f'<div class="linq-subscription" style="border-left:4px solid {colour};padding:4px 10px">'
            f"<b>Webhook subscription <code>{esc(self.id)}</code></b> "
            f'<span style="opacity:.7">v3</span>'
            f"<table>{body}</table></div>"
        )
