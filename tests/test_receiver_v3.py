"""The Receiver verifies v3 deliveries over real HTTP: Standard Webhooks, the legacy headers, and v2 beside them.

Each request is signed with linq_nb's own signers (as the sandbox delivers) and POSTed to a
real Receiver; the failures break one thing each and the recorded ``reason`` must name it.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
import requests

from linq_nb.receiver import Receiver, main
from linq_nb.signing import sign, sign_legacy, sign_standard
from tests.conftest import RECEIVER_SECRET

TIMEOUT = 5
SECRET = "whsec_" + base64.b64encode(b"v3 receiver test key, 32 bytes!!").decode()
SUB_ID = "b2c3d4e5-f6a7-8901-bcde-f23456789012"


def envelope(event_id: str = "evt-1") -> bytes:
    env = {"api_version": "v3", "webhook_version": "2026-02-03", "event_type": "message.received",
           "event_id": event_id, "created_at": "2026-12-01T10:00:00.000Z", "trace_id": "t", "partner_id": "p",
           "data": {"text": "héllo"}}
    return json.dumps(env, separators=(",", ":"), ensure_ascii=False).encode()


def v3_headers(body: bytes, secret: str = SECRET, *, timestamp: int | None = None,
               event_id: str = "evt-1") -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard(body, event_id, ts, secret),
        "X-Webhook-Event": "message.received",
        "X-Webhook-Subscription-ID": SUB_ID,
        "X-Webhook-Timestamp": str(ts),
        "X-Webhook-Signature": sign_legacy(body, ts, secret),
    }


def post(receiver: Receiver, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(receiver.url, data=body, headers=headers, timeout=TIMEOUT)


@pytest.fixture
def v3_receiver() -> Iterator[Receiver]:
    with Receiver(secrets=[RECEIVER_SECRET, SECRET]) as r:  # a v2 secret and a v3 signing secret together
        yield r


def test_v3_delivery_is_verified_and_recorded(v3_receiver: Receiver) -> None:
    body = envelope()
    assert post(v3_receiver, body, v3_headers(body)).status_code == 200
    record = v3_receiver.requests[-1]
    assert record["verified"] is True
    assert record["subscription_id"] == SUB_ID  # a UUID stays a string
    assert record["event_id"] == "evt-1"
    assert v3_receiver.events[-1]["api_version"] == "v3"


def test_v2_delivery_still_verifies_beside_v3(v3_receiver: Receiver) -> None:
    body = envelope("evt-v2")
    response = post(v3_receiver, body, {"X-Webhook-Signature": sign(body, RECEIVER_SECRET)})
    assert response.status_code == 200
    assert v3_receiver.requests[-1]["verified"] is True


def test_legacy_headers_alone_verify(v3_receiver: Receiver) -> None:
    body = envelope()
    legacy = {k: v for k, v in v3_headers(body).items() if not k.startswith("webhook-")}
    assert post(v3_receiver, body, legacy).status_code == 200


@pytest.mark.parametrize(("breakage", "reason"), [
    ("body", "body was re-serialised"),
    ("old", "timestamp too old"),
    ("future", "timestamp in the future"),
    ("missing", "missing webhook-signature header (Standard Webhooks)"),
    ("tampered", "signature mismatch"),
])
def test_each_broken_thing_is_refused_with_its_reason(v3_receiver: Receiver, breakage: str, reason: str) -> None:
    body = envelope()
    now = int(time.time())
    headers = v3_headers(body, timestamp={"old": now - 900, "future": now + 900}.get(breakage, now))
    if breakage == "body":
        body = json.dumps(json.loads(body)).encode()
    if breakage == "missing":
        del headers["webhook-signature"]
    if breakage == "tampered":
        body = body.replace(b"evt-1", b"evt-2")
    response = post(v3_receiver, body, headers)
    assert response.status_code == 401
    assert response.json()["error"].startswith(reason)
    record = v3_receiver.requests[-1]
    assert record["verified"] is False and record["reason"].startswith(reason)
    assert v3_receiver.counts()["events"] == 0


def test_wrong_key_form_is_explained() -> None:
    with Receiver(secrets="whsec_whsec_abc") as r:
        body = envelope()
        response = post(r, body, v3_headers(body))
    assert response.status_code == 401
    assert response.json()["error"].startswith("wrong key form: the secret starts with 'whsec_whsec_'")


def test_scheme_pinned_to_standard_refuses_legacy_only_requests() -> None:
    with Receiver(secrets=SECRET, scheme="standard") as r:
        body = envelope()
        legacy = {k: v for k, v in v3_headers(body).items() if not k.startswith("webhook-")}
        response = post(r, body, legacy)
        assert response.status_code == 401
        assert response.json()["error"].startswith("missing webhook-id, webhook-timestamp, webhook-signature")
        assert post(r, body, v3_headers(body)).status_code == 200


def test_scheme_pinned_to_v2_refuses_a_v3_delivery() -> None:
    with Receiver(secrets=SECRET, scheme="v2") as r:
        body = envelope()
        response = post(r, body, v3_headers(body))
    assert response.status_code == 401  # the legacy hex is not the v2 sha256= of the body
    assert response.json()["error"].startswith("signature mismatch")


def test_unknown_scheme_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="scheme must be one of v2, legacy, standard"):
        Receiver(scheme="svix")


def test_cli_accepts_scheme() -> None:
    with pytest.raises(SystemExit):
        main(["--scheme", "nope"])


def test_a_delivery_to_an_sdk_made_subscription_verifies_with_the_sdk_and_the_receiver() -> None:
    """Done-when of issue 9: the SDK creates the subscription; its triggered delivery passes the SDK's
    ``unwrap`` and a linq_nb Receiver holding the signing secret, and a tampered copy fails both."""
    import http.server
    import threading

    import linq
    import standardwebhooks

    from linq_nb.sandbox import Sandbox

    got: list[tuple[dict[str, str], bytes]] = []

    class Endpoint(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with Sandbox(retry_delays=[0.05]) as sb:
            sdk = linq.LinqAPIV3(api_key=sb.token, base_url=sb.url + "/api/partner", max_retries=0)
            sub = sdk.webhook_subscriptions.create(target_url=f"http://127.0.0.1:{server.server_port}/hook",
                                                   subscribed_events=["message.received"])
            sb.emit("message.received")
            deadline = time.monotonic() + 10
            while not got and time.monotonic() < deadline:
                time.sleep(0.02)
            sdk.close()
        headers, body = got[0]
        event = linq.LinqAPIV3(api_key="x", base_url="http://127.0.0.1:9").webhooks.unwrap(
            body.decode(), headers=headers, key=sub.signing_secret)
        assert event.event_type == "message.received"
        forwarded = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        with Receiver(secrets=sub.signing_secret) as r:
            assert requests.post(r.url, data=body, headers=forwarded, timeout=TIMEOUT).status_code == 200
            tampered = body.replace(b"message.received", b"message.sent", 1)
            refused = requests.post(r.url, data=tampered, headers=forwarded, timeout=TIMEOUT)
        assert [x["verified"] for x in r.requests] == [True, False]
        assert refused.status_code == 401 and refused.json()["error"].startswith("signature mismatch")
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            linq.LinqAPIV3(api_key="x", base_url="http://127.0.0.1:9").webhooks.unwrap(
                tampered.decode(), headers=headers, key=sub.signing_secret)
    finally:
        server.shutdown()
