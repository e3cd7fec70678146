"""WebhookSubscriptionV3 (pure) and v3's error shape in error_from_response."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import pytest

from linq_nb.errors import AuthenticationError, NotFoundError, ValidationError, error_from_response
from linq_nb.models import WebhookSubscription, WebhookSubscriptionV3
from linq_nb.wire import v3 as wire_v3

SECRET = "whsec_c2VjcmV0IHRoYXQgbXVzdCBuZXZlciBzaG93IHVw"
OBJ = {
    "id": "b2c3d4e5-f6a7-8901-bcde-f23456789012",
    "target_url": "https://example.com/hook?version=2026-02-03",
    "subscribed_events": ["message.received", "reaction.added"],
    "is_active": True,
    "phone_numbers": ["+14155551234"],
    "routing_key_header": None,
    "routing_id_header": None,
    "created_at": "2026-12-01T10:00:00.000Z",
    "updated_at": "2026-12-01T10:00:01.000Z",
}


def test_from_api_to_api_round_trip() -> None:
    sub = WebhookSubscriptionV3.from_api(OBJ)
    assert sub.to_api() == OBJ
    assert sub == WebhookSubscriptionV3.from_api(dict(OBJ))
    assert sub.webhook_version == "2026-02-03"
    assert WebhookSubscriptionV3.from_api({**OBJ, "phone_numbers": []}).phone_numbers is None


def test_the_sandbox_object_parses() -> None:
    record = {"id": OBJ["id"], "url": OBJ["target_url"], "events": OBJ["subscribed_events"], "active": False,
              "phone_numbers": None, "created_at": OBJ["created_at"], "updated_at": OBJ["updated_at"]}
    sub = WebhookSubscriptionV3.from_api(wire_v3.created_body(wire_v3.subscription_object(record), SECRET))
    assert sub.is_active is False and sub.signing_secret == SECRET


def test_signing_secret_kept_masked_and_out_of_equality() -> None:
    created = WebhookSubscriptionV3.from_api({**OBJ, "signing_secret": SECRET})
    assert created.signing_secret == SECRET
    assert created == WebhookSubscriptionV3.from_api(OBJ)  # the listed one equals the created one
    assert "signing_secret" not in created.to_api()
    for text in (repr(created), str(created), created._repr_html_(), repr([created]), f"{created}"):
        assert SECRET not in text
    assert "signing_secret='[secure]'" in repr(created)
    assert "signing_secret" not in repr(WebhookSubscriptionV3.from_api(OBJ))
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(created)
    with pytest.raises(TypeError, match="not pickled"):
        copy.deepcopy(created)
    plain = dataclasses.replace(created, signing_secret=None)
    assert pickle.loads(pickle.dumps(plain)) == plain


def test_generic_names_shared_with_v2() -> None:
    sub = WebhookSubscriptionV3.from_api(OBJ)
    assert (sub.webhook_url, sub.events, sub.active, sub.secret_configured) == (
        OBJ["target_url"], tuple(OBJ["subscribed_events"]), True, True)
    assert (sub.api_version, sub.has_counters) == ("v3", False)
    assert (WebhookSubscription.api_version, WebhookSubscription.has_counters) == ("v2", True)
    assert "no" in sub._repr_html_() and "attempt log" in sub._repr_html_()


def test_frozen() -> None:
    sub = WebhookSubscriptionV3.from_api(OBJ)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sub.is_active = False  # type: ignore[misc]


@pytest.mark.parametrize(("status", "cls", "code"), [(404, NotFoundError, 2001), (401, AuthenticationError, 2004),
                                                     (400, ValidationError, 1002), (409, ValidationError, 1005)])
def test_v3_error_shape(status: int, cls: type, code: int) -> None:
    body = wire_v3.error_body(status, "Webhook subscription not found", trace_id="trace-123")
    error = error_from_response(status, json.dumps(body), method="GET", path="/api/partner/v3/webhook-subscriptions/x")
    assert type(error) is cls
    assert error.status == status and error.error_code == str(code)
    assert error.message == "Webhook subscription not found" and error.trace_id == "trace-123"
    assert "trace_id: trace-123" in str(error)


def test_v2_errors_have_no_trace_id() -> None:
    error = error_from_response(404, '{"errors": ["not found"]}', method="GET", path="/x")
    assert error.trace_id is None and "trace_id" not in str(error)
