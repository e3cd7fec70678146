"""LinqClient under faults, over real HTTP: error classes, retries, Retry-After, lost creates.

The sandbox's ``fail_next(n, status, delay=, after=)`` makes the next n API requests fail
(``after=False``: not processed; ``after=True``: processed, only the answer is lost) or be
slow. Faults are consumed in order, one per request, so ``fail_next(1, status=None)`` lets
exactly one request through untouched: a create first lists the subscriptions (its
duplicate guard and recovery snapshot), so the tests pass that GET and hit the POST.
No test mocks the client's HTTP layer; the few odd servers below are real WSGI apps.
"""

from __future__ import annotations

import gc
import json
import math
import socket
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from linq_nb._server import ServerThread
from linq_nb.client import API_PATH, LinqClient
from linq_nb.errors import (
    AuthenticationError,
    LinqConnectionError,
    LinqError,
    LinqTimeoutError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from linq_nb.sandbox import Sandbox
from tests.conftest import SENTINEL_TOKEN

HOOK = "http://127.0.0.1:9/hook"
SLOW = 0.6  # seconds a slowed request takes; the clients that should time out wait TIMEOUT
TIMEOUT = 0.2


def pass_next(sandbox: Sandbox, n: int = 1) -> None:
    """Let the next n API requests through untouched (a no-op fault, queued before the real ones)."""
    sandbox.fail_next(n, status=None)


def assert_no_fault_left(make_client: Callable[..., LinqClient]) -> None:
    """A request with retries off succeeds: every injected fault was consumed."""
    make_client(max_retries=0).list_subscriptions()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- each error class


def test_wrong_token_is_an_authentication_error(make_client: Callable[..., LinqClient]) -> None:
    with pytest.raises(AuthenticationError) as info:
        make_client(token="not-a-token-of-this-sandbox").list_subscriptions()
    err = info.value
    assert (err.status, err.error_code, err.method, err.path) == (401, "unauthorized", "GET", API_PATH)
    assert "does not match" in err.message and "LINQ_INTEGRATION_TOKEN" in err.hint


def test_unknown_id_is_not_found(client: LinqClient) -> None:
    with pytest.raises(NotFoundError) as info:
        client.get_subscription(99)
    assert info.value.status == 404 and "99" in info.value.message
    assert "list" in info.value.hint.lower()


def test_server_validation_errors_400_and_422(client: LinqClient, sandbox: Sandbox) -> None:
    with pytest.raises(ValidationError) as info:
        client.request("POST", API_PATH, json=[1, 2])
    assert info.value.status == 400 and "webhook_subscription" in info.value.message
    bad = {"webhook_subscription": {"webhook_url": HOOK, "version": 3, "events": ["x"]}}
    with pytest.raises(ValidationError) as info:
        client.request("POST", API_PATH, json=bad)
    assert info.value.status == 422 and info.value.error_code == "validation_failed"
    assert len(info.value.errors) == 2  # the server's list of messages, one per problem
    assert sandbox.subscriptions() == []


def test_rate_limit_is_a_rate_limit_error_with_retry_after(make_client: Callable[..., LinqClient],
                                                           sandbox: Sandbox) -> None:
    c = make_client()
    sandbox.set_rate_limit(1, 60)
    c.list_subscriptions()
    # Retry-After 60 s is over max_retry_after (30 s): no retry, no silent minute-long wait.
    with pytest.raises(RateLimitError) as info:
        c.list_subscriptions()
    assert info.value.status == 429 and info.value.retry_after == 60.0 and "60" in info.value.hint
    with pytest.raises(RateLimitError):  # a create is rate limited the same way
        c.request("POST", API_PATH, json={"webhook_subscription": {}})
    sandbox.set_rate_limit(None)
    assert sandbox.subscriptions() == []


def test_5xx_after_all_retries_is_a_server_error(make_client: Callable[..., LinqClient],
                                                 sandbox: Sandbox) -> None:
    sandbox.fail_next(3, 500)
    with pytest.raises(ServerError) as info:
        make_client(max_retries=2).list_subscriptions()
    assert info.value.status == 500 and "injected fault" in info.value.message
    assert "already retried" in info.value.hint


def test_nothing_listening_is_a_connection_error() -> None:
    c = LinqClient(token=SENTINEL_TOKEN, base_url=f"http://127.0.0.1:{free_port()}", max_retries=1,
                   backoff_factor=0)
    with pytest.raises(LinqConnectionError) as info:
        c.list_subscriptions()
    assert not isinstance(info.value, LinqTimeoutError)
    assert info.value.status is None and info.value.method == "GET" and "could not reach" in info.value.message
    assert "tried 2 times" in info.value.message and "running" in info.value.hint


def test_slow_answer_is_a_timeout(make_client: Callable[..., LinqClient], sandbox: Sandbox) -> None:
    sandbox.fail_next(1, status=None, delay=SLOW)
    with pytest.raises(LinqTimeoutError) as info:
        make_client(timeout=TIMEOUT, max_retries=0).list_subscriptions()
    assert isinstance(info.value, LinqConnectionError)  # a timeout is a kind of connection error
    assert f"within {TIMEOUT:g} s" in info.value.message and "timeout=" in info.value.hint


def test_slow_answers_through_every_retry_are_still_a_timeout(make_client: Callable[..., LinqClient],
                                                              sandbox: Sandbox) -> None:
    sandbox.fail_next(2, status=None, delay=SLOW)
    with pytest.raises(LinqTimeoutError, match="tried 2 times"):
        make_client(timeout=TIMEOUT, max_retries=1).list_subscriptions()


def test_all_error_classes_share_one_base(client: LinqClient) -> None:
    with pytest.raises(LinqError):
        client.get_subscription(12345)


# --------------------------------------------------------------------------- retries of GET, PUT, DELETE


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_get_is_retried_until_it_succeeds(make_client: Callable[..., LinqClient], sandbox: Sandbox,
                                          status: int) -> None:
    c = make_client(max_retries=3)
    sub = c.create_subscription(HOOK, ["message.sent"])
    sandbox.fail_next(3, status)
    assert c.get_subscription(sub.id) == sub
    assert_no_fault_left(make_client)


def test_retries_stop_after_max_retries(make_client: Callable[..., LinqClient], sandbox: Sandbox) -> None:
    # 3 faults, 2 retries: 3 attempts, all fail. Then none is left: exactly 3 attempts were made.
    sandbox.fail_next(3, 503)
    with pytest.raises(ServerError):
        make_client(max_retries=2).list_subscriptions()
    assert_no_fault_left(make_client)
    # And with retries off, one attempt only: the second fault is still waiting.
    sandbox.fail_next(2, 503)
    with pytest.raises(ServerError):
        make_client(max_retries=0).list_subscriptions()
    with pytest.raises(ServerError):
        make_client(max_retries=0).list_subscriptions()
    assert_no_fault_left(make_client)


def test_put_is_retried(make_client: Callable[..., LinqClient], sandbox: Sandbox) -> None:
    c = make_client(max_retries=3)
    sub = c.create_subscription(HOOK, ["message.sent"])
    pass_next(sandbox)  # update_subscription's GET of the current subscription
    sandbox.fail_next(3, 502)
    assert c.update_subscription(sub.id, active=False).active is False
    assert_no_fault_left(make_client)
    assert sandbox.subscriptions()[0]["active"] is False


def test_put_whose_answer_was_lost_is_retried_safely(make_client: Callable[..., LinqClient],
                                                     sandbox: Sandbox) -> None:
    c = make_client(max_retries=2)
    sub = c.create_subscription(HOOK, ["message.sent"])
    pass_next(sandbox)
    sandbox.fail_next(1, 503, after=True)  # the PUT is applied, its answer lost; the retry applies it again
    assert c.update_subscription(sub.id, events=["message.read"]).events == ("message.read",)
    assert [s["events"] for s in sandbox.subscriptions()] == [["message.read"]]


def test_delete_is_retried(make_client: Callable[..., LinqClient], sandbox: Sandbox) -> None:
    c = make_client(max_retries=3)
    sub = c.create_subscription(HOOK, ["message.sent"])
    sandbox.fail_next(3, 500)
    c.delete_subscription(sub.id)
    assert sandbox.subscriptions() == []
    assert_no_fault_left(make_client)


def test_delete_whose_answer_was_lost_still_succeeds(make_client: Callable[..., LinqClient],
                                                     sandbox: Sandbox) -> None:
    c = make_client(max_retries=2, timeout=TIMEOUT)
    sub = c.create_subscription(HOOK, ["message.sent"])
    sandbox.fail_next(1, None, delay=SLOW, after=True)  # deleted, answer too late: the retry then gets a 404
    c.delete_subscription(sub.id)
    assert sandbox.subscriptions() == []
    with pytest.raises(NotFoundError):  # but a 404 on a first attempt is still an error
        c.delete_subscription(sub.id)


def test_timeouts_of_get_are_retried(make_client: Callable[..., LinqClient], sandbox: Sandbox) -> None:
    sandbox.fail_next(2, status=None, delay=SLOW)
    assert make_client(timeout=TIMEOUT, max_retries=2).list_subscriptions() == []


def test_retry_after_is_honoured_on_429(make_client: Callable[..., LinqClient], sandbox: Sandbox) -> None:
    # One request per second. The second list is answered 429 with Retry-After: 1. Backoff alone
    # (0.01 s, 0.02 s, 0.04 s) would spend all three retries inside that second and fail;
    # success shows the client waited as the header asked.
    c = make_client(max_retries=3)
    sandbox.set_rate_limit(1, 1.0)
    c.list_subscriptions()
    assert c.list_subscriptions() == []
    sandbox.set_rate_limit(None)


def test_injected_429_is_retried_after_its_retry_after(make_client: Callable[..., LinqClient],
                                                       sandbox: Sandbox) -> None:
    sandbox.fail_next(1, 429)  # answered with Retry-After: 1
    assert make_client(max_retries=1).list_subscriptions() == []
    assert_no_fault_left(make_client)


def test_retry_after_longer_than_the_cap_is_not_waited_for(make_client: Callable[..., LinqClient],
                                                           sandbox: Sandbox) -> None:
    sandbox.fail_next(2, 429)  # Retry-After: 1, over a cap of 0.5 s: raise at once, one attempt only
    with pytest.raises(RateLimitError) as info:
        make_client(max_retries=3, max_retry_after=0.5).list_subscriptions()
    assert info.value.retry_after == 1.0
    with pytest.raises(RateLimitError):  # the second fault was not consumed by a retry
        make_client(max_retries=0).list_subscriptions()
    assert_no_fault_left(make_client)


# --------------------------------------------------------------------------- creates are never resent


def test_create_is_sent_once_even_when_it_fails(make_client: Callable[..., LinqClient], sandbox: Sandbox) -> None:
    c = make_client(max_retries=3)
    c.recovery_delays = ()  # no recovery look-ups: only the POST can consume the faults
    pass_next(sandbox)
    sandbox.fail_next(2, 503)
    with pytest.raises(ServerError):
        c.create_subscription(HOOK, ["message.sent"])
    with pytest.raises(ServerError):  # the second fault is still there: the POST was not retried
        make_client(max_retries=0).list_subscriptions()
    assert sandbox.subscriptions() == []


def test_create_whose_answer_was_lost_returns_what_it_created(make_client: Callable[..., LinqClient],
                                                              sandbox: Sandbox) -> None:
    c = make_client()
    pass_next(sandbox)
    sandbox.fail_next(1, 500, after=True)  # stored, then answered 500
    sub = c.create_subscription(HOOK, ["message.sent", "message.read"], secret="s3cret")
    assert [s["id"] for s in sandbox.subscriptions()] == [sub.id]  # exactly one
    assert sub.events == ("message.sent", "message.read") and sub.secret_configured


def test_create_that_timed_out_after_storing_returns_what_it_created(make_client: Callable[..., LinqClient],
                                                                     sandbox: Sandbox) -> None:
    c = make_client(timeout=TIMEOUT)
    pass_next(sandbox)
    sandbox.fail_next(1, status=None, delay=SLOW, after=True)  # stored at once, answered too late
    sub = c.create_subscription(HOOK, ["message.sent"])
    assert [s["id"] for s in sandbox.subscriptions()] == [sub.id]


def test_create_still_in_flight_after_a_timeout_is_found_when_it_lands(make_client: Callable[..., LinqClient],
                                                                       sandbox: Sandbox) -> None:
    c = make_client(timeout=TIMEOUT)
    c.recovery_delays = LinqClient.recovery_delays  # the default: keep looking for a few seconds
    pass_next(sandbox)
    sandbox.fail_next(1, status=None, delay=SLOW)  # stored only after SLOW s, long after the client gave up
    sub = c.create_subscription(HOOK, ["message.sent"])
    assert [s["id"] for s in sandbox.subscriptions()] == [sub.id]


def test_create_that_failed_before_storing_raises_and_creates_nothing(make_client: Callable[..., LinqClient],
                                                                      sandbox: Sandbox) -> None:
    c = make_client()
    pass_next(sandbox)
    sandbox.fail_next(1, 503)
    with pytest.raises(ServerError) as info:
        c.create_subscription(HOOK, ["message.sent"])
    assert info.value.status == 503 and info.value.method == "POST"
    assert sandbox.subscriptions() == []


def test_recovery_ignores_subscriptions_that_existed_before(make_client: Callable[..., LinqClient],
                                                            sandbox: Sandbox) -> None:
    c = make_client()
    twin = c.create_subscription(HOOK, ["message.sent"])
    pass_next(sandbox)
    sandbox.fail_next(1, 503)  # not stored: the identical older one must not be taken for it
    with pytest.raises(ServerError):
        c.create_subscription(HOOK, ["message.sent"], allow_duplicate=True)
    assert [s["id"] for s in sandbox.subscriptions()] == [twin.id]
    pass_next(sandbox)
    sandbox.fail_next(1, 503, after=True)  # stored: the new one is returned, not the twin
    new = c.create_subscription(HOOK, ["message.sent"], allow_duplicate=True)
    assert new.id != twin.id and len(sandbox.subscriptions()) == 2


def test_recovery_matches_every_field_of_the_lost_request(make_client: Callable[..., LinqClient]) -> None:
    """Subscriptions made meanwhile that differ from the lost request in any field are not taken for it."""
    c = make_client()
    c.recovery_delays = (0.0,)
    before = {c.create_subscription(HOOK, ["message.sent"], secret="s").id}  # identical, but older
    started = datetime.now(timezone.utc)
    lost = {"webhook_url": HOOK, "version": 2, "secret": "s", "active": True, "events": ["message.sent"]}
    for change in ({"secret": None}, {"active": False}, {"events": ["message.sent", "message.read"]},
                   {"webhook_url": HOOK + "/x"}):
        fields: dict[str, Any] = {**lost, **change}
        c.create_subscription(fields.pop("webhook_url"), fields.pop("events"), allow_duplicate=True,
                              **{k: v for k, v in fields.items() if k != "version"})
        assert c._recover_create(lost, before, started) is None, change
    match = c.create_subscription(HOOK, ["message.sent"], secret="s", allow_duplicate=True)
    assert c._recover_create(lost, before, started) == match


def test_client_errors_on_create_are_not_recovered(make_client: Callable[..., LinqClient],
                                                   sandbox: Sandbox) -> None:
    c = make_client()
    pass_next(sandbox)
    sandbox.fail_next(1, 409, after=True)  # stored, but a 4xx says the request was refused: no look-up
    with pytest.raises(ValidationError) as info:
        c.create_subscription(HOOK, ["message.sent"])
    assert info.value.status == 409


def test_create_against_nothing_listening_is_a_connection_error() -> None:
    c = LinqClient(token=SENTINEL_TOKEN, base_url=f"http://127.0.0.1:{free_port()}", max_retries=0)
    with pytest.raises(LinqConnectionError):
        c.create_subscription(HOOK, ["message.sent"])


# --------------------------------------------------------------------------- odd servers (real HTTP)


@pytest.fixture
def odd_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A real server answering like a misconfigured proxy would; records the headers it saw."""
    seen: list[dict[str, str]] = []

    @Request.application
    def app(request: Request) -> Response:
        seen.append(dict(request.headers))
        if request.path.endswith("/html-error"):
            return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", 502, mimetype="text/html")
        if request.path.endswith("/html-ok"):
            return Response("<html>a login page</html>", 200, mimetype="text/html")
        if request.path.endswith("/lenient-json"):  # what the standard library's json takes and msgspec refuses
            return Response('{"n": NaN, "big": 123456789012345678901234567890}', 200, mimetype="application/json")
        if request.path.endswith("/large-json"):
            return Response(json.dumps({"items": [{"id": i, "name": "x" * 20} for i in range(5000)]}), 200,
                            mimetype="application/json")
        if request.path.endswith("/redirect"):
            return Response("", 302, headers={"Location": "https://elsewhere.example.com/steal"})
        return Response("plain text trouble", 418)

    server = ServerThread(app).start()
    yield server.url, seen
    server.stop()


def test_non_json_error_bodies_are_handled(odd_server: tuple[str, list[dict[str, str]]]) -> None:
    url, _ = odd_server
    with LinqClient(token=SENTINEL_TOKEN, base_url=url, max_retries=0) as c:
        with pytest.raises(ServerError) as info:
            c.request("GET", "/html-error")
        assert info.value.status == 502 and "502 Bad Gateway" in info.value.message
        with pytest.raises(ServerError, match="not JSON") as info:
            c.request("GET", "/html-ok")
        assert info.value.status == 200
        with pytest.raises(ValidationError, match="plain text trouble") as verr:
            c.request("GET", "/teapot")
        assert verr.value.status == 418


def test_json_bodies_parse_as_requests_parses_them(odd_server: tuple[str, list[dict[str, str]]]) -> None:
    """The fast parser's refusals (NaN, integers over 64 bits) still parse, as ``response.json()`` would."""
    url, _ = odd_server
    with LinqClient(token=SENTINEL_TOKEN, base_url=url, max_retries=0) as c:
        lenient = c.request("GET", "/lenient-json")
        assert math.isnan(lenient["n"]) and lenient["big"] == 123456789012345678901234567890
        assert gc.isenabled()
        large = c.request("GET", "/large-json")  # parsed with the collector paused, then turned back on
        assert len(large["items"]) == 5000 and large["items"][-1] == {"id": 4999, "name": "x" * 20}
        assert gc.isenabled()
        gc.disable()
        try:  # a caller who turned the collector off keeps it off
            c.request("GET", "/large-json")
            assert not gc.isenabled()
        finally:
            gc.enable()


def test_redirects_are_not_followed(odd_server: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = odd_server
    with LinqClient(token=SENTINEL_TOKEN, base_url=url, max_retries=0) as c, \
            pytest.raises(ServerError) as info:
        c.request("GET", "/redirect")
    assert info.value.status == 302
    assert len(seen) == 1  # the token went to the configured server only, once


def test_the_token_header_is_sent(odd_server: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = odd_server
    with LinqClient(token=SENTINEL_TOKEN, base_url=url, max_retries=0) as c, pytest.raises(LinqError):
        c.request("GET", "/teapot")
    assert seen[0]["X-Linq-Integration-Token"] == SENTINEL_TOKEN
    assert seen[0]["User-Agent"].startswith("linq-nb/")
