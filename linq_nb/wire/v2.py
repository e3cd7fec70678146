"""Linq Partner API v2 on the wire (``shared/docs/linq-v2-api.md``): data and pure functions.

Standard library only. The sandbox serves these shapes, the client sends and reads them; both
call the functions here rather than spelling a path, header or field themselves. Same names as
:mod:`linq_nb.wire.v3` (see :mod:`linq_nb.wire`).

A record (what the sandbox's store keeps, version-neutral) is a dict with ``id``, ``url``,
``events``, ``active``, ``has_secret``, ``version``, ``phone_numbers``, ``routing_key_header``,
``routing_id_header``, ``delivery_attempts``, ``last_delivered_at``, ``created_at``, ``updated_at``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from .. import catalog as _catalog
from ..events import make_envelope as _make_envelope
from ..events import sample_data
from ..signing import canonical_json
from ..validation import shorten, subscription_problems

__all__ = [
    "VERSION", "API_VERSION", "BASE_PATH", "COLLECTION_PATH", "EVENTS_PATH", "member_path", "AUTH_HEADER",
    "AUTH_DESCRIPTION",
    "auth_headers", "token_from_environ", "parse_id", "ID_DESCRIPTION", "BODY_KEY", "request_body", "fields_of",
    "create_problems", "update_problems", "subscription_object", "list_body", "item_body", "STATUS_NAMES",
    "error_body", "error_message", "EVENT_TYPES", "catalog", "sample_data", "make_envelope", "encode",
    "SIGNATURE_HEADER", "signature", "delivery_headers", "HAS_COUNTERS", "record_fields", "not_found_message",
    "UNIQUE_URL", "VALIDATION_STATUS", "BODY_HINT", "problem_code", "event_phone_number", "with_phone_number",
    "routing_headers", "new_signing_secret", "created_body", "change_events",
]

VERSION = "v2"
API_VERSION = "v2"  # the envelope's api_version
BASE_PATH = "/api/partner"
COLLECTION_PATH = BASE_PATH + "/v2/webhook_subscriptions"
EVENTS_PATH: str | None = None  # v2 has no event-type endpoint
#: How the token is sent, as a message shows it.
AUTH_DESCRIPTION = "X-LINQ-INTEGRATION-TOKEN"
AUTH_HEADER = "X-LINQ-INTEGRATION-TOKEN"
#: The request field that holds the URL deliveries go to.
URL_FIELD = "webhook_url"
ID_DESCRIPTION = "ids are integers"
BODY_KEY = "webhook_subscription"
#: Whether the subscription object counts deliveries (``delivery_attempts``, ``last_delivered_at``).
HAS_COUNTERS = True
SIGNATURE_HEADER = "X-Webhook-Signature"
#: A target URL may be used by several subscriptions of one partner.
UNIQUE_URL = False
#: The status of a body that breaks the rules, and what the body must look like.
VALIDATION_STATUS = 422
BODY_HINT = '{"webhook_subscription": {...}}'

STATUS_NAMES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}

catalog = _catalog.load("v2")
EVENT_TYPES: tuple[str, ...] = catalog.names


def member_path(sub_id: object) -> str:
    return f"{COLLECTION_PATH}/{sub_id}"


def auth_headers(token: str) -> dict[str, str]:
    return {AUTH_HEADER: token}


def token_from_environ(environ: Mapping[str, Any]) -> str | None:
    """The token a WSGI request carries in this version's header, or None."""
    return environ.get("HTTP_X_LINQ_INTEGRATION_TOKEN") or None


def parse_id(text: str) -> int | None:
    """A path's subscription id as an int, or None when it is not one."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)


def request_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A create or update body: ``{"webhook_subscription": {...}}``."""
    return {BODY_KEY: dict(fields)}


def fields_of(body: Any) -> dict[str, Any] | None:
    """The subscription fields in a request body, or None when it lacks the wrapper object."""
    inner = body.get(BODY_KEY) if isinstance(body, dict) else None
    return inner if isinstance(inner, dict) else None


def create_problems(fields: Mapping[str, Any], *, https_only_unless_loopback: bool = False) -> list[str]:
    return subscription_problems(fields, https_only_unless_loopback=https_only_unless_loopback)


def problem_code(problems: Iterable[str]) -> str:
    del problems
    return "validation_failed"


def update_problems(fields: Mapping[str, Any], *, https_only_unless_loopback: bool = False) -> list[str]:
    """v2's PUT replaces the subscription: the same rules as a create."""
    return create_problems(fields, https_only_unless_loopback=https_only_unless_loopback)


def subscription_object(record: Mapping[str, Any]) -> dict[str, Any]:
    """The API's ``WebhookSubscription`` for a stored record (the secret never appears, only whether one is set)."""
    return {
        "id": record["id"],
        "webhook_url": record["url"],
        "version": record["version"],
        "events": list(record["events"]),
        "active": bool(record["active"]),
        "secret_configured": bool(record["has_secret"]),
        "last_delivered_at": record["last_delivered_at"],
        "delivery_attempts": record["delivery_attempts"],
        "created_at": record["created_at"],
        "updated_at": record["updated_at"],
    }


def list_body(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"webhook_subscriptions": objects}


def item_body(obj: dict[str, Any]) -> dict[str, Any]:
    return {BODY_KEY: obj}


def error_body(status: int, message: str, errors: Iterable[str] = (), *, code: str | None = None,
               number: int | None = None, trace_id: str | None = None) -> dict[str, Any]:
    """v2's error shapes: ``Error`` for a 401, ``StandardError`` for everything else (``number``: v3's)."""
    del number, trace_id
    if status == 401:
        return {"errors": [{"status": 401, "code": "unauthorized", "title": "Unauthorized", "detail": message}]}
    return {
        "status": STATUS_NAMES.get(status, str(status)),
        "error_code": code or STATUS_NAMES.get(status, "error"),
        "message": message,
        "errors": list(errors) or [message],
    }


def error_message(body: Any) -> str | None:
    """The human message in an error answer of either v2 shape, or None."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("message"), str):
        return str(body["message"])
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("detail") or errors[0].get("title") or "") or None
    return None


def make_envelope(event_type: str, data: Mapping[str, Any], *, event_id: str | None = None,
                  partner_id: str | None = None, **_: Any) -> dict[str, Any]:
    """The v2 delivery envelope around ``data`` (v2 names no partner in it)."""
    del partner_id
    return _make_envelope(event_type, data, event_id=event_id)


def event_phone_number(data: Mapping[str, Any]) -> str | None:
    """v2 subscriptions do not filter by line: every event is about no particular one."""
    del data
    return None


def with_phone_number(data: dict[str, Any], number: str) -> dict[str, Any]:
    """v2 has no line filtering: ``data`` unchanged."""
    del number
    return data


def routing_headers(key_header: str | None, id_header: str | None, body: bytes) -> dict[str, str]:
    """v2 has no delivery affinity."""
    del key_header, id_header, body
    return {}


def new_signing_secret() -> str | None:
    """v2's secret is the partner's choice (the body's ``secret``), never made by the server."""
    return None


def created_body(obj: dict[str, Any], signing_secret: str | None) -> dict[str, Any]:
    """The create answer: the subscription as any other answer has it."""
    del signing_secret
    return item_body(obj)


def change_events(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[tuple[str, dict]]:
    """v2 sends no account events when subscriptions change."""
    del before, after
    return []


def encode(envelope: Mapping[str, Any]) -> bytes:
    """The bytes a delivery carries: canonical JSON (sorted keys, compact, UTF-8), as Linq signs them."""
    return canonical_json(envelope)


def signature(body: bytes, secret: str) -> str:
    """``X-Webhook-Signature``'s value: ``sha256=`` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def delivery_headers(body: bytes, *, secret: str | None, event_type: str, event_id: str, subscription_id: object,
                     timestamp: int, user_agent: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every header of one v2 delivery; signed only when the subscription has a secret."""
    del event_id, timestamp, extra  # v2 sends neither a delivery id nor a timestamp header
    headers = {
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        "X-Webhook-Event": event_type,
        "X-Webhook-Subscription-ID": str(subscription_id),
    }
    if secret:
        headers[SIGNATURE_HEADER] = signature(body, secret)
    return headers


def not_found_message(sub_id: str) -> str:
    return f"webhook subscription {shorten(sub_id, 40)} not found"


def record_fields(fields: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
    """A valid create/update body's fields under the store's neutral names (v2's PUT replaces them all)."""
    del create
    record = {"url": fields["webhook_url"], "events": list(fields["events"]), "version": fields["version"],
              "active": bool(fields.get("active", True))}
    if "secret" in fields:
        record["secret"] = fields["secret"] or None
    return record
