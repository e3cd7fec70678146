"""The relay's rules that mutation testing (``make mutate``) found unpinned.

Over real HTTP, with this test as the listener (it opens a session through the API, polls the relay port and
reports answers as ``linq-nb listen`` does): what a report may say, how each report becomes the attempt's
result in the delivery log, and when a session counts as having no listener. Directly: the shared-mode
policy's parsing and matching, and which URLs are relay URLs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from linq_nb.sandbox import Sandbox
from linq_nb.sandbox.relay import REFUSED, DeliveryPolicy, Relay, _Held, _resolve, _Session, parse_destination
from tests.conftest import SENTINEL_TOKEN

OTHER = "tok_other_partner"
API = {"X-LINQ-INTEGRATION-TOKEN": SENTINEL_TOKEN}
SID = "A" * 22


# --------------------------------------------------------------------------- shared-mode policy

@pytest.mark.parametrize(("text", "parsed"), [
    (" Hooks.Example.COM. ", ("hooks.example.com", None)),
    ("10.0.0.5:9000", ("10.0.0.5", 9000)),
    ("h:1", ("h", 1)),
    ("h:65535", ("h", 65535)),
    ("[::1]:8000", ("::1", 8000)),
    ("[::1]", ("::1", None)),
    ("[2001:DB8::1]:443", ("2001:db8::1", 443)),
    ("2001:db8::1", ("2001:db8::1", None)),  # an unbracketed IPv6 address: no port can be told apart
])
def test_deliver_to_destinations(text: str, parsed: tuple[str, int | None]) -> None:
    assert parse_destination(text) == parsed


@pytest.mark.parametrize("text", ["", "  ", "h:0", "h:65536", "h:x", "h:", "[::1]:", "[::1]:x", "a/b", "a/b:80",
                                  ":80", ".", "[::1]]:80", "[::1]:X1"])
def test_bad_destinations_are_refused_saying_the_form(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_destination(text)
    assert str(info.value) == (f"--deliver-to takes HOST or HOST:PORT, such as hooks.example.com:443; "
                               f"got {text.strip()[:80]!r}")


def test_a_long_bad_destination_is_quoted_cut_to_80_characters() -> None:
    with pytest.raises(ValueError) as info:
        parse_destination("a/" + "b" * 100)
    assert str(info.value).endswith(f"got {('a/' + 'b' * 100)[:80]!r}")


def test_the_policy_lets_through_exactly_the_allowed_host_and_port() -> None:
    policy = DeliveryPolicy(["hooks.example.com:443", "10.0.0.5", "h:8080"])
    assert policy.refusal("https://hooks.example.com/x") is None  # https: port 443
    assert policy.refusal("https://HOOKS.example.com.:443/x") is None  # as written, case and final dot aside
    assert policy.refusal("http://hooks.example.com/x") == REFUSED  # http: port 80, not allowed
    assert policy.refusal("http://hooks.example.com:443/x") is None
    assert policy.refusal("https://hooks.example.com:8443/x") == REFUSED
    assert policy.refusal("http://10.0.0.5:1/x") is None and policy.refusal("https://10.0.0.5/x") is None
    assert policy.refusal("http://h:8080/") is None and policy.refusal("http://h/") == REFUSED
    assert policy.refusal("ftp://h:8080/") is None  # the port decides, whatever the scheme
    assert policy.refusal("http://h:99999/") == REFUSED  # no valid port: refused, not an error
    assert policy.refusal("http://[::1/") == REFUSED
    assert policy.refusal("https://other.example.com/") == REFUSED
    assert policy.refusal("https://sub.hooks.example.com/") == REFUSED
    assert DeliveryPolicy().refusal("https://hooks.example.com/") == REFUSED
    plain = DeliveryPolicy(["plain.example:80"])
    assert plain.refusal("http://plain.example/") is None and plain.refusal("https://plain.example/") == REFUSED


def test_relay_urls_are_exactly_relay_path_and_a_session_id() -> None:
    assert Relay.owns(f"http://127.0.0.1:8765/_relay/{SID}")
    assert Relay.owns(f"https://sandbox.example/_relay/{SID}/")
    assert Relay.owns(f"http://h/_relay/{'a-_' * 7}Z")
    assert not Relay.owns(f"http://h/_relay/{SID[:21]}")
    assert not Relay.owns(f"http://h/_relay/{SID}x")
    assert not Relay.owns(f"http://h/x/_relay/{SID}")
    assert not Relay.owns(f"http://h/_relay/sessions/{SID}")
    assert not Relay.owns("http://[::1/_relay/" + SID)  # not a URL at all


def test_a_session_is_connected_while_a_poll_waits_a_delivery_is_out_or_it_was_heard_from_within_grace() -> None:
    session = _Session("s", "p", "n", b"", "u", last_seen=100.0)
    assert session.connected(101.9, 2.0)
    assert not session.connected(102.0, 2.0)  # heard from exactly grace ago: no longer
    assert not session.connected(200.0, 2.0)
    session.waiters.append(object())  # type: ignore[arg-type]
    assert session.connected(200.0, 2.0)
    session.waiters.clear()
    session.outstanding["d"] = object()  # type: ignore[assignment]
    assert session.connected(200.0, 2.0)


def test_the_first_answer_to_a_held_delivery_stands_and_a_later_one_is_ignored() -> None:
    held = _Held("d", {}, b"", 0.0)
    _resolve(held, 200, None)
    _resolve(held, None, "connection error: the listener closed its relay session")  # a close racing a report
    assert held.answer.result(timeout=0) == (200, None)


# --------------------------------------------------------------------------- the listener's reports, over HTTP

@pytest.fixture
def shared() -> Iterator[Sandbox]:
    with Sandbox(tokens=[SENTINEL_TOKEN, OTHER], retry_delays=[0.2], delivery_timeout=3.0) as sb:
        yield sb


class Listener:
    """This test as a relay listener: a session, its subscription, polls and reports by hand."""

    def __init__(self, sb: Sandbox, name: str = "rules") -> None:
        self.sb = sb
        self.session = requests.post(sb.url + "/_sandbox/relay", json={"name": name}, headers=API, timeout=5).json()
        self.key = {"X-Linq-Relay-Key": self.session["listen_key"]}
        resp = requests.post(sb.url + "/api/partner/v2/webhook_subscriptions", headers=API, timeout=5, json={
            "webhook_subscription": {"webhook_url": self.session["relay_url"], "events": ["message.sent"],
                                     "version": 2}})
        assert resp.status_code == 201, resp.text
        self.sub_id = resp.json()["webhook_subscription"]["id"]

    def next(self, wait: float = 5) -> list[dict[str, Any]]:
        resp = requests.get(self.session["poll_url"] + f"/next?wait={wait}", headers=self.key, timeout=wait + 5)
        assert resp.status_code == 200, resp.text
        return list(resp.json()["deliveries"])

    def take_one(self) -> str:
        self.sb.emit("message.sent", token=SENTINEL_TOKEN)
        for _ in range(5):
            got = self.next()
            if got:
                return str(got[0]["delivery_id"])
        raise AssertionError("no delivery handed out")

    def report(self, body: Any = None, *, data: bytes | None = None) -> requests.Response:
        return requests.post(self.session["poll_url"] + "/answers", headers=self.key, timeout=5,
                             **({"data": data} if data is not None else {"json": body}))


def _attempts(sb: Sandbox, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while len(log := sb.deliveries(SENTINEL_TOKEN)) < n:
        assert time.monotonic() < deadline, log
        time.sleep(0.02)
    return log


def test_a_report_must_be_a_json_object_with_a_status_or_an_error(shared: Sandbox) -> None:
    li = Listener(shared)
    obj = {"error": "the answer must be a JSON object"}
    assert (li.report(data=b"{").status_code, li.report(data=b"{").json()) == (400, obj)
    assert (li.report(data=b"[" * 4000).status_code, li.report(data=b"[" * 4000).json()) == (400, obj)  # too deep
    assert (li.report([1]).status_code, li.report([1]).json()) == (400, obj)
    status = {"error": "status must be the local receiver's HTTP status (100 to 599), or null"}
    for bad in (True, False, "200", 200.0, 99, 600, -1):
        resp = li.report({"delivery_id": "x", "status": bad})
        assert (resp.status_code, resp.json()) == (422, status), bad
    why = {"error": "an answer without a status needs an error saying why"}
    for bad in ({"delivery_id": "x"}, {"delivery_id": "x", "status": None, "error": 5}):
        resp = li.report(bad)
        assert (resp.status_code, resp.json()) == (422, why)
    gone = {"error": "no such delivery outstanding: its attempt passed its deadline (it is retried)"}
    for fine in ({"delivery_id": "x", "status": 100}, {"delivery_id": "x", "status": 599},
                 {"delivery_id": "x", "error": "refused"}, {"status": 200}):
        resp = li.report(fine)
        assert (resp.status_code, resp.json()) == (404, gone), fine


@pytest.mark.parametrize(("report", "status", "error", "ok"), [
    ({"status": 200}, 200, None, True),
    ({"status": 204, "error": "ignored"}, 204, None, True),  # a status is the answer; an error beside it is not
    ({"status": 100}, 100, None, False),
    ({"status": 599}, 599, None, False),
    ({"error": "timeout: read timed out"}, None,
     "timeout: the listener's local receiver did not answer in time (timeout: read timed out)", False),
    ({"error": "refused"}, None, "connection error: the listener's local receiver did not answer (refused)", False),
    ({"status": None, "error": "x" * 300}, None,
     "connection error: the listener's local receiver did not answer (" + "x" * 160 + ")", False),
    ({"error": "timeout" + "y" * 300}, None,
     "timeout: the listener's local receiver did not answer in time (timeout" + "y" * 153 + ")", False),
])
def test_each_report_is_the_attempts_result(shared: Sandbox, report: dict[str, Any], status: int | None,
                                            error: str | None, ok: bool) -> None:
    li = Listener(shared)
    delivery_id = li.take_one()
    resp = li.report({"delivery_id": delivery_id, **report})
    assert (resp.status_code, resp.json()) == (200, {"ok": True})
    first = _attempts(shared, 1)[0]
    assert (first["status_code"], first["error"], first["ok"]) == (status, error, ok)
    again = li.report({"delivery_id": delivery_id, "status": 200})  # a second report of it: gone
    assert again.status_code == 404


def test_a_report_over_4_kb_is_cut_off_quietly_and_the_relay_keeps_serving(
        shared: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    li = Listener(shared)
    with pytest.raises(requests.ConnectionError):  # no answer to a report that big: the connection is closed
        li.report(data=b"{" + b" " * 5000 + b"}")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # an expected refusal, not a failure logged
    assert li.report({"status": 200}).status_code == 404  # still serving


def test_a_listener_that_never_reports_is_a_timeout_and_an_unheard_one_is_unreachable(shared: Sandbox) -> None:
    li = Listener(shared)
    li.take_one()  # handed out, never answered: the attempt's deadline passes
    first = _attempts(shared, 1)[0]
    assert first["error"] == "timeout: the listener did not report its receiver's answer within the deadline"
    assert first["status_code"] is None and not first["ok"]
    # nobody polls now: after the grace the retry finds no listener
    time.sleep(shared.relay.grace + 0.3)
    second = _attempts(shared, 2)[1]
    assert second["error"] == "connection error: no listener connected to this relay session"


def test_a_relay_url_of_another_partner_is_a_session_with_no_listener(shared: Sandbox) -> None:
    li = Listener(shared)
    created = requests.post(shared.url + "/api/partner/v2/webhook_subscriptions", timeout=5,
                            headers={"X-LINQ-INTEGRATION-TOKEN": OTHER},
                            json={"webhook_subscription": {"webhook_url": li.session["relay_url"],
                                                           "events": ["message.sent"], "version": 2}})
    assert created.status_code == 201
    shared.emit("message.sent", token=OTHER)
    assert li.next(wait=1) == []  # nothing reaches this partner's listener
    log = shared.deliveries(OTHER)
    assert log and log[0]["error"] == "connection error: no listener connected to this relay session"


def test_a_closed_session_answers_its_held_delivery_and_a_stopped_relay_takes_no_more(shared: Sandbox) -> None:
    li = Listener(shared)
    li.take_one()
    closed = requests.delete(shared.url + f"/_sandbox/relay/{li.session['session_id']}", headers=API, timeout=5)
    assert closed.status_code in (200, 204)
    first = _attempts(shared, 1)[0]
    assert first["error"] == "connection error: the listener closed its relay session"
    relay = Relay().start()
    try:
        opened = relay.open("p", "n", "http://127.0.0.1:1")
        relay.stop()
        assert relay.deliver(opened["relay_url"], "p", b"{}", {}, time.monotonic() + 5) == (
            None, "connection error: no listener connected to this relay session")
    finally:
        relay.stop()
