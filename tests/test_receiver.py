"""linq_nb.Receiver over real HTTP: what it accepts, what it refuses and why, and that it never falls over.

Requests are signed with the project's own signer (linq_nb.signing) and sent with
``requests`` to a receiver started on a free port. No timed assertions: waits poll
with a deadline, and the delay test reads the receiver's own record.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from linq_nb.events import make_envelope, sample_data
from linq_nb.receiver import REQUEST_FIELDS, Receiver, main
from linq_nb.signing import canonical_json, sign
from tests.conftest import RECEIVER_SECRET, SENTINEL_SECRET

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 10


def envelope(event_type: str = "message.received", **overrides: Any) -> dict[str, Any]:
    return make_envelope(event_type, sample_data(event_type, overrides))


def post(receiver: Receiver, env: dict[str, Any] | None = None, *, secret: str | None = RECEIVER_SECRET,
         body: bytes | None = None, headers: dict[str, str] | None = None) -> requests.Response:
    """POST ``env`` (canonical JSON) or raw ``body``, signed with ``secret`` when one is given."""
    if body is None:
        body = canonical_json(env if env is not None else envelope())
    sent = {"Content-Type": "application/json", "X-Webhook-Subscription-ID": "42"}
    if secret is not None:
        sent["X-Webhook-Signature"] = sign(body, secret)
    sent.update(headers or {})
    return requests.post(receiver.url, data=body, headers=sent, timeout=TIMEOUT)


def last(receiver: Receiver) -> dict[str, Any]:
    return receiver.requests[-1]


# --- accepted deliveries -------------------------------------------------------------------------------------------

def test_valid_signed_delivery_is_accepted_and_recorded(receiver: Receiver) -> None:
    env = envelope("contact.created", first_name="Grace")
    before = datetime.now(timezone.utc)
    resp = post(receiver, env, headers={"X-Webhook-Event": "contact.created"})
    assert resp.status_code == 200
    assert resp.json() == {"ok": True}
    assert receiver.events == [env]
    (rec,) = receiver.requests
    assert set(rec) == set(REQUEST_FIELDS)
    assert rec["event_id"] == env["event_id"]
    assert rec["event_type"] == "contact.created"
    assert rec["subscription_id"] == 42
    assert rec["verified"] is True
    assert rec["reason"] is None
    assert rec["status"] == 200
    assert rec["duplicate"] is False
    assert rec["method"] == "POST" and rec["path"] == "/webhooks"
    assert rec["received_at"].tzinfo is not None and rec["received_at"].utcoffset().total_seconds() == 0
    assert rec["received_at"] >= before
    assert rec["duration_ms"] >= 0


def test_url_includes_path_and_port(receiver: Receiver) -> None:
    assert receiver.url == f"http://127.0.0.1:{receiver.port}/webhooks"
    assert receiver.base_url + "/webhooks" == receiver.url
    assert receiver.running


def test_trailing_slash_is_the_same_endpoint(receiver: Receiver) -> None:
    body = canonical_json(envelope())
    resp = requests.post(receiver.url + "/", data=body, headers={"X-Webhook-Signature": sign(body, RECEIVER_SECRET)},
                         timeout=TIMEOUT)
    assert resp.status_code == 200
    assert len(receiver.events) == 1


def test_custom_path() -> None:
    with Receiver(path="hooks/linq/") as r:
        assert r.url.endswith("/hooks/linq")
        assert requests.post(r.url, json={"event_id": "e1"}, timeout=TIMEOUT).status_code == 200
        assert requests.post(r.base_url + "/webhooks", json={"event_id": "e2"}, timeout=TIMEOUT).status_code == 404


def test_without_secrets_requests_are_accepted_unverified() -> None:
    with Receiver() as r:
        env = envelope()
        assert post(r, env, secret=None).status_code == 200
        assert post(r, envelope(), secret="anything").status_code == 200  # a signature it cannot check
        assert [x["verified"] for x in r.requests] == [None, None]
        assert len(r.events) == 2
        assert "not verifying" in repr(r)


def test_subscription_id_header_parsing(receiver: Receiver) -> None:
    post(receiver, headers={"X-Webhook-Subscription-ID": "17 "})
    post(receiver, headers={"X-Webhook-Subscription-ID": "sub_abc"})
    post(receiver, headers={"X-Webhook-Subscription-ID": ""})
    assert [r["subscription_id"] for r in receiver.requests] == [17, "sub_abc", None]


def test_event_type_falls_back_to_header(receiver: Receiver) -> None:
    env = envelope()
    del env["event_type"]
    assert post(receiver, env, headers={"X-Webhook-Event": "message.read"}).status_code == 200
    assert last(receiver)["event_type"] == "message.read"


def test_envelope_without_event_id_is_accepted_each_time(receiver: Receiver) -> None:
    env = envelope()
    del env["event_id"]
    assert post(receiver, env).status_code == 200
    assert post(receiver, env).status_code == 200
    assert len(receiver.events) == 2
    assert [r["duplicate"] for r in receiver.requests] == [False, False]


# --- duplicates ----------------------------------------------------------------------------------------------------

def test_repeated_event_id_is_flagged_and_not_added_again(receiver: Receiver) -> None:
    env = envelope()
    first = post(receiver, env)
    second = post(receiver, env)
    third = post(receiver, dict(env, data={"changed": True}))  # same event_id, other body: still the same event
    assert [x.status_code for x in (first, second, third)] == [200, 200, 200]
    assert second.json() == {"ok": True, "duplicate": True}
    assert receiver.events == [env]  # the first copy only
    assert [r["duplicate"] for r in receiver.requests] == [False, True, True]
    assert receiver.counts() == {"requests": 3, "events": 1, "duplicates": 2, "rejected": 0}


def test_clear_forgets_records_and_seen_ids(receiver: Receiver) -> None:
    env = envelope()
    post(receiver, env)
    receiver.clear()
    assert receiver.requests == [] and receiver.events == []
    post(receiver, env)
    assert receiver.events == [env]
    assert last(receiver)["duplicate"] is False


def test_events_and_requests_are_copies(receiver: Receiver) -> None:
    post(receiver)
    receiver.events[0]["data"]["text"] = "mutated"
    receiver.requests[0]["status"] = 999
    assert receiver.events[0]["data"]["text"] != "mutated"
    assert receiver.requests[0]["status"] == 200


# --- fail_next and delay -------------------------------------------------------------------------------------------

def test_fail_next_answers_status_then_recovers(receiver: Receiver) -> None:
    receiver.fail_next(2, status=503)
    env = envelope()
    statuses = [post(receiver, env).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert receiver.events == [env]
    failed = receiver.requests[:2]
    assert all(r["status"] == 503 and "fail_next" in r["reason"] for r in failed)
    assert all(r["verified"] is True and r["duplicate"] is False for r in failed)
    assert last(receiver)["duplicate"] is False  # failed copies were never accepted
    assert receiver.counts()["rejected"] == 2


def test_fail_next_is_not_used_up_by_bad_requests(receiver: Receiver) -> None:
    receiver.fail_next(1, status=500)
    assert post(receiver, secret="wrong").status_code == 401
    assert post(receiver).status_code == 500
    assert post(receiver).status_code == 200


def test_fail_next_zero_cancels(receiver: Receiver) -> None:
    receiver.fail_next(5)
    receiver.fail_next(0)
    assert post(receiver).status_code == 200


@pytest.mark.parametrize("args", [(-1,), (1.5,), (1, 99), (1, 600), (True,)])
def test_fail_next_rejects_bad_arguments(receiver: Receiver, args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError):
        receiver.fail_next(*args)


def test_delay_answers_slowly_and_says_so_in_the_record(receiver: Receiver) -> None:
    receiver.delay(0.3)
    assert post(receiver).status_code == 200
    assert last(receiver)["duration_ms"] >= 300
    receiver.delay(0)
    assert post(receiver).status_code == 200
    assert len(receiver.events) == 2


@pytest.mark.parametrize("seconds", [-1, float("nan"), "1"])
def test_delay_rejects_bad_arguments(receiver: Receiver, seconds: Any) -> None:
    with pytest.raises(ValueError):
        receiver.delay(seconds)


def test_stop_cuts_a_slow_answer_short() -> None:
    r = Receiver().start()
    r.delay(60)
    errors: list[BaseException] = []

    def slow_post() -> None:
        try:
            requests.post(r.url, json={"event_id": "slow"}, timeout=30)
        except requests.RequestException as exc:
            errors.append(exc)

    t = threading.Thread(target=slow_post)
    t.start()
    deadline = time.monotonic() + TIMEOUT
    while r._in_flight == 0 and time.monotonic() < deadline:  # until the request is in and sleeping
        time.sleep(0.01)
    assert r._in_flight == 1
    r.stop()
    t.join(timeout=TIMEOUT)  # far less than the 60 s delay
    assert not t.is_alive()
    assert not r.running
    assert errors == []
    assert r.requests[0]["status"] == 200


# --- bad requests --------------------------------------------------------------------------------------------------

def test_bad_requests_are_recorded_with_reason_and_4xx(receiver: Receiver) -> None:
    env = envelope()
    good = canonical_json(env)
    cases: list[tuple[str, int, str, Any]] = [
        ("no signature", 401, "missing X-Webhook-Signature", lambda: post(receiver, env, secret=None)),
        ("wrong secret", 401, "signature mismatch", lambda: post(receiver, env, secret="whsec_wrong")),
        ("malformed signature", 401, "malformed", lambda: post(receiver, env, secret=None,
                                                                headers={"X-Webhook-Signature": "sha256=nothex"})),
        ("altered body", 401, "signature mismatch", lambda: post(
            receiver, body=good.replace(b"Hello", b"Jello"),
            headers={"X-Webhook-Signature": sign(good, RECEIVER_SECRET)}, secret=None)),
        ("re-serialised", 401, "re-serialised", lambda: post(
            receiver, body=json.dumps(env).encode(),
            headers={"X-Webhook-Signature": sign(good, RECEIVER_SECRET)}, secret=None)),
        ("not JSON", 400, "not JSON", lambda: post(receiver, body=b"event=1&x=2")),
        ("not UTF-8", 400, "not JSON", lambda: post(receiver, body=b"\xff\xfe\x00garbage")),
        ("JSON array", 400, "not an object", lambda: post(receiver, body=b"[1, 2, 3]")),
        ("empty body", 400, "not JSON", lambda: post(receiver, body=b"")),
        ("deeply nested", 400, "not JSON", lambda: post(receiver, body=b"[" * 100_000)),
        ("deeply nested, wrong signature", 401, "signature mismatch",
         lambda: post(receiver, body=b"[" * 100_000, secret="whsec_wrong")),
        ("GET", 405, "method GET", lambda: requests.get(receiver.url, timeout=TIMEOUT)),
        ("PUT", 405, "method PUT", lambda: requests.put(receiver.url, data=good, timeout=TIMEOUT)),
        ("other path", 404, "no webhook endpoint", lambda: requests.post(
            receiver.base_url + "/elsewhere", data=good, timeout=TIMEOUT)),
    ]
    for name, status, reason, send in cases:
        resp = send()
        assert resp.status_code == status, name
        assert resp.json()["ok"] is False, name
        rec = last(receiver)
        assert rec["status"] == status, name
        assert rec["reason"] and reason in rec["reason"], (name, rec["reason"])
        assert rec["duplicate"] is False, name
        assert resp.json()["error"] == rec["reason"], name
    assert receiver.events == []
    assert len(receiver.requests) == len(cases)
    assert receiver.counts()["rejected"] == len(cases)
    # it still works after all that
    assert post(receiver, env).status_code == 200
    assert receiver.events == [env]


def test_signature_failures_record_what_they_can(receiver: Receiver) -> None:
    env = envelope("call.completed")
    post(receiver, env, secret="whsec_wrong")
    rec = last(receiver)
    assert rec["verified"] is False
    assert rec["event_id"] == env["event_id"] and rec["event_type"] == "call.completed"
    assert rec["subscription_id"] == 42


def test_signed_but_not_json_is_400_and_verified(receiver: Receiver) -> None:
    assert post(receiver, body=b"plain text, correctly signed").status_code == 400
    assert last(receiver)["verified"] is True


def test_wrong_method_says_allow_post(receiver: Receiver) -> None:
    resp = requests.delete(receiver.url, timeout=TIMEOUT)
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "POST"
    assert last(receiver)["verified"] is None


def test_body_over_limit_is_413() -> None:
    with Receiver(secrets=RECEIVER_SECRET, max_body_bytes=1000) as r:
        big = canonical_json(envelope(text="x" * 2000))
        resp = post(r, body=big)
        assert resp.status_code == 413
        rec = last(r)
        assert rec["status"] == 413 and "over the limit of 1000 bytes" in rec["reason"]
        assert rec["verified"] is None  # refused before its signature was read
        small = envelope()
        assert len(canonical_json(small)) <= 1000
        assert post(r, small).status_code == 200


def test_body_exactly_at_limit_is_read() -> None:
    body = canonical_json({"event_id": "e", "pad": ""})
    body = canonical_json({"event_id": "e", "pad": "x" * (200 - len(body))})
    assert len(body) == 200
    with Receiver(max_body_bytes=200) as r:
        assert post(r, body=body, secret=None).status_code == 200
        assert post(r, body=body[:-1] + b' }', secret=None).status_code == 413


def test_chunked_body_over_limit_is_413_without_content_length() -> None:
    with Receiver(max_body_bytes=1000) as r:
        def chunks() -> Iterator[bytes]:
            for _ in range(50):
                yield b"x" * 1000

        resp = requests.post(r.url, data=chunks(), timeout=TIMEOUT)  # Transfer-Encoding: chunked
        assert resp.status_code == 413
        assert last(r)["reason"] == "body is over the limit of 1000 bytes"
        assert requests.post(r.url, data=iter([b'{"event_id":', b' "c1"}']), timeout=TIMEOUT).status_code == 200
        assert r.events == [{"event_id": "c1"}]


def test_content_length_is_checked_before_reading() -> None:
    """A declared huge body is refused at once: the receiver never waits for bytes that are not coming."""
    with Receiver(max_body_bytes=1000) as r:
        conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=5)
        try:
            conn.putrequest("POST", "/webhooks")
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(10**9))
            conn.endheaders()
            conn.send(b'{"event_id": "x"')  # and then nothing more
            resp = conn.getresponse()
            assert resp.status == 413
            assert json.loads(resp.read())["error"] == "body of 1000000000 bytes is over the limit of 1000 bytes"
        finally:
            conn.close()


def test_invalid_content_length_is_a_bad_request_not_a_crash(receiver: Receiver) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    try:
        conn.putrequest("POST", "/webhooks")
        conn.putheader("Content-Length", "lots")
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status in (400, 401)
        resp.read()
    finally:
        conn.close()
    assert post(receiver).status_code == 200


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
def test_max_body_bytes_must_be_positive_int(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_body_bytes"):
        Receiver(max_body_bytes=bad)


# --- secrets and rotation ------------------------------------------------------------------------------------------

def test_rotation_add_then_remove() -> None:
    with Receiver(secrets="whsec_old") as r:
        assert post(r, secret="whsec_old").status_code == 200
        assert post(r, secret="whsec_new").status_code == 401
        r.add_secret("whsec_new")
        assert r.secret_count == 2
        assert post(r, secret="whsec_old").status_code == 200
        assert post(r, secret="whsec_new").status_code == 200
        r.remove_secret("whsec_old")
        assert post(r, secret="whsec_old").status_code == 401
        assert post(r, secret="whsec_new").status_code == 200
        assert len(r.events) == 4


def test_several_secrets_at_construction_and_bytes_secrets() -> None:
    with Receiver(secrets=["a_secret", b"b_secret", "a_secret"]) as r:
        assert r.secret_count == 2  # the repeated one is kept once
        assert post(r, secret="a_secret").status_code == 200
        assert post(r, secret="b_secret").status_code == 200


def test_removing_the_last_secret_turns_verification_off() -> None:
    with Receiver(secrets="only") as r:
        r.remove_secret("only")
        assert post(r, secret=None).status_code == 200
        assert last(r)["verified"] is None


def test_secret_argument_errors_never_show_the_secret() -> None:
    r = Receiver(secrets=SENTINEL_SECRET)
    with pytest.raises(ValueError) as info:
        r.remove_secret(SENTINEL_SECRET + "_other")
    assert SENTINEL_SECRET not in str(info.value)
    with pytest.raises(ValueError, match="empty"):
        r.add_secret("")
    with pytest.raises(TypeError):
        r.add_secret(123)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Receiver(secrets=[SENTINEL_SECRET, None])  # type: ignore[list-item]


def test_secret_appears_nowhere() -> None:
    with Receiver(secrets=SENTINEL_SECRET) as r:
        r.add_secret(SENTINEL_SECRET + "_2")
        post(r, secret=SENTINEL_SECRET)
        post(r, secret="wrong")
        post(r, secret=None)
        post(r, body=b"not json", secret=SENTINEL_SECRET)
        r.fail_next(1)
        resp = post(r, secret=SENTINEL_SECRET)
        outputs = [repr(r), str(r), r._repr_html_(), repr(r.requests), repr(r.events), repr(r.counts()),
                   r.frame().to_string(), r.frame().to_html(), resp.text, repr(vars(r).keys())]
        for text in outputs:
            assert SENTINEL_SECRET not in text
        assert "secret" in repr(r)  # it says how many, not which


# --- concurrency and waiting ---------------------------------------------------------------------------------------

def test_twenty_parallel_posts_are_all_recorded(receiver: Receiver) -> None:
    envs = [envelope() for _ in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda e: post(receiver, e).status_code, envs))
    assert statuses == [200] * 20
    assert len(receiver.requests) == 20
    assert sorted(e["event_id"] for e in receiver.events) == sorted(e["event_id"] for e in envs)


def test_parallel_copies_of_one_event_are_accepted_once(receiver: Receiver) -> None:
    env = envelope()
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda _: post(receiver, env).status_code, range(12)))
    assert statuses == [200] * 12
    assert receiver.events == [env]
    assert sum(r["duplicate"] for r in receiver.requests) == 11


def test_parallel_fail_next_fails_exactly_n(receiver: Receiver) -> None:
    receiver.fail_next(5, status=502)
    with ThreadPoolExecutor(max_workers=15) as pool:
        statuses = list(pool.map(lambda _: post(receiver).status_code, range(15)))
    assert sorted(statuses) == [200] * 10 + [502] * 5
    assert len(receiver.events) == 10


def test_wait_for_events_and_requests(receiver: Receiver) -> None:
    assert receiver.wait_for_events(1, timeout=0.05) is False
    assert receiver.wait_for_requests(1, timeout=0) is False
    assert receiver.wait_for_events(0, timeout=0) is True

    def later() -> None:
        post(receiver, secret="wrong")
        post(receiver)
        post(receiver)

    t = threading.Thread(target=later)
    t.start()
    try:
        assert receiver.wait_for_requests(3, timeout=TIMEOUT)
        assert receiver.wait_for_events(2, timeout=TIMEOUT)
        assert receiver.wait_for_events(3, timeout=0.05) is False
    finally:
        t.join()


def test_wait_returns_true_from_another_thread_as_soon_as_it_happens(receiver: Receiver) -> None:
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(receiver.wait_for_events(1, timeout=None)))
    waiter.start()
    post(receiver)
    waiter.join(timeout=TIMEOUT)
    assert result == [True]


# --- frame and display ---------------------------------------------------------------------------------------------

EXPECTED_DTYPES = {
    "received_at": "datetime64[ns, UTC]",
    "event_id": "object",
    "event_type": "object",
    "subscription_id": "Int64",
    "verified": "boolean",
    "reason": "object",
    "status": "Int64",
    "duplicate": "bool",
    "method": "object",
    "path": "object",
    "duration_ms": "float64",
}


def test_frame_columns_and_dtypes(receiver: Receiver) -> None:
    env = envelope()
    post(receiver, env)
    post(receiver, env)
    post(receiver, secret="wrong")
    requests.get(receiver.url, timeout=TIMEOUT)
    df = receiver.frame()
    assert list(df.columns) == list(REQUEST_FIELDS)
    assert {c: str(t) for c, t in df.dtypes.items()} == EXPECTED_DTYPES
    assert len(df) == 4
    assert df["status"].tolist() == [200, 200, 401, 405]
    assert df["duplicate"].tolist() == [False, True, False, False]
    assert df["verified"].tolist()[:3] == [True, True, False]
    assert df["verified"].isna().tolist() == [False, False, False, True]
    assert df["subscription_id"].tolist()[:3] == [42, 42, 42]
    assert df["received_at"].is_monotonic_increasing


def test_empty_frame_has_same_columns_and_dtypes() -> None:
    with Receiver() as r:
        df = r.frame()
    assert df.empty
    assert {c: str(t) for c, t in df.dtypes.items()} == EXPECTED_DTYPES


def test_frame_with_non_integer_subscription_ids(receiver: Receiver) -> None:
    post(receiver, headers={"X-Webhook-Subscription-ID": "sub_x"})
    post(receiver, headers={"X-Webhook-Subscription-ID": "5"})
    df = receiver.frame()
    assert df["subscription_id"].tolist() == ["sub_x", 5]


def test_repr_and_html_show_url_and_counts(receiver: Receiver) -> None:
    env = envelope()
    post(receiver, env)
    post(receiver, env)
    post(receiver, secret="wrong")
    text = repr(receiver)
    assert receiver.url in text and "running" in text
    assert "3 requests" in text and "1 event," in text and "1 duplicate," in text and "1 rejected" in text
    html = receiver._repr_html_()
    assert receiver.url in html
    for fragment in ("<b>3</b> requests", "<b>1</b> events", "<b>1</b> duplicates", "<b>1</b> rejected"):
        assert fragment in html
    assert "signature mismatch" in html and env["event_id"] in html
    receiver.fail_next(2, 503)
    receiver.delay(0.5)
    html = receiver._repr_html_()
    assert "next 2 deliveries with HTTP 503" in html and "0.5 s" in html
    receiver.delay(0)


def test_repr_before_start_and_after_stop() -> None:
    r = Receiver()
    assert "not started" in repr(r) and "stopped" in repr(r)
    assert "not started" in r._repr_html_()
    with pytest.raises(RuntimeError, match="start"):
        _ = r.url
    r.start()
    url = r.url
    r.stop()
    r.stop()  # twice is fine
    assert "stopped" in repr(r) and url in repr(r)


def test_restart_keeps_url_and_records() -> None:
    r = Receiver().start()
    try:
        url = r.url
        assert requests.post(url, json={"event_id": "1"}, timeout=TIMEOUT).status_code == 200
        r.stop()
        r.start()
        assert r.url == url
        assert requests.post(url, json={"event_id": "1"}, timeout=TIMEOUT).json() == {"ok": True, "duplicate": True}
        assert len(r.requests) == 2
    finally:
        r.stop()


def test_top_level_export() -> None:
    import linq_nb

    assert linq_nb.Receiver is Receiver


# --- command line --------------------------------------------------------------------------------------------------

def test_main_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--max-body-bytes", "0"])
    assert info.value.code == 2
    assert "max_body_bytes" in capsys.readouterr().err


def _read_line(lines: queue.Queue[str], deadline: float) -> str:
    try:
        return lines.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        raise AssertionError("no output line from the receiver in time") from None


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGINT")
def test_main_serves_prints_each_request_and_stops_on_ctrl_c() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "PYTHONUNBUFFERED": "1"}
    code = "import sys; from linq_nb.receiver import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--secret", SENTINEL_SECRET, "--secret", "whsec_second",
         "--fail-next", "1", "--fail-status", "503"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:  # a thread reads stdout, so the test can wait on lines with a deadline
        for line in stdout:
            output.append(line)
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + 20
    try:
        first = _read_line(lines, deadline)
        assert "verifying signatures with 2 secrets" in first
        url = first.split(" at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/webhooks")
        body = canonical_json(envelope("message.sent"))
        headers = {"X-Webhook-Signature": sign(body, SENTINEL_SECRET), "X-Webhook-Subscription-ID": "9"}
        assert requests.post(url, data=body, headers=headers, timeout=TIMEOUT).status_code == 503
        assert requests.post(url, data=body, headers=headers, timeout=TIMEOUT).status_code == 200
        assert requests.post(url, data=b"nope", timeout=TIMEOUT).status_code == 401
        got = [_read_line(lines, deadline) for _ in range(3)]
        assert " 503 POST message.sent " in got[0] and "sub=9" in got[0] and "fail_next" in got[0]
        assert " 200 POST message.sent " in got[1] and " verified" in got[1]
        assert " 401 POST " in got[2] and "NOT verified" in got[2] and "missing" in got[2]
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=TIMEOUT)
        reader.join(timeout=TIMEOUT)
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=TIMEOUT)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert proc.returncode == 0, err
    out = "".join(output)
    assert "stopped: 3 requests, 1 event" in out
    for text in (out, err):
        assert SENTINEL_SECRET not in text
