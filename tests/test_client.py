"""LinqClient over real HTTP against a sandbox: methods, validation, duplicate guard, previews, connect().

Faults, retries and error mapping are in test_client_faults.py; the secret-leak search in
test_client_secrets.py.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from datetime import timezone
from typing import Any

import pytest
import requests
from requests.auth import AuthBase

import linq_nb
from linq_nb import client as client_module
from linq_nb.client import (
    API_PATH,
    DEFAULT_BASE_URL,
    LinqClient,
    RequestPreview,
    connect,
    embedded_sandbox,
)
from linq_nb.errors import (
    ConfigurationError,
    DuplicateSubscriptionError,
    LinqConnectionError,
    NotFoundError,
    ValidationError,
)
from linq_nb.events import EVENT_TYPES
from linq_nb.models import WebhookSubscription
from linq_nb.sandbox import Sandbox
from tests.conftest import RECEIVER_SECRET, SENTINEL_TOKEN

HOOK = "http://127.0.0.1:9/hook"  # loopback: the sandbox accepts plain http here and never reaches it


def dead_url() -> str:
    """A base URL with nothing listening: any request sent there fails to connect."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def offline() -> Iterator[LinqClient]:
    """A client whose every request would fail to connect: proves that a call sent nothing."""
    c = LinqClient(token=SENTINEL_TOKEN, base_url=dead_url(), max_retries=0)
    yield c
    c.close()


# --------------------------------------------------------------------------- methods


def test_crud_round_trip_returns_typed_subscriptions(client: LinqClient, sandbox: Sandbox) -> None:
    assert client.list_subscriptions() == []
    sub = client.create_subscription(HOOK, ["message.sent", "message.received"], secret="s3cret")
    assert isinstance(sub, WebhookSubscription)
    assert sub.webhook_url == HOOK and sub.events == ("message.sent", "message.received")
    assert sub.active is True and sub.secret_configured is True and sub.version == 2
    assert sub.delivery_attempts == 0 and sub.last_delivered_at is None
    assert sub.created_at is not None and sub.created_at.tzinfo == timezone.utc

    assert client.get_subscription(sub.id) == sub
    assert client.list_subscriptions() == [sub]
    assert sandbox.subscriptions() == [sub.to_api()]

    off = client.update_subscription(sub.id, active=False)
    assert off.active is False and off.events == sub.events and off.webhook_url == HOOK
    assert off.secret_configured is True  # a missing secret keeps the stored one

    client.delete_subscription(sub.id)
    with pytest.raises(NotFoundError):
        client.get_subscription(sub.id)
    assert client.list_subscriptions() == [] and sandbox.subscriptions() == []


def test_create_defaults_and_options(client: LinqClient) -> None:
    plain = client.create_subscription(HOOK, ["message.read"])
    assert plain.active is True and plain.secret_configured is False
    off = client.create_subscription(HOOK + "/2", ("call.completed",), active=False, secret="x")
    assert off.active is False and off.secret_configured is True


def test_events_given_as_a_set_follow_the_catalogue_order_and_repeats_are_dropped(client: LinqClient) -> None:
    sub = client.create_subscription(HOOK, {"message.read", "message.sent"})
    assert sub.events == ("message.sent", "message.read")
    again = client.create_subscription(HOOK + "/2", ["chat.created", "chat.created"])
    assert again.events == ("chat.created",)


def test_update_changes_only_what_is_given(client: LinqClient) -> None:
    sub = client.create_subscription(HOOK, ["message.sent"], secret="s3cret", active=False)
    moved = client.update_subscription(sub.id, webhook_url=HOOK + "/moved")
    assert moved.webhook_url == HOOK + "/moved"
    assert (moved.events, moved.active, moved.secret_configured) == (sub.events, False, True)
    more = client.update_subscription(sub.id, events=["message.sent", "message.read"], active=True)
    assert more.events == ("message.sent", "message.read") and more.active and more.webhook_url == HOOK + "/moved"
    assert client.update_subscription(sub.id, active=False, secret=None).secret_configured is True  # None keeps it


def test_update_with_a_secret_sets_one(client: LinqClient) -> None:
    sub = client.create_subscription(HOOK, ["message.sent"])
    assert sub.secret_configured is False
    assert client.update_subscription(sub.id, secret="new-secret").secret_configured is True


def test_update_sends_a_full_body_without_secret_unless_given(client: LinqClient) -> None:
    sub = client.create_subscription(HOOK, ["message.sent"], secret="s3cret")
    kept = client.preview_update(sub.id, active=False).body
    assert kept == {"webhook_subscription": {"webhook_url": HOOK, "version": 2, "active": False,
                                             "events": ["message.sent"]}}
    replaced = client.preview_update(sub.id, secret="other").body
    assert replaced is not None and replaced["webhook_subscription"]["secret"] == "<webhook-secret>"


def test_ids_may_be_subscriptions_or_digit_strings(client: LinqClient) -> None:
    sub = client.create_subscription(HOOK, ["message.sent"])
    assert client.get_subscription(str(sub.id)) == sub
    assert client.update_subscription(sub, active=False).active is False
    client.delete_subscription(sub)
    assert client.list_subscriptions() == []


def test_unknown_ids_are_not_found_for_every_method(client: LinqClient) -> None:
    for call in (lambda: client.get_subscription(424242), lambda: client.update_subscription(424242, active=False),
                 lambda: client.delete_subscription(424242)):
        with pytest.raises(NotFoundError) as info:
            call()
        assert info.value.status == 404 and info.value.path == f"{API_PATH}/424242"


def test_request_is_the_public_choke_point(client: LinqClient) -> None:
    sub = client.create_subscription(HOOK, ["message.sent"])
    data = client.request("GET", API_PATH)
    assert data == {"webhook_subscriptions": [sub.to_api()]}
    assert client.request("delete", f"{API_PATH}/{sub.id}") is None  # 204: no body
    assert client.request("GET", API_PATH.lstrip("/")) == {"webhook_subscriptions": []}


# --------------------------------------------------------------------------- validation before sending


BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"events": ["message.sent", "message.nope"]}, "unknown event 'message.nope'; valid events: message.sent"),
    ({"events": []}, "events must name at least one event"),
    ({"events": "message.sent"}, "such as ['message.sent'], not a single string"),
    ({"webhook_url": "/relative/path"}, "must be an absolute http(s) URL"),
    ({"webhook_url": "ftp://example.com/hook"}, "must be an absolute http(s) URL"),
    ({"webhook_url": ""}, "must be an absolute http(s) URL"),
    ({"version": 3}, "version must be 2 for the v2 API, got 3"),
    ({"version": True}, "version must be an integer"),
    ({"secret": 1234}, "secret must be a string, got int"),
    ({"secret": ""}, "secret must not be empty"),
    ({"active": "yes"}, "active must be a boolean"),
]


@pytest.mark.parametrize(("change", "expected"), BAD_CREATES, ids=[str(c) for c, _ in BAD_CREATES])
def test_bad_creates_are_refused_before_any_request(offline: LinqClient, client: LinqClient, sandbox: Sandbox,
                                                    change: dict[str, Any], expected: str) -> None:
    args: dict[str, Any] = {"webhook_url": HOOK, "events": ["message.sent"], **change}
    url, events = args.pop("webhook_url"), args.pop("events")
    for c in (offline, client):  # offline: a request would be a LinqConnectionError, not a ValidationError
        with pytest.raises(ValidationError) as info:
            c.create_subscription(url, events, **args)
        assert any(expected in e for e in info.value.errors), info.value.errors
        assert info.value.status is None and "not sent" in info.value.message
    assert sandbox.subscriptions() == []


def test_unknown_event_error_lists_every_valid_event(offline: LinqClient) -> None:
    with pytest.raises(ValidationError) as info:
        offline.create_subscription(HOOK, ["message.sendt"])
    assert all(name in str(info.value) for name in EVENT_TYPES)


def test_several_problems_are_all_reported(offline: LinqClient) -> None:
    with pytest.raises(ValidationError) as info:
        offline.create_subscription("nope", ["bogus"], version=1)
    assert len(info.value.errors) == 3 and "3 problems" in info.value.message


@pytest.mark.parametrize("change", [{"events": ["bogus"]}, {"webhook_url": "mailto:x@example.com"},
                                    {"active": 1}, {"secret": ""}, {"secret": 5}])
def test_bad_updates_are_refused_before_fetching_the_subscription(offline: LinqClient, change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        offline.update_subscription(1, **change)
    with pytest.raises(ValidationError):
        offline.preview_update(1, **change)


@pytest.mark.parametrize("nothing", [{}, {"secret": None}])
def test_an_update_with_nothing_to_change_is_refused_and_sends_nothing(offline: LinqClient,
                                                                       nothing: dict[str, Any]) -> None:
    for call in (offline.update_subscription, offline.preview_update):
        with pytest.raises(ValidationError, match="nothing to change") as info:
            call(7, **nothing)  # offline: any request at all would raise LinqConnectionError instead
        assert "active=False" in (info.value.hint or "")


def test_an_update_with_nothing_to_change_leaves_the_subscription_as_it_was(client: LinqClient) -> None:
    sub = client.create_subscription(HOOK, ["message.sent"])
    with pytest.raises(ValidationError):
        client.update_subscription(sub)
    assert client.get_subscription(sub) == sub  # same updated_at: no PUT reached the sandbox


@pytest.mark.parametrize(("call", "wrong", "right"), [
    (lambda c, **kw: c.create_subscription(events=["message.sent"], **kw), "url", "webhook_url"),
    (lambda c, **kw: c.update_subscription(1, **kw), "url", "webhook_url"),
    (lambda c, **kw: c.update_subscription(1, **kw), "event", "events"),
    (lambda c, **kw: c.update_subscription(1, **kw), "enabled", "active"),
    (lambda c, **kw: c.preview_update(1, **kw), "activ", "active"),
    (lambda c, **kw: c.preview_create(HOOK, ["message.sent"], **kw), "secrt", "secret"),
])
def test_a_wrong_keyword_names_the_right_one(offline: LinqClient, call: Any, wrong: str, right: str) -> None:
    with pytest.raises(TypeError) as info:
        call(offline, **{wrong: "x"})
    assert f"unexpected keyword argument {wrong!r}; did you mean {right}=?" in str(info.value)


def test_a_wrong_keyword_with_no_near_name_lists_the_keywords(offline: LinqClient) -> None:
    with pytest.raises(TypeError, match=r"'colour' It takes: id, webhook_url, events, secret, active\.$"):
        offline.update_subscription(1, colour="red")  # type: ignore[call-arg]


def test_other_type_errors_are_left_as_python_says_them(offline: LinqClient) -> None:
    with pytest.raises(TypeError, match="positional argument") as info:
        offline.update_subscription(1, False, active=True)  # type: ignore[misc]
    assert "did you mean" not in str(info.value) and "It takes" not in str(info.value)


@pytest.mark.parametrize("bad_id", [0, -3, "abc", "", True, None, 1.5])
def test_bad_ids_are_refused_before_any_request(offline: LinqClient, bad_id: Any) -> None:
    for call in (offline.get_subscription, offline.delete_subscription, offline.preview_delete,
                 lambda i: offline.update_subscription(i, active=True)):
        with pytest.raises(ValidationError, match="positive integer"):
            call(bad_id)


def test_the_servers_own_validation_errors_come_back_with_its_messages(client: LinqClient, sandbox: Sandbox) -> None:
    # The client accepts any http(s) URL; the sandbox, like Linq, refuses plain http off this machine.
    with pytest.raises(ValidationError) as info:
        client.create_subscription("http://example.com/hook", ["message.sent"])
    assert info.value.status == 422 and info.value.method == "POST" and info.value.path == API_PATH
    assert any("must use https" in e for e in info.value.errors)
    assert sandbox.subscriptions() == []


def test_plain_http_or_localhost_to_the_live_api_is_a_warning_not_an_error() -> None:
    live = LinqClient(token=SENTINEL_TOKEN)
    assert live.mode == "live"
    # Warnings turned into errors stop the call right at the warning, before any request to the live API;
    # if the warning ever broke, conftest's network guard refuses the request (and fails this test).
    for url, match in (("http://example.com/hook", "plain http"), ("https://localhost/hook", "this machine")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(UserWarning, match=match):
                live.create_subscription(url, ["message.sent"])
    live.close()


def test_no_warning_for_loopback_http_in_sandbox_mode(client: LinqClient) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.create_subscription(HOOK, ["message.sent"])


# --------------------------------------------------------------------------- duplicate guard


def test_duplicate_guard_refuses_same_url_with_overlapping_events(client: LinqClient, sandbox: Sandbox) -> None:
    first = client.create_subscription(HOOK, ["message.sent", "message.received"])
    second = client.create_subscription(HOOK, ["message.read"])  # same URL, no overlap: fine
    with pytest.raises(DuplicateSubscriptionError) as info:
        client.create_subscription(HOOK, ["message.received", "message.read", "call.completed"])
    err = info.value
    assert err.existing_ids == [first.id, second.id]
    assert err.overlapping_events == ["message.received", "message.read"]
    assert f"#{first.id}" in str(err) and f"#{second.id}" in str(err) and "message.received" in str(err)
    assert "allow_duplicate=True" in str(err)
    assert len(sandbox.subscriptions()) == 2


def test_duplicate_guard_allows_other_urls_and_explicit_duplicates(client: LinqClient, sandbox: Sandbox) -> None:
    client.create_subscription(HOOK, ["message.sent"])
    client.create_subscription(HOOK + "/other", ["message.sent"])
    twin = client.create_subscription(HOOK, ["message.sent"], allow_duplicate=True)
    assert twin.webhook_url == HOOK
    assert [s["webhook_url"] for s in sandbox.subscriptions()].count(HOOK) == 2


def test_duplicate_guard_ignores_case_of_scheme_and_host_and_counts_inactive(client: LinqClient) -> None:
    old = client.create_subscription("https://hooks.example.com/hook", ["message.sent"], active=False)
    with pytest.raises(DuplicateSubscriptionError, match="inactive") as info:
        client.create_subscription("HTTPS://HOOKS.Example.COM/hook", ["message.sent"])  # urlsplit lowers only scheme
    assert info.value.existing_ids == [old.id]


def test_find_duplicates(client: LinqClient) -> None:
    a = client.create_subscription(HOOK, ["message.sent", "message.read"])
    client.create_subscription(HOOK + "/b", ["message.sent"])
    assert client.find_duplicates(HOOK, ["message.read", "call.completed"]) == [(a, ("message.read",))]
    assert client.find_duplicates(HOOK, ["call.completed"]) == []


# --------------------------------------------------------------------------- previews


def test_preview_create_is_the_exact_request_as_curl(offline: LinqClient) -> None:
    preview = offline.preview_create("https://example.com/webhooks/linq", ["message.sent", "message.received"],
                                     secret="your-webhook-secret-key")
    assert isinstance(preview, RequestPreview)
    body = {"webhook_subscription": {"webhook_url": "https://example.com/webhooks/linq", "version": 2,
                                     "secret": "<webhook-secret>", "active": True,
                                     "events": ["message.sent", "message.received"]}}
    assert (preview.method, preview.url, preview.body) == ("POST", offline.base_url + API_PATH, body)
    assert preview.headers == {"Content-Type": "application/json",
                               "X-LINQ-INTEGRATION-TOKEN": "<X-LINQ-INTEGRATION-TOKEN>"}
    assert json.loads(preview.json) == body
    assert preview.curl == (
        "curl --request POST \\\n"
        f"  --url {offline.base_url}{API_PATH} \\\n"
        "  --header 'Content-Type: application/json' \\\n"
        "  --header 'X-LINQ-INTEGRATION-TOKEN: <X-LINQ-INTEGRATION-TOKEN>' \\\n"
        f"  --data '{json.dumps(body, indent=2)}'"
    )
    assert str(preview) == preview.curl
    page = preview._repr_html_()
    assert "&lt;X-LINQ-INTEGRATION-TOKEN&gt;" in page and "&lt;webhook-secret&gt;" in page


def test_preview_curl_quotes_single_quotes_for_the_shell(offline: LinqClient) -> None:
    preview = offline.preview_create("https://example.com/it's", ["message.sent"])
    out = subprocess.run(["sh", "-c", "printf %s " + preview.curl.split("--data ", 1)[1]],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == preview.body


def test_preview_create_validates_but_sends_nothing(offline: LinqClient, client: LinqClient,
                                                    sandbox: Sandbox) -> None:
    with pytest.raises(ValidationError):
        offline.preview_create(HOOK, ["nope"])
    client.preview_create(HOOK, ["message.sent"])
    assert sandbox.subscriptions() == []


def test_preview_update_and_delete(client: LinqClient) -> None:
    sub = client.create_subscription(HOOK, ["message.sent"])
    up = client.preview_update(sub.id, events=["message.read"])
    assert up.method == "PUT" and up.url.endswith(f"{API_PATH}/{sub.id}")
    assert up.body == {"webhook_subscription": {"webhook_url": HOOK, "version": 2, "active": True,
                                                "events": ["message.read"]}}
    assert client.get_subscription(sub.id).events == ("message.sent",)  # nothing changed
    down = client.preview_delete(sub.id)
    assert down.body is None and down.json == ""
    assert down.curl == (f"curl --request DELETE \\\n  --url {client.base_url}{API_PATH}/{sub.id} \\\n"
                         "  --header 'X-LINQ-INTEGRATION-TOKEN: <X-LINQ-INTEGRATION-TOKEN>'")
    assert client.list_subscriptions() == [sub]


# --------------------------------------------------------------------------- sandbox routes


def test_sandbox_route_triggers_events_through_the_same_client(client: LinqClient, receiver: Any,
                                                              sandbox: Any) -> None:
    sub = client.create_subscription(receiver.url, ["message.received"], secret=RECEIVER_SECRET)
    queued = client.sandbox_route("POST", "/_sandbox/events",
                                  {"event_type": "message.received", "data": {"text": "hi"}})
    assert queued["deliveries_queued"] == 1
    assert receiver.wait_for_events(1)
    assert receiver.events[0]["event_id"] == queued["event_id"] and receiver.requests[0]["verified"] is True
    assert sandbox.wait_for_deliveries()  # the attempt is logged once the receiver's answer is back
    log = client.sandbox_route("GET", "deliveries")["deliveries"]  # the /_sandbox prefix may be left out
    assert [(d["event_id"], d["subscription_id"], d["ok"]) for d in log] == [(queued["event_id"], sub.id, True)]
    assert client.sandbox_route("GET", "/_sandbox/health") == {"ok": True}


def test_sandbox_route_errors_map_like_any_other(client: LinqClient) -> None:
    with pytest.raises(ValidationError) as info:
        client.sandbox_route("POST", "events", {"event_type": "nope"})
    assert info.value.status == 422 and info.value.path == "/_sandbox/events"


def test_sandbox_route_is_refused_in_live_mode() -> None:
    with LinqClient(token=SENTINEL_TOKEN) as live, pytest.raises(ConfigurationError, match="live API"):
        live.sandbox_route("POST", "events", {"event_type": "message.sent"})


# --------------------------------------------------------------------------- configuration and display


def test_missing_token_names_the_environment_variable() -> None:
    with pytest.raises(ConfigurationError, match="LINQ_INTEGRATION_TOKEN"):
        LinqClient()
    with pytest.raises(ConfigurationError, match="LINQ_INTEGRATION_TOKEN"):
        LinqClient(token="   ")


def test_token_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> None:
    monkeypatch.setenv("LINQ_INTEGRATION_TOKEN", SENTINEL_TOKEN)
    assert LinqClient().base_url == DEFAULT_BASE_URL
    monkeypatch.setenv("LINQ_API_BASE_URL", sandbox.url + "/")
    with LinqClient() as c:
        assert c.base_url == sandbox.url and c.mode == "sandbox"
        assert c.list_subscriptions() == []  # the token from the environment works
    with LinqClient(token="other", base_url=DEFAULT_BASE_URL) as c:  # arguments win
        assert c.mode == "live"


def test_base_url_is_normalised_and_checked() -> None:
    assert LinqClient(token="t", base_url="HTTPS://API.linqapp.com/").mode == "live"
    assert LinqClient(token="t", base_url="https://api.linqapp.com/api/partner/v2/").base_url == DEFAULT_BASE_URL
    assert LinqClient(token="t", base_url="https://linq.example.edu:8443").mode == "sandbox"
    for bad in ("api.linqapp.com", "ftp://x", ""):
        with pytest.raises(ConfigurationError, match="base_url"):
            LinqClient(token="t", base_url=bad)


def test_bad_settings_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="control characters"):
        LinqClient(token="abc\ndef")
    with pytest.raises(ConfigurationError, match="timeout"):
        LinqClient(token="t", timeout=0)
    with pytest.raises(ConfigurationError, match="max_retries"):
        LinqClient(token="t", max_retries=-1)


def test_repr_str_and_html_show_mode_and_base_url(client: LinqClient, sandbox: Sandbox) -> None:
    assert repr(client) == f"<LinqClient mode='sandbox' base_url='{sandbox.url}'>"
    assert str(client) == f"LinqClient (sandbox mode) at {sandbox.url}"
    assert "<b>sandbox</b>" in client._repr_html_() and sandbox.url in client._repr_html_()
    live = LinqClient(token="t")
    assert repr(live) == "<LinqClient mode='live' base_url='https://api.linqapp.com'>"
    assert "<b>live</b>" in live._repr_html_() and "changes are real" in live._repr_html_()


def test_context_manager_closes_and_a_closed_client_says_so(sandbox: Sandbox) -> None:
    with LinqClient(token=SENTINEL_TOKEN, base_url=sandbox.url) as c:
        assert c.list_subscriptions() == []
    with pytest.raises(ConfigurationError, match="closed"):
        c.list_subscriptions()
    c.close()  # twice is fine


def test_the_token_is_only_sent_to_the_configured_api(client: LinqClient, sandbox: Sandbox) -> None:
    auth = client._session.auth
    assert "[secure]" in repr(auth)
    # The auth object adds the header for the client's own origin only.

    mine = requests.Request("GET", sandbox.url + API_PATH).prepare()
    other = requests.Request("GET", "https://evil.example.com/").prepare()
    assert isinstance(auth, AuthBase)
    assert auth(mine).headers["X-LINQ-INTEGRATION-TOKEN"] == SENTINEL_TOKEN
    assert "X-LINQ-INTEGRATION-TOKEN" not in auth(other).headers


# --------------------------------------------------------------------------- connect()


@pytest.fixture
def fresh_embedded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let connect() start its own embedded sandbox in this test, and stop it afterwards."""
    monkeypatch.setattr(client_module, "_embedded", None)
    yield
    started = client_module._embedded
    if started is not None:
        started.close()


def test_connect_without_a_token_starts_one_embedded_sandbox(fresh_embedded: None,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    assert embedded_sandbox() is None
    caplog.set_level(logging.INFO, logger="linq_nb.client")
    first = connect(timeout=5.0)
    sb = embedded_sandbox()
    assert isinstance(sb, Sandbox) and sb.running
    assert first.mode == "sandbox" and first.base_url == sb.url and first.timeout == 5.0
    assert "sandbox mode" in caplog.text and "LINQ_INTEGRATION_TOKEN" in caplog.text
    sub = first.create_subscription(HOOK, ["message.sent"])
    second = connect()
    assert embedded_sandbox() is sb and second.base_url == sb.url  # once per process
    assert second.list_subscriptions() == [sub]
    first.close()
    second.close()


def test_connect_replaces_an_embedded_sandbox_that_was_stopped(fresh_embedded: None) -> None:
    with connect() as first:
        old = embedded_sandbox()
        assert old is not None
        old.close()
    with connect() as second:
        new = embedded_sandbox()
        assert new is not old and new is not None and new.running
        assert second.list_subscriptions() == []
    assert first.base_url == old.url


def test_connect_with_a_token_uses_the_environment(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox,
                                                   fresh_embedded: None) -> None:
    monkeypatch.setenv("LINQ_INTEGRATION_TOKEN", SENTINEL_TOKEN)
    live = connect()
    assert live.mode == "live" and live.base_url == DEFAULT_BASE_URL
    monkeypatch.setenv("LINQ_API_BASE_URL", sandbox.url)  # a classroom sandbox
    shared = connect()
    assert shared.base_url == sandbox.url and shared.list_subscriptions() == []
    assert embedded_sandbox() is None  # nothing started
    live.close()
    shared.close()


def test_connect_with_a_base_url_but_no_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                               fresh_embedded: None) -> None:
    monkeypatch.setenv("LINQ_API_BASE_URL", "http://127.0.0.1:8765")
    with pytest.raises(ConfigurationError, match="LINQ_INTEGRATION_TOKEN") as info:
        connect()
    assert "LINQ_API_BASE_URL" in str(info.value)
    assert embedded_sandbox() is None


def test_connect_explicit_token_and_base_url(sandbox: Sandbox, fresh_embedded: None) -> None:
    with connect(token=SENTINEL_TOKEN, base_url=sandbox.url) as c:
        assert c.base_url == sandbox.url and c.list_subscriptions() == []
    assert embedded_sandbox() is None


# --------------------------------------------------------------------------- module hygiene


def test_all_is_complete_and_exported_at_the_top_level() -> None:
    public = {n for n in vars(client_module) if not n.startswith("_")}
    assert set(client_module.__all__) <= public
    for name in ("LinqClient", "connect", "DEFAULT_BASE_URL"):
        assert getattr(linq_nb, name) is getattr(client_module, name)
    assert DEFAULT_BASE_URL == "https://api.linqapp.com"


def test_importing_the_client_loads_no_sandbox_pandas_or_widgets() -> None:
    code = ("import sys, linq_nb.client; "
            "bad = [m for m in ('linq_nb.sandbox', 'linq_nb.frames', 'linq_nb.widgets', 'pandas', 'ipywidgets') "
            "if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_connection_errors_are_not_validation_errors(offline: LinqClient) -> None:
    """The offline fixture really is offline (what the tests above rely on)."""
    with pytest.raises(LinqConnectionError):
        offline.list_subscriptions()
