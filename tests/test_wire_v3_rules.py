"""v3's wire rules that mutation testing (``make mutate``) found unpinned: what a request may contain and the
sentence each problem gets, the error code a problem list earns, which changes raise which account events,
the headers a delivery carries, and a body as the store keeps it.

The rules are pure functions of :mod:`linq_nb.wire.v3` shared by the sandbox and the client, so most are
tested directly; the codes and the create-only secret are checked over real HTTP against the sandbox too.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import requests

from linq_nb.sandbox import Sandbox
from linq_nb.wire import v3
from tests.conftest import SENTINEL_TOKEN

FIELDS = "the fields are target_url, subscribed_events, phone_numbers, routing_key_header, routing_id_header"
HEADER = "must be an HTTP header name (letters, digits and -, at most 64), such as X-Routing-Key; got"
E164 = "must be in E.164 format, such as +14155551234 (a plus, the country code, the number, no spaces)"
GOOD = {"target_url": "https://example.com/hook", "subscribed_events": ["message.sent"]}


def create(**fields: Any) -> list[str]:
    return v3.create_problems({**GOOD, **fields})


# --------------------------------------------------------------------------- subscribed_events

def test_subscribed_events_must_be_a_list_of_names_and_not_empty() -> None:
    shape = ["subscribed_events must be an array of event names"]
    assert create(subscribed_events="message.sent") == shape
    assert create(subscribed_events=["message.sent", 3]) == shape
    assert create(subscribed_events=[]) == [
        "subscribed_events must name at least one event; GET /v3/webhook-events lists them"]
    assert create(subscribed_events=["message.sent", "message.read"]) == []


def test_unknown_events_are_named_with_the_right_plural_and_v2_names_get_their_v3_names() -> None:
    assert create(subscribed_events=["message.sent", "nope"]) == [
        "subscribed_events has unknown event 'nope'; GET /v3/webhook-events lists the valid ones"]
    assert create(subscribed_events=["nope", "nada"]) == [
        "subscribed_events has unknown events 'nope', 'nada'; GET /v3/webhook-events lists the valid ones"]
    assert create(subscribed_events=["typing_indicator.received", "contact.created", "message.sent", "x" * 50,
                                     "b", "c", "d"]) == [
        "subscribed_events has unknown events 'typing_indicator.received', 'contact.created', "
        "'" + "x" * 38 + "…, 'b', 'c' and 1 more ('typing_indicator.received' is a v2 name; in v3 it is "
        "'chat.typing_indicator.started'; 'contact.created' is a v2 event with no v3 equivalent); "
        "GET /v3/webhook-events lists the valid ones"]
    # five unknown names are all named, none "more"; a v2 name split in v3 lists every v3 name
    assert create(subscribed_events=["a", "b", "c", "d", "call.completed"]) == [
        "subscribed_events has unknown events 'a', 'b', 'c', 'd', 'call.completed' ('call.completed' is a v2 name; "
        "in v3 it is 'call.ended' or 'call.no_answer' or 'call.declined' or 'call.failed'); "
        "GET /v3/webhook-events lists the valid ones"]
    # a v2 name hinted only among the first five named
    assert create(subscribed_events=["a", "b", "c", "d", "e", "contact.created"]) == [
        "subscribed_events has unknown events 'a', 'b', 'c', 'd', 'e' and 1 more; "
        "GET /v3/webhook-events lists the valid ones"]


def test_an_event_named_twice_is_refused_naming_it_once() -> None:
    assert create(subscribed_events=["message.sent", "message.sent", "message.read", "message.read",
                                     "message.received"]) == [
        "subscribed_events lists 'message.sent', 'message.read' more than once; name each event once"]


# --------------------------------------------------------------------------- phone_numbers

def test_phone_numbers_are_a_list_of_e164_numbers_or_null() -> None:
    shape = ["phone_numbers must be an array of phone numbers in E.164 format, such as +14155551234, or null"]
    assert create(phone_numbers=None) == [] and create(phone_numbers=[]) == []
    assert create(phone_numbers="+14155551234") == shape
    assert create(phone_numbers=["+14155551234", 14155551234]) == shape
    # E.164: a plus, a non-zero country digit, 7 to 15 digits in all
    assert create(phone_numbers=["+1234567", "+123456789012345"]) == []
    assert create(phone_numbers=["+123456", "+0234567", "+1234567890123456"]) == [
        f"phone_numbers: '+123456', '+0234567', '+1234567890123456' {E164}"]
    # at most three bad ones are named, each shortened to 30 characters
    assert create(phone_numbers=["1", "+1 415", "x" * 40, "four"]) == [
        "phone_numbers: '1', '+1 415', '" + "x" * 28 + f"… {E164}"]
    assert create(phone_numbers=["+14155551234", "+14155551234"]) == [
        "phone_numbers lists a number more than once; name each once"]


def test_one_hundred_numbers_is_the_limit() -> None:
    numbers = [f"+1415555{n:04d}" for n in range(101)]
    assert create(phone_numbers=numbers[:100]) == []
    assert create(phone_numbers=numbers) == [
        "phone_numbers lists 101 numbers, over the limit of 100; use several subscriptions, or no filter"]


# --------------------------------------------------------------------------- routing headers

def test_routing_headers_are_header_names_that_no_delivery_sets_itself() -> None:
    assert create(routing_key_header="X-Aa0!#$%&'*+.^_`|~-", routing_id_header="x" * 64) == []
    assert create(routing_key_header="a b") == [f"routing_key_header {HEADER} 'a b'"]
    assert create(routing_id_header=5) == [f"routing_id_header {HEADER} 5"]
    assert create(routing_id_header="x" * 65) == [f"routing_id_header {HEADER} '" + "x" * 38 + "…"]
    for reserved in ("Webhook-ID", "content-type", "X-WEBHOOK-SIGNATURE", "Authorization"):
        assert create(routing_key_header=reserved) == [
            f"routing_key_header {reserved!r} is a header every delivery sets itself; choose another name"]


def test_a_create_needs_a_routing_header_name_where_an_update_clears_it_with_null_or_empty() -> None:
    assert create(routing_key_header=None) == ["routing_key_header must be a header name such as X-Routing-Key"]
    assert create(routing_id_header="") == [f"routing_id_header {HEADER} ''"]
    assert v3.update_problems({"routing_key_header": None, "routing_id_header": ""}) == []
    assert v3.update_problems({"routing_key_header": "a b"}) == [f"routing_key_header {HEADER} 'a b'"]
    assert v3.update_problems({"routing_id_header": "XXXX"}) == []


# --------------------------------------------------------------------------- fields

def test_unknown_fields_are_named_and_v2_names_get_a_hint() -> None:
    assert v3.create_problems({"webhook_url": 1, "events": 2, "secret": 3, "foo": 4}) == [
        f"unknown field 'webhook_url' (webhook_url is v2's name; v3 calls it target_url); {FIELDS}",
        f"unknown field 'events' (events is v2's name; v3 calls it subscribed_events); {FIELDS}",
        f"unknown field 'secret' (v3 has no such field); {FIELDS}",
        f"unknown field 'foo'; {FIELDS}",
        "target_url is required", "subscribed_events is required"]
    assert v3.update_problems({"active": False, "version": 3}) == [
        f"unknown field 'active' (active is v2's name; v3 calls it is_active); {FIELDS}, is_active",
        f"unknown field 'version' (v3 has no such field); {FIELDS}, is_active"]


def test_a_long_unknown_field_or_value_is_quoted_cut_to_40_characters() -> None:
    assert create(**{"k" * 50: 1}) == ["unknown field '" + "k" * 38 + f"…; {FIELDS}"]
    assert create(**{"k" * 38: 1}) == ["unknown field '" + "k" * 38 + f"'; {FIELDS}"]
    assert v3.update_problems({"is_active": "y" * 50}) == ["is_active must be true or false, got '" + "y" * 38 + "…"]
    assert v3.update_problems({"is_active": "y" * 38}) == ["is_active must be true or false, got '" + "y" * 38 + "'"]


def test_every_problem_is_kept_whatever_else_is_right() -> None:
    assert create(target_url="ftp://x", routing_key_header="X-K", routing_id_header="X-I") == [
        "target_url 'ftp://x' must be an absolute http(s) URL, such as https://example.com/webhooks/linq"]
    assert v3.update_problems({"is_active": 1, "routing_id_header": "X-I"}) == [
        "is_active must be true or false, got 1"]


def test_a_create_takes_no_is_active_and_an_update_takes_only_a_boolean() -> None:
    assert create(is_active=True) == [f"unknown field 'is_active'; {FIELDS}"]
    assert v3.update_problems({"is_active": 1}) == ["is_active must be true or false, got 1"]
    assert v3.update_problems({"is_active": False, "phone_numbers": None}) == []
    assert v3.update_problems({}) == []  # every field is optional (the client asks for at least one)


def test_the_target_url_is_checked_under_its_v3_name_and_http_only_for_loopback_when_asked() -> None:
    assert create(target_url="ftp://x") == [
        "target_url 'ftp://x' must be an absolute http(s) URL, such as https://example.com/webhooks/linq"]
    # only the field's name is renamed, never the same word inside the URL quoted
    assert create(target_url="ftp://x/webhook_url") == [
        "target_url 'ftp://x/webhook_url' must be an absolute http(s) URL, such as https://example.com/webhooks/linq"]
    plain = "target_url 'http://example.com/h' must use https (plain http is accepted only for localhost)"
    assert create(target_url="http://example.com/h") == []
    assert v3.create_problems({**GOOD, "target_url": "http://example.com/h"}, https_only_unless_loopback=True) == [
        plain]
    assert v3.update_problems({"target_url": "http://example.com/h"}) == []
    assert v3.update_problems({"target_url": "http://example.com/h"}, https_only_unless_loopback=True) == [plain]
    assert v3.update_problems({"target_url": "http://127.0.0.1:9/h"}, https_only_unless_loopback=True) == []


def test_the_error_code_is_the_most_precise_one() -> None:
    assert v3.problem_code(["target_url is required", "phone_numbers: '1' must be..."]) == 1001
    assert v3.problem_code(["phone_numbers lists a number more than once; name each once"]) == 1002
    assert v3.problem_code(["phone_numbers: x", "is_active must be true or false, got 1"]) == 1005
    assert v3.problem_code([]) == 1005
    assert v3.problem_code(iter(["subscribed_events is required"])) == 1001


def _post(sb: Sandbox, body: object) -> requests.Response:
    return requests.post(sb.url + v3.COLLECTION_PATH, headers=v3.auth_headers(SENTINEL_TOKEN), json=body, timeout=10)


def test_the_sandbox_answers_each_bad_create_with_its_code_and_changes_nothing(sandbox: Sandbox) -> None:
    cases = [({"target_url": "https://example.com/h"}, 1001),
             ({**GOOD, "phone_numbers": ["123"]}, 1002),
             ({**GOOD, "phone_numbers": ["123"], "is_active": True}, 1005)]
    for body, code in cases:
        resp = _post(sandbox, body)
        assert resp.status_code == 400, resp.text
        error = resp.json()["error"]
        assert (error["status"], error["code"]) == (400, code)
        assert resp.json()["success"] is False
    listed = requests.get(sandbox.url + v3.COLLECTION_PATH, headers=v3.auth_headers(SENTINEL_TOKEN), timeout=10)
    assert listed.json() == {"subscriptions": []}


def test_only_the_create_answer_shows_the_signing_secret(sandbox: Sandbox) -> None:
    created = _post(sandbox, {**GOOD, "phone_numbers": ["+14155551234"], "routing_key_header": "X-Key"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["signing_secret"].startswith("whsec_")
    assert body["phone_numbers"] == ["+14155551234"] and body["routing_key_header"] == "X-Key"
    assert body["routing_id_header"] is None and body["is_active"] is True
    got = requests.get(sandbox.url + v3.member_path(body["id"]), headers=v3.auth_headers(SENTINEL_TOKEN),
                       timeout=10).json()
    assert "signing_secret" not in got
    assert got == {k: v for k, v in body.items() if k != "signing_secret"}


def test_the_subscription_object_and_the_create_answer() -> None:
    record = {"id": "b2c3d4e5-f6a7-8901-bcde-f23456789012", "url": "https://example.com/h", "events": ("a", "b"),
              "active": 0, "phone_numbers": [], "routing_key_header": "X-K", "routing_id_header": "X-I",
              "created_at": "c", "updated_at": "u"}
    obj = {"id": record["id"], "target_url": "https://example.com/h", "subscribed_events": ["a", "b"],
           "is_active": False, "phone_numbers": None, "routing_key_header": "X-K", "routing_id_header": "X-I",
           "created_at": "c", "updated_at": "u"}
    assert v3.subscription_object(record) == obj
    assert v3.subscription_object({**record, "phone_numbers": ("+1",), "active": 1}) == {
        **obj, "phone_numbers": ["+1"], "is_active": True}
    assert v3.subscription_object(record, signing_secret="whsec_x") == {**obj, "signing_secret": "whsec_x"}
    assert v3.created_body(obj, "whsec_x") == {**obj, "signing_secret": "whsec_x"}


# --------------------------------------------------------------------------- ids, tokens, bodies

def test_ids_are_uuids_in_canonical_form() -> None:
    uid = "b2c3d4e5-f6a7-8901-bcde-f23456789012"
    assert v3.parse_id(uid.upper()) == uid and v3.parse_id("{" + uid + "}") == uid
    assert v3.parse_id("12") is None and v3.parse_id("") is None
    assert v3.parse_id("urn:uuid:" + uid) == uid  # 45 characters: within the limit
    assert v3.parse_id("{" + uid.replace("-", "-" * 9) + "}") is None  # over 64 characters: never parsed
    hex32 = uid.replace("-", "")
    assert v3.parse_id(hex32 + "-" * 32) == uid  # 64 characters: parsed (uuid ignores hyphens)
    assert v3.parse_id(hex32 + "-" * 33) is None  # 65


def test_the_token_is_the_bearer_credential_only() -> None:
    assert v3.token_from_environ({"HTTP_AUTHORIZATION": "Bearer abc"}) == "abc"
    assert v3.token_from_environ({"HTTP_AUTHORIZATION": "  bEaReR   abc  "}) == "abc"
    assert v3.token_from_environ({"HTTP_AUTHORIZATION": "Basic abc"}) is None
    assert v3.token_from_environ({"HTTP_AUTHORIZATION": "Bearer "}) is None
    assert v3.token_from_environ({"HTTP_AUTHORIZATION": "abc"}) is None
    assert v3.token_from_environ({}) is None


def test_a_body_is_its_fields_only_when_it_is_an_object() -> None:
    assert v3.fields_of({"a": 1}) == {"a": 1}
    assert v3.fields_of([1]) is None and v3.fields_of("x") is None


# --------------------------------------------------------------------------- which changes raise which events



def _events(before: Any, after: Any) -> list[tuple[str, dict]]:
    out = v3.change_events(before, after)
    for _, data in out:
        occurred = datetime.fromisoformat(data.pop("occurred_at").replace("Z", "+00:00"))
        assert abs((occurred - datetime.now(timezone.utc)).total_seconds()) < 60
        assert (data.pop("actor"), data.pop("origin")) == ({"type": "api"}, "api")
    return out


SUB = {"id": "i1", "target_url": "https://u:p@Example.com:8443/a?q=1#f", "subscribed_events": ["message.sent"],
       "is_active": True, "phone_numbers": None, "routing_key_header": None, "routing_id_header": None}
PUBLIC = "https://example.com:8443/a"  # without credentials, query or fragment


def test_a_create_and_a_delete_each_raise_one_event() -> None:
    assert _events(None, SUB) == [("webhook_subscription.created", {
        "summary": "Webhook subscription created",
        "webhook_subscription": {"id": "i1", "target_url": PUBLIC, "events": ["message.sent"]}})]
    assert _events(SUB, None) == [("webhook_subscription.deleted", {
        "summary": "Webhook subscription deleted", "webhook_subscription": {"id": "i1", "target_url": PUBLIC}})]
    assert v3.change_events(None, None) == []
    assert v3.change_events(SUB, dict(SUB)) == []


def test_an_update_raises_one_event_per_kind_of_change() -> None:
    after = {**SUB, "target_url": "http://[::1]/b", "is_active": False, "subscribed_events": ["message.read"],
             "phone_numbers": ["+14155551234"], "routing_key_header": "X-K", "routing_id_header": "X-I"}
    ref = {"id": "i1", "target_url": "http://[::1]/b"}
    headers = {"routing_key_header": "X-K", "routing_id_header": "X-I"}
    assert _events(SUB, after) == [
        ("webhook_subscription.target_url_changed", {
            "summary": "Webhook subscription target URL changed", "webhook_subscription": ref,
            "change": {"from": PUBLIC, "to": "http://[::1]/b"}}),
        ("webhook_subscription.disabled", {"summary": "Webhook subscription disabled", "webhook_subscription": ref}),
        ("webhook_subscription.events.updated", {
            "summary": "Webhook subscription events updated", "webhook_subscription": ref,
            "change": {"from": ["message.sent"], "to": ["message.read"]}}),
        ("webhook_subscription.phone_numbers.updated", {
            "summary": "Webhook subscription phone numbers updated", "webhook_subscription": ref,
            "change": {"from": None, "to": ["+14155551234"]}}),
        ("webhook_subscription.routing_headers_set", {
            "summary": "Webhook subscription routing headers set", "webhook_subscription": ref,
            "change": {"from": None, "to": headers}}),
    ]
    back = {**after, "is_active": True, "routing_key_header": None}
    assert _events(after, back) == [
        ("webhook_subscription.enabled", {"summary": "Webhook subscription enabled", "webhook_subscription": ref}),
        ("webhook_subscription.routing_headers_cleared", {
            "summary": "Webhook subscription routing headers cleared", "webhook_subscription": ref,
            "change": {"from": headers, "to": None}}),
    ]
    # only the id header changing, the key header kept: still "set", from the old pair to the new
    moved = {**after, "routing_id_header": "X-J"}
    assert _events(after, moved) == [("webhook_subscription.routing_headers_set", {
        "summary": "Webhook subscription routing headers set", "webhook_subscription": ref,
        "change": {"from": headers, "to": {**headers, "routing_id_header": "X-J"}}})]


def test_an_account_event_shows_a_url_without_what_it_must_not() -> None:
    assert _events(None, {**SUB, "target_url": "https://[2001:db8::1]:444/p?k=v"})[0][1][
        "webhook_subscription"]["target_url"] == "https://[2001:db8::1]:444/p"
    assert _events(None, {**SUB, "target_url": "https://user@hooks.example.com/p"})[0][1][
        "webhook_subscription"]["target_url"] == "https://hooks.example.com/p"


# --------------------------------------------------------------------------- deliveries

def _body(data: object) -> bytes:
    return json.dumps({"event_type": "x", "data": data}).encode()


def test_routing_headers_carry_the_chat_id_only_with_a_routing_key_header() -> None:
    chat = _body({"chat": {"id": "chat-1"}})
    assert v3.routing_headers(None, "X-Id", chat) == {} and v3.routing_headers("", None, chat) == {}
    assert v3.routing_headers("X-Key", None, chat) == {"Linq-Chat-Id": "chat-1"}
    assert v3.routing_headers("X-Key", "X-Id", chat) == {"X-Id": "chat-1"}
    assert v3.routing_headers("X-Key", None, _body({"chat_id": "chat-2"})) == {"Linq-Chat-Id": "chat-2"}
    assert v3.routing_headers("X-Key", None, _body({"chat": {"id": 5}})) == {}
    assert v3.routing_headers("X-Key", None, _body({"chat": "c", "chat_id": "chat-3"})) == {"Linq-Chat-Id": "chat-3"}
    assert v3.routing_headers("X-Key", None, _body({"phone_number": "+1"})) == {}
    assert v3.routing_headers("X-Key", None, _body(None)) == {}
    assert v3.routing_headers("X-Key", None, _body(["chat"])) == {}
    assert v3.routing_headers("X-Key", None, b"[1]") == {} and v3.routing_headers("X-Key", None, b"{") == {}


def test_the_line_an_event_is_about() -> None:
    assert v3.event_phone_number({"chat": {"owner_handle": {"handle": "+1"}}, "phone_number": "+2"}) == "+1"
    assert v3.event_phone_number({"chat": {"owner_handle": {"handle": 1}}, "phone_number": "+2"}) == "+2"
    assert v3.event_phone_number({"chat": {"owner_handle": "+1"}, "phone_number": "+2"}) == "+2"
    assert v3.event_phone_number({"chat": "c"}) is None and v3.event_phone_number({"phone_number": 5}) is None


def test_a_delivery_carries_both_header_sets_signed_only_with_a_secret() -> None:
    body = b'{"a":1}'
    unsigned = v3.delivery_headers(body, secret=None, event_type="message.sent", event_id="e1", subscription_id=7,
                                   timestamp=1700000000, user_agent="UA/1", extra={"Linq-Chat-Id": "c"})
    assert unsigned == {"Content-Type": "application/json", "User-Agent": "UA/1", "Linq-Chat-Id": "c",
                        "webhook-id": "e1", "webhook-timestamp": "1700000000", "X-Webhook-Event": "message.sent",
                        "X-Webhook-Subscription-ID": "7", "X-Webhook-Timestamp": "1700000000"}
    secret = "whsec_" + "QUJD" * 8
    signed = v3.delivery_headers(body, secret=secret, event_type="message.sent", event_id="e1", subscription_id=7,
                                 timestamp=1700000000, user_agent="UA/1")
    assert signed["webhook-signature"] == v3.standard_signature(secret, "e1", 1700000000, body)
    assert signed["X-Webhook-Signature"] == v3.legacy_signature(secret, 1700000000, body)
    assert "Linq-Chat-Id" not in signed
    given = v3.delivery_headers(body, secret=secret, event_type="message.sent", event_id="e1", subscription_id=7,
                                timestamp=1700000000, user_agent="UA/1", standard="v1,given")
    assert given["webhook-signature"] == "v1,given"
    assert v3.delivery_headers(body, secret="", event_type="t", event_id="e", subscription_id=1, timestamp=1,
                               user_agent="u").keys() == unsigned.keys() - {"Linq-Chat-Id"}


def test_a_body_as_the_store_keeps_it() -> None:
    assert v3.record_fields({**GOOD, "phone_numbers": [], "routing_key_header": "", "routing_id_header": "X-I"},
                            create=True) == {
        "url": "https://example.com/hook", "events": ["message.sent"], "phone_numbers": None,
        "routing_key_header": None, "routing_id_header": "X-I", "active": True, "version": 3}
    assert v3.record_fields({"is_active": False, "phone_numbers": ("+1",), "extra": 1}, create=False) == {
        "active": False, "phone_numbers": ["+1"]}
    assert v3.record_fields({"phone_numbers": None, "routing_id_header": None}, create=False) == {
        "phone_numbers": None, "routing_id_header": None}
    assert v3.record_fields({"routing_id_header": "", "routing_key_header": "X-K"}, create=False) == {
        "routing_id_header": None, "routing_key_header": "X-K"}
    assert v3.record_fields({**GOOD, "is_active": False}, create=True)["active"] is False
