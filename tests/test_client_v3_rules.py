"""LinqClientV3's rules that mutation testing (``make mutate``) found unpinned, over real HTTP against the
sandbox's v3 routes: which ids are accepted, which fields a call sends, the once-per-URL guard, a 409 as the
subscription that holds the URL, and a create whose answer (with its secret) was lost."""

from __future__ import annotations

import pytest

from linq_nb.client import _UNSET
from linq_nb.client_v3 import LinqClientV3
from linq_nb.errors import DuplicateSubscriptionError, LinqConnectionError, ServerError, ValidationError
from linq_nb.sandbox import Sandbox
from tests.conftest import SENTINEL_TOKEN

HOOK = "https://example.com/hooks/v3"
EVENT = "message.received"
UUID = "b2c3d4e5-f6a7-8901-bcde-f23456789012"
ID_HINT = "Use the id shown by list_subscriptions(), such as b2c3d4e5-f6a7-8901-bcde-f23456789012."


# --------------------------------------------------------------------------- ids

def test_an_id_is_a_uuid_string_or_the_subscription_itself(v3: LinqClientV3) -> None:
    sub = v3.create_subscription(HOOK, [EVENT])
    assert v3.get_subscription(sub).id == sub.id
    assert v3.get_subscription(f"  {sub.id.upper()} \n").id == sub.id  # stripped and made canonical
    assert v3.preview_delete("{" + UUID.upper() + "}").url.endswith("/v3/webhook-subscriptions/" + UUID)


@pytest.mark.parametrize(("value", "message"), [
    (12, "subscription id must be a UUID string, got 12 (an integer is a v2 id; v3's are UUIDs)"),
    (True, "subscription id must be a UUID string, got True"),
    ("12", "subscription id must be a UUID string, got '12'"),
    (None, "subscription id must be a UUID string, got None"),
    ("x" * 300, "subscription id must be a UUID string, got '" + "x" * 156),  # cut at 200 characters
])
def test_anything_else_is_refused_before_sending_saying_what_an_id_is(v3: LinqClientV3, value: object,
                                                                     message: str) -> None:
    with pytest.raises(ValidationError) as info:
        v3.get_subscription(value)  # type: ignore[arg-type]
    assert info.value.message == message
    assert info.value.hint == ID_HINT
    assert info.value.status is None


# --------------------------------------------------------------------------- the fields a call sends

def test_a_create_leaves_out_the_optional_fields_given_as_none(v3: LinqClientV3) -> None:
    body = (v3.preview_create(HOOK, [EVENT], phone_numbers=None, routing_key_header=None,
                                        routing_id_header=None).body)
    assert body == {"target_url": HOOK, "subscribed_events": [EVENT]}
    body = (v3.preview_create(HOOK, (EVENT, EVENT, "message.sent"), phone_numbers=("+14155551234",),
                                        routing_key_header="X-Key").body)
    assert body == {"target_url": HOOK, "subscribed_events": [EVENT, "message.sent"],
                    "phone_numbers": ["+14155551234"], "routing_key_header": "X-Key"}
    body = (v3.preview_create(HOOK, {EVENT}, phone_numbers={"+14155551234"}).body)
    assert body["phone_numbers"] == ["+14155551234"] and body["subscribed_events"] == [EVENT]
    # a set of events goes in v3's catalogue order (not v2's, not alphabetical)
    body = v3.preview_create(HOOK, {"call.initiated", "phone_number.status_updated"}).body
    assert body["subscribed_events"] == ["phone_number.status_updated", "call.initiated"]


def test_a_create_is_checked_by_the_create_rules(v3: LinqClientV3) -> None:
    with pytest.raises(ValidationError) as info:  # "" clears a routing header in an update; a create needs a name
        v3.create_subscription(HOOK, [EVENT], routing_key_header="")
    assert info.value.status is None and info.value.errors == [
        "routing_key_header must be an HTTP header name (letters, digits and -, at most 64), such as X-Routing-Key; "
        "got ''"]
    assert v3.list_subscriptions() == []


def test_an_update_sends_only_what_is_given_and_none_clears(v3: LinqClientV3) -> None:
    sub = v3.create_subscription(HOOK, [EVENT], phone_numbers=["+14155551234"], routing_key_header="X-Key")
    assert (v3.preview_update(sub, phone_numbers=None).body) == {"phone_numbers": None}
    assert (v3.preview_update(sub, routing_key_header=None, is_active=False).body) == {
        "routing_key_header": None, "is_active": False}
    cleared = v3.update_subscription(sub, phone_numbers=None, routing_key_header=None)
    assert cleared.phone_numbers is None and cleared.routing_key_header is None
    assert list(v3.get_subscription(sub).subscribed_events) == [EVENT]  # the fields not given are kept


def test_a_single_event_name_is_refused_saying_to_make_it_a_list(v3: LinqClientV3) -> None:
    with pytest.raises(ValidationError) as info:
        v3.create_subscription(HOOK, EVENT)
    assert info.value.errors == [
        "subscribed_events must be a list of event names such as ['message.received'], not a single string"]
    assert info.value.message == ("create_subscription was not sent: subscribed_events must be a list of event "
                                  "names such as ['message.received'], not a single string")
    with pytest.raises(ValidationError) as info:  # and the name inside is checked too
        v3.create_subscription(HOOK, "nope")
    assert info.value.errors == [
        "subscribed_events must be a list of event names such as ['nope'], not a single string",
        "subscribed_events has unknown event 'nope'; GET /v3/webhook-events lists the valid ones"]
    with pytest.raises(ValidationError) as info:
        v3.update_subscription(UUID, subscribed_events="x" * 300)
    assert len(info.value.errors[0]) == 200
    assert v3.list_subscriptions() == []


def test_plain_http_is_refused_off_loopback_only(v3: LinqClientV3) -> None:
    with pytest.raises(ValidationError) as info:
        v3.create_subscription("http://example.com/h", [EVENT])
    assert info.value.errors == [
        "target_url 'http://example.com/h' must use https (plain http is accepted only for localhost)"]
    with pytest.raises(ValidationError):
        v3.update_subscription(UUID, target_url="http://example.com/h")
    assert v3.create_subscription("http://127.0.0.1:9/h", [EVENT]).target_url == "http://127.0.0.1:9/h"


def test_an_update_with_nothing_to_change_is_refused_and_an_update_may_not_name_a_create_only_rule(
        v3: LinqClientV3) -> None:
    with pytest.raises(ValidationError) as info:
        v3.update_subscription(UUID)
    assert info.value.errors == ["nothing to change: give at least one of target_url, subscribed_events, is_active, "
                                 "phone_numbers, routing_key_header, routing_id_header"]
    assert info.value.message.startswith("update_subscription was not sent: nothing to change")
    # an update's rules, not a create's: no field is required, and a routing header may be cleared
    assert (v3.preview_update(UUID, routing_id_header="").body) == {"routing_id_header": ""}


def test_a_live_client_warns_about_a_loopback_url_and_a_preview_does_not() -> None:
    from linq_nb.client import DEFAULT_BASE_URL

    c = LinqClientV3(token=SENTINEL_TOKEN, base_url=DEFAULT_BASE_URL)  # live; _fields alone sends nothing
    assert c.mode == "live"
    with pytest.warns(UserWarning, match="points at this machine"):
        c._fields("create_subscription", create=True, target_url="http://127.0.0.1:9/h", subscribed_events=[EVENT])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c._fields("create_subscription", create=True, warn=False, target_url="http://127.0.0.1:9/h",
                  subscribed_events=[EVENT])
        c._fields("update_subscription", create=False, is_active=True)
    c.close()


# --------------------------------------------------------------------------- once per URL

def test_the_guard_names_the_holder_and_the_events_they_share_in_its_order(v3: LinqClientV3) -> None:
    first = v3.create_subscription(HOOK, ["message.sent", EVENT, "message.read"])
    v3.update_subscription(first, is_active=False)
    assert v3.find_duplicates("https://EXAMPLE.com/hooks/v3", [EVENT, "message.sent", "message.failed"]) == [
        (v3.get_subscription(first), ("message.sent", EVENT))]
    assert v3.find_duplicates(HOOK + "/other", [EVENT]) == []
    assert v3.find_duplicates(HOOK)[0][1] == ()
    with pytest.raises(DuplicateSubscriptionError) as info:
        v3.create_subscription(HOOK, ["message.failed"])
    assert info.value.message == (f"{HOOK} is already the target_url of subscription {first.id} (inactive): "
                                  "v3 allows each target_url once per account")
    assert info.value.existing_ids == [first.id] and info.value.overlapping_events == []
    assert len(v3.list_subscriptions()) == 1


def test_a_409_is_the_holder_with_the_servers_status_code_and_trace(v3: LinqClientV3,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    first = v3.create_subscription(HOOK, [EVENT])
    other = v3.create_subscription(HOOK + "/other", [EVENT])
    monkeypatch.setattr(v3, "_refuse_duplicates", lambda *a: None)  # as if another process created it meanwhile
    with pytest.raises(DuplicateSubscriptionError) as info:
        v3.update_subscription(other, target_url=HOOK)
    error = info.value
    assert (error.status, error.error_code, error.method) == (409, "1005", "PUT")
    assert error.path == f"/api/partner/v3/webhook-subscriptions/{other.id}" and error.trace_id
    assert error.existing_ids == [first.id]
    assert error.message == (f"{HOOK} is already the target_url of subscription {first.id}: v3 allows each "
                             "target_url once per account")


def test_other_refusals_stay_what_the_server_said(v3: LinqClientV3, sandbox: Sandbox,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    sub = v3.create_subscription(HOOK, [EVENT])
    monkeypatch.setattr(v3, "_fields", lambda action, **given: {  # send what the server alone refuses
        k: v for k, v in given.items() if k not in ("create", "warn") and v is not _UNSET})
    with pytest.raises(ValidationError) as info:  # a 400 naming target_url: not a duplicate
        v3.update_subscription(sub, target_url="ftp://example.com/h")
    assert type(info.value) is ValidationError and info.value.status == 400
    with pytest.raises(ValidationError) as info:  # a 400 for a URL that is held (by this one): still not a 409
        sandbox.fail_next(1, 400)
        v3.update_subscription(sub, target_url=HOOK)
    assert type(info.value) is ValidationError and info.value.status == 400
    with pytest.raises(ValidationError) as info:  # a 409 for a URL nobody holds now: the server's error
        sandbox.fail_next(1, 409)
        v3.update_subscription(sub, target_url=HOOK + "/free")
    assert type(info.value) is ValidationError and info.value.status == 409
    with pytest.raises(ValidationError) as info:  # a 409 without a target_url in the request
        sandbox.fail_next(1, 409)
        v3.update_subscription(sub, is_active=False)
    assert type(info.value) is ValidationError and info.value.status == 409
    with pytest.raises(ValidationError) as info:  # the holder cannot be listed: the server's 409 stands
        sandbox.fail_next(1, 409)
        sandbox.fail_next(1, 400)
        v3.update_subscription(sub, target_url=HOOK)
    assert type(info.value) is ValidationError and info.value.status == 409


# --------------------------------------------------------------------------- a lost create

def test_a_create_answered_by_a_5xx_after_it_was_stored_is_a_server_error_naming_it(v3: LinqClientV3,
                                                                                   sandbox: Sandbox) -> None:
    sandbox.fail_next(1, status=None)
    sandbox.fail_next(1, 503, after=True)
    with pytest.raises(ServerError) as info:
        v3.create_subscription(HOOK, [EVENT])
    found = info.value.subscription  # type: ignore[attr-defined]
    assert type(info.value) is ServerError
    assert info.value.message == (f"the create went through (subscription {found.id}) but its answer, the only one "
                                  "that shows the signing_secret, was lost; the request was not resent")
    assert info.value.hint == (f"Delete it (client.delete_subscription({found.id!r})) and create it again to get "
                               "a secret.")
    assert (info.value.method, info.value.path, info.value.status) == (
        "POST", "/api/partner/v3/webhook-subscriptions", 503)
    assert found.signing_secret is None and found.target_url == HOOK


def test_a_create_whose_answer_never_came_is_a_connection_error_naming_it(sandbox: Sandbox) -> None:
    with LinqClientV3(token=SENTINEL_TOKEN, base_url=sandbox.url, timeout=0.5, backoff_factor=0.01) as c:
        c.recovery_delays = (0.0, 0.2, 0.5)
        sandbox.fail_next(1, status=None)  # the create's own list
        sandbox.fail_next(1, status=None, delay=1.5, after=True)  # stored, then no answer in time
        with pytest.raises(LinqConnectionError) as info:
            c.create_subscription(HOOK, [EVENT])
        found = info.value.subscription  # type: ignore[attr-defined]
        assert found.signing_secret is None
        assert info.value.message.startswith(f"the create went through (subscription {found.id})")
        assert (info.value.method, info.value.status) == ("POST", None)
