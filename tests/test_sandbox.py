"""The sandbox over real HTTP, on the wire: status codes, shapes, isolation, faults, state untouched on errors."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import requests

from linq_nb.events import EVENT_TYPES
from linq_nb.sandbox import Sandbox
from tests.conftest import SENTINEL_TOKEN

PATH = "/api/partner/v2/webhook_subscriptions"
GOOD = {"webhook_url": "https://example.com/hook", "version": 2, "events": ["message.sent"], "secret": "s",
        "active": True}


def call(sandbox: Sandbox, method: str, path: str = PATH, *, token: str | None = SENTINEL_TOKEN,
         **kwargs: Any) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["X-LINQ-INTEGRATION-TOKEN"] = token
    return requests.request(method, sandbox.url + path, headers=headers, timeout=10, **kwargs)


def create(sandbox: Sandbox, token: str = SENTINEL_TOKEN, **fields: Any) -> dict[str, Any]:
    resp = call(sandbox, "POST", json={"webhook_subscription": {**GOOD, **fields}}, token=token)
    assert resp.status_code == 201, resp.text
    return resp.json()["webhook_subscription"]


def test_crud_round_trip_follows_the_documented_shapes(sandbox: Sandbox) -> None:
    sub = create(sandbox)
    assert set(sub) == {"id", "webhook_url", "version", "events", "active", "secret_configured",
                        "last_delivered_at", "delivery_attempts", "created_at", "updated_at"}
    assert sub["secret_configured"] is True and "secret" not in json.dumps(sub).replace("secret_configured", "")
    assert sub["delivery_attempts"] == 0 and sub["last_delivered_at"] is None
    assert sub["created_at"].endswith("Z")

    listed = call(sandbox, "GET").json()
    assert listed == {"webhook_subscriptions": [sub]}
    assert call(sandbox, "GET", f"{PATH}/{sub['id']}").json() == {"webhook_subscription": sub}

    body = {**GOOD, "events": ["call.completed"], "active": False}
    del body["secret"]  # a missing secret keeps the stored one
    updated = call(sandbox, "PUT", f"{PATH}/{sub['id']}", json={"webhook_subscription": body})
    assert updated.status_code == 200
    new = updated.json()["webhook_subscription"]
    assert new["events"] == ["call.completed"] and new["active"] is False and new["secret_configured"] is True

    cleared = call(sandbox, "PUT", f"{PATH}/{sub['id']}", json={"webhook_subscription": {**body, "secret": None}})
    assert cleared.json()["webhook_subscription"]["secret_configured"] is False

    gone = call(sandbox, "DELETE", f"{PATH}/{sub['id']}")
    assert gone.status_code == 204 and gone.content == b""
    assert call(sandbox, "GET", f"{PATH}/{sub['id']}").status_code == 404


def test_active_defaults_to_true_and_duplicates_are_allowed_on_the_wire(sandbox: Sandbox) -> None:
    body = {k: v for k, v in GOOD.items() if k not in ("active", "secret")}
    a = call(sandbox, "POST", json={"webhook_subscription": body}).json()["webhook_subscription"]
    b = call(sandbox, "POST", json={"webhook_subscription": body}).json()["webhook_subscription"]
    assert a["active"] is True and a["secret_configured"] is False
    assert a["id"] != b["id"] and len(sandbox.subscriptions()) == 2


BAD_CREATES: list[tuple[str, dict[str, Any], int, str]] = [
    ("not json", {"data": b"{nope"}, 400, "not valid JSON"),
    ("empty body", {"data": b""}, 400, "empty"),
    ("json array", {"json": [1, 2]}, 400, "webhook_subscription"),
    ("missing wrapper", {"json": GOOD}, 400, "webhook_subscription"),
    ("wrapper not object", {"json": {"webhook_subscription": "x"}}, 400, "webhook_subscription"),
    ("missing url", {"json": {"webhook_subscription": {k: v for k, v in GOOD.items() if k != "webhook_url"}}}, 422,
     "webhook_url is required"),
    ("url wrong type", {"json": {"webhook_subscription": {**GOOD, "webhook_url": 5}}}, 422, "webhook_url must be"),
    ("relative url", {"json": {"webhook_subscription": {**GOOD, "webhook_url": "/hook"}}}, 422, "absolute"),
    ("ftp url", {"json": {"webhook_subscription": {**GOOD, "webhook_url": "ftp://x.com/h"}}}, 422, "http"),
    ("plain http remote", {"json": {"webhook_subscription": {**GOOD, "webhook_url": "http://x.com/h"}}}, 422,
     "https"),
    ("events missing", {"json": {"webhook_subscription": {k: v for k, v in GOOD.items() if k != "events"}}}, 422,
     "events is required"),
    ("events not list", {"json": {"webhook_subscription": {**GOOD, "events": "message.sent"}}}, 422, "array"),
    ("events empty", {"json": {"webhook_subscription": {**GOOD, "events": []}}}, 422, "at least one"),
    ("unknown event", {"json": {"webhook_subscription": {**GOOD, "events": ["message.snt"]}}}, 422,
     "message.snt"),
    ("version 3", {"json": {"webhook_subscription": {**GOOD, "version": 3}}}, 422, "version must be 2"),
    ("version string", {"json": {"webhook_subscription": {**GOOD, "version": "2"}}}, 422, "integer"),
    ("version bool", {"json": {"webhook_subscription": {**GOOD, "version": True}}}, 422, "integer"),
    ("active string", {"json": {"webhook_subscription": {**GOOD, "active": "yes"}}}, 422, "boolean"),
    ("secret number", {"json": {"webhook_subscription": {**GOOD, "secret": 12}}}, 422, "secret must be"),
]


@pytest.mark.parametrize(("case", "kwargs", "status", "phrase"), BAD_CREATES, ids=[c[0] for c in BAD_CREATES])
def test_bad_creates_get_a_clear_4xx_and_change_nothing(sandbox: Sandbox, case: str, kwargs: dict[str, Any],
                                                       status: int, phrase: str) -> None:
    existing = create(sandbox)
    before = sandbox.subscriptions()
    for method, path in (("POST", PATH), ("PUT", f"{PATH}/{existing['id']}")):
        resp = call(sandbox, method, path, **kwargs)
        assert resp.status_code == status, (method, resp.text)
        body = resp.json()
        assert set(body) == {"status", "error_code", "message", "errors"}
        assert any(phrase in e for e in body["errors"]), body
        assert sandbox.subscriptions() == before


def test_several_problems_are_reported_one_sentence_each(sandbox: Sandbox) -> None:
    resp = call(sandbox, "POST", json={"webhook_subscription": {**GOOD, "webhook_url": "nope", "events": ["x"],
                                                                 "version": 1}})
    assert resp.status_code == 422
    errors = resp.json()["errors"]
    assert len(errors) == 3 and resp.json()["error_code"] == "validation_failed"
    assert any("valid events: " + ", ".join(EVENT_TYPES) in e for e in errors)


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", f"{PATH}/abc", 404), ("PUT", f"{PATH}/1.5", 404), ("DELETE", f"{PATH}/-1", 404),
    ("GET", f"{PATH}/999", 404), ("DELETE", f"{PATH}/999", 404), ("PATCH", f"{PATH}/1", 405),
    ("DELETE", PATH, 405), ("GET", "/api/partner/v2/nothing", 404), ("POST", "/_sandbox/deliveries", 405),
])
def test_bad_paths_and_methods(sandbox: Sandbox, method: str, path: str, status: int) -> None:
    create(sandbox)
    before = sandbox.subscriptions()
    resp = call(sandbox, method, path, json={"webhook_subscription": GOOD})
    assert resp.status_code == status
    assert resp.json()["message"]
    if status == 405:
        assert resp.headers["Allow"]
    assert sandbox.subscriptions() == before


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_missing_or_wrong_token_is_401_in_the_error_shape(sandbox: Sandbox, token: str | None) -> None:
    for method in ("GET", "POST"):
        resp = call(sandbox, method, token=token, json={"webhook_subscription": GOOD})
        assert resp.status_code == 401
        (err,) = resp.json()["errors"]
        assert err["status"] == 401 and err["code"] == "unauthorized" and "X-LINQ-INTEGRATION-TOKEN" in err["detail"]
    assert sandbox.subscriptions() == []
    assert SENTINEL_TOKEN not in resp.text


def test_oversized_body_is_413_and_changes_nothing() -> None:
    with Sandbox(tokens=["t"], max_body_bytes=1000) as sb:
        big = {"webhook_subscription": {**GOOD, "webhook_url": "https://example.com/" + "a" * 2000}}
        resp = call(sb, "POST", token="t", json=big)
        assert resp.status_code == 413 and "limit" in resp.json()["message"]
        assert sb.subscriptions(token="t") == []


def test_partners_are_isolated_and_never_told_an_id_exists() -> None:
    with Sandbox(tokens=["alice", "bob"]) as sb:
        a = create(sb, token="alice")
        assert call(sb, "GET", token="bob").json() == {"webhook_subscriptions": []}
        for method in ("GET", "PUT", "DELETE"):
            resp = call(sb, method, f"{PATH}/{a['id']}", token="bob", json={"webhook_subscription": GOOD})
            assert resp.status_code == 404
        assert sb.subscriptions(token="alice") == [a]


def test_rate_limit_answers_429_with_retry_after(sandbox: Sandbox) -> None:
    sandbox.set_rate_limit(2, 60)
    assert [call(sandbox, "GET").status_code for _ in range(3)] == [200, 200, 429]
    resp = call(sandbox, "POST", json={"webhook_subscription": GOOD})
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert resp.json()["status"] == "too_many_requests"
    assert sandbox.subscriptions() == []
    sandbox.set_rate_limit(None)
    assert call(sandbox, "GET").status_code == 200


def test_rate_limit_over_http_is_per_partner() -> None:
    with Sandbox(tokens=["alice", "bob"]) as sb:
        assert call(sb, "POST", "/_sandbox/faults", token="alice",
                    json={"rate_limit": {"limit": 1, "per_seconds": 60}}).status_code == 200
        assert [call(sb, "GET", token="alice").status_code for _ in range(2)] == [200, 429]
        assert call(sb, "GET", token="bob").status_code == 200
        call(sb, "POST", "/_sandbox/faults", token="alice", json={"rate_limit": None})
        assert call(sb, "GET", token="alice").status_code == 200


def test_injected_faults_fail_then_recover_without_touching_state(sandbox: Sandbox) -> None:
    sandbox.fail_next(2, status=503)
    assert call(sandbox, "POST", json={"webhook_subscription": GOOD}).status_code == 503
    assert call(sandbox, "GET").status_code == 503
    assert sandbox.subscriptions() == []
    assert call(sandbox, "GET").status_code == 200


def test_fault_after_processing_loses_only_the_answer(sandbox: Sandbox) -> None:
    sandbox.fail_next(1, status=502, after=True)
    assert call(sandbox, "POST", json={"webhook_subscription": GOOD}).status_code == 502
    assert len(sandbox.subscriptions()) == 1


def test_faults_route_validates_its_body(sandbox: Sandbox) -> None:
    resp = call(sandbox, "POST", "/_sandbox/faults", json={"fail_next": -1, "status": 200, "delay": 99})
    assert resp.status_code == 422 and len(resp.json()["errors"]) == 3
    assert call(sandbox, "POST", "/_sandbox/faults", json={"fail_next": 1, "status": 500}).status_code == 200
    assert call(sandbox, "GET").status_code == 500


def test_events_route_validates_and_answers_202(sandbox: Sandbox) -> None:
    bad = call(sandbox, "POST", "/_sandbox/events", json={"event_type": "message.snt"})
    assert bad.status_code == 422 and "message.sent" in bad.json()["message"]
    assert call(sandbox, "POST", "/_sandbox/events", json={"event_type": "message.sent", "data": 3}).status_code == 422
    ok = call(sandbox, "POST", "/_sandbox/events", json={"event_type": "message.sent"})
    assert ok.status_code == 202 and ok.json()["deliveries_queued"] == 0 and len(ok.json()["event_id"]) == 36
    assert call(sandbox, "POST", "/_sandbox/events", token=None, json={"event_type": "message.sent"}).status_code == 401


def test_health_needs_no_token(sandbox: Sandbox) -> None:
    assert call(sandbox, "GET", "/_sandbox/health", token=None).json() == {"ok": True}


def test_concurrent_creates_all_land_with_distinct_ids(sandbox: Sandbox) -> None:
    results: list[int] = []

    def worker() -> None:
        for _ in range(10):
            results.append(create(sandbox)["id"])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 80 and len(sandbox.subscriptions()) == 80


def test_state_file_survives_a_restart_and_never_holds_the_token(tmp_path: Any) -> None:
    state = tmp_path / "state.sqlite"
    with Sandbox(tokens=[SENTINEL_TOKEN], state=state) as sb:
        sub = create(sb)
    with Sandbox(tokens=[SENTINEL_TOKEN], state=state) as sb:
        assert sb.subscriptions() == [sub]
        assert create(sb)["id"] == sub["id"] + 1
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"message.sent" in stored and SENTINEL_TOKEN.encode() not in stored


def test_wsgi_entry_point_builds_the_sandbox_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Any) -> None:
    from linq_nb._server import ServerThread
    from linq_nb.sandbox import wsgi

    monkeypatch.delenv("LINQ_SANDBOX_TOKENS", raising=False)
    with pytest.raises(RuntimeError, match="LINQ_SANDBOX_TOKENS"):
        wsgi.create_app()
    (tmp_path / "tokens").write_text("carol\n")
    monkeypatch.setenv("LINQ_SANDBOX_TOKENS", "alice, bob")
    monkeypatch.setenv("LINQ_SANDBOX_TOKENS_FILE", str(tmp_path / "tokens"))
    monkeypatch.setenv("LINQ_SANDBOX_RETRY_DELAYS", "0.1,0.2")
    sb = wsgi.create_app()
    server = ServerThread(sb.app).start()  # any WSGI server will do; this one is at hand
    try:
        assert sb.tokens == ["alice", "bob", "carol"] and sb.deliverer.retry_delays == (0.1, 0.2)
        assert sb.shared and sb.relay.running  # served for others: relay sessions, no direct deliveries
        resp = requests.get(server.url + PATH, headers={"X-LINQ-INTEGRATION-TOKEN": "carol"}, timeout=10)
        assert resp.json() == {"webhook_subscriptions": []}
    finally:
        server.stop()
        sb.close()


def test_an_injected_status_without_a_standard_name_is_still_answered(sandbox: Sandbox) -> None:
    sandbox.fail_next(1, status=599)
    resp = call(sandbox, "GET")
    assert resp.status_code == 599 and resp.json()["message"].startswith("injected fault")
