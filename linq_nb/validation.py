"""The rules a subscription body must follow, shared by the client and the sandbox.

Each check returns a list of problems, one human sentence each (empty when all
is well), so that a form can show them next to its fields, the client can raise
them before sending, and the sandbox can answer them in a 422. Standard library only.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
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
    "shorten",
    "MAX_URL_LENGTH",
]

#: Longer webhook URLs are refused (a common limit of browsers and servers).
MAX_URL_LENGTH = 2048
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def shorten(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for echoing a bad input in a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _host_problem(host: str) -> str | None:
    """Why ``host`` (as urlsplit gives it, lowercased) is not a host name or IP address, or None."""
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return "is not a valid host name"
    name = ascii_host[:-1] if ascii_host.endswith(".") else ascii_host
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        return "is not a valid host name (letters, digits and hyphens between dots)"
    return None

_FIELD_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "webhook_url": (str, "a string"),
    "events": (list, "an array of strings"),
    "version": (int, "an integer"),
    "secret": ((str, type(None)), "a string"),
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
    shown = shorten(url)
    if len(url) > MAX_URL_LENGTH:
        return [f"webhook_url is {len(url)} characters long, over the limit of {MAX_URL_LENGTH}; use a shorter URL"]
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000 for c in url):
        return [f"webhook_url {shown} must not contain control characters; type the URL again by hand"]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return [f"webhook_url {shown} is not a valid URL"]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"webhook_url {shown} must be an absolute http(s) URL, such as https://example.com/webhooks/linq"]
    if any(c.isspace() for c in url):
        return [f"webhook_url {shown} must not contain spaces"]
    host_problem = _host_problem(parts.hostname)
    if host_problem:
        return [f"webhook_url {shown}: the host {shorten(parts.hostname, 40)} {host_problem}"]
    if https_only_unless_loopback and parts.scheme == "http" and not is_loopback_url(url):
        return [f"webhook_url {shown} must use https (plain http is accepted only for localhost)"]
    return []


def events_problems(events: object) -> list[str]:
    """Problems with an events list: non-empty, strings, known v2 event names only."""
    if not isinstance(events, (list, tuple)):
        return ["events must be an array of event names"]
    if not events:
        return [f"events must name at least one event; valid events: {', '.join(EVENT_TYPES)}"]
    bad = [e for e in events if not isinstance(e, str) or e not in EVENT_TYPES]
    if bad:
        names = ", ".join(shorten(e, 40) for e in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        return [f"unknown event{'s' if len(bad) > 1 else ''} {names}; valid events: {', '.join(EVENT_TYPES)}"]
    repeated = [e for e, n in Counter(events).items() if n > 1]  # every name is a known one by now
    if repeated:
        return [f"events lists {', '.join(map(repr, repeated))} more than once; name each event once"]
    return []


def version_problems(version: object) -> list[str]:
    """Problems with ``version``: it must be the integer 2."""
    if isinstance(version, bool) or version != 2 or not isinstance(version, int):
        return [f"version must be 2 for the v2 API, got {shorten(version, 40)}"]
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
            shown = "" if name == "secret" else f" {shorten(value)}"  # never echo a secret
            problems.append(f"{name} must be {label}, got {type(value).__name__}{shown}")
    if problems:
        return problems
    if body.get("secret") == "":
        problems.append("secret must not be empty; leave it out to keep the stored one, or send null for no secret")
    problems += url_problems(body["webhook_url"], https_only_unless_loopback=https_only_unless_loopback)
    problems += events_problems(body["events"])
    problems += version_problems(body["version"])
    return problems
