"""The event catalogues as data, held to Linq's own SDK, and the wire modules' pure pieces."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import time
from datetime import datetime, timezone
from typing import get_args

import pydantic
import pytest
import standardwebhooks
from linq import LinqAPIV3
from linq.types.webhook_event_type import WebhookEventType

from linq_nb import catalog, events, wire
from linq_nb.wire import v2, v3

SECRET = v3.new_signing_secret()


def test_v2_catalogue_is_the_fourteen_events_in_order() -> None:
    cat = catalog.load("v2")
    assert cat.names == events.EVENT_TYPES and len(cat.names) == 14
    assert events.EVENTS["call.completed"] == cat.description("call.completed") == "A voice call ended"
    assert events.sample_data("contact.deleted") == {"id": 4242}


def test_v3_catalogue_is_the_sdks_list_in_the_sdks_order() -> None:
    assert catalog.load("v3").names == get_args(WebhookEventType)
    assert len(v3.EVENT_TYPES) == 75
    assert all(catalog.load("v3").description(n) and "TODO" not in catalog.load("v3").description(n)
               for n in v3.EVENT_TYPES)


def _payload_class(name: str) -> type[pydantic.BaseModel]:
    entry = catalog.load("v3").events[name]
    module = importlib.import_module("linq.types." + name.replace(".", "_") + "_webhook_event")
    return getattr(module, entry["payload_type"])  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", [n for n in v3.EVENT_TYPES if catalog.load("v3").events[n]["payload_type"]])
def test_every_v3_sample_is_valid_for_the_sdks_payload_type_and_unwraps(name: str) -> None:
    envelope = v3.make_envelope(name, v3.sample_data(name), partner_id="p1")
    _payload_class(name).model_validate(envelope)  # strict pydantic validation, not the SDK's lenient construct
    body = v3.encode(envelope)
    ts = int(time.time())
    headers = v3.delivery_headers(body, secret=SECRET, event_type=name, event_id=envelope["event_id"],
                                  subscription_id="s", timestamp=ts, user_agent="t")
    event = LinqAPIV3(api_key="unused", base_url="http://127.0.0.1:9").webhooks.unwrap(
        body.decode(), headers=headers, key=SECRET)
    assert event.event_type == name and event.event_id == envelope["event_id"]


def test_the_call_events_have_no_sdk_type_and_say_so() -> None:
    calls = [n for n in v3.EVENT_TYPES if n.startswith("call.")]
    assert len(calls) == 7
    for name in calls:
        entry = catalog.load("v3").events[name]
        assert entry["payload_type"] is None and "no payload type" in entry["sample_from"]
        assert v3.event_phone_number(entry["sample"]) == "+12025551234"


def test_the_mapping_names_real_events_with_a_stated_confidence() -> None:
    mapping = catalog.v2_to_v3()
    assert set(mapping) == set(v2.EVENT_TYPES)
    for v2_name, entry in mapping.items():
        assert entry["confidence"] in catalog.CONFIDENCES and entry["note"], v2_name
        assert all(n in v3.EVENT_TYPES for n in entry["v3"]), v2_name
        assert (entry["confidence"] == "none") == (not entry["v3"]) == (entry["primary"] is None), v2_name
        if entry["primary"]:
            assert entry["primary"] in entry["v3"]
        if entry["confidence"] == "exact":
            assert entry["v3"] == [v2_name]
        if entry["confidence"] == "renamed":
            assert len(entry["v3"]) == 1 and entry["v3"] != [v2_name]
    assert mapping["typing_indicator.received"]["v3"] == ["chat.typing_indicator.started"]


def test_name_in_each_version() -> None:
    assert catalog.name_in("v3", "typing_indicator.removed") == "chat.typing_indicator.stopped"
    assert catalog.name_in("v2", "chat.typing_indicator.stopped") == "typing_indicator.removed"
    assert catalog.name_in("v3", "message.sent") == catalog.name_in("v2", "message.sent") == "message.sent"
    assert catalog.name_in("v3", "contact.created") is None        # v2 only
    assert catalog.name_in("v2", "reaction.added") is None          # two v2 events became it: ambiguous
    assert catalog.name_in("v2", "poll.vote.added") is None         # v3 only
    assert catalog.name_in("v3", "call.completed") == "call.ended"  # split: the primary


def test_standard_signature_is_the_reference_librarys() -> None:
    body = v3.encode(v3.make_envelope("message.sent", v3.sample_data("message.sent")))
    ts = 1_767_225_600
    ours = v3.standard_signature(SECRET, "msg_1", ts, body)
    theirs = standardwebhooks.Webhook(SECRET).sign("msg_1", datetime.fromtimestamp(ts, timezone.utc), body.decode())
    assert ours == theirs and ours.startswith("v1,")


def test_legacy_signature_is_linqs_example() -> None:
    body, ts = b'{"a":1}', 1_767_225_600
    expected = hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    assert v3.legacy_signature(SECRET, ts, body) == expected
    headers = v3.delivery_headers(body, secret=SECRET, event_type="message.sent", event_id="e1",
                                  subscription_id="s1", timestamp=ts, user_agent="t")
    assert headers["X-Webhook-Signature"] == expected and headers["X-Webhook-Timestamp"] == str(ts)
    assert headers["webhook-id"] == "e1" and headers["X-Webhook-Subscription-ID"] == "s1"


def test_wire_modules_speak_the_same_names() -> None:
    shared = set(v2.__all__) & set(v3.__all__)
    for name in ("COLLECTION_PATH", "member_path", "auth_headers", "token_from_environ", "parse_id", "request_body",
                 "fields_of", "create_problems", "update_problems", "record_fields", "subscription_object",
                 "list_body", "item_body", "created_body", "error_body", "error_message", "EVENT_TYPES",
                 "sample_data", "make_envelope", "encode", "delivery_headers", "change_events", "HAS_COUNTERS"):
        assert name in shared, name
    for module in (v2, v3):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)
    assert wire.get(3) is v3 and wire.get("v2") is v2
    with pytest.raises(ValueError, match="v2, v3"):
        wire.get("v4")


def test_v3_auth_ids_and_errors() -> None:
    assert v3.auth_headers("tok") == {"Authorization": "Bearer tok"}
    assert v3.token_from_environ({"HTTP_AUTHORIZATION": "bearer  tok "}) == "tok"
    assert v3.token_from_environ({"HTTP_AUTHORIZATION": "Basic dG9r"}) is None
    assert v2.token_from_environ({"HTTP_X_LINQ_INTEGRATION_TOKEN": "tok"}) == "tok"
    assert v3.parse_id("B2C3D4E5-F6A7-8901-BCDE-F23456789012") == "b2c3d4e5-f6a7-8901-bcde-f23456789012"
    assert v3.parse_id("42") is None and v2.parse_id("42") == 42 and v2.parse_id("x") is None
    body = v3.error_body(404, "webhook subscription x not found")
    assert body["error"] == {"status": 404, "code": 2001, "message": "webhook subscription x not found"}
    assert body["success"] is False and body["trace_id"]
    assert v3.error_message(body) == "webhook subscription x not found"
    assert v2.error_message(v2.error_body(401, "no token")) == "no token"


def test_v3_validation_says_what_is_wrong() -> None:
    assert v3.create_problems({"target_url": "https://example.com/h", "subscribed_events": ["message.sent"]}) == []
    problems = v3.create_problems({"webhook_url": "https://example.com/h", "events": ["message.sent"]})
    assert any("webhook_url is v2's name; v3 calls it target_url" in p for p in problems)
    assert "target_url is required" in problems and v3.problem_code(problems) == 1001
    problems = v3.create_problems({"target_url": "https://example.com/h",
                                   "subscribed_events": ["typing_indicator.received"]})
    assert "in v3 it is 'chat.typing_indicator.started'" in problems[0]
    phone = v3.create_problems({"target_url": "https://example.com/h", "subscribed_events": ["message.sent"],
                                "phone_numbers": ["303 555 0100"]})
    assert "E.164" in phone[0] and v3.problem_code(phone) == 1002
    many = v3.update_problems({"phone_numbers": [f"+1202555{n:04d}" for n in range(101)]})
    assert "over the limit of 100" in many[0]
    assert v3.create_problems({"target_url": "http://example.com/h", "subscribed_events": ["message.sent"]},
                              https_only_unless_loopback=True)[0].startswith("target_url")
    assert v3.update_problems({"phone_numbers": None, "is_active": False, "routing_key_header": ""}) == []
    assert v3.update_problems({"is_active": "no"}) == ["is_active must be true or false, got 'no'"]
    assert "sets itself" in v3.update_problems({"routing_key_header": "webhook-signature"})[0]


def test_change_events_describe_each_kind_of_change() -> None:
    record = {"id": "u1", "url": "https://user:pw@example.com/h?line=1#x", "events": ["message.sent"],
              "active": True, "phone_numbers": None, "routing_key_header": None, "routing_id_header": None,
              "created_at": "t", "updated_at": "t"}
    before = v3.subscription_object(record)
    (kind, data), = v3.change_events(None, before)
    assert kind == "webhook_subscription.created"
    assert data["webhook_subscription"] == {"id": "u1", "target_url": "https://example.com/h",
                                            "events": ["message.sent"]}
    after = v3.subscription_object({**record, "active": False, "events": ["message.sent", "message.read"],
                                    "phone_numbers": ["+12025551234"], "routing_key_header": "X-Key"})
    kinds = [k for k, _ in v3.change_events(before, after)]
    assert kinds == ["webhook_subscription.disabled", "webhook_subscription.events.updated",
                     "webhook_subscription.phone_numbers.updated", "webhook_subscription.routing_headers_set"]
    assert v3.change_events(before, before) == []
    assert [k for k, _ in v3.change_events(before, None)] == ["webhook_subscription.deleted"]
