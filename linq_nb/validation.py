"""The rules a subscription body must follow, shared by the client and the sandbox.

Each check returns a list of problems, one human sentence each (empty when all
is well), so that a form can show them next to its fields, the client can raise
them before sending, and the sandbox can answer them in a 422. Standard library only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .events import EVENT_TYPES

__all__ = [
    "url_problems",
    "events_problems",
    "version_problems",
    "subscription_problems",
    "is_loopback_host",
    "is_loopback_url",
]

_FIELD_TYPES: dict[str, tuple[type, str]] = {
    "webhook_url": (str, "a string"),
    "events": (list, "an array of strings"),
    "version": (int, "an integer"),
    "secret": (str, "a string"),
    "active": (bool, "a boolean"),
}
REQUIRED = ("webhook_url", "events", "version")


def is_loopback_host(host: str) -> bool:
    """True for a host name or address of this machine only (localhost, 127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """True when ``url`` points at this machine (localhost, 127.0.0.0/8 or ::1)."""
    return is_loopback_host(urlsplit(url).hostname or "")


def url_problems(url: object, *, https_only_unless_loopback: bool = False) -> list[str]:
    """Problems with a webhook URL: it must be an absolute http(s) URL with a host.

    With ``https_only_unless_loopback`` (the sandbox's rule), plain ``http://`` is
    accepted only for loopback hosts.
    """
    if not isinstance(url, str) or not url.strip():
        return ["webhook_url must be an absolute http(s) URL, such as https://example.com/webhooks/linq"]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return [f"webhook_url {url!r} is not a valid URL"]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"webhook_url {url!r} must be an absolute http(s) URL, such as https://example.com/webhooks/linq"]
    if any(c.isspace() for c in url):
        return [f"webhook_url {url!r} must not contain spaces"]
    if https_only_unless_loopback and parts.scheme == "http" and not is_loopback_url(url):
        return [f"webhook_url {url!r} must use https (plain http is accepted only for localhost)"]
    return []


def events_problems(events: object) -> list[str]:
    """Problems with an events list: non-empty, strings, known v2 event names only."""
    if not isinstance(events, (list, tuple)):
        return ["events must be an array of event names"]
    if not events:
        return [f"events must name at least one event; valid events: {', '.join(EVENT_TYPES)}"]
    bad = [e for e in events if not isinstance(e, str) or e not in EVENT_TYPES]
    if bad:
        names = ", ".join(repr(e) for e in bad)
        return [f"unknown event{'s' if len(bad) > 1 else ''} {names}; valid events: {', '.join(EVENT_TYPES)}"]
    return []


def version_problems(version: object) -> list[str]:
    """Problems with ``version``: it must be the integer 2."""
    if isinstance(version, bool) or version != 2 or not isinstance(version, int):
        return [f"version must be 2 for the v2 API, got {version!r}"]
    return []


def subscription_problems(body: Mapping[str, Any], *, https_only_unless_loopback: bool = False) -> list[str]:
    """Every problem with a create/update ``webhook_subscription`` object.

    Checks required fields, JSON types, then values; one sentence per problem.
    """
    problems: list[str] = []
    for name in REQUIRED:
        if name not in body:
            problems.append(f"{name} is required")
    for name, (typ, label) in _FIELD_TYPES.items():
        if name not in body:
            continue
        value = body[name]
        wrong = not isinstance(value, typ) or (typ is int and isinstance(value, bool))
        if wrong:
            shown = "" if name == "secret" else f" {value!r}"[:80]  # never echo a secret
            problems.append(f"{name} must be {label}, got {type(value).__name__}{shown}")
    if problems:
        return problems
    problems += url_problems(body["webhook_url"], https_only_unless_loopback=https_only_unless_loopback)
    problems += events_problems(body["events"])
    problems += version_problems(body["version"])
    return problems
