"""The form and the manager on a v3 client, driven with ``.value = ...`` and ``.click()`` over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import ipywidgets as widgets
import pytest

from linq_nb.client_v3 import LinqClientV3
from linq_nb.models import WebhookSubscriptionV3
from linq_nb.widgets import SubscriptionForm, SubscriptionManager
from linq_nb.wire import v3 as wire_v3
from tests.conftest import SENTINEL_TOKEN

HOOK = "http://127.0.0.1:9/webhooks/v3"


@pytest.fixture(autouse=True)
def _close_widgets() -> Iterator[None]:
    widgets.Widget.close_all()
    yield
    widgets.Widget.close_all()


def _visible(widget: widgets.Widget) -> bool:
    return widget.layout.display != "none"


def _output(output: widgets.Output) -> str:
    return "\n".join(str(v) for out in output.outputs for v in out.get("data", {}).values())


def test_form_offers_v3_events_and_no_secret_field(v3: LinqClientV3) -> None:
    form = SubscriptionForm(v3)
    assert [value for _label, value in form.events.options] == list(wire_v3.EVENT_TYPES)
    assert not _visible(form.secret) and not _visible(form.generate) and not _visible(form.active)


def test_form_creates_a_v3_subscription_and_keeps_its_secret(v3: LinqClientV3) -> None:
    form = SubscriptionForm(v3)
    form.url.value = HOOK
    form.events.value = ("message.received", "reaction.added")
    form.submit.click()
    sub = form.result
    assert isinstance(sub, WebhookSubscriptionV3), form.status.value
    assert sub.signing_secret and sub.signing_secret.startswith("whsec_")
    assert sub.signing_secret not in _output(form.output) + form.status.value  # the card masks it
    assert [s.id for s in v3.list_subscriptions()] == [sub.id]


def test_form_preview_is_v3s_request(v3: LinqClientV3) -> None:
    form = SubscriptionForm(v3)
    form.url.value = HOOK
    form.events.value = ("message.received",)
    form.preview_button.click()
    shown = _output(form.output)
    assert "Authorization: Bearer &lt;token&gt;" in shown and "subscribed_events" in shown
    assert SENTINEL_TOKEN not in shown and v3.list_subscriptions() == []


def test_form_a_used_url_is_refused_with_no_create_anyway(v3: LinqClientV3) -> None:
    first = v3.create_subscription(HOOK, ["message.received"])
    form = SubscriptionForm(v3)
    form.url.value = HOOK
    form.events.value = ("message.delivered",)
    form.submit.click()
    assert form.result is None
    assert "once per account" in form.status.value and first.id in form.status.value
    assert not _visible(form.create_anyway)
    assert [s.id for s in v3.list_subscriptions()] == [first.id]


def test_form_edits_a_v3_subscription(v3: LinqClientV3) -> None:
    sub = v3.create_subscription(HOOK, ["message.received"])
    form = SubscriptionForm(v3, sub)
    assert _visible(form.active) and not _visible(form.secret)
    form.active.value = False
    form.events.value = ("message.received", "message.read")
    form.submit.click()
    stored = v3.get_subscription(sub.id)
    assert stored.is_active is False and stored.subscribed_events == ("message.received", "message.read")
    assert form.result == stored


def test_manager_lists_deactivates_and_deletes_v3_subscriptions(v3: LinqClientV3) -> None:
    a = v3.create_subscription(HOOK + "/a", ["message.received"])
    b = v3.create_subscription(HOOK + "/b", ["message.sent"])
    manager = SubscriptionManager(v3)
    assert a.id in manager.table.value and "n/a (v3 has no counters)" in manager.table.value
    assert "never delivered" not in manager.table.value
    manager.select.value = (a.id,)
    assert manager.selected == [a.id]
    manager.deactivate_button.click()
    assert v3.get_subscription(a.id).is_active is False
    assert "inactive" in manager.table.value
    manager.select.value = (a.id, b.id)
    manager.delete_button.click()
    manager.confirm_delete.click()
    assert v3.list_subscriptions() == []
