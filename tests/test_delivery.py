"""The sandbox delivering signed webhooks to a real receiver over HTTP: retries, counters, fan-out."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import requests
import trustme
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from linq_nb._server import ServerThread
from linq_nb.models import parse_datetime
from linq_nb.receiver import Receiver
from linq_nb.sandbox import Sandbox
from linq_nb.signing import canonical_json, verify
from tests.conftest import RECEIVER_SECRET, SENTINEL_TOKEN

PATH = "/api/partner/v2/webhook_subscriptions"


def subscribe(sandbox: Sandbox, url: str, events: list[str], *, secret: str | None = RECEIVER_SECRET,
              active: bool = True, token: str = SENTINEL_TOKEN) -> dict[str, Any]:
    body: dict[str, Any] = {"webhook_url": url, "version": 2, "events": events, "active": active}
    if secret is not None:
        body["secret"] = secret
    resp = requests.post(sandbox.url + PATH, json={"webhook_subscription": body},
                         headers={"X-LINQ-INTEGRATION-TOKEN": token}, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()["webhook_subscription"]


def test_a_delivery_is_signed_canonical_json_with_the_documented_headers(sandbox: Sandbox,
                                                                         receiver: Receiver) -> None:
    sub = subscribe(sandbox, receiver.url, ["message.received"])
    emitted = sandbox.emit("message.received", {"text": "héllo"})
    assert emitted["deliveries_queued"] == 1
    assert receiver.wait_for_events(1, timeout=10)
    (request,) = receiver.requests
    assert request["verified"] is True and request["status"] == 200
    assert request["event_id"] == emitted["event_id"] and request["subscription_id"] == sub["id"]
    (event,) = receiver.events
    assert event["event_type"] == "message.received" and event["api_version"] == "v2"
    assert event["data"]["text"] == "héllo" and event["data"]["chat_handles"]
    assert list(event) == sorted(event)


def test_raw_bytes_on_the_wire_are_canonical_and_verify_by_hand(sandbox: Sandbox) -> None:
    """Capture the exact bytes and headers with a bare WSGI app, then check them with hmac alone."""
    captured: list[tuple[bytes, dict[str, str]]] = []

    @Request.application
    def capture(request: Request) -> Response:
        captured.append((request.get_data(), dict(request.headers)))
        return Response(status=204)

    server = ServerThread(capture).start()
    try:
        sub = subscribe(sandbox, server.url + "/hook", ["contact.deleted"])
        emitted = sandbox.emit("contact.deleted", {"id": 7})
        assert sandbox.wait_for_deliveries(timeout=10)
    finally:
        server.stop()
    ((body, headers),) = captured
    expected = hmac.new(RECEIVER_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Webhook-Signature"] == "sha256=" + expected
    assert body == canonical_json(json.loads(body))
    assert json.loads(body) == {"api_version": "v2", "created_at": json.loads(body)["created_at"],
                                "data": {"id": 7}, "event_id": emitted["event_id"], "event_type": "contact.deleted"}
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Webhook-Event"] == "contact.deleted"
    assert headers["X-Webhook-Subscription-Id"] == str(sub["id"])
    assert headers["User-Agent"].startswith("linq-nb-sandbox/")
    verify(body, headers["X-Webhook-Signature"], RECEIVER_SECRET)


def test_failing_twice_then_succeeding_is_three_attempts_one_event(sandbox: Sandbox, receiver: Receiver) -> None:
    sub = subscribe(sandbox, receiver.url, ["message.sent"])
    receiver.fail_next(2, status=503)
    emitted = sandbox.emit("message.sent")
    assert sandbox.wait_for_deliveries(timeout=10)
    assert len(receiver.requests) == 3
    assert {r["event_id"] for r in receiver.requests} == {emitted["event_id"]}
    assert len(receiver.events) == 1
    (state,) = sandbox.subscriptions()
    assert state["delivery_attempts"] == 3 and state["last_delivered_at"] is not None
    log = [d for d in sandbox.deliveries() if d["subscription_id"] == sub["id"]]
    assert [(d["attempt"], d["status_code"], d["ok"]) for d in log] == [(1, 503, False), (2, 503, False),
                                                                         (3, 200, True)]


def test_a_4xx_is_final_and_never_retried(sandbox: Sandbox, receiver: Receiver) -> None:
    subscribe(sandbox, receiver.url, ["message.sent"])
    receiver.fail_next(1, status=410)
    sandbox.emit("message.sent")
    assert sandbox.wait_for_deliveries(timeout=10)
    assert len(receiver.requests) == 1 and receiver.events == []
    (state,) = sandbox.subscriptions()
    assert state["delivery_attempts"] == 1 and state["last_delivered_at"] is None


def test_429_is_retried_and_retries_stop_after_the_schedule(sandbox: Sandbox, receiver: Receiver) -> None:
    subscribe(sandbox, receiver.url, ["message.sent"])
    receiver.fail_next(10, status=429)  # more failures than the fixture's 3 retries
    sandbox.emit("message.sent")
    assert sandbox.wait_for_deliveries(timeout=10)
    assert len(receiver.requests) == 4 and receiver.events == []
    (state,) = sandbox.subscriptions()
    assert state["delivery_attempts"] == 4 and state["last_delivered_at"] is None


def test_connection_errors_are_retried_and_logged(sandbox: Sandbox) -> None:
    with Receiver() as gone:
        url = gone.url
    subscribe(sandbox, url, ["message.sent"], secret=None)
    sandbox.emit("message.sent")
    assert sandbox.wait_for_deliveries(timeout=10)
    log = sandbox.deliveries()
    assert len(log) == 4 and all(d["status_code"] is None and "connection" in d["error"] for d in log)


def test_timeouts_are_retried() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], retry_delays=[0.05], delivery_timeout=0.3) as sb, \
            Receiver(secrets=RECEIVER_SECRET) as slow:
        subscribe(sb, slow.url, ["message.sent"])
        slow.delay(1.0)
        sb.emit("message.sent")
        assert sb.wait_for_deliveries(timeout=10)
        log = sb.deliveries()
        assert len(log) == 2 and all("timeout" in (d["error"] or "") for d in log)


def test_inactive_and_unsubscribed_subscriptions_receive_nothing(sandbox: Sandbox, receiver: Receiver) -> None:
    subscribe(sandbox, receiver.url, ["message.sent"], active=False)
    subscribe(sandbox, receiver.url, ["call.completed"])
    assert sandbox.emit("message.sent")["deliveries_queued"] == 0
    assert sandbox.wait_for_deliveries(timeout=5)
    assert receiver.requests == []
    assert all(s["delivery_attempts"] == 0 for s in sandbox.subscriptions())


def test_other_partners_subscriptions_receive_nothing(receiver: Receiver) -> None:
    with Sandbox(tokens=["alice", "bob"], retry_delays=[], deliver_to=["127.0.0.1"]) as sb:
        subscribe(sb, receiver.url, ["message.sent"], token="bob")
        assert sb.emit("message.sent", token="alice")["deliveries_queued"] == 0
        assert sb.wait_for_deliveries(timeout=5)
        assert receiver.requests == [] and sb.deliveries(token="bob") == []


def test_duplicate_subscriptions_each_get_a_copy(sandbox: Sandbox, receiver: Receiver) -> None:
    a = subscribe(sandbox, receiver.url, ["message.sent"])
    b = subscribe(sandbox, receiver.url, ["message.sent"])
    sandbox.emit("message.sent")
    assert sandbox.wait_for_deliveries(timeout=10)
    assert sorted(r["subscription_id"] for r in receiver.requests) == [a["id"], b["id"]]
    assert len(receiver.events) == 1 and sum(r["duplicate"] for r in receiver.requests) == 1


def test_deliveries_run_in_parallel_and_never_block_the_api() -> None:
    """Four slow receivers: the API answers meanwhile, and the deliveries overlap in time."""
    slow = [Receiver().start() for _ in range(4)]
    try:
        with Sandbox(tokens=[SENTINEL_TOKEN], retry_delays=[]) as sb:
            for r in slow:
                subscribe(sb, r.url, ["message.sent"], secret=None)
                r.delay(1.0)
            sb.emit("message.sent")
            listed = requests.get(sb.url + PATH, headers={"X-LINQ-INTEGRATION-TOKEN": SENTINEL_TOKEN}, timeout=10)
            assert listed.status_code == 200
            in_flight_while_listing = not sb.deliverer.idle()
            assert sb.wait_for_deliveries(timeout=10)
            log = sb.deliveries()
            assert in_flight_while_listing and len(log) == 4 and all(d["ok"] for d in log)
            starts = [parse_datetime(d["started_at"]) for d in log]
            ends = [st + timedelta(milliseconds=d["duration_ms"]) for st, d in zip(starts, log, strict=True)]
            assert max(starts) < min(ends)  # every attempt began before any had finished: they overlapped
    finally:
        for r in slow:
            r.stop()


def test_events_route_and_deliveries_route_over_http(sandbox: Sandbox, receiver: Receiver) -> None:
    subscribe(sandbox, receiver.url, ["contact.created"])
    headers = {"X-LINQ-INTEGRATION-TOKEN": SENTINEL_TOKEN}
    resp = requests.post(sandbox.url + "/_sandbox/events", headers=headers, timeout=10,
                         json={"event_type": "contact.created", "data": {"first_name": "Grace"}})
    assert resp.status_code == 202 and resp.json()["deliveries_queued"] == 1
    assert receiver.wait_for_events(1, timeout=10)
    assert receiver.events[0]["data"]["first_name"] == "Grace"
    assert sandbox.wait_for_deliveries(timeout=10)
    log = requests.get(sandbox.url + "/_sandbox/deliveries", headers=headers, timeout=10).json()["deliveries"]
    assert log[0]["event_id"] == resp.json()["event_id"] and log[0]["ok"] is True
    assert json.dumps(log).count(RECEIVER_SECRET) == 0


def test_deleting_a_subscription_cancels_its_pending_retries(receiver: Receiver) -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], retry_delays=[0.5, 0.5]) as sb:
        sub = subscribe(sb, receiver.url, ["message.sent"])
        receiver.fail_next(5, status=500)
        sb.emit("message.sent")
        assert receiver.wait_for_requests(1, timeout=10)
        requests.delete(f"{sb.url}{PATH}/{sub['id']}", headers={"X-LINQ-INTEGRATION-TOKEN": SENTINEL_TOKEN},
                        timeout=10)
        assert sb.wait_for_deliveries(timeout=10)
        assert len(receiver.requests) == 1


# --------------------------------------------------------------------------- https receivers


@contextmanager
def tls_receiver(cert: Any) -> Iterator[tuple[str, list[Request]]]:
    """An https receiver on loopback serving ``cert`` (a trustme leaf); yields its URL and the requests it got."""
    got: list[Request] = []

    @Request.application
    def app(request: Request) -> Response:
        request.get_data()
        got.append(request)
        return Response("ok")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.port}/hooks/linq", got
    finally:
        server.shutdown()
        server.server_close()


def test_an_https_receiver_with_a_trusted_certificate_gets_a_signed_delivery(monkeypatch: Any) -> None:
    ca = trustme.CA()
    with ca.cert_pem.tempfile() as ca_file:
        monkeypatch.setenv("SSL_CERT_FILE", ca_file)  # the sandbox trusts what the machine trusts: here, this CA
        with tls_receiver(ca.issue_cert("127.0.0.1")) as (url, got), \
                Sandbox(tokens=[SENTINEL_TOKEN], retry_delays=[0.05]) as sb:
            subscribe(sb, url, ["message.sent"])
            sb.emit("message.sent")
            assert sb.wait_for_deliveries(timeout=10)
            [attempt] = sb.deliveries()
            assert (attempt["status_code"], attempt["error"]) == (200, None)
            [request] = got
            assert request.path == "/hooks/linq"
            verify(request.get_data(), request.headers["X-Webhook-Signature"], RECEIVER_SECRET)


def test_an_https_receiver_whose_certificate_is_not_trusted_is_never_sent_the_body() -> None:
    stranger = trustme.CA()  # a CA the machine does not trust
    with tls_receiver(stranger.issue_cert("127.0.0.1")) as (url, got), \
            Sandbox(tokens=[SENTINEL_TOKEN], retry_delays=[0.05]) as sb:
        subscribe(sb, url, ["message.sent"])
        sb.emit("message.sent")
        assert sb.wait_for_deliveries(timeout=10)
        log = sb.deliveries()
        assert len(log) == 2 and all(d["status_code"] is None and "SSLCertVerificationError" in d["error"]
                                     for d in log)
        assert got == []


def test_an_https_receiver_stuck_in_the_handshake_times_out_at_the_delivery_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as stuck:  # accepts TCP, never says a word of TLS
        url = f"https://127.0.0.1:{stuck.getsockname()[1]}/hooks/linq"
        with Sandbox(tokens=[SENTINEL_TOKEN], retry_delays=[0.05], delivery_timeout=0.3) as sb:
            subscribe(sb, url, ["message.sent"])
            sb.emit("message.sent")
            assert sb.wait_for_deliveries(timeout=10)
            log = sb.deliveries()
            assert len(log) == 2 and all(d["status_code"] is None and "timeout" in d["error"] for d in log)


def test_a_receiver_that_never_accepts_the_connection_times_out_at_the_delivery_timeout() -> None:
    with socket.socket() as full:  # a listen backlog filled up: the next connect waits for a SYN-ACK forever
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        queued = [socket.socket() for _ in range(4)]
        for s in queued:
            s.setblocking(False)
            s.connect_ex(full.getsockname())
        try:
            with Sandbox(tokens=[SENTINEL_TOKEN], retry_delays=[0.05], delivery_timeout=0.3) as sb:
                subscribe(sb, f"http://127.0.0.1:{full.getsockname()[1]}/hook", ["message.sent"])
                sb.emit("message.sent")
                assert sb.wait_for_deliveries(timeout=10)
                log = sb.deliveries()
                assert len(log) == 2 and all(d["status_code"] is None and "timeout" in d["error"] for d in log)
        finally:
            for s in queued:
                s.close()


def test_an_attempt_cut_short_by_a_stop_is_logged_and_retried_as_soon_as_the_sandbox_is_back(
        tmp_path: Any) -> None:
    arrived, release, calls = threading.Event(), threading.Event(), []

    @Request.application
    def app(request: Request) -> Response:
        calls.append(request.path)
        if len(calls) == 1:  # the first attempt is still at the receiver when the sandbox stops
            arrived.set()
            release.wait(10)
        return Response("ok")

    receiver = ServerThread(app).start()
    state = tmp_path / "state.db"
    try:
        with Sandbox(tokens=[SENTINEL_TOKEN], state=state, retry_delays=[60]) as sb:
            subscribe(sb, receiver.url + "/hook", ["message.sent"])
            sb.emit("message.sent")
            assert arrived.wait(10)
        release.set()
        with Sandbox(tokens=[SENTINEL_TOKEN], state=state, retry_delays=[60]) as sb:
            assert sb.wait_for_deliveries(timeout=10)  # at once, not after the 60 s of a normal retry
            assert [(d["attempt"], d["status_code"], d["error"]) for d in sb.deliveries()] == [
                (1, None, "interrupted: the sandbox stopped during the attempt"), (2, 200, None)]
    finally:
        release.set()
        receiver.stop()
