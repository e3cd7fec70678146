"""Rebuild linq_nb/catalog/v3.json from an installed linq-python (the SDK is the newest word on v3 events).

    .venv/bin/pip install 'linq-python[webhooks]==X.Y.Z'    # the release that added events
    .venv/bin/python scripts/refresh_v3_catalog.py            # rewrites linq_nb/catalog/v3.json
    .venv/bin/python -m pytest tests/test_catalog.py -q       # every sample still unwraps with the SDK

Names come from ``linq.types.WebhookEventType`` in the SDK's order. Each sample ``data`` is, in order
of preference: the one already in v3.json (hand-tuned samples survive a refresh), the example in the
OpenAPI spec's ``webhooks:`` section, or one built from the SDK's payload type for that event, with
field values chosen by field name. Every sample is checked against the SDK's pydantic type before it
is written. A new event gets a description from DESCRIPTIONS below, or a placeholder to fill in.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import sys
import types
import typing
import uuid
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import linq
import pydantic
import yaml
from linq.types import webhook_event_type

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "linq_nb" / "catalog" / "v3.json"
# shared/ sits beside the repository (or beside the folder of worktrees)
SPEC = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.exists()),
            ROOT.parent / "shared") / "specs" / "linq-api-v3.openapi.yaml"

DESCRIPTIONS = {
    "message.sent": "A message was sent from one of your lines (not necessarily delivered yet)",
    "message.received": "A message arrived on one of your lines",
    "message.read": "A message you sent was read",
    "message.delivered": "A message you sent was delivered",
    "message.failed": "A message you sent could not be delivered",
    "message.edited": "A message was edited (2026-02-03 webhook version only)",
    "reaction.added": "A tapback reaction was added to a message, by you or the other side",
    "reaction.removed": "A tapback reaction was taken back",
    "poll.received": "A poll arrived in a chat",
    "poll.failed": "A poll you sent could not be delivered",
    "poll.sent": "A poll was sent from one of your lines",
    "poll.delivered": "A poll you sent was delivered",
    "poll.read": "A poll you sent was read",
    "poll.updated": "A poll's options changed",
    "poll.vote.added": "Someone voted in a poll",
    "poll.vote.removed": "Someone took back a poll vote",
    "poll.reaction.added": "Someone reacted to a poll",
    "participant.added": "A participant joined a group chat",
    "participant.removed": "A participant left a group chat",
    "chat.created": "A chat was created",
    "chat.group_name_updated": "A group chat was renamed",
    "chat.group_icon_updated": "A group chat's icon changed",
    "chat.group_name_update_failed": "Renaming a group chat failed",
    "chat.group_icon_update_failed": "Changing a group chat's icon failed",
    "chat.background_updated": "A chat's background changed",
    "chat.background_update_failed": "Changing a chat's background failed",
    "chat.typing_indicator.started": "The other side started typing",
    "chat.typing_indicator.stopped": "The other side stopped typing",
    "phone_number.status_updated": "One of your lines changed status",
    "phone_number.assigned": "A line was assigned to your account",
    "phone_number.released": "A line was released from your account",
    "contact_card.received": "Someone shared a contact card in a chat",
    "call.initiated": "A call was started",
    "call.ringing": "A call is ringing",
    "call.answered": "A call was answered",
    "call.ended": "A call ended",
    "call.failed": "A call could not be connected",
    "call.declined": "A call was declined",
    "call.no_answer": "A call rang out unanswered",
    "location.sharing.started": "Someone started sharing their location",
    "location.sharing.stopped": "Someone stopped sharing their location",
    "payment.succeeded": "A payment went through",
    "payment.canceled": "A payment was canceled",
    "payment.expired": "A payment request expired",
    "payment.declined": "A payment was declined",
    "payment.authorized": "A payment was authorized",
    "connection.created": "A payment provider was connected",
    "connection.revoked": "A payment provider connection was revoked",
    "zero_day_retention.updated": "Zero-day data retention was turned on or off",
    "phone_number.forwarding_updated": "A line's call forwarding changed",
    "environment.line_moved": "A line moved to another environment",
    "contact_card.created": "Your line's contact card was created",
    "contact_card.updated": "Your line's contact card was changed",
    "contact_card.deleted": "Your line's contact card was deleted",
    "api_token.created": "An API token was created",
    "api_token.renamed": "An API token was renamed",
    "api_token.expiry_scheduled": "An API token was given an expiry date",
    "api_token.expired": "An API token expired",
    "api_token.activated": "An API token was activated",
    "api_token.deleted": "An API token was deleted",
    "environment.created": "An environment was created",
    "environment.renamed": "An environment was renamed",
    "environment.deleted": "An environment was deleted",
    "webhook_subscription.created": "A webhook subscription was created",
    "webhook_subscription.deleted": "A webhook subscription was deleted",
    "webhook_subscription.target_url_changed": "A webhook subscription's target URL changed",
    "webhook_subscription.enabled": "A webhook subscription was turned on",
    "webhook_subscription.disabled": "A webhook subscription was turned off",
    "webhook_subscription.events.updated": "A webhook subscription's events changed",
    "webhook_subscription.phone_numbers.updated": "A webhook subscription's phone-number filter changed",
    "webhook_subscription.routing_headers_set": "A webhook subscription's routing headers were set",
    "webhook_subscription.routing_headers_cleared": "A webhook subscription's routing headers were cleared",
    "team_member.added": "A team member joined your account",
    "team_member.signed_in": "A team member signed in",
    "team_member.signed_out": "A team member signed out",
}

LINE = "+12025551234"      # your line
OTHER = "+12025559876"     # the other side
WHEN = "2026-02-05T19:52:17.219Z"


def _uuid(path: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"linq-nb-sample/{EVENT[0]}/{path}"))


def _string(name: str, path: str) -> str:
    n = name.lower()
    if n == "id" or n.endswith("_id"):
        return _uuid(path)
    if "phone" in n or n in ("handle", "from", "to", "from_", "number"):
        return LINE if "owner" in path or n in ("phone_number", "number") else OTHER
    if "email" in n:
        return "ada@example.com"
    if n in ("first_name",):
        return "Ada"
    if n in ("last_name",):
        return "Lovelace"
    if "name" in n:
        return "Ada Lovelace"
    if n == "target_url":
        return "https://example.com/webhooks/linq"
    if "url" in n:
        return "https://cdn.linqapp.com/samples/" + path.replace(".", "/")
    if n.endswith("_at") or n in ("timestamp", "date"):
        return WHEN
    if n == "service":
        return "iMessage"
    if n == "object":
        return "payment"
    if n == "status":
        return "active"
    if "prefix" in n:
        return "lq_live_ab12"
    if n == "summary":
        return DESCRIPTIONS.get(EVENT[0], "An account change")
    if n in ("reason", "error", "error_message", "failure_reason"):
        return "The recipient's device could not be reached"
    if n in ("currency",):
        return "usd"
    if n in ("mime_type",):
        return "image/jpeg"
    if n in ("filename",):
        return "photo.jpg"
    return "Hello from the Linq sandbox"


def _fake(ann: Any, name: str, path: str, depth: int) -> Any:
    origin = get_origin(ann)
    if origin is typing.Annotated:
        return _fake(get_args(ann)[0], name, path, depth)
    if origin is Literal:
        return get_args(ann)[0]
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(ann) if a is not type(None)]
        return _fake(options[0], name, path, depth)
    if origin in (list, typing.List, tuple):  # noqa: UP006
        return [_fake(get_args(ann)[0], name, path + ".0", depth + 1)]
    if origin in (dict, typing.Dict):  # noqa: UP006
        return {}
    if isinstance(ann, type) and issubclass(ann, pydantic.BaseModel):
        return _model(ann, path, depth + 1)
    if ann is bool:
        return name.startswith("is_me") or name in ("is_active", "enabled")
    if ann is int:
        return {"size_bytes": 245678, "duration": 125, "amount": 2500}.get(name, 1)
    if ann is float:
        return 1.0
    if ann in (dt.datetime, dt.date):
        return WHEN if ann is dt.datetime else WHEN[:10]
    if ann is str:
        return _string(name, path)
    return None


# Optional fields worth showing, by event-name prefix (account events carry only the object they are about).
_ACCOUNT_OBJECTS = {"api_token": "api_token", "webhook_subscription": "webhook_subscription",
                    "contact_card": "contact_card", "environment": "environment", "team_member": "team_member",
                    "phone_number": "phone_number", "zero_day_retention": "phone_number"}
_UPDATES = ("updated", "renamed", "changed", "expiry_scheduled", "line_moved", "routing_headers_set",
            "routing_headers_cleared")


_MESSAGE_FIELDS = {"chat_id", "from", "from_handle", "message_id", "reacted_at", "service", "part_index", "chat",
                   "direction", "sender_handle", "is_group", "sent_at"}


def _wanted(event: str, path: str, key: str) -> bool:
    """Whether an optional field appears in the sample."""
    if path == "data":  # a field of data itself
        prefix, _, kind = event.partition(".")
        if key == _ACCOUNT_OBJECTS.get(prefix):
            return True
        if key == "change" and kind.endswith(_UPDATES) and not event.startswith("contact_card.updated"):
            return True
        if event == "environment.line_moved" and key == "phone_number":
            return True
    if path == "data" and key in _MESSAGE_FIELDS:
        return True
    if path.endswith(".actor") and key in ("id", "name", "email"):
        return True
    if path.endswith(".chat") and key in ("owner_handle", "is_group"):
        return True
    if path.endswith("webhook_subscription") and key in ("target_url",):
        return True
    if path.endswith("webhook_subscription") and key == "events":
        return event.endswith(".created")
    return key in ("name", "expires_at", "last_name", "image_url") and not path.endswith(".change")


def _model(cls: type[pydantic.BaseModel], path: str, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field_name, field in cls.model_fields.items():
        key = field.alias or field_name
        if not field.is_required() and not _wanted(EVENT[0], path, key):
            continue
        out[key] = _fake(field.annotation, key, f"{path}.{key}", depth)
    return out


EVENT = [""]  # the event being built (read by _wanted)


_ENV = {"name": "Staging", "type": "environment"}
CHANGES: dict[str, dict[str, Any]] = {
    "api_token.renamed": {"from": "CI token", "to": "Deploy token"},
    "api_token.expiry_scheduled": {"from": None, "to": "2026-03-01T00:00:00Z"},
    "environment.renamed": {"from": "Staging", "to": "QA"},
    "environment.line_moved": {"from": _ENV, "to": {"name": "Production", "type": "environment"}},
    "webhook_subscription.target_url_changed": {"from": "https://old.example.com/linq",
                                                "to": "https://example.com/webhooks/linq"},
    "webhook_subscription.events.updated": {"from": ["message.received"], "to": ["message.received", "message.read"]},
    "webhook_subscription.phone_numbers.updated": {"from": None, "to": [LINE]},
    "webhook_subscription.routing_headers_set": {
        "from": None, "to": {"routing_key_header": "X-Routing-Key", "routing_id_header": "Linq-Chat-Id"}},
    "webhook_subscription.routing_headers_cleared": {
        "from": {"routing_key_header": "X-Routing-Key", "routing_id_header": "Linq-Chat-Id"}, "to": None},
    "zero_day_retention.updated": {"from": False, "to": True},
    "phone_number.forwarding_updated": {"from": None, "to": "+12025550199"},
    "contact_card.updated": {"first_name": {"from": "Ada", "to": "Augusta Ada"}},
}


def _merge(base: Any, over: Any) -> Any:
    """``over`` on top of ``base``, recursively for objects."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}
    return over


def _event_class(name: str) -> type[pydantic.BaseModel] | None:
    module = name.replace(".", "_") + "_webhook_event"
    try:
        mod = importlib.import_module(f"linq.types.{module}")
    except ImportError:
        return None
    classes = [v for v in vars(mod).values() if isinstance(v, type) and issubclass(v, pydantic.BaseModel)
               and v.__module__ == mod.__name__ and v.__name__.endswith("WebhookEvent")]
    return classes[0] if classes else None


def _spec_examples() -> dict[str, dict[str, Any]]:
    if not SPEC.exists():
        return {}
    spec = yaml.safe_load(SPEC.read_text())
    found = {}
    for key, hook in spec.get("webhooks", {}).items():  # the 2026-02-03 ones: the sandbox's webhook version
        example = hook["post"]["requestBody"]["content"]["application/json"].get("example")
        if key.endswith(".v2026") and example and example.get("event_type"):
            found.setdefault(example["event_type"], example["data"])
    return found


def call_sample(name: str) -> dict[str, Any]:
    status = name.split(".", 1)[1]
    ended = status in ("ended", "failed", "declined", "no_answer")
    return {
        "id": _uuid(name + ".call"),
        "chat": {"id": _uuid("chat"), "is_group": False,
                 "owner_handle": {"handle": LINE, "id": _uuid("owner"), "is_me": True, "service": "iMessage"}},
        "direction": "inbound",
        "from": OTHER,
        "to": LINE,
        "status": status,
        "call_type": "voice",
        "started_at": WHEN,
        "ended_at": "2026-02-05T19:54:22.219Z" if ended else None,
        "duration_seconds": 125 if status == "ended" else 0 if ended else None,
    }


def envelope(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"api_version": "v3", "webhook_version": "2026-02-03", "event_type": name, "event_id": _uuid(name),
            "created_at": WHEN, "trace_id": "2eff5df5c6f688733c007523c4d61cd9", "partner_id": "sandbox-partner",
            "data": data}


def main() -> int:
    names = list(get_args(webhook_event_type.WebhookEventType))
    old = {}
    if OUT.exists():
        old = {e["name"]: e for e in json.loads(OUT.read_text())["events"]}
    examples = _spec_examples()
    events = []
    for name in names:
        cls = _event_class(name)
        candidates = []
        if name in old and old[name].get("sample_from") != "placeholder":
            candidates.append((old[name]["sample"], old[name].get("sample_from", "hand")))
        EVENT[0] = name
        built = _fake(cls.model_fields["data"].annotation, "data", "data", 0) if cls is not None else None
        if name in examples:
            candidates.append((examples[name], "openapi example"))
            if built is not None:
                candidates.append((_merge(built, examples[name]),
                                   f"openapi example, with the fields {cls.__name__} now requires"))
        if built is not None:
            if name in CHANGES:
                built["change"] = CHANGES[name]
            else:
                built.pop("change", None)
            candidates.append((built, "built from " + cls.__name__))
        else:
            candidates.append((call_sample(name), "hand-written: the SDK has no payload type for it; modelled on "
                                                  "v2's call.completed in v3's naming"))
        for sample, source in candidates:
            if cls is None:
                break
            try:
                cls.model_validate(envelope(name, sample))
                break
            except pydantic.ValidationError as exc:
                print(f"{name}: {source} does not validate ({exc.error_count()} errors); trying the next",
                      file=sys.stderr)
        else:
            raise SystemExit(f"{name}: no sample validates against {cls.__name__ if cls else '?'}")
        events.append({"name": name, "description": DESCRIPTIONS.get(name, "TODO: describe " + name),
                       "payload_type": cls.__name__ if cls else None, "sample_from": source, "sample": sample})
    doc = {
        "version": "v3",
        "source": f"linq-python {linq.__version__} (linq/types/webhook_event_type.py), in the SDK's order",
        "webhook_version": "2026-02-03",
        "doc_url": "https://docs.linqapp.com/channel/imessage/guides/webhooks/events",
        "events": events,
    }
    OUT.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(events)} events to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
