"""``WebhookSubscription``: the subscription object every v2 call returns. Standard library only."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, overload

__all__ = ["WebhookSubscription", "SubscriptionList", "parse_datetime", "format_datetime", "humanize_since"]

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
