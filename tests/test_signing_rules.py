"""Signing rules that mutation testing (``make mutate``) found unpinned by tests/test_signing.py.

Each failure has its own full sentence and its own advice: a receiver's log shows them as they are,
so they are pinned word for word here (signing.py's text is stable and no one else's to change).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from linq_nb import signing
from linq_nb.errors import SignatureVerificationError
from linq_nb.signing import (
    canonical_json,
    sign,
    sign_legacy,
    sign_standard,
    verify,
    verify_delivery,
    verify_legacy,
    verify_standard,
)
from tests import test_signing_v3 as v3

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


# --------------------------------------------------------------------------- v3: legacy and Standard Webhooks

LEGACY_MISSING_HINT = ("Verify a v2 delivery with linq_nb.signing.verify, a v3 one with verify_delivery (it reads "
                       "whichever header set is present); pass the request's headers unchanged.")
STANDARD_MISSING_HINT = "Pass the request's headers unchanged (all of them); verify_delivery picks the scheme present."
STANDARD_MALFORMED_HINT = "Pass the header's value unchanged: a space-separated list such as 'v1,K5oZ...='."
CLOCK_HINT = "Check this machine's clock (timedatectl / NTP); a genuine delivery is verified as soon as it arrives."
NOT_V1 = "malformed webhook-signature header: no 'v1,<base64>' signature in it"


def _without(headers: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in names}


def _with(**changes: str) -> dict[str, str]:
    return {**v3.delivery(), **{k.replace("_", "-"): v for k, v in changes.items()}}


def _refusal(verifier: Callable[..., None], headers: dict[str, str], secret: str = v3.SECRET) -> tuple[str, str]:
    with pytest.raises(SignatureVerificationError) as info:
        verifier(v3.BODY, headers, secret)
    return info.value.message, info.value.hint


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (_without(v3.delivery(), "X-Webhook-Timestamp"),
         ("missing X-Webhook-Timestamp header for v3's legacy scheme", LEGACY_MISSING_HINT)),
        ({}, ("missing X-Webhook-Timestamp and X-Webhook-Signature headers for v3's legacy scheme",
              LEGACY_MISSING_HINT)),
        ({"X-Webhook-Signature": sign(v3.BODY, v3.SECRET)},
         ("missing X-Webhook-Timestamp header for v3's legacy scheme: the 'sha256=' signature without a timestamp "
          "is a v2 delivery", LEGACY_MISSING_HINT)),
        (_with(**{"X-Webhook-Signature": sign(v3.BODY, v3.SECRET)}),
         ("malformed X-Webhook-Signature header for v3's legacy scheme: expected 64 hex digits without 'sha256=' "
          "(that prefix is v2's)", "Pass the header's value unchanged.")),
        (_with(**{"X-Webhook-Signature": "a" * 63}),
         ("malformed X-Webhook-Signature header for v3's legacy scheme: expected 64 hex digits",
          "Pass the header's value unchanged.")),
        (_with(**{"X-Webhook-Signature": "g" * 64}),
         ("malformed X-Webhook-Signature header for v3's legacy scheme: expected 64 hex digits",
          "Pass the header's value unchanged.")),
        (_with(**{"X-Webhook-Timestamp": "y" * 50}),
         (f"malformed X-Webhook-Timestamp header {'y' * 40!r}: expected unix seconds such as 1767225600",
          CLOCK_HINT)),
    ],
    ids=["no-timestamp", "no-headers", "v2-request", "v2-prefix", "63-digits", "not-hex", "timestamp-not-a-number"],
)
def test_each_legacy_failure_says_its_cause_and_how_to_fix_it_in_full(headers: dict[str, str],
                                                                      expected: tuple[str, str]) -> None:
    assert _refusal(verify_legacy, headers) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (_without(v3.delivery(), "webhook-id", "webhook-timestamp"),
         ("missing webhook-id, webhook-timestamp headers (Standard Webhooks)", STANDARD_MISSING_HINT)),
        (_without(v3.delivery(), "webhook-id"), ("missing webhook-id header (Standard Webhooks)",
                                                 STANDARD_MISSING_HINT)),
        (_with(webhook_signature="a" * 64), (NOT_V1 + " (it looks like an X-Webhook-Signature value)",
                                             STANDARD_MALFORMED_HINT)),
        (_with(webhook_signature="SHA256=zz"), (NOT_V1 + " (it looks like an X-Webhook-Signature value)",
                                                STANDARD_MALFORMED_HINT)),
        (_with(webhook_signature="v2,abc"), (NOT_V1, STANDARD_MALFORMED_HINT)),
        (_with(webhook_timestamp="y"), ("malformed webhook-timestamp header 'y': expected unix seconds such as "
                                        "1767225600", CLOCK_HINT)),
    ],
    ids=["two-missing", "id-missing", "hex", "v2-prefix-in-capitals", "only-v2-signatures", "timestamp-not-a-number"],
)
def test_each_standard_failure_says_its_cause_and_how_to_fix_it_in_full(headers: dict[str, str],
                                                                        expected: tuple[str, str]) -> None:
    assert _refusal(verify_standard, headers) == expected


def test_v3_usage_errors_name_the_function_called() -> None:
    for verifier in (verify_legacy, verify_standard):
        with pytest.raises(TypeError) as info:
            verifier("text", v3.delivery(), v3.SECRET)  # type: ignore[arg-type]
        assert str(info.value) == f"{verifier.__name__}() needs the raw request body as bytes, exactly as received"
        with pytest.raises(ValueError) as info2:
            verifier(v3.BODY, v3.delivery(), [])
        assert str(info2.value) == f"{verifier.__name__}() needs at least one secret"
    with pytest.raises(TypeError) as info3:
        sign_legacy("text", 1, v3.SECRET)  # type: ignore[arg-type]
    assert str(info3.value) == "sign_legacy() needs the raw body as bytes; use canonical_json(obj) for an object"
    with pytest.raises(TypeError) as info4:
        sign_standard("text", "id", 1, v3.SECRET)  # type: ignore[arg-type]
    assert str(info4.value) == "sign_standard() needs the raw body as bytes; use canonical_json(obj) for an object"


TS = 1_767_225_600


def _at(monkeypatch: pytest.MonkeyPatch, now: float) -> dict[str, str]:
    """This machine's clock stopped at ``now``; a legacy delivery signed at TS."""
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: now))
    return v3.delivery(timestamp=TS)


def test_a_timestamp_exactly_the_tolerance_away_is_accepted_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    verify_legacy(v3.BODY, _at(monkeypatch, TS + 300.0), v3.SECRET)
    verify_legacy(v3.BODY, _at(monkeypatch, TS - 300.0), v3.SECRET)
    verify_legacy(v3.BODY, _at(monkeypatch, TS + 2.0), v3.SECRET, tolerance=2)
    assert _refusal(verify_legacy, _at(monkeypatch, TS + 300.5))[0].startswith("timestamp too old: ")


def test_a_stale_or_early_timestamp_says_how_far_off_it_is_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    old = _refusal(lambda b, h, s: verify_legacy(b, h, s, tolerance=0), _at(monkeypatch, TS + 0.5))
    assert old == (f"timestamp too old: X-Webhook-Timestamp {TS} is 0 s old and at most 0 s either way is accepted: "
                   "a replayed or long-delayed delivery, or this machine's clock is ahead", CLOCK_HINT)
    early = _refusal(verify_legacy, _at(monkeypatch, TS - 600.0))
    assert early == (f"timestamp in the future: X-Webhook-Timestamp {TS} is 10 min ahead of this machine's clock "
                     "and at most 5 min either way is accepted: the sender's clock or this one is wrong", CLOCK_HINT)


def test_a_v1_value_with_another_comma_is_no_signature_at_all() -> None:
    # Signed over a re-serialisation of the body: if any part of "v1,<sig>,x" were taken as the signature,
    # the explanation would be "re-serialised"; the whole value after "v1," is one (malformed) signature.
    headers = v3.delivery()
    resigned = sign_standard(json.dumps(json.loads(v3.BODY)).encode(), headers["webhook-id"],
                             headers["webhook-timestamp"], v3.SECRET).removeprefix("v1,")
    for value in (f"v1,{resigned},x", f"v1,x,{resigned}"):
        message, _ = _refusal(verify_standard, {**headers, "webhook-signature": value})
        assert message.startswith("signature mismatch: "), value
    message, _ = _refusal(verify_standard, {**headers, "webhook-signature": f"v1,{resigned}"})
    assert message.startswith("body was re-serialised: ")


def test_a_secret_of_the_wrong_form_for_standard_webhooks_says_which_one_to_use() -> None:
    assert _refusal(verify_standard, v3.delivery(), "whsec_" + v3.SECRET) == (
        "wrong key form: the secret starts with 'whsec_whsec_': the prefix was added twice",
        "Use the signing_secret that creating the v3 subscription returned (whsec_ + base64).")


def test_a_body_that_is_not_utf8_is_no_standard_webhooks_delivery() -> None:
    with pytest.raises(SignatureVerificationError) as info:
        verify_standard(b"\xff\xfe", v3.delivery(b"\xff\xfe"), v3.SECRET)
    assert (info.value.message, info.value.hint) == (
        "the body is not UTF-8 text, so it is not a Linq delivery as sent: Standard Webhooks verifiers (the SDK's "
        "too) read the body as text",
        "Verify the raw request body exactly as received (Flask request.get_data(), Django request.body, "
        "FastAPI await request.body()), and parse it only afterwards.")


@pytest.mark.parametrize("scheme", ["standard", "legacy"])
def test_verify_delivery_holds_each_v3_scheme_to_the_tolerance_given(scheme: str) -> None:
    headers = v3.delivery(timestamp=int(time.time()) - 60)
    assert verify_delivery(v3.BODY, headers, v3.SECRET, scheme=scheme) == scheme  # within the default 5 min
    with pytest.raises(SignatureVerificationError) as info:
        verify_delivery(v3.BODY, headers, v3.SECRET, scheme=scheme, tolerance=30)
    assert info.value.message.startswith("timestamp too old: ")


@pytest.mark.parametrize(("secret", "problem"), [
    ("whsec_", "the secret is 'whsec_' and nothing else"),
    ("whsec_whsec_AAAA", "the secret starts with 'whsec_whsec_': the prefix was added twice"),
    # one character outside the alphabet is not base64, even where dropping it would leave a valid key
    ("whsec_AAAA!", "the secret is not base64 after its 'whsec_' prefix, so it is not a Standard Webhooks key; "
                    "a v2 secret you chose yourself is not a v3 signing_secret"),
    ("AAAA!", "the secret is not base64 (it has no 'whsec_' prefix), so it is not a Standard Webhooks key; "
              "a v2 secret you chose yourself is not a v3 signing_secret"),
])
def test_a_standard_key_of_the_wrong_form_is_refused_saying_what_is_wrong(secret: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        signing.standard_key(secret)
    assert str(info.value) == "wrong key form: " + problem
    assert signing.standard_key("whsec_AAAA") == b"\0\0\0"
