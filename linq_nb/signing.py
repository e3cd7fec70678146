"""Sign and verify Linq v2 webhooks. Standard library only.

Linq signs the canonical JSON of the envelope (keys sorted recursively, compact
separators, UTF-8) with HMAC-SHA256 keyed by the subscription's secret, and
sends ``X-Webhook-Signature: sha256=<lowercase hex>``. A receiver must hash the
raw body exactly as received::

    from linq_nb.signing import verify
    verify(request_body_bytes, request.headers.get("X-Webhook-Signature"), secret)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import string
from collections.abc import Iterable
from typing import Any

from .errors import SignatureVerificationError

__all__ = ["SIGNATURE_HEADER", "canonical_json", "sign", "verify", "SignatureVerificationError"]

SIGNATURE_HEADER = "X-Webhook-Signature"
_PREFIX = "sha256="


def canonical_json(obj: Any) -> bytes:
    """The exact bytes Linq signs and sends for ``obj``."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _digest(body: bytes, secret: str | bytes) -> str:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def sign(body: bytes | bytearray, secret: str | bytes) -> str:
    """The ``X-Webhook-Signature`` value for ``body``: ``"sha256=<hex>"``."""
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError("sign() needs the raw body as bytes; use canonical_json(obj) for an object")
    return _PREFIX + _digest(bytes(body), secret)


def _reserialised_hint(body: bytes, given: str, secrets: Iterable[str | bytes]) -> str | None:
    """If ``body`` differs from its canonical form and the signature matches that form, say so."""
    try:
        canonical = canonical_json(json.loads(body))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if canonical == body:
        return None
    if any(hmac.compare_digest(_digest(canonical, s), given) for s in secrets):
        return (
            "the signature matches the canonical JSON of this payload but not these bytes: the body was "
            "parsed and re-serialised (for example json.dumps(request.json())) before verifying. "
            "Verify the raw request body exactly as received."
        )
    return None


def verify(body: bytes | bytearray, signature_header: str | None, secret: str | bytes | Iterable[str | bytes]) -> None:
    """Check ``signature_header`` against ``body``; return None or raise.

    ``secret`` may be one secret or several (to rotate without losing events):
    the body verifies if any of them matches. The header may carry the
    ``sha256=`` prefix or be the bare hex digest. Comparison is constant-time.

    Raises :class:`SignatureVerificationError` saying why: missing header,
    malformed header, re-serialised body, or wrong secret / altered body.
    """
    secrets = [secret] if isinstance(secret, (str, bytes)) else list(secret)
    if not secrets:
        raise ValueError("verify() needs at least one secret")
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError("verify() needs the raw request body as bytes, exactly as received")
    body = bytes(body)
    if signature_header is None or not signature_header.strip():
        raise SignatureVerificationError(
            f"missing {SIGNATURE_HEADER} header: the request is unsigned, or the subscription has no secret",
            hint="Give the subscription a secret, or check the receiver reads the right header.",
        )
    given = signature_header.strip()
    if given.lower().startswith(_PREFIX):
        given = given[len(_PREFIX):]
    if len(given) != 64 or any(c not in string.hexdigits for c in given):
        raise SignatureVerificationError(
            f"malformed {SIGNATURE_HEADER} header: expected 'sha256=' and 64 hex digits",
            hint="Pass the header's value unchanged.",
        )
    given = given.lower()
    if any(hmac.compare_digest(_digest(body, s), given) for s in secrets):
        return None
    hint = _reserialised_hint(body, given, secrets)
    if hint:
        raise SignatureVerificationError("body was re-serialised: " + hint)
    raise SignatureVerificationError(
        "signature mismatch: the secret is wrong or the body was altered in transit",
        hint="Check you use this subscription's secret (during a rotation, pass both) and hash the raw body.",
    )
