"""The fourteen Linq v2 webhook events, what each means, and realistic sample payloads.

Standard library only. The data lives in ``linq_nb/catalog/v2.json`` (see the README there);
``EVENTS`` is the catalogue that validation, the forms and the sandbox share; ``sample_data``
builds the ``data`` object of a sandbox event. v3's events: :mod:`linq_nb.wire.v3`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .catalog import load as _load

__all__ = ["EVENTS", "EVENT_TYPES", "sample_data", "make_envelope"]

_CATALOG = _load("v2")
#: Every v2 event name with a one-line meaning, in the order Linq's docs list them (from ``catalog/v2.json``).
EVENTS: dict[str, str] = {name: _CATALOG.description(name) for name in _CATALOG.names}

#: The event names alone, as a tuple (handy for ``in`` tests and widgets).
EVENT_TYPES: tuple[str, ...] = tuple(EVENTS)


def sample_data(event_type: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A realistic ``data`` object for ``event_type``, with ``overrides`` merged on top.

    >>> sample_data("contact.deleted", {"id": 7})
    {'id': 7}
    """
    if event_type not in _CATALOG:
        raise ValueError(f"unknown event type {event_type!r}; valid event types: {', '.join(EVENT_TYPES)}")
    data = _CATALOG.sample(event_type)
    data.update(overrides or {})
    return data


def make_envelope(event_type: str, data: Mapping[str, Any], *, event_id: str | None = None,
                  created_at: datetime | None = None) -> dict[str, Any]:
    """The v2 delivery envelope around ``data`` (keys as Linq sends them)."""
    when = (created_at or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    return {
        "api_version": "v2",
        "created_at": when.replace("+00:00", "Z"),
        "data": dict(data),
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
    }
