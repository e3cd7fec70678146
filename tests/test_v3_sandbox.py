"""The sandbox's v3 beside v2, over real HTTP: state across restarts, older state files, the trigger route."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import requests
from werkzeug.wrappers import Request, Response

from linq_nb._server import ServerThread
from linq_nb.receiver import Receiver
from linq_nb.sandbox import Sandbox
from linq_nb.wire import v2, v3
from tests.conftest import SENTINEL_TOKEN

# The state file's schema before v3 (linq_nb 0.1.0 as issue 8 left it), to prove older files still open.
_OLD_SCHEMA = """
CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, partner TEXT NOT NULL, webhook_url TEXT NOT NULL,
    version INTEGER NOT NULL, events TEXT NOT NULL, active INTEGER NOT NULL, secret TEXT,
    delivery_attempts INTEGER NOT NULL DEFAULT 0, last_delivered_at TEXT, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL);
CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, partner TEXT NOT NULL, subscription_id INTEGER NOT NULL,
    event_id TEXT NOT NULL, event_type TEXT NOT NULL, body BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL);
CREATE TABLE attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, partner TEXT NOT NULL, event_id TEXT NOT NULL,
    event_type TEXT NOT NULL, subscription_id INTEGER NOT NULL, attempt INTEGER NOT NULL, status_code INTEGER,
    error TEXT, ok INTEGER NOT NULL, started_at TEXT NOT NULL, duration_ms REAL NOT NULL);
CREATE TABLE events (event_id TEXT PRIMARY KEY, body BLOB NOT NULL);
"""


def _v3(sb: Sandbox, method: str, path: str = "", **kwargs: object) -> requests.Response:
    return requests.request(method, sb.url + v3.COLLECTION_PATH + path, headers=v3.auth_headers(SENTINEL_TOKEN),
                            timeout=5, **kwargs)  # type: ignore[arg-type]


def test_v3_subscriptions_survive_a_restart_and_an_older_state_file_opens(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    db = sqlite3.connect(state)
    db.executescript(_OLD_SCHEMA)
    from linq_nb.sandbox.store import partner_key
    db.execute("INSERT INTO subscriptions (partner, webhook_url, version, events, active, secret, created_at,"
               " updated_at) VALUES (?, 'https://example.com/old', 2, 'message.sent', 1, NULL, 't', 't')",
               (partner_key(SENTINEL_TOKEN),))
    db.commit()
    db.close()

    with Sandbox(tokens=[SENTINEL_TOKEN], state=state) as sb:
        old = sb.subscriptions()
        assert [s["webhook_url"] for s in old] == ["https://example.com/old"] and old[0]["id"] == 1
        made = _v3(sb, "POST", json={"target_url": "https://example.com/v3", "subscribed_events": ["message.sent"],
                                     "phone_numbers": ["+12025551234"], "routing_key_header": "X-Key"})
        assert made.status_code == 201
        sub_id = made.json()["id"]
    with Sandbox(tokens=[SENTINEL_TOKEN], state=state) as sb:
        got = _v3(sb, "GET", "/" + sub_id).json()
        assert (got["phone_numbers"], got["routing_key_header"], "signing_secret" in got) == (
            ["+12025551234"], "X-Key", False)
        assert [s["id"] for s in sb.subscriptions(api="v3")] == [sub_id]
        assert len(sb.subscriptions()) == 1  # the v2 one, still alone in the v2 list
        conflict = _v3(sb, "POST", json={"target_url": "https://example.com/v3", "subscribed_events": ["message.read"]})
        assert conflict.status_code == 409 and sub_id in conflict.json()["error"]["message"]


def test_the_caps_count_both_versions(tmp_path: Path) -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], max_subscriptions=2) as sb:
        body = v2.request_body({"webhook_url": "https://example.com/a", "events": ["message.sent"], "version": 2})
        assert requests.post(sb.url + v2.COLLECTION_PATH, json=body, headers=v2.auth_headers(SENTINEL_TOKEN),
                             timeout=5).status_code == 201
        assert _v3(sb, "POST", json={"target_url": "https://example.com/b",
                                     "subscribed_events": ["message.sent"]}).status_code == 201
        full = _v3(sb, "POST", json={"target_url": "https://example.com/c", "subscribed_events": ["message.sent"]})
        assert full.status_code == 422 and "2 subscriptions" in full.json()["error"]["message"]


def test_the_cap_is_subscription_limit_reached_in_v2_and_1005_in_v3() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], max_subscriptions=1) as sb:
        assert _v3(sb, "POST", json={"target_url": "https://example.com/a",
                                     "subscribed_events": ["message.sent"]}).status_code == 201
        body = v2.request_body({"webhook_url": "https://example.com/b", "events": ["message.sent"], "version": 2})
        over_v2 = requests.post(sb.url + v2.COLLECTION_PATH, json=body, headers=v2.auth_headers(SENTINEL_TOKEN),
                                timeout=5)
        assert (over_v2.status_code, over_v2.json()["error_code"]) == (422, "subscription_limit_reached")
        over_v3 = _v3(sb, "POST", json={"target_url": "https://example.com/c", "subscribed_events": ["message.sent"]})
        assert (over_v3.status_code, over_v3.json()["error"]["code"]) == (422, 1005)


def test_the_trigger_route_refuses_what_it_cannot_send(sandbox: Sandbox, receiver: Receiver) -> None:
    def trigger(body: object) -> requests.Response:
        return requests.post(sandbox.url + "/_sandbox/events", json=body, headers=v3.auth_headers(SENTINEL_TOKEN),
                             timeout=5)

    assert trigger({"event_type": "poll.vote.added"}).status_code == 202
    bad = trigger({"event_type": "message.received", "phone_number": "2025551234"})
    assert bad.status_code == 422 and "E.164" in bad.json()["message"]
    unknown = trigger({"event_type": "message.recieved"})
    assert unknown.status_code == 422 and "v2 or v3 event name" in unknown.json()["message"]
    # v2's answer is unchanged for a partner with v2 subscriptions only
    # to a local receiver: the fixture's sandbox is not shared, so it would really POST to example.com
    body = v2.request_body({"webhook_url": receiver.url, "events": ["message.sent"], "version": 2})
    requests.post(sandbox.url + v2.COLLECTION_PATH, json=body, headers=v2.auth_headers(SENTINEL_TOKEN), timeout=5)
    answer = requests.post(sandbox.url + "/_sandbox/events", json={"event_type": "message.sent"},
                           headers=v2.auth_headers(SENTINEL_TOKEN), timeout=5).json()
    assert set(answer) == {"event_id", "event_type", "deliveries_queued"} and answer["deliveries_queued"] == 1


def test_a_v3_subscription_deleted_while_its_delivery_is_at_the_receiver_keeps_its_id_in_the_log(
        sandbox: Sandbox) -> None:
    arrived, release = threading.Event(), threading.Event()

    @Request.application
    def held(request: Request) -> Response:  # answers only when the test says so
        arrived.set()
        release.wait(10)
        return Response("ok")

    receiver = ServerThread(held).start()
    try:
        created = _v3(sandbox, "POST", json={"target_url": receiver.url + "/hook",
                                             "subscribed_events": ["message.received"]})
        assert created.status_code == 201, created.text
        uid = created.json()["id"]
        sandbox.emit("message.received", token=SENTINEL_TOKEN)
        assert arrived.wait(10)
        assert _v3(sandbox, "DELETE", f"/{uid}").status_code == 204
        release.set()
        assert sandbox.wait_for_deliveries(timeout=10)
    finally:
        release.set()
        receiver.stop()
    [attempt] = sandbox.deliveries()
    assert (attempt["subscription_id"], attempt["status_code"]) == (uid, 200)  # its v3 id, not the store's key
    page = requests.get(sandbox.url + "/_sandbox/deliveries", params={"subscription_id": uid},
                        headers=v3.auth_headers(SENTINEL_TOKEN), timeout=5).json()
    assert [a["subscription_id"] for a in page["deliveries"]] == [uid]


def test_a_v3_update_to_another_subscriptions_target_url_is_a_409_that_names_it(sandbox: Sandbox) -> None:
    first = _v3(sandbox, "POST", json={"target_url": "https://example.com/a", "subscribed_events": ["message.sent"]})
    other = _v3(sandbox, "POST", json={"target_url": "https://example.com/b", "subscribed_events": ["message.sent"]})
    first_id, other_id = first.json()["id"], other.json()["id"]
    taken = _v3(sandbox, "PUT", f"/{other_id}", json={"target_url": "https://example.com/a"})
    assert taken.status_code == 409
    assert taken.json()["error"] == {
        "status": 409, "code": 1005,
        "message": f"target_url https://example.com/a is already used by webhook subscription {first_id}; "
                   "each target_url can be used once per account"}
    assert _v3(sandbox, "GET", f"/{other_id}").json()["target_url"] == "https://example.com/b"  # unchanged


def _collector() -> tuple[ServerThread, list[Request]]:
    """A receiver on a free port that answers 200 and keeps every request it got (body read)."""
    got: list[Request] = []

    @Request.application
    def app(request: Request) -> Response:
        request.get_data()
        got.append(request)
        return Response("ok")

    return ServerThread(app).start(), got


def test_a_v3_subscription_with_several_lines_gets_the_events_of_each_and_only_those() -> None:
    server, got = _collector()
    try:
        with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
            created = _v3(sb, "POST", json={"target_url": server.url + "/hook", "subscribed_events": ["message.sent"],
                                            "phone_numbers": ["+12025550101", "+12025550102"]})
            assert created.status_code == 201, created.text
            for line in ("+12025550102", "+12025550199", "+12025550101"):
                sb.emit("message.sent", phone_number=line)
            assert sb.wait_for_deliveries(timeout=10)
    finally:
        server.stop()
    assert len(got) == 2  # the second and the first line's; not the third's


def test_v3_events_name_their_own_partner() -> None:
    server, got = _collector()
    try:
        with Sandbox(tokens=["tok_alice", "tok_bob"], deliver_to=["127.0.0.1"]) as sb:  # shared: 2 partners
            for token in ("tok_alice", "tok_bob"):
                requests.post(sb.url + v3.COLLECTION_PATH, headers=v3.auth_headers(token), timeout=5,
                              json={"target_url": server.url + "/hook", "subscribed_events": ["message.sent"]})
                sb.emit("message.sent", token=token)
                sb.emit("message.sent", token=token)
            assert sb.wait_for_deliveries(timeout=10)
    finally:
        server.stop()
    bodies = [json.loads(r.get_data()) for r in got]
    ids = [body["partner_id"] for body in bodies]
    assert len(ids) == 4 and len(set(ids)) == 2 and "sandbox" not in ids  # one id per partner, never the default
    assert len({body["event_id"] for body in bodies}) == 4


def test_a_v3_create_on_a_taken_target_url_is_a_409_naming_the_holder_and_the_way_out(sandbox: Sandbox) -> None:
    long_url = "https://example.com/" + "p" * 300  # echoed to its first 200 characters
    first = _v3(sandbox, "POST", json={"target_url": long_url, "subscribed_events": ["message.sent"]}).json()
    taken = _v3(sandbox, "POST", json={"target_url": long_url, "subscribed_events": ["message.read"]})
    assert (taken.status_code, taken.json()["error"]["message"]) == (409, (
        f"target_url {long_url[:200]} is already used by webhook subscription {first['id']}; each target_url can be "
        "used once per account: update that subscription, or make the URL unique (for example add ?line=2)"))


def test_a_v3_subscription_keeps_its_routing_headers_and_a_delivery_carries_the_chat_id() -> None:
    server, server_got = _collector()
    try:
        with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
            body = {"target_url": server.url + "/hook", "subscribed_events": ["message.received"],
                    "routing_key_header": "X-Route-Key", "routing_id_header": "X-Route-Chat"}
            created = _v3(sb, "POST", json=body).json()
            assert (created["routing_key_header"], created["routing_id_header"]) == ("X-Route-Key", "X-Route-Chat")
            assert _v3(sb, "GET", f"/{created['id']}").json()["routing_id_header"] == "X-Route-Chat"
            sb.emit("message.received")
            assert sb.wait_for_deliveries(timeout=10)
    finally:
        server.stop()
    [request] = server_got
    assert request.headers["X-Route-Chat"] == json.loads(request.get_data())["data"]["chat"]["id"]


def test_a_subscription_created_without_active_is_active_and_receives(sandbox: Sandbox, receiver: Receiver) -> None:
    body = {"webhook_url": receiver.url, "events": ["message.sent"], "version": 2}  # no "active"
    created = requests.post(sandbox.url + v2.COLLECTION_PATH, json=v2.request_body(body),
                            headers=v2.auth_headers(SENTINEL_TOKEN), timeout=5).json()["webhook_subscription"]
    assert created["active"] is True
    sandbox.emit("message.sent")
    assert sandbox.wait_for_deliveries(timeout=10)
    assert [d["subscription_id"] for d in sandbox.deliveries()] == [created["id"]]  # the stored row is active too


def test_a_job_queued_by_an_older_sandbox_is_delivered_with_the_body_it_kept(tmp_path: Path) -> None:
    from linq_nb.sandbox.store import partner_key

    server, got = _collector()
    state = tmp_path / "old.db"
    db = sqlite3.connect(state)
    db.executescript(_OLD_SCHEMA)  # before bodies moved to their own table: each job kept its body inline
    db.execute("INSERT INTO subscriptions (partner, webhook_url, version, events, active, secret, created_at,"
               " updated_at) VALUES (?, ?, 2, 'message.sent', 1, NULL, 't', 't')",
               (partner_key(SENTINEL_TOKEN), server.url + "/hook"))
    db.execute("INSERT INTO jobs (partner, subscription_id, event_id, event_type, body, next_at) VALUES (?, 1,"
               " 'old-1', 'message.sent', ?, 0)", (partner_key(SENTINEL_TOKEN), b'{"event_id": "old-1"}'))
    db.commit()
    db.close()
    try:
        with Sandbox(tokens=[SENTINEL_TOKEN], state=state) as sb:
            assert sb.wait_for_deliveries(timeout=10)
    finally:
        server.stop()
    assert [json.loads(r.get_data()) for r in got] == [{"event_id": "old-1"}]
