"""Exceptions raised by linq_nb, and the one function that picks them for a response.

The tree::

    LinqError                      every error linq_nb raises
    ├── ConfigurationError         no token, bad base URL: fix the set-up
    ├── DuplicateSubscriptionError  create refused: same URL, overlapping events
    ├── SignatureVerificationError  a webhook's signature did not verify
    ├── ValidationError            400/422, or refused before sending
    ├── AuthenticationError        401/403
    ├── NotFoundError              404
    ├── RateLimitError             429, with ``retry_after`` seconds
    ├── ServerError                5xx and any other unexpected status
    └── LinqConnectionError        no HTTP answer at all
        └── LinqTimeoutError       the request timed out

Every error carries ``status``, ``error_code``, ``method``, ``path``,
``errors`` (the server's messages) and ``trace_id`` (v3 answers have one: quote it
to Linq's support), each None or empty where not known, and a ``hint``: what to do
next. None of them ever holds a token or a webhook secret:
the client never hands them one. Standard library only.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "LinqError",
    "ConfigurationError",
    "DuplicateSubscriptionError",
    "SignatureVerificationError",
    "ValidationError",
    "AuthenticationError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "LinqConnectionError",
    "LinqTimeoutError",
    "error_from_response",
]


class LinqError(Exception):
    """Base class: something went wrong talking to (or about) the Linq API."""

    default_hint = ""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        method: str | None = None,
        path: str | None = None,
        errors: Sequence[str] = (),
        hint: str | None = None,
        trace_id: str | None = None,
    ) -> None:
        self.message = message
        self.trace_id = trace_id
        self.status = status
        self.error_code = error_code
        self.method = method
        self.path = path
        self.errors: list[str] = list(errors)
        self.hint = self.default_hint if hint is None else hint
        super().__init__(message)

    @property
    def request(self) -> str | None:
        """``"METHOD /path"`` of the request that failed, if any."""
        return f"{self.method} {self.path}" if self.method and self.path else None

    def __str__(self) -> str:
        parts = []
        if self.request:
            parts.append(f"{self.request}")
        if self.status is not None:
            parts.append(f"HTTP {self.status}" + (f" {self.error_code}" if self.error_code else ""))
        head = f"[{', '.join(parts)}] " if parts else ""
        text = head + self.message
        extra = [e for e in self.errors if e != self.message]
        if extra:
            text += "\n" + "\n".join(f"  - {e}" for e in extra)
        if self.hint:
            text += f"\n  What to do: {self.hint}"
        if self.trace_id:
            text += f"\n  trace_id: {self.trace_id} (quote it if you ask Linq's support)"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status!r})"

    def _repr_html_(self) -> str:
        esc = html.escape
        items = "".join(f"<li>{esc(e)}</li>" for e in self.errors if e != self.message)
        meta = " · ".join(
            esc(x)
            for x in (self.request, f"HTTP {self.status}" if self.status else None, self.error_code,
                      f"trace_id {self.trace_id}" if self.trace_id else None)
            if x
        )
        return (
            '<div class="linq-error" style="border-left:4px solid #c0392b;padding:4px 10px;'
            'background:rgba(192,57,43,.06)">'
            f"<b>{esc(type(self).__name__)}</b>: {esc(self.message)}"
            + (f'<div style="opacity:.7;font-size:90%">{meta}</div>' if meta else "")
            + (f"<ul>{items}</ul>" if items else "")
            + (f"<div><b>What to do:</b> {esc(self.hint)}</div>" if self.hint else "")
            + "</div>"
        )


class ConfigurationError(LinqError):
    """The client is not set up right (for example no token)."""


class DuplicateSubscriptionError(LinqError):
    """v2: a subscription with the same URL and overlapping events already exists. v3: a subscription
    already has this ``target_url`` (v3 allows each once per account; ``existing_ids`` are UUIDs)."""

    default_hint = (
        "Linq delivers every event once per matching subscription. Update the existing "
        "subscription instead, or pass allow_duplicate=True if you really want two."
    )

    def __init__(self, message: str, *, existing_ids: Sequence[int | str], overlapping_events: Sequence[str],
                 **kwargs: Any) -> None:
        self.existing_ids: list[int | str] = list(existing_ids)
        self.overlapping_events = list(overlapping_events)
        super().__init__(message, **kwargs)


class SignatureVerificationError(LinqError):
    """A webhook's ``X-Webhook-Signature`` did not verify; the message says why."""


class ValidationError(LinqError):
    """The request was refused as invalid (400 or 422, or before it was sent)."""

    default_hint = "Correct the values listed and send again; nothing was changed."


class AuthenticationError(LinqError):
    """The integration token was missing, wrong or not allowed (401/403)."""

    default_hint = (
        "Check LINQ_INTEGRATION_TOKEN (or the token= you passed) and that it belongs to "
        "the API at this base URL."
    )


class NotFoundError(LinqError):
    """No such subscription for this token (404)."""

    default_hint = "List your subscriptions to see which ids exist for this token."


class RateLimitError(LinqError):
    """Too many requests (429); ``retry_after`` says how long to wait, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        kwargs.setdefault(
            "hint",
            f"Wait {retry_after:g} s and try again." if retry_after is not None else "Wait a little and try again.",
        )
        super().__init__(message, **kwargs)


class ServerError(LinqError):
    """The server failed (5xx) or answered with a status linq_nb does not expect."""

    default_hint = "This is not your request's fault; try again later. GET, PUT and DELETE were already retried."


class LinqConnectionError(LinqError):
    """No HTTP answer: the connection failed or was dropped."""

    default_hint = "Check the base URL and your network; for the sandbox, check that it is running."


class LinqTimeoutError(LinqConnectionError):
    """The request timed out."""

    default_hint = "Try again, or raise the client's timeout= if the server is just slow."


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _parse_body(body: bytes | str) -> tuple[str | None, str | None, list[str], str | None]:
    """(message, error_code, errors, trace_id) from either v2 error shape, v3's, or plain text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        # v3: {"error": {"status": 404, "code": 2001, "message": "..."}, "success": false, "trace_id": "..."}
        inner = data["error"]
        msg, num, trace = inner.get("message"), inner.get("code"), data.get("trace_id")
        return (str(msg) if msg else None, None if num is None else str(num), [str(msg)] if msg else [],
                str(trace)[:100] if trace else None)
    if isinstance(data, dict):
        raw = data.get("errors")
        errors: list[str] = []
        code = data.get("error_code")
        if isinstance(raw, list):
            for item in raw:
                if isinstance(item, dict):  # the `Error` shape
                    errors.append(str(item.get("detail") or item.get("title") or item))
                    code = code or item.get("code")
                else:  # the `StandardError` shape
                    errors.append(str(item))
        message = data.get("message")
        return (str(message) if message else (errors[0] if errors else None),
                str(code) if code else None, errors, None)
    snippet = " ".join(text.split())[:200]
    return (snippet or None), None, [], None


_BY_STATUS: dict[int, type[LinqError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    422: ValidationError,
    429: RateLimitError,
}


def error_from_response(status: int, body: bytes | str, *, method: str, path: str,
                        headers: Mapping[str, str] | None = None) -> LinqError:
    """Pick and build the right :class:`LinqError` for an error response.

    Copes with both v2 error shapes (``StandardError`` and ``Error``), v3's
    (``{"error": {...}, "trace_id"}``), non-JSON bodies and statuses the API does not document.
    """
    message, code, errors, trace_id = _parse_body(body)
    cls = _BY_STATUS.get(status, ServerError)
    if cls is ServerError and 400 <= status < 500:
        cls = ValidationError
    message = message or f"the server answered HTTP {status} with no explanation"
    kwargs: dict[str, Any] = dict(status=status, error_code=code, method=method, path=path, errors=errors,
                                  trace_id=trace_id)
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=_retry_after(headers or {}), **kwargs)
    return cls(message, **kwargs)
