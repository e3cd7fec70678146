"""linq_nb.signing: known answers, every failure reason, and properties.

Every vector below was computed once, independently of linq_nb, with ``hmac``
and ``json`` in a separate ``python -c`` and written here as a literal, so the
tests catch a change in the signer as well as in the verifier. The failure tests
sign with the project's own signer and then break exactly one thing each.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linq_nb.errors import LinqError, SignatureVerificationError
from linq_nb.signing import SIGNATURE_HEADER, canonical_json, sign, verify

# --- known answers ------------------------------------------------------------------------------------------------

# hmac.new(b"s", b'{"a":1}', hashlib.sha256).hexdigest()
SMALL_BODY = b'{"a":1}'
SMALL_SIG = "sha256=37beaf650f70b40ec9706929c2e9d835cbd63729988f48781e6383a147215f07"

# RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?"
RFC4231_SIG = "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"

# A v2 envelope with a non-ASCII character, its canonical bytes, and its signature with "whsec_test".
ENVELOPE = {
    "event_type": "message.received",
    "event_id": "00000000-0000-4000-8000-000000000001",
    "data": {"text": "héllo", "id": "msg_1"},
    "created_at": "2025-06-01T10:00:00-06:00",
    "api_version": "v2",
}
ENVELOPE_BYTES = (
    b'{"api_version":"v2","created_at":"2025-06-01T10:00:00-06:00","data":{"id":"msg_1","text":"h\xc3\xa9llo"},'
    b'"event_id":"00000000-0000-4000-8000-000000000001","event_type":"message.received"}'
)
ENVELOPE_SIG = "sha256=bd9c6c64cd84a13080800693e5f4e9f6861df3313ea5d0f93307142d666a9c6c"


def test_sign_known_answer_small_body() -> None:
    assert sign(SMALL_BODY, "s") == SMALL_SIG


def test_sign_known_answer_rfc4231() -> None:
    assert sign(b"what do ya want for nothing?", "Jefe") == RFC4231_SIG


def test_sign_accepts_bytes_secret_and_bytearray_body() -> None:
    assert sign(bytearray(SMALL_BODY), b"s") == SMALL_SIG


def test_signature_is_prefix_and_64_lowercase_hex() -> None:
    sig = sign(b"anything", "k")
    assert sig.startswith("sha256=")
    digest = sig[len("sha256="):]
    assert len(digest) == 64
    assert digest == digest.lower()
    int(digest, 16)


def test_canonical_json_nested_unicode_known_bytes() -> None:
    obj = {"b": [1, {"z": "é", "a": None}], "a": "日本 ✓", "c": {"y": True, "x": 1.5, "emoji": "🦊"}}
    assert canonical_json(obj) == (
        b'{"a":"\xe6\x97\xa5\xe6\x9c\xac \xe2\x9c\x93","b":[1,{"a":null,"z":"\xc3\xa9"}],'
        b'"c":{"emoji":"\xf0\x9f\xa6\x8a","x":1.5,"y":true}}'
    )


def test_canonical_json_of_envelope_and_its_signature() -> None:
    body = canonical_json(ENVELOPE)
    assert body == ENVELOPE_BYTES
    assert sign(body, "whsec_test") == ENVELOPE_SIG
    verify(ENVELOPE_BYTES, ENVELOPE_SIG, "whsec_test")


def test_canonical_json_ignores_key_order() -> None:
    assert canonical_json({"b": 1, "a": {"d": 2, "c": 3}}) == canonical_json({"a": {"c": 3, "d": 2}, "b": 1})


def test_sign_refuses_an_object() -> None:
    with pytest.raises(TypeError, match="canonical_json"):
        sign(ENVELOPE, "s")  # type: ignore[arg-type]


# --- accepted header forms ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "header",
    [
        SMALL_SIG,
        SMALL_SIG[len("sha256="):],  # bare hex
        "sha256=" + SMALL_SIG[len("sha256="):].upper(),  # uppercase hex
        SMALL_SIG[len("sha256="):].upper(),  # bare uppercase hex
        "SHA256=" + SMALL_SIG[len("sha256="):],  # uppercase prefix
        "  " + SMALL_SIG + "\n",  # surrounding whitespace
    ],
    ids=["prefixed", "bare", "upper-hex", "bare-upper-hex", "upper-prefix", "whitespace"],
)
def test_verify_accepts_header_forms(header: str) -> None:
    verify(SMALL_BODY, header, "s")  # returns None, raises on failure


def test_verify_accepts_bytes_secret_and_bytearray_body() -> None:
    verify(SMALL_BODY, SMALL_SIG, b"s")
    verify(bytearray(SMALL_BODY), SMALL_SIG, "s")


# --- each failure reason -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header(header: str | None) -> None:
    with pytest.raises(SignatureVerificationError, match=f"missing {SIGNATURE_HEADER} header"):
        verify(SMALL_BODY, header, "s")


@pytest.mark.parametrize(
    "header",
    [
        "sha256=",
        "sha256=abc",
        SMALL_SIG + "0",  # one digit too many
        SMALL_SIG[:-1],  # one digit too few
        SMALL_SIG[:-1] + "g",  # not hex
        "sha1=" + SMALL_SIG[len("sha256="):],
        "v1," + SMALL_SIG[len("sha256="):],  # a Standard Webhooks style header
    ],
)
def test_malformed_header(header: str) -> None:
    with pytest.raises(SignatureVerificationError, match="malformed"):
        verify(SMALL_BODY, header, "s")


def test_wrong_secret() -> None:
    header = sign(SMALL_BODY, "s")
    with pytest.raises(SignatureVerificationError, match="signature mismatch") as info:
        verify(SMALL_BODY, header, "t")
    assert "secret is wrong or the body was altered" in info.value.message
    assert info.value.hint


def test_altered_body() -> None:
    header = sign(SMALL_BODY, "s")
    with pytest.raises(SignatureVerificationError, match="signature mismatch"):
        verify(b'{"a":2}', header, "s")


def test_altered_signature_one_digit() -> None:
    digest = sign(SMALL_BODY, "s")[len("sha256="):]
    flipped = ("0" if digest[0] != "0" else "1") + digest[1:]
    with pytest.raises(SignatureVerificationError, match="signature mismatch"):
        verify(SMALL_BODY, "sha256=" + flipped, "s")


@pytest.mark.parametrize(
    "reserialise",
    [
        lambda obj: json.dumps(obj).encode(),  # default separators: what json.dumps(request.json()) gives
        lambda obj: json.dumps(obj, indent=2, ensure_ascii=False).encode(),
        lambda obj: json.dumps(obj, sort_keys=True).encode(),  # ensure_ascii escapes the é
    ],
    ids=["json.dumps", "indented", "ascii-escaped"],
)
def test_reserialised_body_is_explained(reserialise: object) -> None:
    header = sign(canonical_json(ENVELOPE), "whsec_test")
    reserialised = reserialise(json.loads(ENVELOPE_BYTES))  # type: ignore[operator]
    assert reserialised != ENVELOPE_BYTES
    with pytest.raises(SignatureVerificationError, match="re-serialised") as info:
        verify(reserialised, header, "whsec_test")
    assert "raw request body" in info.value.message


def test_reserialised_hint_not_given_for_wrong_secret() -> None:
    header = sign(canonical_json(ENVELOPE), "whsec_test")
    with pytest.raises(SignatureVerificationError, match="signature mismatch"):
        verify(json.dumps(ENVELOPE).encode(), header, "whsec_other")


def test_reserialised_hint_not_given_for_non_json_body() -> None:
    header = sign(b"not json", "s")
    with pytest.raises(SignatureVerificationError, match="signature mismatch"):
        verify(b"not json!", header, "s")


def test_errors_are_linq_errors_and_never_show_the_secret() -> None:
    secret = "whsec_SENTINEL_in_signing_test"
    for header in (None, "garbage", sign(SMALL_BODY, "other")):
        with pytest.raises(LinqError) as info:
            verify(SMALL_BODY, header, secret)
        err = info.value
        for text in (str(err), repr(err), err._repr_html_(), err.hint or ""):
            assert secret not in text


# --- several secrets (rotation) ------------------------------------------------------------------------------------

def test_multiple_secrets_any_match_verifies() -> None:
    header = sign(SMALL_BODY, "new")
    verify(SMALL_BODY, header, ["old", "new"])
    verify(SMALL_BODY, header, ("new", "old"))
    mixed: list[str | bytes] = ["old", b"new"]
    verify(SMALL_BODY, header, iter(mixed))


def test_multiple_secrets_none_match() -> None:
    header = sign(SMALL_BODY, "newest")
    with pytest.raises(SignatureVerificationError, match="signature mismatch"):
        verify(SMALL_BODY, header, ["old", "new"])


def test_multiple_secrets_reserialised_detected() -> None:
    header = sign(canonical_json(ENVELOPE), "new")
    with pytest.raises(SignatureVerificationError, match="re-serialised"):
        verify(json.dumps(ENVELOPE).encode(), header, ["old", "new"])


def test_no_secret_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        verify(SMALL_BODY, SMALL_SIG, [])


def test_str_body_is_a_usage_error() -> None:
    with pytest.raises(TypeError, match="raw request body"):
        verify(SMALL_BODY.decode(), SMALL_SIG, "s")  # type: ignore[arg-type]


# --- properties ----------------------------------------------------------------------------------------------------

# HMAC pads a short key with zero bytes, so "k" and "k\x00" are the same key by design; keep NUL out of secrets.
secrets_st = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1,
                     max_size=40)
bodies_st = st.binary(max_size=300)
HEX = "0123456789abcdef"


@settings(max_examples=200, deadline=None)
@given(body=bodies_st, secret=secrets_st)
def test_property_sign_then_verify_round_trips(body: bytes, secret: str) -> None:
    verify(body, sign(body, secret), secret)


@settings(max_examples=200, deadline=None)
@given(body=bodies_st, other=bodies_st, secret=secrets_st)
def test_property_any_body_change_is_rejected(body: bytes, other: bytes, secret: str) -> None:
    if other == body:
        other = body + b"\x00"
    with pytest.raises(SignatureVerificationError):
        verify(other, sign(body, secret), secret)


@settings(max_examples=200, deadline=None)
@given(body=bodies_st, secret=secrets_st, other=secrets_st)
def test_property_any_secret_change_is_rejected(body: bytes, secret: str, other: str) -> None:
    if other == secret:
        other = secret + "x"
    with pytest.raises(SignatureVerificationError):
        verify(body, sign(body, secret), other)


@settings(max_examples=200, deadline=None)
@given(body=bodies_st, secret=secrets_st, data=st.data())
def test_property_any_signature_digit_change_is_rejected(body: bytes, secret: str, data: st.DataObject) -> None:
    digest = sign(body, secret)[len("sha256="):]
    i = data.draw(st.integers(min_value=0, max_value=63), label="position")
    new = data.draw(st.sampled_from([c for c in HEX if c != digest[i]]), label="digit")
    with pytest.raises(SignatureVerificationError, match="signature mismatch"):
        verify(body, "sha256=" + digest[:i] + new + digest[i + 1:], secret)


@settings(max_examples=200, deadline=None)
@given(body=bodies_st, secret=secrets_st, data=st.data())
def test_property_any_signature_length_change_is_rejected(body: bytes, secret: str, data: st.DataObject) -> None:
    digest = sign(body, secret)[len("sha256="):]
    if data.draw(st.booleans(), label="truncate"):
        changed = digest[: data.draw(st.integers(min_value=0, max_value=63), label="keep")]
    else:
        changed = digest + data.draw(st.text(HEX, min_size=1, max_size=8), label="extra")
    with pytest.raises(SignatureVerificationError):
        verify(body, "sha256=" + changed, secret)


@settings(max_examples=100, deadline=None)
@given(obj=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=15,
))
def test_property_canonical_json_round_trips_and_is_stable(obj: object) -> None:
    body = canonical_json(obj)
    assert json.loads(body) == obj
    assert canonical_json(json.loads(body)) == body
