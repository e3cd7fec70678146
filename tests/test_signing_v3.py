"""linq_nb.signing for v3: Standard Webhooks and the legacy headers, known answers, one broken thing a test.

The known answers come from the specs' own examples, recomputed once with ``hmac`` in a
separate ``python -c``: the Standard Webhooks specification's example (secret, id, timestamp,
payload and its ``v1,`` signature), and Linq's legacy example code (``hmac.new(signing_secret.encode(),
f"{timestamp}.{payload}".encode(), sha256).hexdigest()``) with the OpenAPI spec's example secret.
The failure tests sign a fresh delivery with the project's own signers, then break one thing each,
and check the reason names exactly that thing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from linq_nb.errors import SignatureVerificationError
from linq_nb.signing import (
    TOLERANCE_SECONDS,
    detect_scheme,
    sign,
    sign_legacy,
    sign_standard,
    standard_key,
    verify_delivery,
    verify_legacy,
    verify_standard,
)
from tests.conftest import SENTINEL_SECRET

# The Standard Webhooks specification's example.
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

# Linq's legacy example code, keyed with the OpenAPI spec's example signing_secret.
LEGACY_SECRET = "whsec_abc123def456"
LEGACY_TIMESTAMP = 1767225600
LEGACY_BODY = b'{"event_type":"message.received"}'
LEGACY_SIGNATURE = "d16a6b200df4923f5c4fee2c38a86b966f397326bac420014a37623f3244eed8"

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
BODY = json.dumps({"api_version": "v3", "event_type": "message.received", "event_id": "evt_1",
                   "data": {"text": "héllo"}}, separators=(",", ":"), ensure_ascii=False).encode()
EVENT_ID = "3f1c2b7e-0000-4000-8000-000000000001"


def delivery(body: bytes = BODY, secret: str = SECRET, *, timestamp: int | None = None,
             msg_id: str = EVENT_ID) -> dict[str, str]:
    """Both v3 header sets of a fresh delivery, signed with linq_nb's own signers."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard(body, msg_id, ts, secret),
        "X-Webhook-Timestamp": str(ts),
        "X-Webhook-Signature": sign_legacy(body, ts, secret),
        "X-Webhook-Event": "message.received",
    }


def refused(fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SignatureVerificationError) as info:
        fn(*args, **kwargs)
    return info.value.message


# --- known answers ------------------------------------------------------------------------------------------------

def test_standard_known_answer_from_the_standard_webhooks_spec() -> None:
    assert sign_standard(SW_BODY, SW_ID, SW_TIMESTAMP, SW_SECRET) == SW_SIGNATURE
    assert sign_standard(SW_BODY, SW_ID, str(SW_TIMESTAMP), SW_SECRET.removeprefix("whsec_")) == SW_SIGNATURE


def test_standard_known_answer_is_refused_only_for_its_age() -> None:
    headers = {"webhook-id": SW_ID, "webhook-timestamp": str(SW_TIMESTAMP), "webhook-signature": SW_SIGNATURE}
    message = refused(verify_standard, SW_BODY, headers, SW_SECRET)
    assert message.startswith("timestamp too old: webhook-timestamp 1614265330 is ")
    assert "at most 5 min either way" in message


def test_legacy_known_answer_from_linqs_example_code() -> None:
    assert sign_legacy(LEGACY_BODY, LEGACY_TIMESTAMP, LEGACY_SECRET) == LEGACY_SIGNATURE


def test_standard_key_is_the_base64_after_the_prefix() -> None:
    assert standard_key(SW_SECRET) == base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert standard_key(SW_SECRET.removeprefix("whsec_")) == standard_key(SW_SECRET)
    assert standard_key(b"raw") == b"raw"
    with pytest.raises(ValueError, match="not base64"):
        standard_key(SENTINEL_SECRET)


def test_our_signer_agrees_with_the_standardwebhooks_package() -> None:
    from datetime import datetime, timezone

    when = datetime.fromtimestamp(SW_TIMESTAMP, tz=timezone.utc)
    assert Webhook(SW_SECRET).sign(SW_ID, when, SW_BODY.decode()) == SW_SIGNATURE
    headers = delivery()
    Webhook(SECRET).verify(BODY, headers)  # the SDK's verifier accepts what linq_nb signs


# --- a fresh delivery verifies in each scheme ---------------------------------------------------------------------

def test_fresh_delivery_verifies_in_both_v3_schemes() -> None:
    headers = delivery()
    verify_standard(BODY, headers, SECRET)
    verify_legacy(BODY, headers, SECRET)
    assert verify_delivery(BODY, headers, SECRET) == "standard"
    assert verify_delivery(BODY, headers, SECRET, scheme="legacy") == "legacy"


def test_detect_scheme_reads_the_header_set() -> None:
    both = delivery()
    legacy = {k: v for k, v in both.items() if k.startswith("X-")}
    assert detect_scheme(both) == "standard"
    assert detect_scheme({k.upper(): v for k, v in both.items()}) == "standard"
    assert detect_scheme(legacy) == "legacy"
    assert detect_scheme({"X-Webhook-Signature": sign(BODY, "s")}) == "v2"
    assert verify_delivery(BODY, legacy, SECRET) == "legacy"
    assert verify_delivery(BODY, {"x-webhook-signature": sign(BODY, "s")}, "s") == "v2"


def test_several_secrets_and_several_signatures() -> None:
    other = "whsec_" + base64.b64encode(b"another key of thirty-two bytes!").decode()
    headers = delivery()
    verify_standard(BODY, headers, [other, SECRET])  # a rotation: either secret
    verify_legacy(BODY, headers, [other, SECRET])
    ts = int(headers["webhook-timestamp"])
    headers["webhook-signature"] = sign_standard(BODY, EVENT_ID, ts, other) + " " + headers["webhook-signature"]
    verify_standard(BODY, headers, SECRET)  # one of the signatures matching is enough
    Webhook(SECRET).verify(BODY, headers)


def test_v2_secrets_mixed_in_are_skipped_by_standard() -> None:
    headers = delivery()
    verify_delivery(BODY, headers, [SENTINEL_SECRET, SECRET])
    assert refused(verify_delivery, BODY, {"X-Webhook-Signature": sign(BODY, SENTINEL_SECRET)},
                   [SECRET]) .startswith("signature mismatch")
    verify_delivery(BODY, {"X-Webhook-Signature": sign(BODY, SENTINEL_SECRET)}, [SECRET, SENTINEL_SECRET])


def test_within_the_tolerance_verifies() -> None:
    headers = delivery(timestamp=int(time.time()) - TOLERANCE_SECONDS + 30)
    verify_standard(BODY, headers, SECRET)
    verify_legacy(BODY, headers, SECRET)


# --- one broken thing each: header missing ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_header_missing_is_named(name: str) -> None:
    headers = delivery()
    del headers[name]
    message = refused(verify_standard, BODY, headers, SECRET)
    assert message == f"missing {name} header (Standard Webhooks)"


def test_standard_headers_all_missing_on_a_v2_request() -> None:
    message = refused(verify_standard, BODY, {"X-Webhook-Signature": sign(BODY, SECRET)}, SECRET)
    assert message.startswith("missing webhook-id, webhook-timestamp, webhook-signature headers")
    assert message.endswith("this request carries only X-Webhook-Signature (v2, or v3's legacy set)")


@pytest.mark.parametrize("name", ["X-Webhook-Timestamp", "X-Webhook-Signature"])
def test_legacy_header_missing_is_named(name: str) -> None:
    headers = delivery()
    del headers[name]
    assert refused(verify_legacy, BODY, headers, SECRET).startswith(f"missing {name} header for v3's legacy scheme")


def test_legacy_check_of_a_v2_request_says_it_is_v2() -> None:
    message = refused(verify_legacy, BODY, {"X-Webhook-Signature": sign(BODY, SECRET)}, SECRET)
    assert "is a v2 delivery" in message


def test_malformed_signature_headers() -> None:
    headers = delivery()
    headers["webhook-signature"] = headers["X-Webhook-Signature"]  # the hex one in the wrong header
    assert "no 'v1,<base64>' signature" in refused(verify_standard, BODY, headers, SECRET)
    headers = delivery()
    headers["X-Webhook-Signature"] = sign(BODY, SECRET)
    assert "without 'sha256=' (that prefix is v2's)" in refused(verify_legacy, BODY, headers, SECRET)
    headers = delivery()
    headers["webhook-timestamp"] = "yesterday"
    assert refused(verify_standard, BODY, headers, SECRET).startswith("malformed webhook-timestamp header")


# --- one broken thing each: the key's form ------------------------------------------------------------------------

def test_standard_prefix_given_twice() -> None:
    message = refused(verify_standard, BODY, delivery(), "whsec_" + SECRET)
    assert message == "wrong key form: the secret starts with 'whsec_whsec_': the prefix was added twice"


def test_standard_secret_that_is_not_base64() -> None:
    message = refused(verify_standard, BODY, delivery(), SENTINEL_SECRET)
    assert message.startswith("wrong key form: the secret is not base64 after its 'whsec_' prefix")
    assert SENTINEL_SECRET not in message and "SENTINEL" not in message
    message = refused(verify_standard, BODY, delivery(), "not-base64!")
    assert "(it has no 'whsec_' prefix)" in message


def test_standard_secret_without_its_prefix_still_verifies() -> None:
    verify_standard(BODY, delivery(), SECRET.removeprefix("whsec_"))  # as standardwebhooks does


def test_standard_signed_with_the_secret_text_as_key() -> None:
    headers = delivery()
    ts = headers["webhook-timestamp"]
    wrong = hmac.new(SECRET.encode(), f"{EVENT_ID}.{ts}.".encode() + BODY, hashlib.sha256).digest()
    headers["webhook-signature"] = "v1," + base64.b64encode(wrong).decode()
    message = refused(verify_standard, BODY, headers, SECRET)
    assert message.startswith("wrong key form: the signature was made with the secret's text as the HMAC key")


def test_legacy_secret_missing_its_prefix() -> None:
    message = refused(verify_legacy, BODY, delivery(), SECRET.removeprefix("whsec_"))
    assert message.startswith("wrong key form: the signature matches this secret with 'whsec_' in front")


def test_legacy_signed_without_the_prefix() -> None:
    headers = delivery()
    headers["X-Webhook-Signature"] = sign_legacy(BODY, headers["X-Webhook-Timestamp"], SECRET.removeprefix("whsec_"))
    message = refused(verify_legacy, BODY, headers, SECRET)
    assert message.startswith("wrong key form: the signature matches this secret without its 'whsec_' prefix:")


def test_legacy_signed_with_the_decoded_key() -> None:
    headers = delivery()
    ts = headers["X-Webhook-Timestamp"]
    digest = hmac.new(standard_key(SECRET), f"{ts}.".encode() + BODY, hashlib.sha256).hexdigest()
    headers["X-Webhook-Signature"] = digest
    message = refused(verify_legacy, BODY, headers, SECRET)
    assert "(base64-decoded, as Standard Webhooks keys it)" in message


# --- one broken thing each: the timestamp -------------------------------------------------------------------------

@pytest.mark.parametrize("verifier", [verify_standard, verify_legacy])
def test_timestamp_too_old(verifier) -> None:  # type: ignore[no-untyped-def]
    message = refused(verifier, BODY, delivery(timestamp=int(time.time()) - 3 * 3600), SECRET)
    assert message.startswith("timestamp too old: ")
    assert " is 3 h old and at most 5 min either way is accepted" in message


@pytest.mark.parametrize("verifier", [verify_standard, verify_legacy])
def test_timestamp_in_the_future(verifier) -> None:  # type: ignore[no-untyped-def]
    message = refused(verifier, BODY, delivery(timestamp=int(time.time()) + 600), SECRET)
    assert message.startswith("timestamp in the future: ")
    assert "ahead of this machine's clock" in message


def test_timestamp_altered_in_transit_is_a_mismatch() -> None:
    headers = delivery()
    headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)
    headers["X-Webhook-Timestamp"] = headers["webhook-timestamp"]
    assert refused(verify_standard, BODY, headers, SECRET).startswith("signature mismatch")
    assert refused(verify_legacy, BODY, headers, SECRET).startswith("signature mismatch")


# --- one broken thing each: the body and the id -------------------------------------------------------------------

@pytest.mark.parametrize("verifier", [verify_standard, verify_legacy])
def test_body_re_serialised(verifier) -> None:  # type: ignore[no-untyped-def]
    headers = delivery()
    reserialised = json.dumps(json.loads(BODY)).encode()  # valid JSON, the same data, other bytes
    assert reserialised != BODY
    message = refused(verifier, reserialised, headers, SECRET)
    assert message.startswith("body was re-serialised: the signature matches another serialisation")


@pytest.mark.parametrize("verifier", [verify_standard, verify_legacy])
def test_body_altered(verifier) -> None:  # type: ignore[no-untyped-def]
    headers = delivery()
    message = refused(verifier, BODY.replace(b"h\xc3\xa9llo", b"hello"), headers, SECRET)
    assert message.startswith("signature mismatch")


@pytest.mark.parametrize("verifier", [verify_standard, verify_legacy])
def test_wrong_secret(verifier) -> None:  # type: ignore[no-untyped-def]
    other = "whsec_" + base64.b64encode(b"k" * 32).decode()
    assert refused(verifier, BODY, delivery(), other).startswith("signature mismatch")


def test_webhook_id_altered() -> None:
    headers = delivery()
    headers["webhook-id"] = "msg_other"
    assert refused(verify_standard, BODY, headers, SECRET).startswith("signature mismatch")


def test_webhook_id_left_out_of_the_signed_content() -> None:
    headers = delivery()
    ts = headers["webhook-timestamp"]
    digest = hmac.new(standard_key(SECRET), f"{ts}.".encode() + BODY, hashlib.sha256).digest()
    headers["webhook-signature"] = "v1," + base64.b64encode(digest).decode()
    assert refused(verify_standard, BODY, headers, SECRET).startswith("webhook-id left out")


def test_legacy_timestamp_left_out_of_the_signed_content() -> None:
    headers = delivery()
    headers["X-Webhook-Signature"] = sign(BODY, SECRET).removeprefix("sha256=")
    assert refused(verify_legacy, BODY, headers, SECRET).startswith("timestamp left out")


def test_unknown_scheme_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="scheme must be one of v2, legacy, standard"):
        verify_delivery(BODY, delivery(), SECRET, scheme="v1")


def test_messages_never_hold_the_secret() -> None:
    secret = "whsec_" + base64.b64encode(SENTINEL_SECRET.encode()).decode()
    headers = delivery(secret=secret)
    stale = {**headers, "webhook-timestamp": "1", "X-Webhook-Timestamp": "1"}
    missing = {k: v for k, v in headers.items() if k not in ("webhook-id", "X-Webhook-Timestamp")}
    for body, hdrs in ((BODY + b" ", headers), (BODY, stale), (BODY, missing)):
        for verifier in (verify_standard, verify_legacy):
            with pytest.raises(SignatureVerificationError) as info:
                verifier(body, hdrs, [secret, secret.removeprefix("whsec_")])
            text = str(info.value) + repr(info.value)
            assert secret not in text and secret.removeprefix("whsec_") not in text


# --- properties: linq_nb and the standardwebhooks package agree ---------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(body=st.text(max_size=100).map(str.encode), key=st.binary(min_size=1, max_size=40),
       flip=st.one_of(st.none(), st.integers(min_value=0, max_value=199)))
def test_verdict_matches_standardwebhooks(body: bytes, key: bytes, flip: int | None) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    headers = delivery(body, secret)
    sent = body
    if flip is not None and body:
        i = flip % len(body)
        sent = body[:i] + bytes([body[i] ^ 1]) + body[i + 1:]
    try:
        Webhook(secret).verify(sent, headers, json_parse=False)
        theirs = True
    except (WebhookVerificationError, UnicodeDecodeError):  # it cannot read a body that is not UTF-8
        theirs = False
    try:
        verify_standard(sent, headers, secret)
        ours = True
    except SignatureVerificationError:
        ours = False
    assert ours == theirs == (sent == body)
