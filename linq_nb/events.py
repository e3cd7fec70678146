"""The fourteen Linq v2 webhook events, what each means, and realistic sample payloads.

Standard library only. ``EVENTS`` is the catalogue that validation, the forms and
the sandbox share; ``sample_data`` builds the ``data`` object of a sandbox event.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

__all__ = ["EVENTS", "EVENT_TYPES", "sample_data", "make_envelope"]

#: Every v2 event name with a one-line meaning, in the order Linq's docs list them.
EVENTS: dict[str, str] = {
    "message.sent": "A Linq user sent a message",
    "message.received": "A Linq user received a message",
    "message.read": "Messages were marked read",
    "call.completed": "A voice call ended",
    "reaction.sent": "A tapback reaction was sent",
    "reaction.received": "A tapback reaction was received",
    "typing_indicator.received": "The other side started typing",
    "typing_indicator.removed": "The other side stopped typing",
    "chat.created": "A chat was created through the API",
    "contact.created": "A contact was created through the API",
    "contact.updated": "A contact was updated through the API",
    "contact.deleted": "A contact was deleted through the API",
    "participant.added": "A participant joined a group chat",
    "participant.removed": "A participant left a group chat",
}

#: The event names alone, as a tuple (handy for ``in`` tests and widgets).
EVENT_TYPES: tuple[str, ...] = tuple(EVENTS)

_HANDLES = [
    {"identifier": "+13035550100", "display_name": "You", "is_me": True},
    {"identifier": "+13035550123", "display_name": "Ada Lovelace", "is_me": False},
]
_CONTACT = {
    "id": 4242,
    "first_name": "Ada",
    "last_name": "Lovelace",
    "full_name": "Ada Lovelace",
    "email": "ada@example.com",
    "phone_number": "+13035550123",
    "company": "Analytical Engines",
    "title": "Programmer",
    "location": "London",
    "image_url": None,
    "created_at": "2025-05-21T21:30:00Z",
    "updated_at": "2025-05-21T21:30:00Z",
    "contact_owner": "you@example.com",
}
_MESSAGE = {
    "id": "msg_1001",
    "chat_id": "chat_2001",
    "text": "Hello from the Linq sandbox",
    "sent_at": "2025-05-21 15:30:00 -0600",
    "is_read": False,
    "from_phone": "+13035550123",
    "service": "iMessage",
    "reaction_id": None,
    "chat_handles": _HANDLES,
    "attachments": [],
}

_SAMPLES: dict[str, dict[str, Any]] = {
    "message.sent": {**_MESSAGE, "from_phone": "+13035550100", "is_read": True},
    "message.received": _MESSAGE,
    "message.read": {"id": "msg_1001", "chat_id": "chat_2001", "read_at": "2025-05-21 15:31:00 -0600"},
    "call.completed": {
        "id": "call_3001",
        "to": "+13035550100",
        "from": "+13035550123",
        "status": "completed",
        "direction": "inbound",
        "start_time": "2025-05-21T21:30:00Z",
        "end_time": "2025-05-21T21:32:05Z",
        "duration": 125,
        "call_type": "voice",
        "forwarded_from": None,
        "answered_by": "human",
        "voicemail": False,
        "has_recording": True,
        "recording_data": {
            "id": "rec_4001",
            "url": "https://example.com/recordings/rec_4001.mp3",
            "duration": 125,
            "transcribed": True,
            "transcript_available": True,
            "transcription": "Hi, it's Ada. Call me back about the engine.",
            "summary": "Ada asked for a call back.",
        },
    },
    "reaction.sent": {
        "id": "rx_5001",
        "chat_message_id": "msg_1001",
        "chat_id": "chat_2001",
        "reaction": "love",
        "is_from_me": True,
        "sent_at": "2025-05-21 15:32:00 -0600",
        "created_at": "2025-05-21T21:32:00Z",
        "chat_handle": {"id": "h_1", "identifier": "+13035550100"},
        "chat_handles": _HANDLES,
        "associated_message": {
            "id": "msg_1001",
            "text": "Hello from the Linq sandbox",
            "sent_at": "2025-05-21 15:30:00 -0600",
        },
    },
    "typing_indicator.received": {
        "chat_id": "chat_2001",
        "display": True,
        "timestamp": "2025-05-21T21:33:00Z",
        "chat_handles": _HANDLES,
    },
    "chat.created": {
        "id": "chat_2001",
        "display_name": "Ada Lovelace",
        "service": "iMessage",
        "group": False,
        "message_count": 0,
        "chat_handles": _HANDLES,
    },
    "contact.created": _CONTACT,
    "contact.updated": {**_CONTACT, "title": "Lead Programmer", "updated_at": "2025-05-22T09:00:00Z"},
    "contact.deleted": {"id": 4242},
    "participant.added": {"chat_id": "chat_2002", **_HANDLES[1]},
}
_SAMPLES["reaction.received"] = {
    **_SAMPLES["reaction.sent"],
    "id": "rx_5002",
    "is_from_me": False,
    "chat_handle": {"id": "h_2", "identifier": "+13035550123"},
}
_SAMPLES["typing_indicator.removed"] = {**_SAMPLES["typing_indicator.received"], "display": False}
_SAMPLES["participant.removed"] = _SAMPLES["participant.added"]


def sample_data(event_type: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A realistic ``data`` object for ``event_type``, with ``overrides`` merged on top.

    >>> sample_data("contact.deleted", {"id": 7})
    {'id': 7}
    """
    if event_type not in _SAMPLES:
        raise ValueError(f"unknown event type {event_type!r}; valid event types: {', '.join(EVENT_TYPES)}")
    data = copy.deepcopy(_SAMPLES[event_type])
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
