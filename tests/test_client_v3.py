"""LinqClientV3 over real HTTP against the sandbox's v3 routes: the v2 client's habits, in v3's terms.

CRUD and typed results, the signing secret shown once and masked, v3's errors with hints and
trace ids, curl previews with the token masked, retries of GET/PUT/DELETE, a create never
resent, the once-per-account target_url guard, connect(api=...) and LINQ_API_VERSION, and a
v3 delivery verified end to end by a Receiver with the secret create returned.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import linq_nb
from linq_nb import client as client_module
from linq_nb.client import LinqClient, connect
from linq_nb.client_v3 import LinqClientV3
from linq_nb.errors import (
    AuthenticationError,
    ConfigurationError,
    DuplicateSubscriptionError,
    LinqError,
    NotFoundError,
    ServerError,
    ValidationError,
)
from linq_nb.models import WebhookSubscriptionV3
from linq_nb.receiver import Receiver
from linq_nb.sandbox import Sandbox
from linq_nb.wire import v3 as wire_v3
from tests.conftest import SENTINEL_TOKEN

HOOK = "https://example.com/hooks/v3"
EVENT = "message.received"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def make_v3(sandbox: Sandbox) -> Iterator[Callable[..., LinqClientV3]]:
    made: list[LinqClientV3] = []

    def make(**kwargs: Any) -> LinqClientV3:
        kwargs.setdefault("token", SENTINEL_TOKEN)
        kwargs.setdefault("base_url", sandbox.url)
        kwargs.setdefault("backoff_factor", 0.01)
        c = LinqClientV3(**kwargs)
        c.recovery_delays = (0.0, 0.1)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


# --- CRUD and the typed model ---------------------------------------------------------------------------------------

def test_create_list_get_update_delete(v3: LinqClientV3) -> None:
    sub = v3.create_subscription(HOOK, [EVENT, "message.delivered"], phone_numbers=["+14155551234"])
    assert isinstance(sub, WebhookSubscriptionV3)
    assert wire_v3.parse_id(sub.id) == sub.id  # a UUID
    assert sub.subscribed_events == (EVENT, "message.delivered") and sub.is_active
    assert sub.phone_numbers == ("+14155551234",)
    assert sub.signing_secret is not None and sub.signing_secret.startswith("whsec_")
    assert sub.created_at is not None and sub.updated_at is not None

    listed = v3.list_subscriptions()
    assert [s.id for s in listed] == [sub.id]
    assert listed[0].signing_secret is None  # shown once, by create only
    assert listed[0] == sub  # equality ignores the secret
    assert v3.get_subscription(sub.id) == v3.get_subscription(sub) == listed[0]

    off = v3.update_subscription(sub, is_active=False)
    assert off.is_active is False and off.subscribed_events == sub.subscribed_events  # the rest unchanged
    cleared = v3.update_subscription(sub.id, phone_numbers=None)
    assert cleared.phone_numbers is None and cleared.is_active is False
    moved = v3.update_subscription(sub.id, target_url=HOOK + "/moved", subscribed_events={"message.delivered"})
    assert moved.target_url == HOOK + "/moved" and moved.subscribed_events == ("message.delivered",)

    v3.delete_subscription(sub)
    assert v3.list_subscriptions() == []
    with pytest.raises(NotFoundError):
        v3.get_subscription(sub.id)


def test_generic_names_and_no_counters(v3: LinqClientV3) -> None:
    sub = v3.create_subscription(HOOK + "?version=2026-02-03", [EVENT])
    assert (sub.webhook_url, sub.events, sub.active, sub.secret_configured) == (sub.target_url, (EVENT,), True, True)
    assert sub.api_version == "v3" and sub.has_counters is False
    assert not hasattr(sub, "delivery_attempts") and not hasattr(sub, "last_delivered_at")
    assert sub.webhook_version == "2026-02-03"
    assert v3.api == "v3"


def test_signing_secret_masked_everywhere_but_the_attribute(v3: LinqClientV3) -> None:
    sub = v3.create_subscription(HOOK, [EVENT])
    secret = sub.signing_secret
    assert secret
    for text in (repr(sub), str(sub), sub._repr_html_(), repr([sub]), str(sub.to_api())):
        assert secret not in text
    assert "signing_secret='[secure]'" in repr(sub)
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(sub)
    listed = v3.list_subscriptions()[0]
    assert pickle.loads(pickle.dumps(listed)) == listed  # one without a secret pickles as usual


def test_event_types_are_the_catalogue(v3: LinqClientV3) -> None:
    assert v3.event_types() == list(wire_v3.EVENT_TYPES)


def test_v2_and_v3_lists_are_separate(v3: LinqClientV3, client: LinqClient) -> None:
    v2_sub = client.create_subscription(HOOK, ["message.received"])
    v3_sub = v3.create_subscription(HOOK, [EVENT])
    assert [s.id for s in client.list_subscriptions()] == [v2_sub.id]
    assert [s.id for s in v3.list_subscriptions()] == [v3_sub.id]


# --- validation before sending, and v3's errors ---------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"target_url": HOOK, "subscribed_events": EVENT}, "not a single string"),
    ({"target_url": HOOK, "subscribed_events": ["reaction.sent"]}, "reaction.sent"),
    ({"target_url": "http://example.com/hook", "subscribed_events": [EVENT]}, "https"),
    ({"target_url": HOOK, "subscribed_events": [EVENT], "phone_numbers": ["415 555 1234"]}, "E.164"),
    ({"target_url": HOOK, "subscribed_events": []}, "at least one event"),
])
def test_bad_values_are_refused_before_sending(v3: LinqClientV3, sandbox: Sandbox, kwargs: dict[str, Any],
                                               needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        v3.create_subscription(**kwargs)
    assert "was not sent" in info.value.message
    assert needle in str(info.value)
    assert v3.list_subscriptions() == []


def test_ids_must_be_uuids(v3: LinqClientV3) -> None:
    with pytest.raises(ValidationError, match="an integer is a v2 id"):
        v3.get_subscription(12)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="UUID"):
        v3.delete_subscription("not-a-uuid")
    with pytest.raises(ValidationError, match="nothing to change"):
        v3.update_subscription(UNKNOWN_ID)


def test_not_found_carries_v3_code_trace_id_and_hint(v3: LinqClientV3) -> None:
    with pytest.raises(NotFoundError) as info:
        v3.get_subscription(UNKNOWN_ID)
    error = info.value
    assert error.status == 404 and error.error_code == "2001"
    assert error.trace_id
    assert f"trace_id: {error.trace_id}" in str(error) and error.trace_id in error._repr_html_()
    assert "List your subscriptions" in str(error)


def test_wrong_token_is_an_authentication_error(make_v3: Callable[..., LinqClientV3]) -> None:
    bad = make_v3(token="tok_not_issued_anywhere")
    with pytest.raises(AuthenticationError) as info:
        bad.list_subscriptions()
    assert info.value.status == 401 and info.value.error_code == "2004"
    assert "tok_not_issued_anywhere" not in str(info.value)


# --- the duplicate guard: target_url once per account ---------------------------------------------------------------

def test_second_create_with_the_same_target_url_is_refused_before_sending(v3: LinqClientV3) -> None:
    first = v3.create_subscription(HOOK, [EVENT])
    with pytest.raises(DuplicateSubscriptionError) as info:
        v3.create_subscription(HOOK.replace("example.com", "EXAMPLE.com"), [EVENT, "message.delivered"])
    assert info.value.existing_ids == [first.id]
    assert info.value.status is None  # refused here: no request was sent
    assert info.value.overlapping_events == [EVENT]
    assert "once per account" in info.value.message and first.id in info.value.hint
    assert [s.id for s in v3.list_subscriptions()] == [first.id]


def test_a_409_from_the_server_becomes_the_same_duplicate_error(v3: LinqClientV3,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    first = v3.create_subscription(HOOK, [EVENT])
    other = v3.create_subscription(HOOK + "/other", [EVENT])
    monkeypatch.setattr(v3, "_refuse_duplicates", lambda *a: None)  # as if another process created it meanwhile
    with pytest.raises(DuplicateSubscriptionError) as info:
        v3.create_subscription(HOOK, [EVENT])
    assert info.value.status == 409 and info.value.existing_ids == [first.id]
    with pytest.raises(DuplicateSubscriptionError):  # an update onto a used URL too
        v3.update_subscription(other, target_url=HOOK)


# --- retries, and a create never resent -----------------------------------------------------------------------------

def test_get_put_delete_are_retried(v3: LinqClientV3, sandbox: Sandbox) -> None:
    sub = v3.create_subscription(HOOK, [EVENT])
    sandbox.fail_next(1, 503)
    assert v3.get_subscription(sub.id).id == sub.id
    sandbox.fail_next(2, 500)
    assert v3.update_subscription(sub.id, is_active=False).is_active is False
    sandbox.fail_next(1, 502)
    v3.delete_subscription(sub.id)
    assert v3.list_subscriptions() == []


def test_a_failed_create_is_not_resent(v3: LinqClientV3, sandbox: Sandbox) -> None:
    sandbox.fail_next(1, status=None)  # the create's own list goes through
    sandbox.fail_next(1, 503)  # the POST fails before it is stored
    with pytest.raises(ServerError):
        v3.create_subscription(HOOK, [EVENT])
    assert v3.list_subscriptions() == []  # nothing stored, nothing resent


def test_a_create_whose_answer_is_lost_is_reported_not_resent(v3: LinqClientV3, sandbox: Sandbox) -> None:
    sandbox.fail_next(1, status=None)
    sandbox.fail_next(1, 503, after=True)  # stored, but the answer with the secret is lost
    with pytest.raises(ServerError) as info:
        v3.create_subscription(HOOK, [EVENT])
    stored = v3.list_subscriptions()
    assert len(stored) == 1
    found = info.value.subscription  # type: ignore[attr-defined]
    assert found.id == stored[0].id and found.signing_secret is None
    assert "was lost" in info.value.message and "not resent" in info.value.message
    assert f"delete_subscription({found.id!r})" in info.value.hint


# --- previews -------------------------------------------------------------------------------------------------------

def test_previews_are_curl_with_the_token_masked(v3: LinqClientV3) -> None:
    p = v3.preview_create(HOOK, [EVENT], phone_numbers=["+14155551234"])
    assert p.method == "POST" and p.url.endswith("/api/partner/v3/webhook-subscriptions")
    assert p.headers["Authorization"] == "Bearer <token>"
    assert p.body == {"target_url": HOOK, "subscribed_events": [EVENT], "phone_numbers": ["+14155551234"]}
    assert "--header 'Authorization: Bearer <token>'" in p.curl
    assert "Replace &lt;token&gt; with your token" in p._repr_html_()
    sub = v3.create_subscription(HOOK, [EVENT])
    u = v3.preview_update(sub, is_active=False)
    assert u.method == "PUT" and u.body == {"is_active": False} and u.url.endswith(sub.id)
    d = v3.preview_delete(sub.id)
    assert d.curl.splitlines()[0] == "curl --request DELETE \\" and d.body is None
    for preview in (p, u, d):
        assert SENTINEL_TOKEN not in preview.curl + repr(preview) + preview._repr_html_()
    assert [s.is_active for s in v3.list_subscriptions()] == [True]  # a preview changes nothing


def test_token_never_shows(v3: LinqClientV3, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="linq_nb")
    sub = v3.create_subscription(HOOK, [EVENT])
    v3.list_subscriptions()
    with pytest.raises(LinqError) as info:
        v3.get_subscription(UNKNOWN_ID)
    texts = [repr(v3), str(v3), v3._repr_html_(), repr(v3._session.auth), repr(sub), str(info.value),
             info.value._repr_html_(), caplog.text]
    assert all(SENTINEL_TOKEN not in t for t in texts)
    assert all(str(sub.signing_secret) not in t for t in texts)
    assert repr(v3._session.auth) == "<_TokenAuth Authorization=[secure]>"
    with pytest.raises(TypeError, match="LinqClientV3 holds an integration token"):
        pickle.dumps(v3)


def test_base_url_in_the_sdk_form_is_accepted(sandbox: Sandbox) -> None:
    with LinqClientV3(token=SENTINEL_TOKEN, base_url=sandbox.url + "/api/partner/") as c:
        assert c.base_url == sandbox.url
        assert c.list_subscriptions() == []


# --- connect(api=...) and LINQ_API_VERSION ----------------------------------------------------------------------------

def test_connect_picks_the_version(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINQ_INTEGRATION_TOKEN", SENTINEL_TOKEN)
    monkeypatch.setenv("LINQ_API_BASE_URL", sandbox.url)
    monkeypatch.delenv("LINQ_API_VERSION", raising=False)
    with connect() as c2, connect(api="v3") as c3:
        assert type(c2) is LinqClient and type(c3) is LinqClientV3
        assert c3.list_subscriptions() == [] and c3.mode == "sandbox"
    monkeypatch.setenv("LINQ_API_VERSION", "v3")
    with connect() as c:
        assert isinstance(c, LinqClientV3)
    with connect(api="v2") as c:  # the argument wins over the environment
        assert type(c) is LinqClient
    monkeypatch.setenv("LINQ_API_VERSION", "v4")
    with pytest.raises(ConfigurationError, match="LINQ_API_VERSION='v4' is not a Linq API version"):
        connect()


def test_connect_v3_embedded_sandbox_shares_the_v2_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINQ_API_VERSION", raising=False)
    c2, c3 = connect(), connect(api="v3")
    try:
        assert c2.base_url == c3.base_url and isinstance(c3, LinqClientV3)
        sub = c3.create_subscription("http://127.0.0.1:9/hook", [EVENT])
        assert [s.id for s in c3.list_subscriptions()] == [sub.id]
        c3.delete_subscription(sub)
    finally:
        c2.close()
        c3.close()
        started = client_module._embedded
        if started is not None:
            started.close()


def test_public_names() -> None:
    assert linq_nb.LinqClientV3 is LinqClientV3
    assert linq_nb.WebhookSubscriptionV3 is WebhookSubscriptionV3


# --- end to end: a delivery the Receiver verifies with the secret create returned ------------------------------------

def test_triggered_event_reaches_a_v3_subscription_and_verifies(v3: LinqClientV3, sandbox: Sandbox) -> None:
    with Receiver() as receiver:  # its URL is needed for the create, which then shows the secret
        sub = v3.create_subscription(receiver.url, [EVENT])
        assert sub.signing_secret
        receiver.add_secret(sub.signing_secret)
        v3.sandbox_route("POST", "/_sandbox/events", {"event_type": EVENT})
        assert receiver.wait_for_events(1, timeout=10)
        record = receiver.requests[-1]
        assert record["verified"] is True and record["subscription_id"] == sub.id
        event = receiver.events[-1]
        assert event["api_version"] == "v3" and event["event_type"] == EVENT


def test_v2_keywords_on_a_v3_client_name_the_v3_ones(v3: LinqClientV3) -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'webhook_url'; did you mean target_url=\?"):
        v3.create_subscription(webhook_url=HOOK, subscribed_events=[EVENT])  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"'active'; did you mean is_active=\?"):
        v3.update_subscription(UNKNOWN_ID, active=False)  # type: ignore[call-arg]
