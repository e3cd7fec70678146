"""v2's wire rules that mutation testing (``make mutate``) found unpinned: ids, the request wrapper, the headers
and signature of a v2 delivery, and a body as the store keeps it (pure functions of :mod:`linq_nb.wire.v2`;
the sandbox's deliveries carry the same headers, tests/test_delivery.py)."""

from __future__ import annotations

from linq_nb.wire import v2


def test_ids_are_ascii_integers_of_at_most_18_digits() -> None:
    assert v2.parse_id("42") == 42 and v2.parse_id("0") == 0
    assert v2.parse_id("9" * 18) == int("9" * 18)
    assert v2.parse_id("9" * 19) is None
    for bad in ("", "-1", " 1", "1.0", "x", "\u0663", "\u00b2"):  # an Arabic-Indic three, a superscript two
        assert v2.parse_id(bad) is None, bad


def test_the_fields_are_the_wrapper_object_only() -> None:
    assert v2.fields_of({"webhook_subscription": {"a": 1}}) == {"a": 1}
    assert v2.fields_of({"webhook_subscription": [1]}) is None
    assert v2.fields_of({"a": 1}) is None and v2.fields_of([{"webhook_subscription": {}}]) is None


def test_the_signature_is_sha256_hmac_of_the_raw_body_in_hex() -> None:
    # known answers (openssl dgst -sha256 -hmac), the second with a non-ASCII key and body in UTF-8
    assert v2.signature(b'{"a":1}', "whsec_test") == (
        "sha256=51426af50a41dd7ff2cd3f116594734766d4018d15d6fb07169aee5d2959adf5")
    assert v2.signature("é".encode(), "clé") == (
        "sha256=379aed3ea9ad6435d18a87afff6c5836f34e35ead0bc0a014c25014a0f008b5b")


def test_a_v2_delivery_carries_its_four_headers_and_the_signature_only_with_a_secret() -> None:
    base = {"Content-Type": "application/json", "User-Agent": "UA/1", "X-Webhook-Event": "message.sent",
            "X-Webhook-Subscription-ID": "7"}
    kwargs = dict(event_type="message.sent", event_id="e1", subscription_id=7, timestamp=1700000000,
                  user_agent="UA/1", extra={"Linq-Chat-Id": "c"})
    assert v2.delivery_headers(b'{"a":1}', secret=None, **kwargs) == base  # type: ignore[arg-type]
    assert v2.delivery_headers(b'{"a":1}', secret="", **kwargs) == base  # type: ignore[arg-type]
    assert v2.delivery_headers(b'{"a":1}', secret="whsec_test", **kwargs) == {  # type: ignore[arg-type]
        **base, "X-Webhook-Signature": "sha256=51426af50a41dd7ff2cd3f116594734766d4018d15d6fb07169aee5d2959adf5"}


def test_a_body_as_the_store_keeps_it() -> None:
    body = {"webhook_url": "https://example.com/h", "events": ("message.sent",), "version": 2}
    assert v2.record_fields(body, create=True) == {"url": "https://example.com/h", "events": ["message.sent"],
                                                   "version": 2, "active": True}
    assert v2.record_fields({**body, "active": 0, "secret": "s"}, create=False) == {
        "url": "https://example.com/h", "events": ["message.sent"], "version": 2, "active": False, "secret": "s"}
    assert v2.record_fields({**body, "secret": ""}, create=False)["secret"] is None
    assert v2.record_fields({**body, "secret": None}, create=False)["secret"] is None
