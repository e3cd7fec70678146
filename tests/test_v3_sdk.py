"""The sandbox's v3, driven from outside by Linq's own Python SDK (linq-python 0.65.0), unchanged.

Every webhook-subscription method and ``webhook_events.list()`` must give the SDK's own typed
results, its exceptions must fire on 401, 404, 400 and 409, and a delivery recorded at a linq_nb
``Receiver`` must pass the SDK's ``client.webhooks.unwrap`` (Standard Webhooks, verified by the
``standardwebhooks`` package) while a tampered one is refused. Plus what v3 adds around it:
separate v2 and v3 lists, one trigger reaching both in their own forms, the same ``event_id``
across retries and subscriptions, ``phone_numbers``, ``is_active``, routing headers, account
events, retry profiles, and the control routes taking either auth header.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import linq
import pytest
import requests
import standardwebhooks
from linq.types import (
    WebhookEventListResponse,
    WebhookSubscription,
    WebhookSubscriptionCreateResponse,
    WebhookSubscriptionListResponse,
)
from linq.types.message_event_v2 import MessageEventV2
from linq.types.webhook_event_type import WebhookEventType

from linq_nb._server import ServerThread
from linq_nb.receiver import Receiver
from linq_nb.sandbox import CLASSROOM_RETRY_DELAYS, RETRY_PROFILES, Sandbox, parse_delays
from linq_nb.wire import v2, v3
from tests.conftest import SENTINEL_TOKEN

OTHER_TOKEN = "tok_other_partner_v3"


class Tap:
    """A linq_nb Receiver behind a recorder of the raw request: bytes and headers exactly as they arrived."""

    def __init__(self) -> None:
        self.receiver = Receiver()  # no secrets: it accepts and records every delivery
        self.raw: list[tuple[bytes, dict[str, str]]] = []
        self._cond = threading.Condition()
        self._server = ServerThread(self._app, name="linq-nb-test-tap")

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        headers["Content-Type"] = environ.get("CONTENT_TYPE", "")
        answer = self.receiver.app(environ, start_response)
        with self._cond:
            self.raw.append((body, headers))
            self._cond.notify_all()
        return answer

    def url(self, query: str = "") -> str:
        return self._server.url + self.receiver.path + query

    def wait(self, n: int, timeout: float = 10.0) -> list[tuple[bytes, dict[str, str]]]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.raw) >= n, timeout), f"{len(self.raw)} of {n} deliveries"
            return list(self.raw)

    def __enter__(self) -> Tap:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(tokens=[SENTINEL_TOKEN, OTHER_TOKEN], retry_delays=[0.05, 0.1, 0.2],
                 deliver_to=["127.0.0.1"]) as sandbox:  # two partners: a shared sandbox, allowed to reach the receivers
        yield sandbox


@pytest.fixture
def sdk(sb: Sandbox) -> Iterator[linq.LinqAPIV3]:
    client = linq.LinqAPIV3(api_key=SENTINEL_TOKEN, base_url=sb.url + "/api/partner", max_retries=0)
    yield client
    client.close()


@pytest.fixture
def tap() -> Iterator[Tap]:
    with Tap() as t:
        yield t


def _trigger(sb: Sandbox, event_type: str, **extra: Any) -> dict[str, Any]:
    """POST /_sandbox/events with v3's Bearer header (the control routes take either version's)."""
    resp = requests.post(sb.url + "/_sandbox/events", json={"event_type": event_type, **extra},
                         headers=v3.auth_headers(SENTINEL_TOKEN), timeout=5)
    assert resp.status_code == 202, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_every_subscription_method_gives_the_sdks_typed_results(sdk: linq.LinqAPIV3) -> None:
    created = sdk.webhook_subscriptions.create(target_url="https://example.com/linq",
                                               subscribed_events=["message.received", "reaction.added"])
    assert isinstance(created, WebhookSubscriptionCreateResponse)
    assert uuid.UUID(created.id) and created.is_active is True and created.phone_numbers is None
    assert created.signing_secret.startswith("whsec_") and len(v3.signing_key(created.signing_secret)) == 32
    assert created.created_at.tzinfo is not None and created.subscribed_events == ["message.received",
                                                                                   "reaction.added"]

    got = sdk.webhook_subscriptions.retrieve(created.id)
    assert isinstance(got, WebhookSubscription) and got.id == created.id and got.target_url == created.target_url
    assert "signing_secret" not in got.model_dump() and not (got.model_extra or {})

    listed = sdk.webhook_subscriptions.list()
    assert isinstance(listed, WebhookSubscriptionListResponse)
    assert [s.id for s in listed.subscriptions] == [created.id]
    assert all(isinstance(s, WebhookSubscription) for s in listed.subscriptions)

    updated = sdk.webhook_subscriptions.update(created.id, is_active=False, phone_numbers=["+12025551234"],
                                               routing_key_header="X-Route-Key",
                                               subscribed_events=["message.read"])
    assert isinstance(updated, WebhookSubscription)
    assert (updated.is_active, updated.phone_numbers, updated.routing_key_header, updated.subscribed_events) == (
        False, ["+12025551234"], "X-Route-Key", ["message.read"])
    assert updated.updated_at >= created.updated_at and updated.created_at == created.created_at
    cleared = sdk.webhook_subscriptions.update(created.id, phone_numbers=[], routing_key_header=None)
    assert cleared.phone_numbers is None and cleared.routing_key_header is None and cleared.is_active is False

    assert sdk.webhook_subscriptions.delete(created.id) is None
    assert sdk.webhook_subscriptions.list().subscriptions == []

    events = sdk.webhook_events.list()
    assert isinstance(events, WebhookEventListResponse)
    assert tuple(events.events) == WebhookEventType.__args__  # type: ignore[attr-defined]
    assert events.doc_url == "https://docs.linqapp.com/channel/imessage/guides/webhooks/events"


def test_the_sdks_exceptions_fire(sb: Sandbox, sdk: linq.LinqAPIV3) -> None:
    stranger = linq.LinqAPIV3(api_key="tok_not_a_sandbox_token", base_url=sb.url + "/api/partner", max_retries=0)
    with pytest.raises(linq.AuthenticationError) as caught:
        stranger.webhook_subscriptions.list()
    assert caught.value.status_code == 401 and caught.value.body["code"] == 2004  # type: ignore[index]
    with pytest.raises(linq.AuthenticationError):
        stranger.webhook_events.list()

    missing = str(uuid.uuid4())
    for call in (lambda: sdk.webhook_subscriptions.retrieve(missing),
                 lambda: sdk.webhook_subscriptions.update(missing, is_active=True),
                 lambda: sdk.webhook_subscriptions.delete(missing),
                 lambda: sdk.webhook_subscriptions.retrieve("42")):  # a v2-style id is no v3 id
        with pytest.raises(linq.NotFoundError) as not_found:
            call()
        assert not_found.value.body["code"] == 2001  # type: ignore[index]

    with pytest.raises(linq.BadRequestError) as bad:
        sdk.webhook_subscriptions.create(target_url="http://example.com/hook", subscribed_events=["message.sent"])
    assert "https" in bad.value.body["message"]  # type: ignore[index]
    with pytest.raises(linq.BadRequestError) as bad:
        sdk.webhook_subscriptions.create(target_url="https://example.com/h",
                                         subscribed_events=["typing_indicator.received"])  # type: ignore[list-item]
    assert "chat.typing_indicator.started" in bad.value.body["message"]  # type: ignore[index]
    assert sdk.webhook_subscriptions.list().subscriptions == []  # nothing stored by a refused create

    first = sdk.webhook_subscriptions.create(target_url="https://example.com/once", subscribed_events=["message.sent"])
    with pytest.raises(linq.ConflictError) as conflict:
        sdk.webhook_subscriptions.create(target_url="https://example.com/once", subscribed_events=["message.read"])
    assert first.id in conflict.value.body["message"]  # type: ignore[index]  # it names the holder
    second = sdk.webhook_subscriptions.create(target_url="https://example.com/once?line=2",
                                              subscribed_events=["message.read"])
    with pytest.raises(linq.ConflictError):
        sdk.webhook_subscriptions.update(second.id, target_url="https://example.com/once")
    assert len(sdk.webhook_subscriptions.list().subscriptions) == 2


def test_v2_and_v3_lists_are_separate_and_partners_apart(sb: Sandbox, sdk: linq.LinqAPIV3) -> None:
    v2_body = v2.request_body({"webhook_url": "https://example.com/v2", "events": ["message.sent"], "version": 2})
    made = requests.post(sb.url + v2.COLLECTION_PATH, json=v2_body, headers=v2.auth_headers(SENTINEL_TOKEN), timeout=5)
    assert made.status_code == 201
    mine = sdk.webhook_subscriptions.create(target_url="https://example.com/v2",  # the same URL: another list
                                            subscribed_events=["message.sent"])
    assert [s.id for s in sdk.webhook_subscriptions.list().subscriptions] == [mine.id]
    v2_list = requests.get(sb.url + v2.COLLECTION_PATH, headers=v2.auth_headers(SENTINEL_TOKEN), timeout=5).json()
    assert [s["id"] for s in v2_list["webhook_subscriptions"]] == [made.json()["webhook_subscription"]["id"]]
    # Each version takes its own header only, and says which one it wanted.
    wrong = requests.get(sb.url + v3.COLLECTION_PATH, headers=v2.auth_headers(SENTINEL_TOKEN), timeout=5)
    assert wrong.status_code == 401 and "Bearer" in wrong.json()["error"]["message"]
    wrong = requests.get(sb.url + v2.COLLECTION_PATH, headers=v3.auth_headers(SENTINEL_TOKEN), timeout=5)
    assert wrong.status_code == 401 and "X-LINQ-INTEGRATION-TOKEN" in wrong.json()["errors"][0]["detail"]

    other = linq.LinqAPIV3(api_key=OTHER_TOKEN, base_url=sb.url + "/api/partner", max_retries=0)
    assert other.webhook_subscriptions.list().subscriptions == []
    with pytest.raises(linq.NotFoundError):
        other.webhook_subscriptions.retrieve(mine.id)


def test_a_delivery_unwraps_with_the_sdk_and_a_tampered_one_is_refused(sb: Sandbox, sdk: linq.LinqAPIV3,
                                                                       tap: Tap) -> None:
    sub = sdk.webhook_subscriptions.create(target_url=tap.url(), subscribed_events=["message.received"])
    emitted = _trigger(sb, "message.received", data={"id": "c0ffee00-0000-4000-8000-000000000001"})
    (body, headers), = tap.wait(1)
    assert tap.receiver.events[0]["event_id"] == emitted["event_id"]  # the Receiver took it

    event = sdk.webhooks.unwrap(body.decode(), headers=headers, key=sub.signing_secret)
    # The SDK's union picks the first type whose event_type allows the name (here MessageSentWebhookEvent,
    # whose data type is the same): the typed data is what counts.
    assert event.event_type == "message.received" and isinstance(event.data, MessageEventV2)
    assert event.event_id == headers["Webhook-Id"] == emitted["event_id"]
    assert event.api_version == "v3" and event.webhook_version == v3.WEBHOOK_VERSION
    assert event.data.id == "c0ffee00-0000-4000-8000-000000000001"
    assert event.data.chat.owner_handle.handle == "+12025551234"

    # The legacy set rides along: hex HMAC of "{timestamp}.{body}" keyed by the whole secret string.
    assert headers["X-Webhook-Event"] == "message.received" and headers["X-Webhook-Subscription-Id"] == sub.id
    assert headers["X-Webhook-Timestamp"] == headers["Webhook-Timestamp"]
    expected = hmac.new(sub.signing_secret.encode(), headers["X-Webhook-Timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Webhook-Signature"], expected)

    tampered = body.replace(b"Hello", b"Jello") if b"Hello" in body else body[:-1] + b" }"
    assert tampered != body
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        sdk.webhooks.unwrap(tampered.decode(), headers=headers, key=sub.signing_secret)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        sdk.webhooks.unwrap(body.decode(), headers=headers, key=v3.new_signing_secret())


def test_one_trigger_reaches_v2_and_v3_each_in_its_own_form(sb: Sandbox, sdk: linq.LinqAPIV3, tap: Tap) -> None:
    v2_fields = {"webhook_url": tap.url("?v=2"), "events": ["typing_indicator.received", "contact.created"],
                 "version": 2, "secret": "whsec_v2_test_secret"}
    made = requests.post(sb.url + v2.COLLECTION_PATH, json=v2.request_body(v2_fields),
                         headers=v2.auth_headers(SENTINEL_TOKEN), timeout=5)
    assert made.status_code == 201, made.text
    sub = sdk.webhook_subscriptions.create(target_url=tap.url("?v=3"),
                                           subscribed_events=["chat.typing_indicator.started", "poll.vote.added"])

    emitted = _trigger(sb, "typing_indicator.received")
    assert emitted["deliveries_queued"] == 2 and set(emitted["forms"]) == {"v2", "v3"}
    assert emitted["forms"]["v3"]["event_type"] == "chat.typing_indicator.started"
    assert emitted["event_id"] == emitted["forms"]["v2"]["event_id"] != emitted["forms"]["v3"]["event_id"]
    raw = tap.wait(2)
    by_form = {json.loads(b)["api_version"]: (b, h) for b, h in raw}
    v2_body, v2_headers = by_form["v2"]
    assert json.loads(v2_body)["event_type"] == "typing_indicator.received"
    assert v2_headers["X-Webhook-Signature"] == v2.signature(v2_body, "whsec_v2_test_secret")
    assert "Webhook-Signature" not in v2_headers
    v3_body, v3_headers = by_form["v3"]
    event = sdk.webhooks.unwrap(v3_body.decode(), headers=v3_headers, key=sub.signing_secret)
    assert event.event_type == "chat.typing_indicator.started"

    poll = _trigger(sb, "poll.vote.added")          # v3 only
    assert (poll["event_type"], poll["deliveries_queued"], "forms" in poll) == ("poll.vote.added", 1, False)
    contact = _trigger(sb, "contact.created")       # v2 only: no v3 equivalent
    assert (contact["event_type"], contact["deliveries_queued"], "forms" in contact) == ("contact.created", 1, False)
    # Named in v3, it reaches v2 under v2's name; the answer names the form that went out.
    started = _trigger(sb, "chat.typing_indicator.started")
    assert started["deliveries_queued"] == 2 and started["forms"]["v2"]["event_type"] == "typing_indicator.received"
    assert len(tap.wait(6)) == 6
    sb.wait_for_deliveries(5)
    assert len(tap.raw) == 6


def test_the_same_event_id_across_retries_and_subscriptions(sb: Sandbox, sdk: linq.LinqAPIV3, tap: Tap) -> None:
    subs = [sdk.webhook_subscriptions.create(target_url=tap.url(f"?line={n}"), subscribed_events=["message.sent"])
            for n in (1, 2)]
    tap.receiver.fail_next(2, 503)
    emitted = _trigger(sb, "message.sent")
    raw = tap.wait(4)
    ids = {h["Webhook-Id"] for _, h in raw}
    assert ids == {emitted["event_id"]} == {json.loads(b)["event_id"] for b, _ in raw}
    assert {h["X-Webhook-Subscription-Id"] for _, h in raw} == {s.id for s in subs}
    secrets = {s.id: s.signing_secret for s in subs}
    for body, headers in raw:  # every attempt, retries too, is signed afresh and verifies
        sdk.webhooks.unwrap(body.decode(), headers=headers, key=secrets[headers["X-Webhook-Subscription-Id"]])
    log = requests.get(sb.url + "/_sandbox/deliveries", params={"subscription_id": subs[0].id},
                       headers=v3.auth_headers(SENTINEL_TOKEN), timeout=5).json()["deliveries"]
    assert log and {d["subscription_id"] for d in log} == {subs[0].id}


def test_phone_numbers_and_is_active_choose_who_gets_an_event(sb: Sandbox, sdk: linq.LinqAPIV3, tap: Tap) -> None:
    mine = sdk.webhook_subscriptions.create(target_url=tap.url("?mine"), subscribed_events=["message.received"],
                                            phone_numbers=["+12025551234"])
    other = sdk.webhook_subscriptions.create(target_url=tap.url("?other"), subscribed_events=["message.received"],
                                             phone_numbers=["+14155550000"])
    off = sdk.webhook_subscriptions.create(target_url=tap.url("?off"), subscribed_events=["message.received"])
    sdk.webhook_subscriptions.update(off.id, is_active=False)
    assert _trigger(sb, "message.received")["deliveries_queued"] == 1  # the sample's line: +12025551234
    assert _trigger(sb, "message.received", phone_number="+14155550000")["deliveries_queued"] == 1
    assert _trigger(sb, "message.received", phone_number="+16505550000")["deliveries_queued"] == 0
    got = [h["X-Webhook-Subscription-Id"] for _, h in tap.wait(2)]
    assert sorted(got) == sorted([mine.id, other.id])
    sdk.webhook_subscriptions.update(other.id, phone_numbers=None)  # no filter: every line
    assert _trigger(sb, "message.received", phone_number="+16505550000")["deliveries_queued"] == 1


def test_routing_headers_are_stored_and_sent(sb: Sandbox, sdk: linq.LinqAPIV3, tap: Tap) -> None:
    sub = sdk.webhook_subscriptions.create(target_url=tap.url(), subscribed_events=["message.received"],
                                           routing_key_header="X-Route-Key")
    assert sdk.webhook_subscriptions.retrieve(sub.id).routing_key_header == "X-Route-Key"
    _trigger(sb, "message.received")
    body, headers = tap.wait(1)[0]
    assert headers["Linq-Chat-Id"] == json.loads(body)["data"]["chat"]["id"]
    sdk.webhook_subscriptions.update(sub.id, routing_id_header="X-Chat")
    _trigger(sb, "message.received")
    body, headers = tap.wait(2)[1]
    assert headers["X-Chat"] == json.loads(body)["data"]["chat"]["id"] and "Linq-Chat-Id" not in headers
    sdk.webhook_subscriptions.update(sub.id, routing_key_header=None)  # affinity off: no routing headers
    _trigger(sb, "message.received")
    assert "X-Chat" not in tap.wait(3)[2][1]
    with pytest.raises(linq.BadRequestError):
        sdk.webhook_subscriptions.update(sub.id, routing_key_header="Webhook-Signature")


def test_subscription_changes_are_account_events(sb: Sandbox, sdk: linq.LinqAPIV3, tap: Tap) -> None:
    names: list[Any] = ["webhook_subscription.created", "webhook_subscription.events.updated",
                        "webhook_subscription.deleted"]
    watcher = sdk.webhook_subscriptions.create(target_url=tap.url("?watch"), subscribed_events=names)
    (body, headers), = tap.wait(1)  # it hears about its own creation
    created = sdk.webhooks.unwrap(body.decode(), headers=headers, key=watcher.signing_secret)
    assert created.event_type == "webhook_subscription.created"  # typed as the SDK's union first allows it
    assert created.data.webhook_subscription is not None and created.data.webhook_subscription.id == watcher.id
    assert created.data.webhook_subscription.events == names and created.data.origin == "api"

    other = sdk.webhook_subscriptions.create(target_url="https://example.com/x?token=abc",
                                             subscribed_events=["message.sent"])
    sdk.webhook_subscriptions.update(other.id, subscribed_events=["message.sent", "message.read"])
    sdk.webhook_subscriptions.update(other.id, is_active=True)  # no change: no event
    sdk.webhook_subscriptions.delete(other.id)
    raw = tap.wait(4)
    sb.wait_for_deliveries(5)
    events = [sdk.webhooks.unwrap(b.decode(), headers=h, key=watcher.signing_secret) for b, h in tap.raw]
    assert [e.event_type for e in events] == [*names[:1], *names]
    updated = events[2]
    assert updated.data.change is not None and updated.data.change.to == ["message.sent", "message.read"]
    assert events[1].data.webhook_subscription.target_url == "https://example.com/x"  # type: ignore[union-attr]
    assert len(raw) == 4


def test_retry_profiles_are_the_operators_choice() -> None:
    assert set(RETRY_PROFILES) >= {"linq", "linq-2026-02", "linq-2026-10", "classroom"}
    assert len(RETRY_PROFILES["linq-2026-02"]) + 1 == 6  # six attempts, as the February spec says
    assert 1500 <= sum(RETRY_PROFILES["linq"]) <= 1800 and len(RETRY_PROFILES["linq"]) == 10  # 10 over ~25 min
    assert 1700 <= sum(RETRY_PROFILES["linq-2026-10"]) <= 1900  # up to 30 minutes
    assert parse_delays("classroom") == list(CLASSROOM_RETRY_DELAYS) and parse_delays("0.1,0.2") == [0.1, 0.2]
    with pytest.raises(ValueError, match="classroom"):
        parse_delays("fast")
    with Sandbox(retry_delays="classroom") as sandbox:
        assert sandbox.deliverer.retry_delays == CLASSROOM_RETRY_DELAYS
        # No partner route changes it: the faults route knows no such field and changes nothing.
        resp = requests.post(sandbox.url + "/_sandbox/faults", json={"retry_delays": []},
                             headers=v3.auth_headers(sandbox.token), timeout=5)
        assert resp.status_code == 200 and sandbox.deliverer.retry_delays == CLASSROOM_RETRY_DELAYS
    with pytest.raises(ValueError, match="unknown retry profile"):
        Sandbox(retry_delays="fastest")
