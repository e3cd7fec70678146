"""``WebhookSubscription``: the subscription object every v2 call returns. Standard library only."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

__all__ = ["WebhookSubscription", "parse_datetime", "format_datetime", "humanize_since"]

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
