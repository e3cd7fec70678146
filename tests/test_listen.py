"""The relay over real HTTP: a receiver the sandbox cannot reach, `linq-nb listen`, Receiver.listen, shared mode."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.wrappers import Request, Response

from linq_nb._server import ServerThread
from linq_nb.client import LinqClient
from linq_nb.listen import Listener
from linq_nb.receiver import Receiver
from linq_nb.sandbox import Sandbox
from linq_nb.sandbox.relay import REFUSED, DeliveryPolicy, parse_destination
from linq_nb.signing import SIGNATURE_HEADER, verify
from tests.conftest import RECEIVER_SECRET, SENTINEL_SECRET, SENTINEL_TOKEN

CMD = [sys.executable, "-m", "linq_nb"]
OTHER = "tok_other_partner"


@pytest.fixture
def shared() -> Iterator[Sandbox]:
    """A classroom sandbox: two partners, so shared mode (it connects to no loopback receiver)."""
    with Sandbox(tokens=[SENTINEL_TOKEN, OTHER], retry_delays=[0.3, 0.6, 1.2, 2.4]) as sb:
        assert sb.shared
        yield sb


@pytest.fixture
def shared_client(shared: Sandbox) -> Iterator[LinqClient]:
    with LinqClient(token=SENTINEL_TOKEN, base_url=shared.url, backoff_factor=0.01) as c:
        yield c


def wait_until(condition: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
    return result


def counting_port() -> tuple[socket.socket, list[object], threading.Thread]:
    """A bare TCP port that counts the connections made to it (to prove none was)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.stop = stop  # type: ignore[attr-defined]
    return srv, accepted, thread


# --------------------------------------------------------------------------- shared-mode policy

def test_a_shared_sandbox_connects_to_no_loopback_port_nor_metadata_address_and_says_why(
        shared: Sandbox, shared_client: LinqClient) -> None:
    srv, accepted, thread = counting_port()
    port = srv.getsockname()[1]
    try:
        direct = shared_client.create_subscription(f"http://127.0.0.1:{port}/", ["message.sent"])
        meta = shared_client.create_subscription("https://169.254.169.254/latest/meta-data", ["message.sent"])
        shared.emit("message.sent", token=SENTINEL_TOKEN)
        assert shared.wait_for_deliveries(10)
        time.sleep(0.5)  # a retry, had there been one, is due by now
        assert shared.wait_for_deliveries(10)
    finally:
        thread.stop.set()  # type: ignore[attr-defined]
        srv.close()
    assert accepted == []
    log = shared.deliveries(SENTINEL_TOKEN)
    assert sorted(a["subscription_id"] for a in log) == sorted([direct.id, meta.id])  # once each: no retry
    for attempt in log:
        assert attempt["ok"] is False and attempt["status_code"] is None
        assert "linq-nb listen" in attempt["error"] and "--deliver-to" in attempt["error"]
    # the same sentence for both: the log tells a partner nothing about the operator's network
    assert log[0]["error"] == log[1]["error"] == REFUSED
    subs = {s.id: s for s in shared_client.list_subscriptions()}
    assert subs[direct.id].delivery_attempts == 1 and subs[direct.id].last_delivered_at is None


def test_operator_allowed_destinations_are_delivered_to_and_only_those(receiver: Receiver) -> None:
    with Sandbox(tokens=["a", "b"], retry_delays=[], deliver_to=[f"127.0.0.1:{receiver.port}"]) as sb, \
            Receiver() as other:
        for url in (receiver.url, other.url):
            requests.post(sb.url + "/api/partner/v2/webhook_subscriptions", timeout=10,
                          headers={"X-LINQ-INTEGRATION-TOKEN": "a"},
                          json={"webhook_subscription": {"webhook_url": url, "events": ["message.sent"],
                                                         "version": 2, "secret": RECEIVER_SECRET}})
        sb.emit("message.sent", token="a")
        assert sb.wait_for_deliveries(10)
        assert receiver.counts()["events"] == 1 and other.counts()["requests"] == 0


def test_the_embedded_single_user_sandbox_still_delivers_directly(sandbox: Sandbox, client: LinqClient,
                                                                  receiver: Receiver) -> None:
    assert not sandbox.shared
    client.create_subscription(receiver.url, ["message.sent"], secret=RECEIVER_SECRET)
    sandbox.emit("message.sent")
    assert receiver.wait_for_events(1)


def test_deliver_to_parsing() -> None:
    assert parse_destination("Hooks.Example.com.") == ("hooks.example.com", None)
    assert parse_destination("10.0.0.5:9000") == ("10.0.0.5", 9000)
    assert parse_destination("[::1]:8000") == ("::1", 8000)
    for bad in ("", "host:0", "host:x", "a/b"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_destination(bad)
    policy = DeliveryPolicy(["hooks.example.com:443"])
    assert policy.refusal("https://hooks.example.com/x") is None
    assert policy.refusal("http://hooks.example.com/x") == REFUSED  # port 80 was not allowed
    assert policy.refusal("https://127.0.0.1/") == REFUSED
    with pytest.raises(ValueError, match="HOST:PORT"):
        Sandbox(tokens=["a", "b"], deliver_to=["bad:port"])


# --------------------------------------------------------------------------- Receiver.listen

def test_receiver_listen_gets_signed_deliveries_the_sandbox_cannot_make(shared: Sandbox, shared_client: LinqClient
                                                                        ) -> None:
    with Receiver(secrets=SENTINEL_SECRET) as receiver:
        direct = shared_client.create_subscription(receiver.url, ["message.received"], secret=SENTINEL_SECRET)
        listener = receiver.listen(shared_client, ["message.received"])
        try:
            sub = listener.subscription
            assert sub.webhook_url == listener.relay_url and sub.secret_configured
            sent = [shared.emit("message.received", token=SENTINEL_TOKEN)["event_id"] for _ in range(3)]
            assert receiver.wait_for_events(3)
            assert shared.wait_for_deliveries(10)
            # once each; in any order, as direct deliveries (parallel delivery workers promise no order)
            assert sorted(e["event_id"] for e in receiver.events) == sorted(sent)
            assert receiver.frame()["verified"].all()  # verified on the forwarded bytes
            log = shared.deliveries(SENTINEL_TOKEN)
            assert all(a["ok"] for a in log if a["subscription_id"] == sub.id)
            assert all(not a["ok"] for a in log if a["subscription_id"] == direct.id)  # unreachable directly
            assert shared_client.get_subscription(sub).delivery_attempts == 3
        finally:
            listener.stop()
        assert [s.id for s in shared_client.list_subscriptions()] == [direct.id]  # the temporary one is gone
        assert SENTINEL_SECRET not in repr(listener) + listener._repr_html_()


def test_a_delivery_view_shows_relayed_deliveries_as_they_arrive(shared: Sandbox, shared_client: LinqClient) -> None:
    from linq_nb.widgets import DeliveryView

    with Receiver(secrets=RECEIVER_SECRET) as receiver:
        listener = receiver.listen(shared_client, ["message.sent"])
        view = DeliveryView(receiver, every=0.05)
        try:
            assert "relay" in view.title.value
            event = shared.emit("message.sent", token=SENTINEL_TOKEN)
            wait_until(lambda: view.frame is not None and event["event_id"] in set(view.frame["event_id"])
                       and "1 request" in view.summary.value)
            assert "through the sandbox's relay" in view.title.value
        finally:
            view.stop()
            listener.stop()


def test_forwarded_bytes_and_headers_are_exactly_what_a_direct_post_carries(shared: Sandbox,
                                                                            shared_client: LinqClient) -> None:
    seen: list[tuple[bytes, dict[str, str]]] = []

    def app(environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        seen.append((request.get_data(), dict(request.headers)))
        return Response("ok")(environ, start_response)

    server = ServerThread(app, server="werkzeug").start()
    try:
        listener = Listener(shared_client, server.url + "/hook", ["message.sent"], secret=SENTINEL_SECRET).start()
        try:
            shared.emit("message.sent", {"text": "héllo \u2603"}, token=SENTINEL_TOKEN)
            wait_until(lambda: seen)
        finally:
            listener.stop()
    finally:
        server.stop()
    body, headers = seen[0]
    verify(body, headers[SIGNATURE_HEADER], SENTINEL_SECRET)  # raises if one byte changed
    assert headers["X-Webhook-Event"] == "message.sent"
    assert headers["Content-Type"] == "application/json" and headers["User-Agent"].startswith("linq-nb-sandbox/")
    assert "héllo ☃".encode() in body or b"\\u2603" in body


def test_a_local_503_is_retried_then_delivered_with_the_counters_right(shared: Sandbox,
                                                                      shared_client: LinqClient) -> None:
    with Receiver(secrets=RECEIVER_SECRET) as receiver:
        listener = receiver.listen(shared_client, ["message.sent"])
        try:
            receiver.fail_next(2, status=503)
            event = shared.emit("message.sent", token=SENTINEL_TOKEN)
            assert receiver.wait_for_events(1)
            assert shared.wait_for_deliveries(10)
            sub = shared_client.get_subscription(listener.subscription)
            log = [a for a in shared.deliveries(SENTINEL_TOKEN) if a["event_id"] == event["event_id"]]
            assert [(a["attempt"], a["status_code"], a["ok"]) for a in log] == [(1, 503, False), (2, 503, False),
                                                                             (3, 200, True)]
            assert sub.delivery_attempts == 3 and sub.last_delivered_at is not None
            assert list(receiver.frame()["status"]) == [503, 503, 200] and receiver.counts()["events"] == 1
            assert listener.counts()["delivered"] == 1 and listener.counts()["failed"] == 2
        finally:
            listener.stop()


def test_a_local_endpoint_that_does_not_answer_is_a_failed_attempt_retried_and_said(
        shared: Sandbox, shared_client: LinqClient) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    problems: list[str] = []
    listener = Listener(shared_client, dead, ["message.sent"], on_problem=problems.append).start()
    try:
        shared.emit("message.sent", token=SENTINEL_TOKEN)
        wait_until(lambda: len(shared.deliveries(SENTINEL_TOKEN)) >= 2)
        first = shared.deliveries(SENTINEL_TOKEN)[0]
        assert first["status_code"] is None and "did not answer" in first["error"]
        assert any("is your endpoint running" in p for p in problems)
    finally:
        listener.stop()


def test_a_listener_not_connected_is_unreachable_and_one_back_in_the_retry_window_gets_the_event(
        shared: Sandbox, shared_client: LinqClient) -> None:
    shared.relay.grace = 0.1
    with Receiver(secrets=RECEIVER_SECRET) as receiver:
        first = Listener(shared_client, receiver.url, ["message.sent"], secret=RECEIVER_SECRET, name="mine").start()
        sub_id = first.subscription.id
        first._stopping.set()  # the loop ends, as if the process died: no delete, no session close
        first._thread.join(timeout=40)  # type: ignore[union-attr]
        time.sleep(0.2)
        event = shared.emit("message.sent", token=SENTINEL_TOKEN)
        wait_until(lambda: shared.deliveries(SENTINEL_TOKEN))
        missed = shared.deliveries(SENTINEL_TOKEN)[0]
        assert missed["ok"] is False and "no listener connected" in missed["error"]
        again = Listener(shared_client, receiver.url, ["message.sent"], secret=RECEIVER_SECRET, name="mine").start()
        try:
            assert again.subscription.id == sub_id  # the same session, the same subscription, taken over
            assert receiver.wait_for_events(1)
            assert receiver.events[0]["event_id"] == event["event_id"]
        finally:
            again.stop()


def test_the_subscription_moves_when_the_sandbox_forgot_the_session(shared: Sandbox,
                                                                    shared_client: LinqClient) -> None:
    with Receiver(secrets=RECEIVER_SECRET) as receiver:
        listener = receiver.listen(shared_client, ["message.sent"])
        try:
            before = listener.relay_url
            assert shared.relay.close(_partner(SENTINEL_TOKEN), listener.session["session_id"])
            wait_until(lambda: listener.counts()["moves"] == 1)
            assert listener.relay_url != before
            assert shared_client.get_subscription(listener.subscription).webhook_url == listener.relay_url
            shared.emit("message.sent", token=SENTINEL_TOKEN)
            assert receiver.wait_for_events(1)
        finally:
            listener.stop()


def test_a_listener_rides_out_a_sandbox_restart_and_moves_its_subscription() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sb = Sandbox(tokens=[SENTINEL_TOKEN, OTHER], port=port, retry_delays=[0.2]).start()
    client = LinqClient(token=SENTINEL_TOKEN, base_url=sb.url, backoff_factor=0.01, max_retries=0)
    problems: list[str] = []
    with Receiver() as receiver:
        listener = Listener(client, receiver.url, ["message.sent"], on_problem=problems.append).start()
        sb.close()  # in memory: it forgets the session and the subscription
        wait_until(lambda: any("lost the connection" in p for p in problems))
        again = Sandbox(tokens=[SENTINEL_TOKEN, OTHER], port=port, retry_delays=[0.2]).start()
        try:
            wait_until(lambda: listener.counts()["moves"] == 1, timeout=40)
            assert [s["webhook_url"] for s in again.subscriptions(SENTINEL_TOKEN)] == [listener.relay_url]
            again.emit("message.sent", token=SENTINEL_TOKEN)
            assert receiver.wait_for_events(1)
            assert any("reconnected" in p for p in problems)
        finally:
            listener.stop()
            again.close()
            client.close()


def _partner(token: str) -> str:
    from linq_nb.sandbox.store import partner_key

    return partner_key(token)


def test_no_delivery_crosses_partners_through_a_relay_url(shared: Sandbox, shared_client: LinqClient) -> None:
    with Receiver() as receiver:
        listener = receiver.listen(shared_client, ["message.sent"])
        try:
            with LinqClient(token=OTHER, base_url=shared.url) as other:
                other.create_subscription(listener.relay_url, ["message.sent"])  # someone else's relay URL
            shared.emit("message.sent", token=OTHER)
            assert shared.wait_for_deliveries(15)
            assert receiver.counts()["requests"] == 0
            assert "no listener connected" in shared.deliveries(OTHER)[0]["error"]
        finally:
            listener.stop()


def test_waiting_listeners_hold_no_api_thread() -> None:
    with Sandbox(tokens=["a", "b"], threads=2, retry_delays=[]) as sb, \
            LinqClient(token="a", base_url=sb.url) as client, Receiver() as receiver:
        listeners = [Listener(client, receiver.url, ["message.sent"], name=f"l{i}").start() for i in range(12)]
        try:
            time.sleep(0.3)  # all twelve are waiting in a long poll now
            assert len(client.list_subscriptions()) == 12  # with 2 API threads
            sb.emit("message.sent", token="a")
            assert receiver.wait_for_events(1) and sb.wait_for_deliveries(10)
            assert receiver.counts()["requests"] == 12  # one per temporary subscription
        finally:
            for li in listeners:
                li.stop()


def test_a_slow_local_receiver_is_a_timeout_retried_like_a_direct_one() -> None:
    with Sandbox(tokens=["a", "b"], retry_delays=[0.2], delivery_timeout=1.0) as sb, \
            LinqClient(token="a", base_url=sb.url) as client, Receiver() as receiver:
        listener = receiver.listen(client, ["message.sent"])
        try:
            receiver.delay(1.5)
            sb.emit("message.sent", token="a")
            wait_until(lambda: len(sb.deliveries("a")) >= 1)
            assert sb.deliveries("a")[0]["error"].startswith("timeout")
            receiver.delay(0)
            assert receiver.wait_for_events(1)
        finally:
            listener.stop()


def test_stopping_while_a_delivery_is_at_the_local_receiver_reports_it_delivered_not_failed() -> None:
    arrived, release = threading.Event(), threading.Event()

    @Request.application
    def slow_ok(request: Request) -> Response:
        arrived.set()
        release.wait(5)
        return Response("ok")

    endpoint = ServerThread(slow_ok).start()
    with Sandbox(tokens=["a", "b"], retry_delays=[0.2, 0.2]) as sb, LinqClient(token="a", base_url=sb.url) as client:
        listener = Listener(client, endpoint.url + "/hook", ["message.sent"], secret="").start()
        try:
            sb.emit("message.sent", token="a")
            assert arrived.wait(10)
            stopping = threading.Thread(target=listener.stop)
            stopping.start()  # while the local receiver still holds the delivery
            time.sleep(0.3)
            release.set()
            stopping.join(20)
            assert not stopping.is_alive()
        finally:
            release.set()
            listener.stop()
            endpoint.stop()
        log = sb.deliveries("a")
        assert [(a["ok"], a["status_code"]) for a in log] == [(True, 200)], log  # delivered once, not retried
        assert sb.subscriptions("a") == []


def test_the_relay_port_shrugs_off_garbage_and_keeps_serving(shared: Sandbox) -> None:
    h = {"X-LINQ-INTEGRATION-TOKEN": SENTINEL_TOKEN}
    opened = requests.post(shared.url + "/_sandbox/relay", json={"name": "g"}, headers=h, timeout=5).json()
    port = int(opened["poll_url"].split(":")[2].split("/")[0])
    for junk in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"a" * 40_000 + b"\r\n\r\n",
                 b"POST /_relay/sessions/x/answers HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n{}"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                s.recv(1000)
    poll = requests.get(opened["poll_url"] + "/next?wait=0", headers={"X-Linq-Relay-Key": opened["listen_key"]},
                        timeout=5)
    assert poll.json() == {"deliveries": []}
    assert requests.get(f"http://127.0.0.1:{port}/elsewhere", timeout=5).status_code == 404


def test_relay_session_routes_refuse_what_they_cannot_use(shared: Sandbox) -> None:
    h = {"X-LINQ-INTEGRATION-TOKEN": SENTINEL_TOKEN}
    assert requests.post(shared.url + "/_sandbox/relay", json={"name": ""}, headers=h, timeout=5).status_code == 422
    assert requests.post(shared.url + "/_sandbox/relay", json={"name": "x"}, timeout=5).status_code == 401
    assert requests.delete(shared.url + "/_sandbox/relay/nope", headers=h, timeout=5).status_code == 404
    opened = requests.post(shared.url + "/_sandbox/relay", json={"name": "x"}, headers=h, timeout=5).json()
    poll = opened["poll_url"] + "/next?wait=0"
    assert requests.get(poll, headers={"X-Linq-Relay-Key": "wrong"}, timeout=5).status_code == 404
    assert requests.get(poll, headers={"X-Linq-Relay-Key": opened["listen_key"]}, timeout=5).json() == \
        {"deliveries": []}
    answer = requests.post(opened["poll_url"] + "/answers", json={"delivery_id": "x", "status": 999},
                           headers={"X-Linq-Relay-Key": opened["listen_key"]}, timeout=5)
    assert answer.status_code == 422


def test_the_newest_listener_of_a_name_takes_the_session_over_and_the_old_one_says_so(
        shared: Sandbox, shared_client: LinqClient) -> None:
    with Receiver() as old_receiver, Receiver() as new_receiver:
        first = Listener(shared_client, old_receiver.url, ["message.sent"], name="twin").start()
        second = Listener(shared_client, new_receiver.url, ["message.sent"], name="twin")
        try:
            wait_until(lambda: any(s.waiters for s in shared.relay._sessions.values()))
            second.start()
            assert first.wait(10) and "took it over" in str(first.error)
            assert any("took it over" in p for p in first.problems)
            assert second.subscription.id == first.subscription.id  # the same session and subscription
            shared.emit("message.sent", token=SENTINEL_TOKEN)
            assert new_receiver.wait_for_events(1) and old_receiver.counts()["requests"] == 0
        finally:
            first._stopping.set()
            second.stop()


def test_listening_to_the_live_api_is_refused_before_any_request() -> None:
    from linq_nb.errors import ConfigurationError

    client = LinqClient(token="tok_live_example")
    assert client.mode == "live"
    with pytest.raises(ConfigurationError, match="only in a sandbox"):
        Listener(client, "http://127.0.0.1:9/hook").open()


# --------------------------------------------------------------------------- linq-nb listen

def _listen(url: str, forward_to: str, secret_file: Path, *extra: str, token_file: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([*CMD, "listen", "--forward-to", forward_to, "--url", url, "--token-file",
                             str(token_file), "--secret-file", str(secret_file), "--events", "message.sent", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("Listening"):
        proc.kill()
        pytest.fail(f"linq-nb listen did not start: {line} {proc.stderr.read() if proc.stderr else ''}")
    return proc


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    token_file, secret_file = tmp_path / "token", tmp_path / "secret"
    token_file.write_text(SENTINEL_TOKEN + "\n")
    secret_file.write_text(SENTINEL_SECRET + "\n")
    return token_file, secret_file


def test_linq_nb_listen_forwards_signed_deliveries_and_deletes_its_subscription_on_sigterm(
        shared: Sandbox, shared_client: LinqClient, files: tuple[Path, Path]) -> None:
    token_file, secret_file = files
    with Receiver(secrets=SENTINEL_SECRET) as receiver:
        proc = _listen(shared.url, receiver.url, secret_file, token_file=token_file)
        try:
            [sub] = shared_client.list_subscriptions()
            assert "/_relay/" in sub.webhook_url and sub.events == ("message.sent",)
            receiver.fail_next(1, 503)
            event = shared.emit("message.sent", token=SENTINEL_TOKEN)
            assert receiver.wait_for_events(1)
            assert receiver.events[0]["event_id"] == event["event_id"] and receiver.frame()["verified"].all()
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        lines = out.splitlines()
        assert any("message.sent" in ln and "-> 503" in ln for ln in lines)
        assert any("message.sent" in ln and "-> 200" in ln for ln in lines)
        assert "deleted; 2 forwarded, 1 delivered, 1 failed" in lines[-1]
        assert shared_client.list_subscriptions() == []
        assert SENTINEL_TOKEN not in out + err and SENTINEL_SECRET not in out + err


def test_linq_nb_listen_killed_and_restarted_within_the_retry_window_still_gets_the_event(
        files: tuple[Path, Path]) -> None:
    token_file, secret_file = files
    with Sandbox(tokens=[SENTINEL_TOKEN, OTHER], retry_delays=[1, 2, 3, 4, 5, 5, 5, 5]) as sb, \
            Receiver(secrets=SENTINEL_SECRET) as receiver:
        sb.relay.grace = 0.1
        proc = _listen(sb.url, receiver.url, secret_file, token_file=token_file)
        proc.kill()
        proc.wait(timeout=10)
        time.sleep(0.3)
        event = sb.emit("message.sent", token=SENTINEL_TOKEN)
        wait_until(lambda: sb.deliveries(SENTINEL_TOKEN))
        missed = sb.deliveries(SENTINEL_TOKEN)[0]["error"]  # timed out, if the hang-up was not yet seen
        assert "no listener connected" in missed or missed.startswith("timeout"), missed
        again = _listen(sb.url, receiver.url, secret_file, token_file=token_file)
        try:
            assert receiver.wait_for_events(1, timeout=30)
            assert receiver.events[0]["event_id"] == event["event_id"] and receiver.frame()["verified"].all()
            assert len(sb.subscriptions(SENTINEL_TOKEN)) == 1  # taken over, not a second one
        finally:
            again.send_signal(signal.SIGINT)
            out, err = again.communicate(timeout=30)
        assert sb.subscriptions(SENTINEL_TOKEN) == [], out + err
        log = sb.deliveries(SENTINEL_TOKEN)
        assert log[-1]["ok"] and not any(a["ok"] for a in log[:-1]), log


def test_linq_nb_listen_fails_loudly_when_the_sandbox_refuses(shared: Sandbox, tmp_path: Path,
                                                              files: tuple[Path, Path]) -> None:
    bad = tmp_path / "bad"
    bad.write_text("not-a-token")
    done = subprocess.run([*CMD, "listen", "--forward-to", "http://127.0.0.1:9/", "--url", shared.url,
                           "--token-file", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "refused" in done.stderr
    done = subprocess.run([*CMD, "listen", "--forward-to", "http://127.0.0.1:9/", "--url", "http://127.0.0.1:9",
                           "--token-file", str(files[0])], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "linq-nb listen:" in done.stderr
    done = subprocess.run([*CMD, "listen", "--forward-to", "http://127.0.0.1:9/", "--events", "nope",
                           "--token-file", str(files[0])], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown event" in done.stderr
