"""Sign and verify Linq webhooks in all three of Linq's schemes, and say precisely why one fails.

============  ==========================================================================================
scheme        what the sender adds, and what it signs
============  ==========================================================================================
``v2``        ``X-Webhook-Signature: sha256=<hex>``: HMAC-SHA256 of the raw body, keyed by the secret's
              UTF-8 text. The body is the canonical JSON of the envelope. No timestamp.
``legacy``    v3's deprecated set: ``X-Webhook-Timestamp`` (unix seconds) and ``X-Webhook-Signature: <hex>``,
              the HMAC-SHA256 of ``"{timestamp}.{raw body}"`` keyed by the *whole* secret string
              (``whsec_`` included), as in Linq's own example.
``standard``  Standard Webhooks, v3's recommended set: ``webhook-id``, ``webhook-timestamp`` and
              ``webhook-signature: v1,<base64> [v1,<base64> ...]``, the HMAC-SHA256 of
              ``"{id}.{timestamp}.{raw body}"`` keyed by the base64-decoding of the secret after its
              ``whsec_`` prefix. A timestamp more than 5 minutes away is refused.
============  ==========================================================================================

Every v3 delivery carries both v3 sets; :func:`verify_delivery` picks the scheme from the headers
(``standard`` first) and verifies it::

    from linq_nb.signing import verify_delivery
    scheme = verify_delivery(request_body_bytes, request.headers, signing_secret)   # "standard"

The accept decision for Standard Webhooks is the ``standardwebhooks`` package's, the one
Linq's SDK (``client.webhooks.unwrap``) uses, so linq_nb accepts exactly what the SDK accepts.
What linq_nb adds is the explanation when it refuses: which header is missing, what is wrong
with the key's form, how far off the timestamp is, whether the body was re-serialised.
Everything else here is the standard library. The signers (:func:`sign`, :func:`sign_legacy`,
:func:`sign_standard`) are what the sandbox delivers with and what the tests sign with.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import string
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import SignatureVerificationError

__all__ = [
    "SCHEMES", "TOLERANCE_SECONDS", "SIGNATURE_HEADER", "TIMESTAMP_HEADER",
    "WEBHOOK_ID_HEADER", "WEBHOOK_TIMESTAMP_HEADER", "WEBHOOK_SIGNATURE_HEADER", "SECRET_PREFIX",
    "canonical_json", "sign", "verify", "sign_legacy", "verify_legacy", "standard_key", "sign_standard",
    "verify_standard", "detect_scheme", "verify_delivery", "SignatureVerificationError",
]

#: The three schemes, by the names :func:`verify_delivery` and ``Receiver(scheme=...)`` take.
SCHEMES = ("v2", "legacy", "standard")
#: How far a signed timestamp may be from this machine's clock (Standard Webhooks' 5 minutes).
TOLERANCE_SECONDS = 5 * 60

SIGNATURE_HEADER = "X-Webhook-Signature"  # v2 (sha256=<hex>) and v3 legacy (<hex>)
TIMESTAMP_HEADER = "X-Webhook-Timestamp"  # v3 legacy
WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"
STANDARD_HEADERS = (WEBHOOK_ID_HEADER, WEBHOOK_TIMESTAMP_HEADER, WEBHOOK_SIGNATURE_HEADER)
#: v3 signing secrets look like ``whsec_<base64>``.
SECRET_PREFIX = "whsec_"
_PREFIX = "sha256="

Secret = str | bytes
Secrets = Secret | Iterable[Secret]


# --------------------------------------------------------------------------- shared pieces


def canonical_json(obj: Any) -> bytes:
    """The exact bytes Linq signs and sends for ``obj`` in v2 (keys sorted, compact, UTF-8)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _hmac(key: str | bytes, data: bytes) -> bytes:
    return hmac.new(key.encode("utf-8") if isinstance(key, str) else key, data, hashlib.sha256).digest()


def _raw(body: object, what: str) -> bytes:
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError(f"{what}() needs the raw body as bytes; use canonical_json(obj) for an object"
                        if what.startswith("sign")
                        else f"{what}() needs the raw request body as bytes, exactly as received")
    return bytes(body)


def _secret_list(secret: Secrets, what: str) -> list[Secret]:
    secrets = [secret] if isinstance(secret, (str, bytes)) else list(secret)
    if not secrets:
        raise ValueError(f"{what}() needs at least one secret")
    return secrets


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header's value, whatever its case in ``headers``; None when absent or blank."""
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _reserialisations(body: bytes) -> list[bytes]:
    """The ways a framework commonly re-serialises a JSON body, those that differ from ``body``."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    forms = []
    for kw in ({"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False},
               {"separators": (",", ":"), "ensure_ascii": False},
               {"separators": (",", ":")}, {}, {"sort_keys": True}, {"ensure_ascii": False},
               {"indent": 2}, {"indent": 2, "ensure_ascii": False}):
        form = json.dumps(obj, **kw).encode("utf-8")
        if form != body and form not in forms:
            forms.append(form)
    return forms


_RESERIALISED = (
    "the signature matches another serialisation of the same JSON, not these bytes: the body was parsed "
    "and re-serialised (for example json.dumps(request.json())) before verifying"
)
_RAW_HINT = ("Verify the raw request body exactly as received (Flask request.get_data(), Django request.body, "
             "FastAPI await request.body()), and parse it only afterwards.")


def _timestamp_problem(value: str, header: str, tolerance: float) -> str | None:
    """Why ``value`` is not an acceptable signed timestamp, or None."""
    try:
        ts = int(value)
    except ValueError:
        return f"malformed {header} header {value[:40]!r}: expected unix seconds such as 1767225600"
    skew = time.time() - ts
    if abs(skew) <= tolerance:
        return None
    limit = f"at most {_duration(tolerance)} either way is accepted"
    if skew > 0:
        return (f"timestamp too old: {header} {ts} is {_duration(skew)} old and {limit}: a replayed or "
                "long-delayed delivery, or this machine's clock is ahead")
    return (f"timestamp in the future: {header} {ts} is {_duration(-skew)} ahead of this machine's clock and "
            f"{limit}: the sender's clock or this one is wrong")


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            rest = seconds % size
            sub = {"d": ("h", 3600), "h": ("min", 60), "min": ("s", 1)}[unit]
            return f"{seconds // size} {unit}" + (f" {rest // sub[1]} {sub[0]}" if rest // sub[1] else "")
    return f"{seconds} s"


# --------------------------------------------------------------------------- v2: sha256=<hex> over the body


def _digest(body: bytes, secret: str | bytes) -> str:
    return _hmac(secret, body).hex()


def sign(body: bytes | bytearray, secret: str | bytes) -> str:
    """The v2 ``X-Webhook-Signature`` value for ``body``: ``"sha256=<hex>"``."""
    return _PREFIX + _digest(_raw(body, "sign"), secret)


def verify(body: bytes | bytearray, signature_header: str | None, secret: Secrets) -> None:
    """Check a v2 ``signature_header`` against ``body``; return None or raise.

    ``secret`` may be one secret or several (to rotate without losing events):
    the body verifies if any of them matches. The header may carry the
    ``sha256=`` prefix or be the bare hex digest. Comparison is constant-time.

    Raises :class:`SignatureVerificationError` saying why: missing header,
    malformed header, re-serialised body, or wrong secret / altered body.
    """
    secrets = _secret_list(secret, "verify")
    body = _raw(body, "verify")
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


# --------------------------------------------------------------------------- v3 legacy: hex over "{ts}.{body}"


def _legacy_digest(body: bytes, timestamp: str, key: str | bytes) -> str:
    return _hmac(key, timestamp.encode("ascii") + b"." + body).hex()


def sign_legacy(body: bytes | bytearray, timestamp: int | str, secret: str) -> str:
    """v3's legacy ``X-Webhook-Signature``: hex HMAC-SHA256 of ``"{timestamp}.{body}"``, keyed by the whole secret.

    The sandbox's own signer (:func:`linq_nb.wire.v3.legacy_signature`), so tests sign as deliveries do.
    """
    from .wire import v3  # here, not at the top: wire.v2 imports this module

    return str(v3.legacy_signature(secret, int(timestamp), _raw(body, "sign_legacy")))


def verify_legacy(body: bytes | bytearray, headers: Mapping[str, str], secret: Secrets, *,
                  tolerance: float = TOLERANCE_SECONDS) -> None:
    """Check v3's legacy ``X-Webhook-Timestamp`` / ``X-Webhook-Signature`` pair; return None or raise.

    The timestamp must be within ``tolerance`` seconds of this clock (Linq: "reject webhooks with
    timestamps older than 5 minutes"). Raises :class:`SignatureVerificationError` saying why.
    """
    secrets = _secret_list(secret, "verify_legacy")
    body = _raw(body, "verify_legacy")
    signature, timestamp = _header(headers, SIGNATURE_HEADER), _header(headers, TIMESTAMP_HEADER)
    missing = [name for name, value in ((TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature)) if not value]
    if missing:
        v2 = signature is not None and signature.lower().startswith(_PREFIX)
        raise SignatureVerificationError(
            f"missing {' and '.join(missing)} header{'s' if len(missing) > 1 else ''} for v3's legacy scheme"
            + (": the 'sha256=' signature without a timestamp is a v2 delivery" if v2 else ""),
            hint="Verify a v2 delivery with linq_nb.signing.verify, a v3 one with verify_delivery (it reads "
                 "whichever header set is present); pass the request's headers unchanged.",
        )
    assert signature is not None and timestamp is not None
    given = signature.lower()
    if given.startswith(_PREFIX) or len(given) != 64 or any(c not in string.hexdigits for c in given):
        raise SignatureVerificationError(
            f"malformed {SIGNATURE_HEADER} header for v3's legacy scheme: expected 64 hex digits"
            + (" without 'sha256=' (that prefix is v2's)" if given.startswith(_PREFIX) else ""),
            hint="Pass the header's value unchanged.",
        )
    problem = _timestamp_problem(timestamp, TIMESTAMP_HEADER, tolerance)
    if problem:
        raise SignatureVerificationError(problem, hint="Check this machine's clock (timedatectl / NTP); a genuine "
                                                       "delivery is verified as soon as it arrives.")

    def matches(data: bytes, key: str | bytes) -> bool:
        return hmac.compare_digest(_legacy_digest(data, timestamp, key), given)

    if any(matches(body, s) for s in secrets):
        return None
    _explain_legacy(body, timestamp, given, secrets, matches)


def _explain_legacy(body: bytes, timestamp: str, given: str, secrets: list[Secret],
                    matches: Callable[[bytes, str | bytes], bool]) -> None:
    if any(matches(form, s) for form in _reserialisations(body) for s in secrets):
        raise SignatureVerificationError("body was re-serialised: " + _RESERIALISED, hint=_RAW_HINT)
    for s in secrets:
        text = s.decode("utf-8", "replace") if isinstance(s, bytes) else s
        if not text.startswith(SECRET_PREFIX) and matches(body, SECRET_PREFIX + text):
            raise SignatureVerificationError(
                "wrong key form: the signature matches this secret with 'whsec_' in front: the legacy scheme is "
                "keyed by the whole secret string, prefix included, and the secret given lacks it",
                hint="Pass the signing_secret exactly as create returned it, 'whsec_' and all.")
        if text.startswith(SECRET_PREFIX):
            rest = text[len(SECRET_PREFIX):]
            key = _b64(rest)
            if matches(body, rest) or (key is not None and matches(body, key)):
                raise SignatureVerificationError(
                    "wrong key form: the signature matches this secret without its 'whsec_' prefix"
                    + (" (base64-decoded, as Standard Webhooks keys it)" if not matches(body, rest) else "")
                    + ": the legacy scheme is keyed by the whole secret string as UTF-8",
                    hint="Sign and verify the legacy header with the whole secret; the base64-decoded key is "
                         "for the Standard Webhooks headers only.")
    if any(hmac.compare_digest(_digest(body, s), given) for s in secrets):
        raise SignatureVerificationError(
            f"timestamp left out: the signature matches the body alone, but the legacy scheme signs "
            f"'{{{TIMESTAMP_HEADER}}}.{{raw body}}'",
            hint="Prepend the timestamp header's value and a '.' to the body before hashing.")
    raise SignatureVerificationError(
        "signature mismatch: the secret is wrong or the body (or the timestamp) was altered in transit",
        hint="Use this subscription's own signing_secret (create showed it once) and hash the raw body.")


# --------------------------------------------------------------------------- Standard Webhooks


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _key_problem(secret: str | bytes) -> str | None:
    """Why ``secret`` is not a Standard Webhooks key (``whsec_`` + base64), or None."""
    if isinstance(secret, bytes):
        return None  # raw key bytes: used as they are
    rest = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    if rest.startswith(SECRET_PREFIX):
        return "wrong key form: the secret starts with 'whsec_whsec_': the prefix was added twice"
    if not rest:
        return "wrong key form: the secret is 'whsec_' and nothing else"
    if _b64(rest) is None:
        shown = "after its 'whsec_' prefix" if secret.startswith(SECRET_PREFIX) else "(it has no 'whsec_' prefix)"
        return (f"wrong key form: the secret is not base64 {shown}, so it is not a Standard Webhooks key; a v2 "
                "secret you chose yourself is not a v3 signing_secret")
    return None


def standard_key(secret: str | bytes) -> bytes:
    """The HMAC key Standard Webhooks derives from a secret: base64-decode of what follows ``whsec_``.

    Bytes are taken as the key itself. Raises ValueError, saying what is wrong with the form.
    """
    problem = _key_problem(secret)
    if problem:
        raise ValueError(problem)
    if isinstance(secret, bytes):
        return secret
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def sign_standard(body: bytes | bytearray, msg_id: str, timestamp: int | str, secret: str) -> str:
    """The Standard Webhooks ``webhook-signature`` value: ``"v1,<base64 HMAC of '{id}.{timestamp}.{body}'>"``.

    The sandbox's own signer (:func:`linq_nb.wire.v3.standard_signature`); a secret whose form is wrong
    (not ``whsec_`` + base64) is a ValueError saying so.
    """
    from .wire import v3  # here, not at the top: wire.v2 imports this module

    standard_key(secret)
    return str(v3.standard_signature(secret, msg_id, int(timestamp), _raw(body, "sign_standard")))


def _standard_signatures(header: str) -> list[str]:
    """The ``v1`` signatures of a ``webhook-signature`` header (space-separated ``version,base64``)."""
    return [part.split(",", 1)[1] for part in header.split() if part.startswith("v1,")]


def verify_standard(body: bytes | bytearray, headers: Mapping[str, str], secret: Secrets, *,
                    tolerance: float = TOLERANCE_SECONDS) -> None:
    """Check the Standard Webhooks headers (``webhook-id``, ``-timestamp``, ``-signature``); return None or raise.

    ``secret``: the subscription's ``signing_secret`` (``whsec_...``; several during a rotation).
    The decision is ``standardwebhooks.Webhook(secret).verify(...)``'s, as in Linq's SDK; before
    and after it linq_nb works out the precise reason for a refusal.
    """
    secrets = _secret_list(secret, "verify_standard")
    body = _raw(body, "verify_standard")
    values = {name: _header(headers, name) for name in STANDARD_HEADERS}
    missing = [name for name, value in values.items() if value is None]
    if missing:
        legacy = _header(headers, SIGNATURE_HEADER) is not None
        raise SignatureVerificationError(
            f"missing {', '.join(missing)} header{'s' if len(missing) > 1 else ''} (Standard Webhooks)"
            + (f": this request carries only {SIGNATURE_HEADER} (v2, or v3's legacy set)"
               if legacy and len(missing) == len(STANDARD_HEADERS) else ""),
            hint="Pass the request's headers unchanged (all of them); verify_delivery picks the scheme present.",
        )
    msg_id, timestamp, header = (values[n] or "" for n in STANDARD_HEADERS)
    given = _standard_signatures(header)
    if not given:
        raise SignatureVerificationError(
            f"malformed {WEBHOOK_SIGNATURE_HEADER} header: no 'v1,<base64>' signature in it"
            + (" (it looks like an X-Webhook-Signature value)" if header.lower().startswith(_PREFIX)
               or all(c in string.hexdigits for c in header) else ""),
            hint="Pass the header's value unchanged: a space-separated list such as 'v1,K5oZ...='.")
    keys, problems = [], []
    for s in secrets:
        problem = _key_problem(s)
        (problems.append(problem) if problem else keys.append(s))
    if not keys:
        raise SignatureVerificationError(
            problems[0], hint="Use the signing_secret that creating the v3 subscription returned (whsec_ + base64).")
    problem = _timestamp_problem(timestamp, WEBHOOK_TIMESTAMP_HEADER, tolerance)
    if problem:
        raise SignatureVerificationError(problem, hint="Check this machine's clock (timedatectl / NTP); a genuine "
                                                       "delivery is verified as soon as it arrives.")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureVerificationError(
            "the body is not UTF-8 text, so it is not a Linq delivery as sent: Standard Webhooks verifiers (the SDK's "
            "too) read the body as text", hint=_RAW_HINT) from None
    if any(_webhook_accepts(body, headers, k) for k in keys):
        return None
    _explain_standard(body, msg_id, timestamp, given, keys)


def _webhook_accepts(body: bytes, headers: Mapping[str, str], secret: str | bytes) -> bool:
    """The ``standardwebhooks`` package's verdict, which is the SDK's."""
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        Webhook(secret).verify(body, lowered, json_parse=False)
    except (WebhookVerificationError, ValueError, binascii.Error):  # it raises these for a garbled header too
        return False
    return True


def _explain_standard(body: bytes, msg_id: str, timestamp: str, given: list[str], keys: list[Secret]) -> None:
    def matches(data: bytes, key: bytes, signed_id: str | None = msg_id) -> bool:
        prefix = f"{signed_id}.{timestamp}." if signed_id is not None else f"{timestamp}."
        expected = base64.b64encode(_hmac(key, prefix.encode() + data)).decode("ascii")
        return any(hmac.compare_digest(expected, g) for g in given)

    decoded = [standard_key(k) for k in keys]
    if any(matches(form, k) for form in _reserialisations(body) for k in decoded):
        raise SignatureVerificationError("body was re-serialised: " + _RESERIALISED, hint=_RAW_HINT)
    for k in keys:
        if isinstance(k, str) and (matches(body, k.encode()) or matches(body, k.removeprefix(SECRET_PREFIX).encode())):
            raise SignatureVerificationError(
                "wrong key form: the signature was made with the secret's text as the HMAC key; Standard Webhooks "
                "keys with the base64-decoding of what follows 'whsec_'",
                hint="Sign with linq_nb.signing.sign_standard (or standardwebhooks.Webhook(secret).sign).")
    if any(matches(body, k, None) for k in decoded):
        raise SignatureVerificationError(
            "webhook-id left out: the signature covers '{timestamp}.{body}', but Standard Webhooks signs "
            "'{webhook-id}.{webhook-timestamp}.{raw body}'", hint="Sign the id, the timestamp and the body.")
    raise SignatureVerificationError(
        "signature mismatch: the signing secret is wrong, or the body, webhook-id or webhook-timestamp was "
        "altered in transit",
        hint="Use this subscription's own signing_secret (create showed it once) and the raw body.")


# --------------------------------------------------------------------------- any scheme


def detect_scheme(headers: Mapping[str, str]) -> str:
    """Which scheme a request's headers speak: ``"standard"`` if any ``webhook-*`` header is there,
    else ``"legacy"`` if ``X-Webhook-Timestamp`` is, else ``"v2"``."""
    if any(_header(headers, n) is not None for n in STANDARD_HEADERS):
        return "standard"
    if _header(headers, TIMESTAMP_HEADER) is not None:
        return "legacy"
    return "v2"


def verify_delivery(body: bytes | bytearray, headers: Mapping[str, str], secret: Secrets, *,
                    scheme: str | None = None, tolerance: float = TOLERANCE_SECONDS) -> str:
    """Verify a delivery in the scheme its headers speak (or ``scheme=``); return the scheme's name or raise.

    ``secret`` may mix v2 secrets and v3 signing secrets: each scheme uses those it can.

    >>> verify_delivery(body, request.headers, ["whsec_old...", "whsec_new..."])
    'standard'
    """
    scheme = scheme or detect_scheme(headers)
    if scheme == "standard":
        verify_standard(body, headers, secret, tolerance=tolerance)
    elif scheme == "legacy":
        verify_legacy(body, headers, secret, tolerance=tolerance)
    elif scheme == "v2":
        verify(body, _header(headers, SIGNATURE_HEADER), secret)
    else:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)} (or None to read it from the headers), "
                         f"not {scheme!r}")
    return scheme
