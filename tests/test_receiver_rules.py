"""Receiver rules that mutation testing (``make mutate``) found unpinned: each refusal's reason in full.

A person debugging a delivery reads the reason in the receiver's record and in its answer, so each one
is pinned word for word, over real HTTP.
"""

from __future__ import annotations

import http.client
import json

import pytest
import requests

from linq_nb.events import make_envelope, sample_data
from linq_nb.receiver import Receiver
from linq_nb.signing import canonical_json, sign
from tests.conftest import RECEIVER_SECRET

TIMEOUT = 10


def envelope() -> dict:
    return make_envelope("message.received", sample_data("message.received", {}))


def reason_of(receiver: Receiver, resp: requests.Response) -> str:
    record = receiver.requests[-1]
    assert resp.json() == {"ok": False, "error": record["reason"]}
    return str(record["reason"])


def test_each_refusal_says_why_in_full() -> None:
    with Receiver(secrets=RECEIVER_SECRET, max_body_bytes=100) as r:
        resp = requests.post(r.base_url + "/elsewhere", data=b"{}", timeout=TIMEOUT)
        assert reason_of(r, resp) == "no webhook endpoint at '/elsewhere'; deliveries go to '/webhooks'"
        resp = requests.get(r.url, timeout=TIMEOUT)
        assert reason_of(r, resp) == "method GET not allowed; deliveries are POSTed"
        resp = requests.post(r.url, data=b"x" * 101, timeout=TIMEOUT)
        assert (resp.status_code, reason_of(r, resp)) == (413, "body of 101 bytes is over the limit of 100 bytes")
        resp = requests.post(r.url, data=iter([b"x" * 60, b"x" * 60]), timeout=TIMEOUT)  # chunked: no length
        assert (resp.status_code, reason_of(r, resp)) == (413, "body is over the limit of 100 bytes")
        body = b"[1, 2]"
        resp = requests.post(r.url, data=body, headers={"X-Webhook-Signature": sign(body, RECEIVER_SECRET)},
                             timeout=TIMEOUT)
        assert reason_of(r, resp) == "body is JSON but not an object (got list); expected the envelope"
        body = b"nope"
        resp = requests.post(r.url, data=body, headers={"X-Webhook-Signature": sign(body, RECEIVER_SECRET)},
                             timeout=TIMEOUT)
        assert reason_of(r, resp) == ("body is not JSON (JSONDecodeError: Expecting value: line 1 column 1 "
                                      "(char 0))")
        resp = requests.post(r.url, data=b"{}", timeout=TIMEOUT)
        assert reason_of(r, resp) == ("missing X-Webhook-Signature header: the request is unsigned, or the "
                                      "subscription has no secret")


def test_a_body_of_exactly_the_limit_is_read_even_in_chunks() -> None:
    with Receiver(max_body_bytes=100) as r:
        head = '{"event_id": "e", "p": "'
        body = head + "x" * (100 - len(head) - 2) + '"}'
        assert len(body) == 100
        assert requests.post(r.url, data=iter([body[:50].encode(), body[50:].encode()]),
                             timeout=TIMEOUT).status_code == 200
        assert r.events == [json.loads(body)]


def test_a_long_path_or_parse_error_is_cut_short_in_the_reason() -> None:
    with Receiver() as r:
        resp = requests.post(r.base_url + "/" + "p" * 500, data=b"{}", timeout=TIMEOUT)
        assert reason_of(r, resp) == f"no webhook endpoint at {('/' + 'p' * 500)[:200]!r}; deliveries go to " \
                                     "'/webhooks'"
        conn = http.client.HTTPConnection(r.host, r.port, timeout=TIMEOUT)
        try:
            conn.request("POST", "/webhooks", body=b'{"a": "' + b"x" * 300)
            answer = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        assert answer["error"].startswith("body is not JSON (JSONDecodeError: Unterminated string starting at")
        assert len(answer["error"]) <= len("body is not JSON (JSONDecodeError: )") + 120


def test_the_record_takes_event_fields_from_the_body_and_ids_from_the_headers() -> None:
    with Receiver() as r:
        env = envelope()
        requests.post(r.url, data=canonical_json(env), timeout=TIMEOUT,
                      headers={"X-Webhook-Subscription-ID": "7", "X-Webhook-Event": "message.sent"})
        rec = r.requests[-1]
        assert (rec["subscription_id"], rec["event_type"], rec["event_id"]) == (7, "message.received", env["event_id"])
        requests.post(r.url, data=json.dumps({"event_id": 12}), timeout=TIMEOUT,
                      headers={"X-Webhook-Subscription-ID": "sub-x", "X-Webhook-Event": "message.sent"})
        rec = r.requests[-1]
        assert (rec["subscription_id"], rec["event_type"], rec["event_id"]) == ("sub-x", "message.sent", "12")
        requests.post(r.url, data=b"{}", timeout=TIMEOUT, headers={"X-Webhook-Subscription-ID": ""})
        rec = r.requests[-1]
        assert (rec["subscription_id"], rec["event_type"], rec["event_id"], rec["verified"]) == (None, None, None,
                                                                                                 None)
        # a hostile sender's long fields are kept to their first 200 characters, exactly
        requests.post(r.url, data=json.dumps({"event_id": "i" * 201 + "!", "event_type": "t" * 200 + "!"}),
                      timeout=TIMEOUT)
        rec = r.requests[-1]
        assert (rec["event_id"], rec["event_type"]) == ("i" * 200, "t" * 200)


def test_secret_rules_say_what_is_wrong_without_showing_it() -> None:
    with pytest.raises(TypeError) as info:
        Receiver(secrets=[123])  # type: ignore[list-item]
    assert str(info.value) == "a webhook secret must be a str or bytes, not int"
    with pytest.raises(ValueError) as info2:
        Receiver(secrets="")
    assert str(info2.value) == "a webhook secret cannot be empty"
    r = Receiver(secrets="one")
    r.add_secret("one")
    r.add_secret(b"two")
    assert r.secret_count == 2
    with pytest.raises(ValueError) as info3:
        r.remove_secret("three")
    assert str(info3.value) == "that secret is not one of this receiver's secrets (secrets are never shown)"
    r.remove_secret("one")
    assert r.secret_count == 1
    with pytest.raises(ValueError, match="cannot be empty"):
        r.add_secret("")
