"""Signing rules that mutation testing (``make mutate``) found unpinned by tests/test_signing.py.

Each failure has its own full sentence and its own advice: a receiver's log shows them as they are,
so they are pinned word for word here (signing.py's text is stable and no one else's to change).
"""

from __future__ import annotations

import json

import pytest

from linq_nb.errors import SignatureVerificationError
from linq_nb.signing import canonical_json, sign, verify

BODY = b'{"a":1}'
# hmac.new(b"s", b'{"a":1}', hashlib.sha256).hexdigest(), computed outside linq_nb
DIGEST = "37beaf650f70b40ec9706929c2e9d835cbd63729988f48781e6383a147215f07"

MISSING = ("missing X-Webhook-Signature header: the request is unsigned, or the subscription has no secret",
           "Give the subscription a secret, or check the receiver reads the right header.")
MALFORMED = ("malformed X-Webhook-Signature header: expected 'sha256=' and 64 hex digits",
             "Pass the header's value unchanged.")
MISMATCH = ("signature mismatch: the secret is wrong or the body was altered in transit",
            "Check you use this subscription's secret (during a rotation, pass both) and hash the raw body.")
RESERIALISED = (
    "body was re-serialised: the signature matches the canonical JSON of this payload but not these bytes: the "
    "body was parsed and re-serialised (for example json.dumps(request.json())) before verifying. Verify the raw "
    "request body exactly as received.",
    "",
)


@pytest.mark.parametrize(
    ("body", "header", "expected"),
    [
        (BODY, None, MISSING),
        (BODY, "sha256=" + DIGEST[:-1], MALFORMED),
        (BODY, "sha256=" + DIGEST, MISMATCH),  # signed with "s", checked with "t" below
        (json.dumps({"a": 1}).encode(), sign(canonical_json({"a": 1}), "t"), RESERIALISED),
    ],
    ids=["missing", "malformed", "mismatch", "re-serialised"],
)
def test_each_failure_says_its_cause_and_how_to_fix_it_in_full(body: bytes, header: str | None,
                                                                 expected: tuple[str, str]) -> None:
    with pytest.raises(SignatureVerificationError) as info:
        verify(body, header, "t")
    assert (info.value.message, info.value.hint) == expected


def test_usage_errors_say_what_to_pass_instead() -> None:
    with pytest.raises(TypeError) as info:
        sign("text", "s")  # type: ignore[arg-type]
    assert str(info.value) == "sign() needs the raw body as bytes; use canonical_json(obj) for an object"
    with pytest.raises(ValueError) as info2:
        verify(BODY, "sha256=" + DIGEST, [])
    assert str(info2.value) == "verify() needs at least one secret"
    with pytest.raises(TypeError) as info3:
        verify("text", "sha256=" + DIGEST, "s")  # type: ignore[arg-type]
    assert str(info3.value) == "verify() needs the raw request body as bytes, exactly as received"


@pytest.mark.parametrize("position", [0, 8, 31, 63], ids=["first", "ninth", "middle", "last"])
def test_the_whole_signature_is_compared_so_one_wrong_digit_anywhere_is_rejected(position: int) -> None:
    verify(BODY, "sha256=" + DIGEST, "s")
    wrong = DIGEST[:position] + ("0" if DIGEST[position] != "0" else "1") + DIGEST[position + 1:]
    with pytest.raises(SignatureVerificationError, match=r"^signature mismatch"):
        verify(BODY, "sha256=" + wrong, "s")
