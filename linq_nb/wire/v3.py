"""Linq Partner API v3 on the wire (``shared/docs/linq-v3-api.md``, linq-python 0.65.0): data and pure functions.

Standard library only; the same names as :mod:`linq_nb.wire.v2` (see :mod:`linq_nb.wire`).
The sandbox serves these shapes and the client sends and reads them.

- Paths under ``/api/partner``: ``/v3/webhook-subscriptions[/{id}]`` and ``/v3/webhook-events``.
- ``Authorization: Bearer <token>`` (the same token as v2's ``X-LINQ-INTEGRATION-TOKEN``).
- Ids are UUID strings. Bodies are flat (no wrapper object).
- Errors: ``{"error": {"status", "code", "message"}, "success": false, "trace_id"}``. Codes: the
  doc's per-status ones (400 1002, 401 2004, 403 2005, 404 2001, 422 1003, 500 3006), refined
  by the spec's ``ErrorCode`` table where it names the cause [decided]: 1001 a required field is
  missing, 1002 a phone number is not E.164, 1003 the body is not JSON, 1005 any other invalid
  value (also a ``target_url`` already used: 409), 1007 rate limited (429).
- Deliveries carry both header sets: Standard Webhooks (``webhook-id`` = the event id, the same
  on every retry; ``webhook-timestamp``; ``webhook-signature: v1,<base64>`` of
  ``"{id}.{timestamp}.{body}"`` keyed by the base64-decoded secret after ``whsec_``) and the
  legacy ``X-Webhook-*`` (hex HMAC of ``"{timestamp}.{body}"`` keyed by the whole secret string).

A record (what the sandbox's store keeps) is described in :mod:`linq_nb.wire.v2`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .. import catalog as _catalog
from ..validation import shorten, url_problems

__all__ = [
    "VERSION", "API_VERSION", "BASE_PATH", "COLLECTION_PATH", "EVENTS_PATH", "member_path", "AUTH_HEADER",
    "AUTH_DESCRIPTION",
    "auth_headers", "token_from_environ", "parse_id", "new_id", "ID_DESCRIPTION", "request_body", "fields_of",
    "CREATE_FIELDS", "UPDATE_FIELDS", "create_problems", "update_problems", "problem_code", "subscription_object",
    "list_body", "item_body", "ERROR_CODES", "error_body", "error_message", "EVENT_TYPES", "catalog", "DOC_URL",
    "events_body", "WEBHOOK_VERSION", "sample_data", "make_envelope", "encode", "event_phone_number",
    "SECRET_PREFIX", "new_signing_secret", "signing_key", "standard_signature", "legacy_signature",
    "STANDARD_HEADERS", "LEGACY_HEADERS", "delivery_headers", "HAS_COUNTERS", "DEFAULT_ROUTING_ID_HEADER",
    "TOLERANCE_SECONDS", "record_fields", "MAX_PHONE_NUMBERS", "UNIQUE_URL", "VALIDATION_STATUS", "BODY_HINT",
    "with_phone_number",
    "routing_headers", "created_body", "change_events",
]

VERSION = "v3"
API_VERSION = "v3"
BASE_PATH = "/api/partner"
COLLECTION_PATH = BASE_PATH + "/v3/webhook-subscriptions"
EVENTS_PATH: str | None = BASE_PATH + "/v3/webhook-events"
#: How the token is sent, as a message shows it.
AUTH_DESCRIPTION = "Authorization: Bearer <token>"
AUTH_HEADER = "Authorization"
#: The request field that holds the URL deliveries go to.
URL_FIELD = "target_url"
ID_DESCRIPTION = "ids are UUIDs such as b2c3d4e5-f6a7-8901-bcde-f23456789012"
#: v3 has no delivery counters on the subscription object.
HAS_COUNTERS = False
#: The ``?version=`` of a target URL picks it; this is the newest (and the sandbox's only) one.
WEBHOOK_VERSION = "2026-02-03"
DOC_URL = "https://docs.linqapp.com/channel/imessage/guides/webhooks/events"  # as linq-python 0.65.0 types it
DEFAULT_ROUTING_ID_HEADER = "Linq-Chat-Id"
SECRET_PREFIX = "whsec_"
#: Receivers reject a ``webhook-timestamp`` further than this from their clock.
TOLERANCE_SECONDS = 300
STANDARD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
LEGACY_HEADERS = ("X-Webhook-Event", "X-Webhook-Subscription-ID", "X-Webhook-Timestamp", "X-Webhook-Signature")

#: A target URL can be used once per account (a second gets a 409 naming the holder).
UNIQUE_URL = True
VALIDATION_STATUS = 400
BODY_HINT = '{"target_url": "https://...", "subscribed_events": ["message.received"]}'
#: HTTP status -> Linq error code, when nothing more precise applies.
ERROR_CODES = {400: 1002, 401: 2004, 403: 2005, 404: 2001, 405: 1005, 409: 1005, 413: 1003, 422: 1003,
               429: 1007, 500: 3006, 502: 4004, 503: 4004, 504: 3005}

catalog = _catalog.load("v3")
EVENT_TYPES: tuple[str, ...] = catalog.names

CREATE_FIELDS = ("target_url", "subscribed_events", "phone_numbers", "routing_key_header", "routing_id_header")
UPDATE_FIELDS = (*CREATE_FIELDS, "is_active")
_REQUIRED = ("target_url", "subscribed_events")
_V2_NAMES = {"webhook_url": "target_url", "events": "subscribed_events", "active": "is_active",
             "secret": None, "version": None}
#: The most numbers one subscription may filter on [decided: Linq documents no limit].
MAX_PHONE_NUMBERS = 100
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
_RESERVED_HEADERS = {"content-type", "content-length", "host", "user-agent", "authorization", "connection",
                     "transfer-encoding", *(h.lower() for h in (*STANDARD_HEADERS, *LEGACY_HEADERS))}


def member_path(sub_id: object) -> str:
    return f"{COLLECTION_PATH}/{sub_id}"


def auth_headers(token: str) -> dict[str, str]:
    return {AUTH_HEADER: f"Bearer {token}"}


def token_from_environ(environ: Mapping[str, Any]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme case-insensitive), or None."""
    value = environ.get("HTTP_AUTHORIZATION") or ""
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def parse_id(text: str) -> str | None:
    """A path's subscription id in canonical UUID form, or None when it is not a UUID."""
    if len(text) > 64:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def new_id() -> str:
    return str(uuid.uuid4())


def request_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A create or update body: the fields themselves."""
    return dict(fields)


def fields_of(body: Any) -> dict[str, Any] | None:
    return body if isinstance(body, dict) else None


# -- validation -------------------------------------------------------------------------
def _events_problems(events: object) -> list[str]:
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        return ["subscribed_events must be an array of event names"]
    if not events:
        return ["subscribed_events must name at least one event; GET /v3/webhook-events lists them"]
    bad = [e for e in events if e not in catalog]
    if bad:
        hints = []
        mapping = _catalog.v2_to_v3()
        for e in bad[:5]:
            entry = mapping.get(e)
            if entry and entry["v3"] and e not in entry["v3"]:
                hints.append(f"{e!r} is a v2 name; in v3 it is {' or '.join(map(repr, entry['v3']))}")
            elif entry:
                hints.append(f"{e!r} is a v2 event with no v3 equivalent")
        names = ", ".join(shorten(e, 40) for e in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        hint = f" ({'; '.join(hints)})" if hints else ""
        return [f"subscribed_events has unknown event{'s' if len(bad) > 1 else ''} {names}{hint}; "
                "GET /v3/webhook-events lists the valid ones"]
    repeated = [e for e, n in Counter(events).items() if n > 1]
    if repeated:
        return [f"subscribed_events lists {', '.join(map(repr, repeated))} more than once; name each event once"]
    return []


def _phone_problems(numbers: object) -> list[str]:
    if numbers is None:
        return []
    if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
        return ["phone_numbers must be an array of phone numbers in E.164 format, such as +14155551234, or null"]
    if len(numbers) > MAX_PHONE_NUMBERS:
        return [f"phone_numbers lists {len(numbers)} numbers, over the limit of {MAX_PHONE_NUMBERS}; "
                "use several subscriptions, or no filter"]
    bad = [n for n in numbers if not _E164.fullmatch(n)]
    if bad:
        return [f"phone_numbers: {', '.join(shorten(n, 30) for n in bad[:3])} must be in E.164 format, "
                "such as +14155551234 (a plus, the country code, the number, no spaces)"]
    if len(set(numbers)) != len(numbers):
        return ["phone_numbers lists a number more than once; name each once"]
    return []


def _header_problems(name: str, value: object, *, nullable: bool) -> list[str]:
    if value is None or (nullable and value == ""):
        return [] if nullable else [f"{name} must be a header name such as X-Routing-Key"]
    if not isinstance(value, str) or not _HEADER_NAME.fullmatch(value):
        return [f"{name} must be an HTTP header name (letters, digits and -, at most 64), such as X-Routing-Key; "
                f"got {shorten(value, 40)}"]
    if value.lower() in _RESERVED_HEADERS:
        return [f"{name} {value!r} is a header every delivery sets itself; choose another name"]
    return []


def _problems(fields: Mapping[str, Any], allowed: tuple[str, ...], *, create: bool,
              https_only_unless_loopback: bool) -> list[str]:
    problems: list[str] = []
    for key in fields:
        if key not in allowed:
            v3_name = _V2_NAMES.get(key, "")
            hint = (f" ({key} is v2's name; v3 calls it {v3_name})" if v3_name
                    else " (v3 has no such field)" if key in _V2_NAMES else "")
            problems.append(f"unknown field {shorten(key, 40)}{hint}; the fields are {', '.join(allowed)}")
    if create:
        problems += [f"{name} is required" for name in _REQUIRED if name not in fields]
    if "target_url" in fields:
        problems += [p.replace("webhook_url", "target_url", 1) for p in
                     url_problems(fields["target_url"], https_only_unless_loopback=https_only_unless_loopback)]
    if "subscribed_events" in fields:
        problems += _events_problems(fields["subscribed_events"])
    if "phone_numbers" in fields:
        problems += _phone_problems(fields["phone_numbers"])
    for name in ("routing_key_header", "routing_id_header"):
        if name in fields:
            problems += _header_problems(name, fields[name], nullable=not create)
    if "is_active" in fields and not isinstance(fields["is_active"], bool):
        problems.append(f"is_active must be true or false, got {shorten(fields['is_active'], 40)}")
    return problems


def create_problems(fields: Mapping[str, Any], *, https_only_unless_loopback: bool = False) -> list[str]:
    """Every problem with a create body, one sentence each (HTTPS only, or http for loopback hosts if asked)."""
    return _problems(fields, CREATE_FIELDS, create=True, https_only_unless_loopback=https_only_unless_loopback)


def update_problems(fields: Mapping[str, Any], *, https_only_unless_loopback: bool = False) -> list[str]:
    """Every problem with an update body: every field optional; null or [] clears ``phone_numbers``."""
    return _problems(fields, UPDATE_FIELDS, create=False, https_only_unless_loopback=https_only_unless_loopback)


def problem_code(problems: Iterable[str]) -> int:
    """The most precise error code for a list of problems (1001 missing, 1002 phone format, else 1005)."""
    problems = list(problems)
    if any(p.endswith(" is required") for p in problems):
        return 1001
    if problems and all(p.startswith("phone_numbers") for p in problems):
        return 1002
    return 1005


# -- objects ----------------------------------------------------------------------------
def subscription_object(record: Mapping[str, Any], *, signing_secret: str | None = None) -> dict[str, Any]:
    """The API's subscription object; with ``signing_secret`` the create answer (the only one that has it)."""
    obj: dict[str, Any] = {
        "id": record["id"],
        "target_url": record["url"],
        "subscribed_events": list(record["events"]),
        "is_active": bool(record["active"]),
        "phone_numbers": list(record["phone_numbers"]) if record.get("phone_numbers") else None,
        "routing_key_header": record.get("routing_key_header"),
        "routing_id_header": record.get("routing_id_header"),
        "created_at": record["created_at"],
        "updated_at": record["updated_at"],
    }
    if signing_secret is not None:
        obj["signing_secret"] = signing_secret
    return obj


def list_body(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"subscriptions": objects}


def item_body(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def events_body() -> dict[str, Any]:
    """The answer of ``GET /v3/webhook-events``."""
    return {"events": list(EVENT_TYPES), "doc_url": DOC_URL}


def error_body(status: int, message: str, errors: Iterable[str] = (), *, code: int | str | None = None,
               number: int | None = None, trace_id: str | None = None) -> dict[str, Any]:
    """v3's one error shape; its code is ``number``, an int ``code``, or the status's default."""
    del errors  # v3 has one message; the problems are joined into it by the caller
    if number is None:
        number = code if isinstance(code, int) and not isinstance(code, bool) else ERROR_CODES.get(status, 1005)
    return {"error": {"status": status, "code": number, "message": message}, "success": False,
            "trace_id": trace_id or uuid.uuid4().hex}


def error_message(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    return str(error["message"]) if isinstance(error, dict) and isinstance(error.get("message"), str) else None


# -- events and deliveries --------------------------------------------------------------
def sample_data(event_type: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A realistic ``data`` for ``event_type`` (valid for the SDK's payload type), ``overrides`` merged on top."""
    if event_type not in catalog:
        raise ValueError(f"unknown v3 event type {event_type!r}; GET /v3/webhook-events lists them")
    data = catalog.sample(event_type)
    data.update(overrides or {})
    return data


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_envelope(event_type: str, data: Mapping[str, Any], *, event_id: str | None = None,
                  partner_id: str = "sandbox", trace_id: str | None = None, created_at: datetime | None = None,
                  webhook_version: str = WEBHOOK_VERSION) -> dict[str, Any]:
    """The v3 delivery envelope, keys in Linq's order."""
    return {
        "api_version": API_VERSION,
        "webhook_version": webhook_version,
        "event_type": event_type,
        "event_id": event_id or str(uuid.uuid4()),
        "created_at": _iso(created_at or datetime.now(timezone.utc)),
        "trace_id": trace_id or uuid.uuid4().hex,
        "partner_id": partner_id,
        "data": dict(data),
    }


def encode(envelope: Mapping[str, Any]) -> bytes:
    """The bytes a delivery carries: compact JSON in the envelope's order, UTF-8."""
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_phone_number(data: Mapping[str, Any]) -> str | None:
    """The line an event is about (for ``phone_numbers`` filtering), or None for an account-wide event.

    Chat events carry it as ``chat.owner_handle.handle``; account events as ``phone_number``.
    """
    chat = data.get("chat")
    if isinstance(chat, dict) and isinstance(chat.get("owner_handle"), dict):
        handle = chat["owner_handle"].get("handle")
        if isinstance(handle, str):
            return handle
    number = data.get("phone_number")
    return number if isinstance(number, str) else None


def with_phone_number(data: dict[str, Any], number: str) -> dict[str, Any]:
    """``data`` as an event about the line ``number`` (where :func:`event_phone_number` looks)."""
    chat = data.get("chat")
    if isinstance(chat, dict) and isinstance(chat.get("owner_handle"), dict):
        chat["owner_handle"]["handle"] = number
    else:
        data["phone_number"] = number
    return data


def routing_headers(key_header: str | None, id_header: str | None, body: bytes) -> dict[str, str]:
    """Delivery affinity: with a ``routing_key_header``, the chat's id in ``routing_id_header`` (default
    ``Linq-Chat-Id``) on every delivery about a chat. (The routing token Linq learns from a 2xx answer's
    ``routing_key_header`` is not sent: the sandbox does not read answers' headers.)"""
    if not key_header:
        return {}
    try:
        data = json.loads(body).get("data") or {}
    except (ValueError, AttributeError):
        return {}
    chat = data.get("chat") if isinstance(data, dict) else None
    chat_id = chat.get("id") if isinstance(chat, dict) else data.get("chat_id") if isinstance(data, dict) else None
    return {id_header or DEFAULT_ROUTING_ID_HEADER: chat_id} if isinstance(chat_id, str) else {}


def created_body(obj: dict[str, Any], signing_secret: str | None) -> dict[str, Any]:
    """The create answer: the subscription and its ``signing_secret``, the only answer that shows it."""
    return {**obj, "signing_secret": signing_secret}


def _public_url(url: str) -> str:
    """A URL as account events show it: without credentials, query string or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def change_events(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[tuple[str, dict]]:
    """The ``webhook_subscription.*`` account events a change makes: (event type, data) each.

    ``before`` None: a create; ``after`` None: a delete; both: an update (one event per kind of change).
    """
    now = _iso(datetime.now(timezone.utc))
    sub = after if after is not None else before
    if sub is None:
        return []

    def event(kind: str, summary: str, change: tuple[Any, Any] | None = None, events: bool = False
              ) -> tuple[str, dict]:
        ref: dict[str, Any] = {"id": sub["id"], "target_url": _public_url(sub["target_url"])}
        if events:
            ref["events"] = list(sub["subscribed_events"])
        data: dict[str, Any] = {"actor": {"type": "api"}, "origin": "api", "summary": summary,
                                "occurred_at": now, "webhook_subscription": ref}
        if change is not None:
            data["change"] = {"from": change[0], "to": change[1]}
        return "webhook_subscription." + kind, data

    if before is None:
        return [event("created", "Webhook subscription created", events=True)]
    if after is None:
        return [event("deleted", "Webhook subscription deleted")]
    found = []
    if before["target_url"] != after["target_url"]:
        found.append(event("target_url_changed", "Webhook subscription target URL changed",
                           (_public_url(before["target_url"]), _public_url(after["target_url"]))))
    if before["is_active"] != after["is_active"]:
        found.append(event("enabled", "Webhook subscription enabled") if after["is_active"]
                     else event("disabled", "Webhook subscription disabled"))
    if before["subscribed_events"] != after["subscribed_events"]:
        found.append(event("events.updated", "Webhook subscription events updated",
                           (before["subscribed_events"], after["subscribed_events"])))
    if before["phone_numbers"] != after["phone_numbers"]:
        found.append(event("phone_numbers.updated", "Webhook subscription phone numbers updated",
                           (before["phone_numbers"], after["phone_numbers"])))
    routing = ("routing_key_header", "routing_id_header")
    old, new = ({k: s[k] for k in routing} for s in (before, after))
    if old != new:
        kind = "routing_headers_set" if new["routing_key_header"] else "routing_headers_cleared"
        found.append(event(kind, "Webhook subscription routing headers " + kind.rsplit("_", 1)[1],
                           (old if old["routing_key_header"] else None, new if new["routing_key_header"] else None)))
    return found


def new_signing_secret() -> str:
    """A fresh Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def signing_key(secret: str) -> bytes:
    """The Standard Webhooks key: the base64 after ``whsec_``, decoded (ValueError if it is not base64)."""
    body = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(body + "==", validate=False)
    except ValueError:
        raise ValueError("a v3 signing secret is whsec_ and base64; this one is not base64") from None


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``'s value, ``v1,<base64>``, of ``"{id}.{timestamp}.{body}"``."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def legacy_signature(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Webhook-Signature``'s value on v3: hex HMAC-SHA256 of ``"{timestamp}.{body}"`` keyed by the whole secret."""
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def delivery_headers(body: bytes, *, secret: str | None, event_type: str, event_id: str, subscription_id: object,
                     timestamp: int, user_agent: str, extra: Mapping[str, str] | None = None,
                     standard: str | None = None) -> dict[str, str]:
    """Every header of one v3 delivery: both header sets, signed, and ``extra`` (routing headers).

    ``standard`` is the ``webhook-signature`` value when the caller signed with a Standard Webhooks
    library; otherwise :func:`standard_signature` makes it.
    """
    headers = {
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        **(extra or {}),
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "X-Webhook-Event": event_type,
        "X-Webhook-Subscription-ID": str(subscription_id),
        "X-Webhook-Timestamp": str(timestamp),
    }
    if secret:
        headers["webhook-signature"] = standard or standard_signature(secret, event_id, timestamp, body)
        headers["X-Webhook-Signature"] = legacy_signature(secret, timestamp, body)
    return headers


_RECORD_NAMES = {"target_url": "url", "subscribed_events": "events", "is_active": "active",
                 "phone_numbers": "phone_numbers", "routing_key_header": "routing_key_header",
                 "routing_id_header": "routing_id_header"}


def record_fields(fields: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
    """A valid create/update body's fields under the store's neutral names; an update has only those sent.

    ``phone_numbers`` null or ``[]`` and a routing header null or ``""`` clear them.
    """
    record: dict[str, Any] = {_RECORD_NAMES[k]: v for k, v in fields.items() if k in _RECORD_NAMES}
    if "phone_numbers" in record:
        record["phone_numbers"] = list(record["phone_numbers"] or []) or None
    for name in ("routing_key_header", "routing_id_header"):
        if name in record:
            record[name] = record[name] or None
    if create:
        record.setdefault("active", True)
        record["version"] = 3
    return record
