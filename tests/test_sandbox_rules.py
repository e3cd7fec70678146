"""Sandbox delivery and isolation rules that mutation testing (``make mutate``) found unpinned.

All over real HTTP: the sandbox's API on a free port, delivering to a real receiver.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.wrappers import Request, Response

from linq_nb._server import ServerThread
from linq_nb.receiver import Receiver
from linq_nb.sandbox import Caps, Sandbox
from linq_nb.sandbox.store import Store
from tests.conftest import SENTINEL_TOKEN
from tests.test_delivery import subscribe
from tests.test_v3_sandbox import _v3

PATH = "/api/partner/v2/webhook_subscriptions"
OTHER_TOKEN = "tok_other_partner"



def attempts_of(sandbox: Sandbox, sub_id: int) -> list[tuple[int, int | None, bool]]:
    return [(d["attempt"], d["status_code"], d["ok"]) for d in sandbox.deliveries() if d["subscription_id"] == sub_id]


@pytest.mark.parametrize("status", [500, 502, 504, 599])
def test_a_receivers_5xx_is_retried_including_a_plain_500(sandbox: Sandbox, receiver: Receiver, status: int) -> None:
    sub = subscribe(sandbox, receiver.url, ["message.sent"])
    receiver.fail_next(1, status=status)
    sandbox.emit("message.sent")
    assert sandbox.wait_for_deliveries(timeout=10)
    assert attempts_of(sandbox, sub["id"]) == [(1, status, False), (2, 200, True)]
    assert [d["error"] for d in sandbox.deliveries()] == [None, None]  # an answer is not an error
    assert len(receiver.events) == 1


@pytest.mark.parametrize("status", [300, 399, 400, 404, 499])
def test_a_receivers_3xx_or_4xx_other_than_429_is_final(sandbox: Sandbox, receiver: Receiver, status: int) -> None:
    sub = subscribe(sandbox, receiver.url, ["message.sent"])
    receiver.fail_next(1, status=status)
    sandbox.emit("message.sent")
    assert sandbox.wait_for_deliveries(timeout=10)
    assert attempts_of(sandbox, sub["id"]) == [(1, status, False)]
    (state,) = sandbox.subscriptions()
    assert state["delivery_attempts"] == 1 and state["last_delivered_at"] is None


def test_deleting_a_subscription_removes_its_queued_retry_at_once(receiver: Receiver, tmp_path: Path) -> None:
    state = tmp_path / "sandbox.sqlite"
    with Sandbox(tokens=[SENTINEL_TOKEN], retry_delays=[3600], state=state) as sb:
        sub = subscribe(sb, receiver.url, ["message.sent"])
        receiver.fail_next(1, status=503)
        sb.emit("message.sent")
        assert receiver.wait_for_requests(1, timeout=10)
        assert not sb.wait_for_deliveries(timeout=0.2)  # the retry waits its hour in the queue
        resp = requests.delete(f"{sb.url}{PATH}/{sub['id']}", headers={"X-LINQ-INTEGRATION-TOKEN": SENTINEL_TOKEN},
                               timeout=10)
        assert resp.status_code == 204
        assert sb.wait_for_deliveries(timeout=5)  # nothing left to wait for, though the retry was an hour away
    store = Store(state)  # and nothing is left in the record that a restart would pick up
    try:
        assert store.pending_count() == 0
    finally:
        store.close()


def test_a_deactivated_subscriptions_pending_retry_is_dropped_not_sent(sandbox: Sandbox, receiver: Receiver) -> None:
    sub = subscribe(sandbox, receiver.url, ["message.sent"])
    receiver.fail_next(1, status=503)
    sandbox.emit("message.sent")
    assert receiver.wait_for_requests(1, timeout=10)
    body = {"webhook_url": receiver.url, "version": 2, "events": ["message.sent"], "active": False}
    resp = requests.put(f"{sandbox.url}{PATH}/{sub['id']}", json={"webhook_subscription": body},
                        headers={"X-LINQ-INTEGRATION-TOKEN": SENTINEL_TOKEN}, timeout=10)
    assert resp.status_code == 200
    assert sandbox.wait_for_deliveries(timeout=10)
    assert len(receiver.requests) == 1 and attempts_of(sandbox, sub["id"]) == [(1, 503, False)]


def test_one_partner_never_sees_reaches_or_changes_anothers_subscriptions(receiver: Receiver) -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN, OTHER_TOKEN], retry_delays=[0.05], deliver_to=["127.0.0.1"]) as sb:
        mine = subscribe(sb, receiver.url, ["message.sent"])
        theirs = subscribe(sb, receiver.url, ["message.sent"], token=OTHER_TOKEN)
        as_me = {"X-LINQ-INTEGRATION-TOKEN": SENTINEL_TOKEN}
        listed = requests.get(sb.url + PATH, headers=as_me, timeout=10).json()["webhook_subscriptions"]
        assert [s["id"] for s in listed] == [mine["id"]]
        other_url = f"{sb.url}{PATH}/{theirs['id']}"
        assert requests.get(other_url, headers=as_me, timeout=10).status_code == 404
        body = {"webhook_url": receiver.url, "version": 2, "events": ["message.read"]}
        assert requests.put(other_url, json={"webhook_subscription": body}, headers=as_me,
                            timeout=10).status_code == 404
        assert requests.delete(other_url, headers=as_me, timeout=10).status_code == 404
        assert [s["events"] for s in sb.subscriptions(OTHER_TOKEN)] == [["message.sent"]]  # unchanged

        sb.emit("message.sent", token=SENTINEL_TOKEN)  # my event goes to my subscription only
        assert sb.wait_for_deliveries(timeout=10)
        assert {r["subscription_id"] for r in receiver.requests} == {mine["id"]}
        assert [d["subscription_id"] for d in sb.deliveries(SENTINEL_TOKEN)] == [mine["id"]]
        assert sb.deliveries(OTHER_TOKEN) == []
        mine_now = sb.subscriptions(SENTINEL_TOKEN)[0]
        theirs_now = sb.subscriptions(OTHER_TOKEN)[0]
        assert (mine_now["delivery_attempts"], theirs_now["delivery_attempts"]) == (1, 0)


def api(sb: Sandbox, method: str, path: str = "", token: str = SENTINEL_TOKEN, **kwargs: object) -> requests.Response:
    return requests.request(method, sb.url + path, headers={"X-LINQ-INTEGRATION-TOKEN": token}, timeout=10,
                            **kwargs)  # type: ignore[arg-type]


def test_a_fault_set_by_one_partner_fails_only_that_partners_next_requests() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN, OTHER_TOKEN]) as sb:
        assert api(sb, "POST", "/_sandbox/faults", json={"fail_next": 2, "status": 503}).status_code == 200
        assert api(sb, "GET", PATH, token=OTHER_TOKEN).status_code == 200  # the other partner: untouched
        assert [api(sb, "GET", PATH).status_code for _ in range(3)] == [503, 503, 200]  # exactly two, then over
        sb.fail_next(1, status=502, token=OTHER_TOKEN)
        assert api(sb, "GET", PATH).status_code == 200
        assert api(sb, "GET", PATH, token=OTHER_TOKEN).status_code == 502
        sb.fail_next(1, status=500)  # no token: anyone's next request
        assert api(sb, "GET", PATH, token=OTHER_TOKEN).status_code == 500
        assert api(sb, "GET", PATH).status_code == 200


def test_a_rate_limit_set_by_one_partner_limits_only_that_partner() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN, OTHER_TOKEN]) as sb:
        body = {"rate_limit": {"limit": 2, "per_seconds": 60}}
        assert api(sb, "POST", "/_sandbox/faults", json=body).status_code == 200
        assert [api(sb, "GET", PATH).status_code for _ in range(3)] == [200, 200, 429]
        assert [api(sb, "GET", PATH, token=OTHER_TOKEN).status_code for _ in range(3)] == [200, 200, 200]
        assert api(sb, "POST", "/_sandbox/faults", json={"rate_limit": None}).status_code == 200  # lifted
        assert api(sb, "GET", PATH).status_code == 200
        sb.set_rate_limit(1, 60)  # every partner, each on its own count
        assert [api(sb, "GET", PATH).status_code for _ in range(2)] == [200, 429]
        assert [api(sb, "GET", PATH, token=OTHER_TOKEN).status_code for _ in range(2)] == [200, 429]


def test_faults_and_limits_apply_to_the_subscription_api_only() -> None:
    # hardening (issue 8): injected faults and a partner's own rate limit stay with the subscription API
    # (a partner can always lift its limit again), but the operator's limit counts the control routes too
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        sb.fail_next(1, status=503)
        body = {"rate_limit": {"limit": 1, "per_seconds": 60}}
        assert api(sb, "POST", "/_sandbox/faults", json=body).status_code == 200  # the partner's own limit
        assert api(sb, "GET", "/_sandbox/deliveries").status_code == 200
        assert api(sb, "POST", "/_sandbox/events", json={"event_type": "message.sent"}).status_code == 202
        assert api(sb, "GET", PATH).status_code == 503  # the fault was still waiting for an API request
        assert api(sb, "GET", PATH).status_code == 200
        assert api(sb, "GET", PATH).status_code == 429
        assert api(sb, "GET", "/_sandbox/deliveries").status_code == 200  # the partner's limit: API only
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        sb.fail_next(1, status=503)
        sb.set_rate_limit(2, 60)  # the operator's limit
        assert api(sb, "GET", "/_sandbox/deliveries").status_code == 200  # counted, but takes no fault
        assert api(sb, "GET", PATH).status_code == 503  # the fault, answered before the limit is counted
        assert api(sb, "GET", PATH).status_code == 200
        assert api(sb, "POST", "/_sandbox/events", json={"event_type": "message.sent"}).status_code == 429
        assert api(sb, "GET", "/_sandbox/deliveries").status_code == 429


def test_every_token_given_is_a_partner_and_repeats_are_one() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN, OTHER_TOKEN, SENTINEL_TOKEN]) as sb:
        assert sb.tokens == [SENTINEL_TOKEN, OTHER_TOKEN]
        for token in (SENTINEL_TOKEN, OTHER_TOKEN):
            assert api(sb, "GET", PATH, token=token).status_code == 200
        assert api(sb, "GET", PATH, token="tok_unknown").status_code == 401
        assert api(sb, "GET", PATH, token="").status_code == 401


def test_the_routes_act_for_the_callers_partner_and_name_the_missing_id() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN, OTHER_TOKEN], retry_delays=[], deliver_to=["127.0.0.1"]) as sb, \
            Receiver() as receiver:
        mine = subscribe(sb, receiver.url, ["message.sent"], secret=None)
        sb.emit("message.sent", token=SENTINEL_TOKEN)
        assert sb.wait_for_deliveries(timeout=10)
        got = api(sb, "GET", f"{PATH}/{mine['id']}")
        assert (got.status_code, got.json()["webhook_subscription"]["id"]) == (200, mine["id"])
        mine_log = api(sb, "GET", "/_sandbox/deliveries")
        assert mine_log.status_code == 200 and len(mine_log.json()["deliveries"]) == 1
        assert mine_log.json()["deliveries"][0]["ok"] is True
        assert api(sb, "GET", "/_sandbox/deliveries", token=OTHER_TOKEN).json() == {"deliveries": [],
                                                                                    "next_cursor": None}
        body = {"webhook_subscription": {"webhook_url": receiver.url, "version": 2, "events": ["message.sent"]}}
        for method, kwargs in (("GET", {}), ("PUT", {"json": body}), ("DELETE", {})):
            resp = api(sb, method, f"{PATH}/{mine['id']}", token=OTHER_TOKEN, **kwargs)
            assert resp.status_code == 404, method
            assert resp.json()["message"] == f"webhook subscription {mine['id']} not found", method


@pytest.fixture
def wire() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A receiver that records each request as it came over the wire, and answers 307 to another place."""
    seen: list[dict[str, Any]] = []

    @Request.application
    def app(request: Request) -> Response:
        seen.append({"method": request.environ["REQUEST_METHOD"], "path": request.path,
                     "query": request.environ.get("QUERY_STRING", "")})
        if request.path == "/moved":
            return Response("", 307, headers={"Location": "/elsewhere"})
        return Response("{}", 200, mimetype="application/json")

    server = ServerThread(app).start()
    yield server.url, seen
    server.stop()


def test_a_delivery_is_sent_as_post_in_capitals_and_a_redirect_is_final(
        sandbox: Sandbox, wire: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = wire
    subscribe(sandbox, url + "/hook", ["message.sent"], secret=None)
    moved = subscribe(sandbox, url + "/moved", ["message.read"], secret=None)
    sandbox.emit("message.sent")
    sandbox.emit("message.read")
    assert sandbox.wait_for_deliveries(timeout=10)
    # HTTP methods are case-sensitive; a redirect is an answer, neither followed nor retried
    assert sorted((r["method"], r["path"]) for r in seen) == [("POST", "/hook"), ("POST", "/moved")]
    assert attempts_of(sandbox, moved["id"]) == [(1, 307, False)]


def test_a_receiver_that_hangs_up_without_answering_is_a_retried_connection_error(sandbox: Sandbox) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(10)

    def hang_up(times: int) -> None:
        for _ in range(times):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            request = b""
            while b"\r\n\r\n" not in request and (chunk := conn.recv(65536)):
                request += chunk
            head, _, body = request.partition(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length and (chunk := conn.recv(65536)):
                body += chunk
            conn.close()  # read the whole request (a close with unread bytes would be a reset), answer nothing

    t = threading.Thread(target=hang_up, args=(4,), daemon=True)
    t.start()
    try:
        sub = subscribe(sandbox, f"http://127.0.0.1:{listener.getsockname()[1]}/hook", ["message.sent"],
                        secret=None)
        sandbox.emit("message.sent")
        assert sandbox.wait_for_deliveries(timeout=10)
    finally:
        listener.close()
        t.join(timeout=10)
    log = [d for d in sandbox.deliveries() if d["subscription_id"] == sub["id"]]
    assert len(log) == 4  # the first try and the fixture's three retries
    assert {(d["status_code"], d["error"]) for d in log} == {(None, "connection error: RemoteDisconnected")}


def test_nothing_listening_is_a_connection_error_named_for_its_cause(sandbox: Sandbox) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    subscribe(sandbox, f"http://127.0.0.1:{port}/hook", ["message.sent"], secret=None)
    sandbox.emit("message.sent")
    assert sandbox.wait_for_deliveries(timeout=10)
    assert {(d["status_code"], d["error"]) for d in sandbox.deliveries()} == {
        (None, "connection error: ConnectionRefusedError")}


def test_each_attempt_records_how_long_it_took_in_milliseconds_to_the_microsecond(
        sandbox: Sandbox, receiver: Receiver) -> None:
    subscribe(sandbox, receiver.url, ["message.sent"])
    receiver.fail_next(3, status=503)
    started = time.perf_counter()
    sandbox.emit("message.sent")
    assert sandbox.wait_for_deliveries(timeout=10)
    waited_ms = (time.perf_counter() - started) * 1000
    durations = [d["duration_ms"] for d in sandbox.deliveries()]
    assert len(durations) == 4
    assert all(0 < ms <= waited_ms for ms in durations)  # each within the time this test waited for all four
    assert all(round(ms, 3) == ms for ms in durations)  # rounded to the microsecond ...
    assert any(ms != int(ms) for ms in durations)  # ... not to the millisecond


def test_an_event_reaches_every_subscription_listing_it_among_others(sandbox: Sandbox, receiver: Receiver) -> None:
    both = subscribe(sandbox, receiver.url, ["message.sent", "message.read", "reaction.received"], secret=None)
    subscribe(sandbox, receiver.url, ["message.sent"], secret=None)
    sandbox.emit("message.read")
    assert sandbox.wait_for_deliveries(timeout=10)
    assert [r["subscription_id"] for r in receiver.requests] == [both["id"]]


def test_a_partner_is_kept_under_the_first_24_hex_digits_of_its_tokens_sha256(tmp_path: Path) -> None:
    # The key is what a state file records for each partner (never the token), so it must stay the same
    # across versions for an old state file to be read back. Computed outside linq_nb.
    from linq_nb.sandbox.store import partner_key

    assert partner_key("tok_partner_a") == "0df3574f03fb05cc46729f2a"
    assert partner_key("tök") != partner_key("tok")


def _refusal(resp: requests.Response) -> tuple[int, str]:
    body = resp.json()
    return resp.status_code, body["message"] if "message" in body else body["errors"][0]["detail"]


LIMIT_FORM = 'rate_limit must be null or {"limit": <int >= 1>, "per_seconds": <number > 0>}'


def test_each_refused_control_request_says_what_is_wrong_word_for_word() -> None:
    # The partner's own knobs (faults, delays, its own rate limit) are checked against the operator's caps,
    # and every refusal is a 4xx that names the rule; nothing is queued by a refused request.
    faults = "/_sandbox/faults"
    with Sandbox(tokens=[SENTINEL_TOKEN], max_body_bytes=64) as sb:
        for body, problem in (
            ({"fail_next": -1}, "fail_next must be an integer from 0 to 1000"),
            ({"fail_next": 1001}, "fail_next must be an integer from 0 to 1000"),
            ({"fail_next": 1, "status": 600}, "status must be an integer from 400 to 599, or null to only delay"),
            ({"fail_next": 1, "status": 399}, "status must be an integer from 400 to 599, or null to only delay"),
            ({"delay": 31}, "delay must be a number of seconds from 0 to 30"),
            ({"delay": -1}, "delay must be a number of seconds from 0 to 30"),
            ({"rate_limit": {"limit": 0}}, LIMIT_FORM),
            ({"rate_limit": 5}, LIMIT_FORM),
            ({"rate_limit": {"limit": 1, "every": 2}}, LIMIT_FORM),
        ):
            resp = api(sb, "POST", faults, json=body)
            assert _refusal(resp) == (422, "Validation failed: " + problem), body
            assert resp.json()["errors"] == [problem]
        assert _refusal(api(sb, "POST", faults, json=[1])) == (
            400, 'request body must be a JSON object such as {"fail_next": 2, "status": 503}')
        for raw, expected in (
            (b"x" * 65, (413, "request body of 65 bytes is over the 64-byte limit")),
            (b"  ", (400, "request body is empty; send a JSON object")),
            (b"\xff", (400, "request body is not UTF-8 text (byte 0); send JSON in UTF-8")),
            (b"{", (400, "request body is not valid JSON ('Expecting property name enclosed in double quotes: "
                         "line 1 column 2 (char 1)')")),
            (b'{"a": "\\ud800"}', (400, "request body has a lone UTF-16 surrogate escape (such as \\ud800) in a "
                                        "string; send valid Unicode text")),
        ):
            assert _refusal(api(sb, "POST", faults, data=raw)) == expected, raw
        assert [api(sb, "GET", PATH).status_code for _ in range(2)] == [200, 200]  # no fault was queued
        assert api(sb, "POST", faults, data=b"[" * 60).status_code == 400  # within the limit: the JSON is wrong
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        assert _refusal(api(sb, "POST", faults, data=b"[" * 100_000)) == (
            400, "request body is JSON nested too deeply; send a flat object")
        assert api(sb, "POST", faults, json={"fail_next": 1000, "status": 400, "delay": 30}).status_code == 200
        assert api(sb, "POST", faults, json={"fail_next": 1, "status": 599, "delay": 0}).status_code == 200


def test_a_partners_own_rate_limit_may_only_be_stricter_than_the_operators() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], rate_limit=(3, 60)) as sb:
        looser = api(sb, "POST", "/_sandbox/faults", json={"rate_limit": {"limit": 4, "per_seconds": 60}})
        assert _refusal(looser) == (422, "Validation failed: rate_limit may only be stricter than the sandbox's own "
                                         "limit of 3 per 60 s")
        assert [api(sb, "GET", PATH).status_code for _ in range(2)] == [200, 200]  # the refusal counted too
        late = api(sb, "GET", PATH)
        assert _refusal(late) == (429, "rate limit exceeded; retry after 20 s")  # 3 per 60 s: one each 20 s
        assert late.headers["Retry-After"] == "20"


def test_a_partner_may_queue_only_so_many_faults() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN, OTHER_TOKEN]) as sb:
        for _ in range(20):
            assert api(sb, "POST", "/_sandbox/faults", json={"fail_next": 1, "status": 503}).status_code == 200
        full = api(sb, "POST", "/_sandbox/faults", json={"fail_next": 1, "status": 503})
        assert _refusal(full) == (422, "Validation failed: 20 faults are queued already, the most one partner may "
                                       "have; let them run out first")
        assert api(sb, "POST", "/_sandbox/faults", json={"fail_next": 1, "status": 503},
                   token=OTHER_TOKEN).status_code == 200  # another partner's queue is its own
        assert api(sb, "POST", "/_sandbox/faults", json={"rate_limit": None}).status_code == 200  # no fault: allowed


def test_an_event_over_the_size_cap_is_refused_and_queues_nothing(receiver: Receiver) -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], max_event_bytes=2000, deliver_to=["127.0.0.1"]) as sb:
        subscribe(sb, receiver.url, ["message.sent"])
        resp = api(sb, "POST", "/_sandbox/events", json={"event_type": "message.sent", "data": {"x": "y" * 2000}})
        status, message = _refusal(resp)
        assert status == 413 and message.startswith("the event is ")
        assert message.endswith(" bytes, over this sandbox's limit of 2000 bytes for one event; send less data")
        assert int(message.split()[3]) > 2000
        assert api(sb, "POST", "/_sandbox/events", json={"event_type": "message.sent"}).status_code == 202
        assert sb.wait_for_deliveries(timeout=10)
        assert len(sb.deliveries()) == 1


def test_who_is_asking_is_named_in_each_401() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        assert _refusal(requests.get(sb.url + PATH, timeout=10)) == (401, "missing X-LINQ-INTEGRATION-TOKEN header")
        assert _refusal(api(sb, "GET", PATH, token="tok_unknown")) == (
            401, "the X-LINQ-INTEGRATION-TOKEN header does not match any integration token of this sandbox")
        bearer = requests.get(sb.url + PATH, headers={"Authorization": "Bearer " + SENTINEL_TOKEN}, timeout=10)
        assert _refusal(bearer) == (
            401, "missing X-LINQ-INTEGRATION-TOKEN header; Authorization is v3's header, this is a v2 route")
        control = requests.get(sb.url + "/_sandbox/deliveries", timeout=10)
        assert _refusal(control) == (401, "missing X-LINQ-INTEGRATION-TOKEN or Authorization: Bearer <token> header")
        v3_control = requests.get(sb.url + "/_sandbox/deliveries",
                                  headers={"Authorization": "Bearer " + SENTINEL_TOKEN}, timeout=10)
        assert v3_control.status_code == 200  # a control route takes either version's header
        nowhere = api(sb, "GET", "/nope")
        assert _refusal(nowhere) == (404, "no such endpoint: '/nope'; the API lives under "
                                          "/api/partner/v2/webhook_subscriptions")
        patch = api(sb, "PATCH", PATH)
        assert _refusal(patch) == (405, "PATCH is not allowed on '/api/partner/v2/webhook_subscriptions'; use GET, "
                                        "POST")
        assert patch.headers["Allow"] == "GET, POST"


def test_the_store_reads_and_deletes_v2_by_default_and_deleting_nothing_is_none() -> None:
    store = Store()
    body = {"webhook_url": "https://example.com/h", "events": ["message.sent"], "version": 2}
    sub = store.create("p", body)
    assert store.get("p", sub["id"]) == sub
    assert store.delete("p", 999) is None  # a partner's unknown id
    assert store.delete("nobody", sub["id"]) is None  # a partner with no subscriptions at all
    assert store.delete("p", sub["id"]) == sub  # what was deleted, as it was
    assert store.get("p", sub["id"]) is None and store.delete("p", sub["id"]) is None
    store.close()


def test_the_store_lists_and_queues_for_v2_by_default_where_a_url_may_be_used_twice() -> None:
    store = Store()
    body = {"webhook_url": "https://example.com/h", "events": ["message.sent"], "version": 2}
    sub, twin = store.create("p", body), store.create("p", body)  # two subscriptions, one URL
    assert store.subscriptions("p") == [sub, twin] and store.subscriptions("p", "v3") == []
    assert store.enqueue("p", "message.sent", "e1", b"{}") == 2
    store.close()

def test_the_store_updates_and_says_what_it_was_and_what_it_is() -> None:
    store = Store()
    body = {"webhook_url": "https://example.com/h", "events": ["message.sent"], "version": 2}
    sub = store.create("p", body)
    before, after = store.update("p", sub["id"], {**body, "active": False}) or (None, None)
    assert before == sub and after == {**sub, "active": False, "updated_at": after["updated_at"]}
    assert store.get("p", sub["id"]) == after
    assert store.update("p", 999, body) is None
    store.close()


def test_a_rate_limit_says_how_long_to_wait_even_under_a_second() -> None:
    from linq_nb.sandbox.app import RateLimiter

    limiter = RateLimiter(1, 1.0)
    assert limiter.check("p", 100.0) is None
    assert limiter.check("p", 100.5) == pytest.approx(0.5)
    assert limiter.check("p", 101.0) is None


def test_a_limit_is_tighter_only_when_it_allows_no_more_burst_and_no_more_rate() -> None:
    from linq_nb.sandbox.app import RateLimiter

    assert RateLimiter(3, 60).tighter_than(RateLimiter(3, 60))  # the same limit is allowed
    assert RateLimiter(2, 60).tighter_than(RateLimiter(3, 60))
    assert not RateLimiter(2, 10).tighter_than(RateLimiter(3, 60))  # a smaller burst, but refilled faster
    assert not RateLimiter(4, 80).tighter_than(RateLimiter(3, 60))  # the same rate, a bigger burst


def test_a_page_of_exactly_the_attempts_left_has_no_next_cursor(receiver: Receiver) -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], retry_delays=[0.01, 0.01], deliver_to=["127.0.0.1"]) as sb:
        subscribe(sb, receiver.url, ["message.sent"])
        receiver.fail_next(2)
        sb.emit("message.sent")
        assert sb.wait_for_deliveries(timeout=10)
        page = api(sb, "GET", "/_sandbox/deliveries?limit=3").json()
        assert [d["attempt"] for d in page["deliveries"]] == [1, 2, 3] and page["next_cursor"] is None
        first = api(sb, "GET", "/_sandbox/deliveries?limit=2").json()
        assert [d["attempt"] for d in first["deliveries"]] == [1, 2] and first["next_cursor"]


def _until_limited(sb: Sandbox) -> requests.Response:
    """GETs until one is rate limited (at most 20: a limit of one per second is hit by the second or third)."""
    for _ in range(20):
        resp = api(sb, "GET", PATH)
        if resp.status_code == 429:
            return resp
    raise AssertionError("20 requests in a row were not rate limited")


def test_a_partners_rate_limit_without_per_seconds_is_per_second() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        assert api(sb, "POST", "/_sandbox/faults", json={"rate_limit": {"limit": 1}}).status_code == 200
        late = _until_limited(sb)
        assert _refusal(late) == (429, "rate limit exceeded; retry after 1 s")  # one a second: never more than 1
        assert late.headers["Retry-After"] == "1"


def test_a_partners_rate_limit_without_per_seconds_is_compared_per_second() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], rate_limit=(1, 2)) as sb:  # the operator: one every 2 s
        looser = api(sb, "POST", "/_sandbox/faults", json={"rate_limit": {"limit": 1}})  # one every second
        assert _refusal(looser) == (422, "Validation failed: rate_limit may only be stricter than the sandbox's own "
                                         "limit of 1 per 2 s")


def test_a_fault_without_a_status_answers_500() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        assert api(sb, "POST", "/_sandbox/faults", json={"fail_next": 1}).status_code == 200
        assert [api(sb, "GET", PATH).status_code for _ in range(2)] == [500, 200]


def test_a_fault_without_a_delay_is_not_delayed() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        sb.app.caps = Caps(max_fault_delay=0)  # an operator who allows no injected delay at all
        assert api(sb, "POST", "/_sandbox/faults", json={"fail_next": 1, "status": 503}).status_code == 200
        refused = api(sb, "POST", "/_sandbox/faults", json={"fail_next": 1, "status": 503, "delay": 0.5})
        assert _refusal(refused) == (422, "Validation failed: delay must be a number of seconds from 0 to 0")


@pytest.mark.parametrize("body, problem", [
    ({"fail_next": "2"}, "fail_next must be an integer from 0 to 1000"),
    ({"fail_next": True}, "fail_next must be an integer from 0 to 1000"),
    ({"fail_next": 1, "status": "503"}, "status must be an integer from 400 to 599, or null to only delay"),
    ({"fail_next": 1, "status": True}, "status must be an integer from 400 to 599, or null to only delay"),
    ({"fail_next": 1, "delay": "1"}, "delay must be a number of seconds from 0 to 30"),
    ({"fail_next": 1, "delay": True}, "delay must be a number of seconds from 0 to 30"),
])
def test_a_fault_of_the_wrong_type_is_refused_and_queues_nothing(body: dict[str, Any], problem: str) -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        assert _refusal(api(sb, "POST", "/_sandbox/faults", json=body)) == (422, f"Validation failed: {problem}")
        assert api(sb, "GET", PATH).status_code == 200


def test_a_fault_that_does_not_mention_rate_limit_keeps_the_partners_limit() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        limit = {"rate_limit": {"limit": 2, "per_seconds": 60}}
        assert api(sb, "POST", "/_sandbox/faults", json=limit).status_code == 200
        assert api(sb, "POST", "/_sandbox/faults", json={"fail_next": 1, "status": 503}).status_code == 200
        assert [api(sb, "GET", PATH).status_code for _ in range(4)] == [503, 200, 200, 429]


def test_a_faults_refusal_is_a_v2_validation_error_naming_every_problem() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        refused = api(sb, "POST", "/_sandbox/faults", json={"fail_next": -1, "status": 200})
        problems = ["fail_next must be an integer from 0 to 1000",
                    "status must be an integer from 400 to 599, or null to only delay"]
        assert (refused.status_code, refused.json()) == (422, {
            "status": "unprocessable_entity", "error_code": "validation_failed",
            "message": "Validation failed: " + "; ".join(problems), "errors": problems})


def test_a_partners_own_limit_over_a_longer_window_is_accepted_when_stricter() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], rate_limit=(3, 60)) as sb:
        mine = {"rate_limit": {"limit": 1, "per_seconds": 60}}  # one a minute: stricter than three a minute
        assert api(sb, "POST", "/_sandbox/faults", json=mine).status_code == 200
        assert api(sb, "GET", PATH).status_code == 200
        late = api(sb, "GET", PATH)
        assert (late.status_code, late.headers["Retry-After"]) == (429, "60")


def test_a_fault_fails_the_request_before_it_happens_and_an_after_fault_after() -> None:
    body = {"webhook_subscription": {"webhook_url": "https://example.com/hook", "version": 2,
                                     "events": ["message.sent"]}}
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        accepted = api(sb, "POST", "/_sandbox/faults", json={"fail_next": 1, "status": 503})
        assert (accepted.status_code, accepted.json()) == (200, {"ok": True})
        assert api(sb, "POST", PATH, json=body).status_code == 503
        assert api(sb, "GET", PATH).json()["webhook_subscriptions"] == []  # refused: nothing was created

        assert api(sb, "POST", "/_sandbox/faults", json={"fail_next": 1, "status": 503, "after": True}).ok
        assert api(sb, "POST", PATH, json=body).status_code == 503  # the create is lost on the way back...
        [sub] = api(sb, "GET", PATH).json()["webhook_subscriptions"]  # ...but it happened
        assert sub["webhook_url"] == "https://example.com/hook"


def test_an_events_body_is_dropped_once_its_last_delivery_is_done(tmp_path: Path, receiver: Receiver) -> None:
    state = tmp_path / "state.db"
    with Sandbox(tokens=[SENTINEL_TOKEN], state=state, retry_delays=[0.01]) as sb:
        subscribe(sb, receiver.url, ["message.sent"])
        receiver.fail_next(1, status=503)  # one retry, then delivered: the body is needed until then
        sb.emit("message.sent")
        assert sb.wait_for_deliveries(timeout=10)
        assert [d["ok"] for d in sb.deliveries()] == [False, True]
        with sqlite3.connect(state) as db:  # the state file, as the operator's disk holds it
            assert db.execute("SELECT COUNT(*) FROM events").fetchone() == (0,)


def test_a_webhook_url_without_a_path_is_delivered_to_slash_and_a_query_is_kept(
        sandbox: Sandbox, wire: tuple[str, list[dict[str, Any]]]) -> None:
    url, seen = wire
    subscribe(sandbox, url, ["message.sent"])  # http://127.0.0.1:PORT, no path at all
    subscribe(sandbox, url + "/hook?team=7&x=a%20b", ["message.sent"])
    sandbox.emit("message.sent")
    assert sandbox.wait_for_deliveries(timeout=10)
    assert sorted((s["path"], s["query"]) for s in seen) == [("/", ""), ("/hook", "team=7&x=a%20b")]


def _padded(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    body = b'{"fail_next": 0, "pad": ""}'
    return body[:-2] + b"x" * (size - len(body)) + b'"}'


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_a_413(chunked: bool) -> None:
    # Waitress counts a chunked body and passes its length on; a WSGI server that does not (werkzeug's,
    # serving the same app here) leaves the app to read one byte past the limit to tell.
    with Sandbox(tokens=[SENTINEL_TOKEN], max_body_bytes=300) as sb:
        server = ServerThread(sb.app, server="werkzeug").start() if chunked else None
        url = (server.url if server else sb.url) + "/_sandbox/faults"

        def post(body: bytes) -> requests.Response:
            data: Any = iter([body[:100], body[100:]]) if chunked else body
            return requests.post(url, data=data, timeout=10, headers={
                "X-LINQ-INTEGRATION-TOKEN": SENTINEL_TOKEN, "Content-Type": "application/json"})

        assert post(_padded(300)).status_code == 200
        over = post(_padded(301))
        expected = ("request body is over the 300-byte limit" if chunked
                    else "request body of 301 bytes is over the 300-byte limit")
        assert _refusal(over) == (413, expected)
        if server:
            server.stop()


def test_v3_says_1003_for_a_body_that_is_empty_not_utf8_or_not_json() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        for body in (b"", b"  ", b'{"target_url": "\xff"}', b"{bad", b"[" * 100_000):  # ...not JSON, too deep
            resp = _v3(sb, "POST", data=body)
            assert (resp.status_code, resp.json()["error"]["code"]) == (400, 1003), body


def test_v3_says_1003_for_a_lone_surrogate_escape() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        resp = _v3(sb, "POST", data=b'{"target_url": "https://example.com/\\ud800"}')
        assert (resp.status_code, resp.json()["error"]["code"]) == (400, 1003)
        assert "lone UTF-16 surrogate" in resp.json()["error"]["message"]
        assert sb.subscriptions(api="v3") == []


def test_due_jobs_skips_the_partners_asked_and_fills_the_limit() -> None:
    store = Store()
    body = {"webhook_url": "https://example.com/h", "events": ["message.sent"], "version": 2}
    for partner in ("a", "b", "c"):
        store.create(partner, body)
        for n in range(3):
            store.enqueue(partner, "message.sent", f"{partner}{n}", b"{}")
    now = time.time() + 1
    jobs, _ = store.due_jobs(now, [], 10, skip_partners=["a", "b"])
    assert sorted(j.event_id for j in jobs) == ["c0", "c1", "c2"]
    jobs, next_at = store.due_jobs(now, [], 3, skip_partners=["a"])
    assert len(jobs) == 3 and {j.partner for j in jobs} == {"b"}  # the limit, filled, oldest first
    store.close()


def test_due_jobs_says_when_the_next_is_due_and_a_job_is_due_at_that_instant() -> None:
    store = Store()
    store.create("p", {"webhook_url": "https://example.com/h", "events": ["message.sent"], "version": 2})
    store.enqueue("p", "message.sent", "e1", b"{}")
    jobs, at = store.due_jobs(0.0, [], 10)  # long before: nothing due, and when it will be
    assert jobs == [] and at is not None
    jobs, later = store.due_jobs(at, [], 10)  # at that very instant it is due, and nothing is later
    assert [j.event_id for j in jobs] == ["e1"] and later is None
    store.close()


def test_no_event_rate_means_no_limit_on_triggered_events() -> None:
    for rate, expected in (((2, 60.0), [202, 202, 429]), (None, [202, 202, 202])):
        with Sandbox(tokens=[SENTINEL_TOKEN], event_rate=rate) as sb:
            codes = [api(sb, "POST", "/_sandbox/events", json={"event_type": "message.sent"}).status_code
                     for _ in range(3)]
            assert codes == expected, rate


def test_an_unknown_path_says_where_its_versions_api_lives() -> None:
    from linq_nb.wire import v3

    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        for path, collection in (("/api/partner/v3/nope", v3.COLLECTION_PATH), ("/nope", PATH)):
            resp = requests.get(sb.url + path, headers=v3.auth_headers(SENTINEL_TOKEN), timeout=10)
            message = resp.json()["error"]["message"] if path.startswith("/api") else resp.json()["message"]
            assert (resp.status_code, message) == (404, f"no such endpoint: {path!r}; the API lives under {collection}")


def test_a_method_not_allowed_is_quoted_to_20_characters() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        resp = api(sb, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", PATH)  # any token is a method to HTTP; 26 letters
        assert _refusal(resp) == (405, f"ABCDEFGHIJKLMNOPQRST is not allowed on {PATH!r}; use GET, POST")
        assert resp.headers["Allow"] == "GET, POST"


def test_the_health_route_answers_200_ok_without_a_token() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        resp = requests.get(sb.url + "/_sandbox/health", timeout=10)
        assert (resp.status_code, resp.json()) == (200, {"ok": True})


@pytest.mark.parametrize("after", [False, True])
def test_one_partners_held_delays_do_not_use_up_anothers(after: bool) -> None:
    # max_delayed counts each partner's own requests held in an injected delay; partner A holding the most
    # allowed must leave partner B's delay to be served in full
    with Sandbox(tokens=[SENTINEL_TOKEN, OTHER_TOKEN]) as sb:
        sb.app.caps = Caps(max_delayed=1)
        sb.fail_next(1, status=None, delay=5, after=after, token=SENTINEL_TOKEN)
        held = threading.Thread(target=api, args=(sb, "GET", PATH))
        held.start()
        deadline = time.monotonic() + 10
        while sum(sb.app._delayed.values()) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sum(sb.app._delayed.values()) == 1  # A's request is held
        sb.fail_next(1, status=503, delay=0.5, after=after, token=OTHER_TOKEN)
        start = time.monotonic()
        assert api(sb, "GET", PATH, token=OTHER_TOKEN).status_code == 503
        assert time.monotonic() - start >= 0.5  # B's delay was served, not skipped as if B held A's slot
        held.join(timeout=15)


def test_v3_routes_are_rate_limited_and_fault_after_in_v3s_error_shape() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], rate_limit=(1, 60)) as sb:
        assert _v3(sb, "GET").status_code == 200
        limited = _v3(sb, "GET")
        assert (limited.status_code, limited.json()["error"]["code"], limited.headers["Retry-After"]) == (
            429, 1007, "60")
    with Sandbox(tokens=[SENTINEL_TOKEN]) as sb:
        sb.fail_next(1, status=503, after=True)
        lost = _v3(sb, "POST", json={"target_url": "https://example.com/h", "subscribed_events": ["message.sent"]})
        assert (lost.status_code, lost.json()["error"]["code"]) == (503, 4004)
        assert [s["target_url"] for s in sb.subscriptions(api="v3")] == ["https://example.com/h"]  # it happened
