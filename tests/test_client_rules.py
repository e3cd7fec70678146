"""Client rules that mutation testing (``make mutate``) found unpinned: duplicates, redaction, retries, recovery.

Over real HTTP, against the sandbox or a small misbehaving server on a free port.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest
from werkzeug.wrappers import Request, Response

from linq_nb._server import ServerThread
from linq_nb.client import API_PATH, LinqClient
from linq_nb.errors import (
    ConfigurationError,
    DuplicateSubscriptionError,
    LinqConnectionError,
    NotFoundError,
    ServerError,
    ValidationError,
)
from linq_nb.sandbox import Sandbox
from tests.conftest import SENTINEL_SECRET, SENTINEL_TOKEN

HOOK = "https://example.com/hook"


# --------------------------------------------------------------------------- the duplicate guard


def test_the_duplicate_guard_ignores_the_case_of_the_host(client: LinqClient) -> None:
    first = client.create_subscription(HOOK, ["message.sent"])
    for same in ("https://EXAMPLE.com/hook", "HTTPS://Example.COM/hook"):
        with pytest.raises(DuplicateSubscriptionError) as info:
            client.create_subscription(same, ["message.sent", "message.read"])
        assert info.value.existing_ids == [first.id] and info.value.overlapping_events == ["message.sent"]
        assert client.find_duplicates(same, ["message.sent"]) == [(first, ("message.sent",))]


def test_the_duplicate_guard_keeps_the_case_of_the_path_and_the_query(client: LinqClient) -> None:
    client.create_subscription(HOOK + "?team=a", ["message.sent"])
    assert client.find_duplicates("https://example.com/HOOK?team=a", ["message.sent"]) == []
    assert client.find_duplicates("https://example.com/hook?team=A", ["message.sent"]) == []
    assert client.find_duplicates("https://example.com/hook?team=b", ["message.sent"]) == []
    assert len(client.find_duplicates("https://example.com/hook?team=a#frag", ["message.sent"])) == 1


def test_the_duplicate_guard_takes_an_empty_path_for_slash(client: LinqClient) -> None:
    first = client.create_subscription("https://example.com", ["message.sent"])
    assert client.find_duplicates("https://example.com/", ["message.sent"]) == [(first, ("message.sent",))]


def test_the_duplicate_guard_looks_past_subscriptions_to_other_urls(client: LinqClient) -> None:
    client.create_subscription("https://example.com/other", ["message.sent"])
    same = client.create_subscription(HOOK, ["message.sent"])
    client.create_subscription("https://example.com/third", ["message.sent"])
    assert client.find_duplicates(HOOK, ["message.sent"]) == [(same, ("message.sent",))]


# --------------------------------------------------------------------------- retries


def test_every_retry_keeps_the_cap_on_retry_after(make_client: Callable[..., LinqClient], sandbox: Sandbox) -> None:
    c = make_client(max_retry_after=5)
    sandbox.fail_next(2, 429)  # each answered with Retry-After: 1, under the cap: waited for, twice
    assert c.list_subscriptions() == []


def test_a_retry_after_equal_to_the_cap_is_waited_for(make_client: Callable[..., LinqClient],
                                                     sandbox: Sandbox) -> None:
    c = make_client(max_retry_after=1)
    sandbox.fail_next(1, 429)  # Retry-After: 1, exactly the cap
    assert c.list_subscriptions() == []


@pytest.mark.parametrize("cap", [0.5, 30.0])
def test_a_garbled_retry_after_is_ignored_and_the_request_retried(cap: float) -> None:
    answers = iter([
        Response(json.dumps({"errors": [{"status": 503, "detail": "busy"}]}), 503, headers={"Retry-After": "soon"},
                 mimetype="application/json"),
        Response(json.dumps({"webhook_subscriptions": []}), 200, mimetype="application/json"),
    ])
    server = ServerThread(Request.application(lambda request: next(answers))).start()
    try:
        with LinqClient(token=SENTINEL_TOKEN, base_url=server.url, max_retry_after=cap, backoff_factor=0.01) as c:
            assert c.list_subscriptions() == []  # was: ConfigurationError "the request could not be built"
    finally:
        server.stop()


# --------------------------------------------------------------------------- redaction


@pytest.fixture
def echo_url() -> Iterator[str]:
    """A server that repeats the token and body it was sent in its 422 answer (as a careless API might)."""

    @Request.application
    def app(request: Request) -> Response:
        token = request.headers.get("X-LINQ-INTEGRATION-TOKEN", "")
        detail = f"token {token} is not allowed to send {request.get_data(as_text=True)}"
        return Response(json.dumps({"errors": [{"status": 422, "detail": detail}]}), 422,
                        mimetype="application/json")

    server = ServerThread(app).start()
    yield server.url
    server.stop()


def test_an_error_that_repeats_the_token_or_secret_shows_placeholders_instead(echo_url: str) -> None:
    with LinqClient(token=SENTINEL_TOKEN, base_url=echo_url, max_retries=0) as c, \
            pytest.raises(ValidationError) as info:
        c.request("POST", API_PATH, json={"webhook_subscription": {"secret": SENTINEL_SECRET}})
    text = " ".join([info.value.message, *info.value.errors])
    assert "token <X-LINQ-INTEGRATION-TOKEN> is not allowed" in text
    assert '"secret": "<webhook-secret>"' in text
    assert SENTINEL_TOKEN not in text and SENTINEL_SECRET not in text


def test_an_error_that_repeats_the_token_of_a_get_shows_the_placeholder(echo_url: str) -> None:
    with LinqClient(token=SENTINEL_TOKEN, base_url=echo_url, max_retries=0) as c, \
            pytest.raises(ValidationError) as info:
        c.list_subscriptions()
    text = " ".join([info.value.message, *info.value.errors])
    assert "token <X-LINQ-INTEGRATION-TOKEN> is not allowed" in text and SENTINEL_TOKEN not in text


# --------------------------------------------------------------------------- lost creates (a scripted API)


class ScriptedApi:
    """A real HTTP server speaking the v2 subscription API, whose answer to a create is scripted.

    ``on_create(body)`` returns ``(status, answer, stored)``: what the POST is answered, and the
    subscription objects it stores (shown by later lists, in the order ``listing`` gives).
    """

    def __init__(self) -> None:
        self.subs: list[dict] = []
        self.calls: list[str] = []
        self.on_create = lambda body: (201, {"webhook_subscription": self.store(body)}, [])
        self.listing = lambda subs: subs
        self.lists_fail = False
        self.server = ServerThread(self.app)

    def store(self, body: dict, **changes: object) -> dict:
        sub = {"id": len(self.subs) + 1, "version": 2, "active": True, "secret_configured": False,
               "delivery_attempts": 0, "last_delivered_at": None,
               "created_at": datetime.now(timezone.utc).isoformat(), "updated_at": None,
               **body["webhook_subscription"], **changes}
        self.subs.append(sub)
        return sub

    @Request.application
    def app(self, request: Request) -> Response:
        self.calls.append(request.method)
        if request.method == "GET" and self.lists_fail:
            return Response(json.dumps({"errors": [{"status": 503, "detail": "down"}]}), 503,
                            mimetype="application/json")
        if request.method == "GET":
            return Response(json.dumps({"webhook_subscriptions": self.listing(list(self.subs))}), 200,
                            mimetype="application/json")
        status, answer, _ = self.on_create(request.get_json())
        return Response(json.dumps(answer), status, mimetype="application/json")


@pytest.fixture
def api() -> Iterator[ScriptedApi]:
    scripted = ScriptedApi()
    scripted.server.start()
    yield scripted
    scripted.server.stop()


def scripted_client(api: ScriptedApi) -> LinqClient:
    c = LinqClient(token=SENTINEL_TOKEN, base_url=api.server.url, max_retries=0)
    c.recovery_delays = (0.0, 0.0)
    return c


def test_a_create_answered_2xx_without_a_subscription_is_looked_for_and_found(api: ScriptedApi) -> None:
    api.on_create = lambda body: (201, {"oops": "not the documented shape"}, [api.store(body)])
    with scripted_client(api) as c:
        found = c.create_subscription(HOOK, ["message.sent"])
    assert found.id == 1 and found.webhook_url == HOOK
    assert api.calls == ["GET", "POST", "GET"]  # never resent


@pytest.mark.parametrize("status", [300, 399])
def test_a_create_answered_3xx_is_not_looked_for(api: ScriptedApi, status: int) -> None:
    api.on_create = lambda body: (status, {"moved": True}, [api.store(body)])
    with scripted_client(api) as c, pytest.raises(ServerError) as info:
        c.create_subscription(HOOK, ["message.sent"])
    assert info.value.status == status and api.calls == ["GET", "POST"]


def test_a_lost_create_takes_a_match_without_created_at_but_never_an_older_one(api: ScriptedApi) -> None:
    api.on_create = lambda body: (500, {}, [api.store(body, created_at=None)])
    with scripted_client(api) as c:
        assert c.create_subscription(HOOK, ["message.sent"]).id == 1
    long_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    api.on_create = lambda body: (500, {}, [api.store(body, created_at=long_ago)])
    with scripted_client(api) as c, pytest.raises(ServerError):
        c.create_subscription(HOOK + "/2", ["message.sent"])  # matches in all but its age: someone else's


def test_a_lost_create_with_two_matches_returns_the_lowest_id_and_says_so(api: ScriptedApi,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    api.on_create = lambda body: (503, {}, [api.store(body), api.store(body)])
    api.listing = lambda subs: sorted(subs, key=lambda s: -s["id"])  # newest first
    caplog.set_level(logging.INFO, logger="linq_nb.client")
    with scripted_client(api) as c:
        assert c.create_subscription(HOOK, ["message.sent"]).id == 1
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert messages == ["create_subscription: 2 new subscriptions match the lost request (2, 1); returning the first"]


def test_a_lost_create_with_one_match_warns_of_nothing(api: ScriptedApi, caplog: pytest.LogCaptureFixture) -> None:
    api.on_create = lambda body: (503, {}, [api.store(body)])
    caplog.set_level(logging.INFO, logger="linq_nb.client")
    with scripted_client(api) as c:
        assert c.create_subscription(HOOK, ["message.sent"]).id == 1
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_lost_create_whose_look_up_fails_says_why_and_raises_the_first_error(
        api: ScriptedApi, caplog: pytest.LogCaptureFixture) -> None:
    def create_then_vanish(body: dict) -> tuple[int, dict, list]:
        api.lists_fail = True
        return 502, {}, []

    api.on_create = create_then_vanish
    caplog.set_level(logging.INFO, logger="linq_nb.client")
    with scripted_client(api) as c, pytest.raises(ServerError) as info:
        c.create_subscription(HOOK, ["message.sent"])
    assert info.value.status == 502
    assert "create_subscription: could not list subscriptions to recover (ServerError)" in [
        r.getMessage() for r in caplog.records]


def test_only_a_server_error_can_mean_the_create_may_have_gone_through() -> None:
    # Which failures the lost-create look-up runs for (the table behind create_subscription's recovery).
    for exc, ambiguous in [
        (LinqConnectionError("dropped"), True), (ServerError("no status"), True),
        (ServerError("5xx", status=500), True), (ServerError("2xx, bad body", status=201), True),
        (ServerError("3xx", status=300), False), (ConfigurationError("closed"), False),
        (ValidationError("422", status=422), False), (NotFoundError("404", status=404), False),
    ]:
        assert LinqClient._ambiguous(exc) is ambiguous, exc


def test_an_empty_or_non_text_secret_in_a_raw_request_masks_nothing(echo_url: str) -> None:
    with LinqClient(token=SENTINEL_TOKEN, base_url=echo_url, max_retries=0) as c:
        for secret in ("", 12345):
            with pytest.raises(ValidationError) as info:
                c.request("POST", API_PATH, json={"webhook_subscription": {"secret": secret}})
            assert "<webhook-secret>" not in info.value.message
            assert f'"secret": {json.dumps(secret)}' in " ".join(info.value.errors + [info.value.message])


def test_a_lost_create_logs_what_it_lost_and_what_it_found(api: ScriptedApi, caplog: pytest.LogCaptureFixture) -> None:
    api.on_create = lambda body: (503, {}, [api.store(body)])
    caplog.set_level(logging.INFO, logger="linq_nb.client")
    with scripted_client(api) as c:
        assert c.create_subscription(HOOK, ["message.sent"]).id == 1
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        "create_subscription: the answer was lost (ServerError); looking for what it created",
        "create_subscription: the lost request created subscription 1",
    ]


def test_a_create_answered_2xx_without_a_subscription_and_not_found_names_the_request(api: ScriptedApi) -> None:
    api.on_create = lambda body: (201, {"oops": "not the documented shape"}, [])
    with scripted_client(api) as c, pytest.raises(ServerError) as info:
        c.create_subscription(HOOK, ["message.sent"])
    assert (info.value.method, info.value.path, info.value.status) == ("POST", API_PATH, None)
    assert api.calls == ["GET", "POST", "GET", "GET"]  # looked for twice, never resent


def test_sandbox_routes_are_refused_in_live_mode_before_anything_is_sent() -> None:
    with LinqClient(token=SENTINEL_TOKEN, base_url="https://api.linqapp.com") as live:
        assert live.mode == "live"
        with pytest.raises(ConfigurationError) as info:
            live.sandbox_route("get", "deliveries")
    assert info.value.message == ("GET deliveries: sandbox routes exist only in a sandbox, and this client talks to "
                                  "the live API at https://api.linqapp.com")
    assert info.value.hint == "Skip this step when live, or use linq_nb.connect() without a token to get a sandbox."


def test_a_sandbox_route_is_sent_under_the_prefix_exactly_as_named(sandbox: Sandbox) -> None:
    with LinqClient(token=SENTINEL_TOKEN, base_url=sandbox.url, max_retries=0) as c:
        assert c.sandbox_route("GET", "deliveries") == c.sandbox_route("GET", "/_sandbox/deliveries")
        with pytest.raises(NotFoundError) as info:
            c.sandbox_route("GET", "XX/deliveries")
    assert info.value.path == "/_sandbox/XX/deliveries"


def test_the_token_goes_only_to_the_apis_own_scheme_host_and_port() -> None:
    import requests

    from linq_nb.client import _TokenAuth

    def sent(base_url: str, url: str) -> bool:
        prepared = _TokenAuth(SENTINEL_TOKEN, base_url)(requests.Request("GET", url).prepare())
        return prepared.headers.get("X-LINQ-INTEGRATION-TOKEN") == SENTINEL_TOKEN

    assert sent("http://127.0.0.1:8000", "http://127.0.0.1:8000/api/partner/v2/webhook_subscriptions")
    assert not sent("http://127.0.0.1:8000", "http://127.0.0.1:9000/api/partner/v2/webhook_subscriptions")
    assert not sent("http://127.0.0.1:8000", "https://127.0.0.1:8000/x")
    assert not sent("https://api.linqapp.com", "https://api.linqapp.com.evil.example/x")
    assert sent("https://api.linqapp.com", "https://API.linqapp.com:443/x")  # the default port, spelt out
    assert sent("http://api.linqapp.com:80", "http://api.linqapp.com/x")
    assert not sent("https://api.linqapp.com", "https://api.linqapp.com:8443/x")
