"""The widgets driven as a notebook would drive them: ``.value = ...`` and ``.click()``, no kernel, no browser.

Each test asserts on the widget's state and on the sandbox's state, over real HTTP.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import ipywidgets as widgets
import pytest

from linq_nb.errors import LinqError
from linq_nb.models import WebhookSubscription
from linq_nb.widgets import DeliveryView, SubscriptionForm, SubscriptionManager, TokenInput, token_input
from tests.conftest import RECEIVER_SECRET, SENTINEL_SECRET, SENTINEL_TOKEN

HOOK = "http://127.0.0.1:9/webhooks/linq"  # loopback: the sandbox accepts plain http here


@pytest.fixture(autouse=True)
def _close_widgets() -> Iterator[None]:
    """Each test starts and ends with no live widgets, so searches of widget state see only its own."""
    widgets.Widget.close_all()
    yield
    widgets.Widget.close_all()


def _html(output: widgets.Output) -> str:
    """Everything an Output widget holds, as one string (HTML and plain text)."""
    return "\n".join(str(v) for out in output.outputs for v in out.get("data", {}).values())


def _visible(widget: widgets.Widget) -> bool:
    return widget.layout.display != "none"


def _all_widget_text(exclude: tuple[widgets.Widget, ...] = ()) -> str:
    """The synced state and the repr of every live widget (what a browser or a saved notebook could see)."""
    from ipywidgets.widgets.widget import _instances

    skip = {w.model_id for w in exclude}
    parts = []
    for model_id, widget in list(_instances.items()):
        if model_id in skip:
            continue
        parts.append(json.dumps(widget.get_state(), default=str))
        parts.append(repr(widget))
    return "\n".join(parts)


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _fill(form: SubscriptionForm, url: str = HOOK, events: tuple[str, ...] = ("message.received",),
          secret: str = "") -> SubscriptionForm:
    form.url.value = url
    form.events.value = events
    form.secret.value = secret
    return form


# --------------------------------------------------------------------------- form: validation


def test_form_lists_every_event_with_its_meaning(client: Any) -> None:
    from linq_nb.events import EVENTS

    form = SubscriptionForm(client)
    assert [value for _label, value in form.events.options] == list(EVENTS)
    assert ("message.sent — A Linq user sent a message", "message.sent") in form.events.options
    assert form.active.value is True
    assert form.submit.description == "Create subscription"


def test_validation_as_you_type_disables_submit_with_the_reason(client: Any, sandbox: Any) -> None:
    form = SubscriptionForm(client)
    assert form.submit.disabled and form.preview_button.disabled
    assert "Enter the Webhook URL" in form.reason.value

    form.url.value = "not a url"
    assert form.submit.disabled
    assert "http(s)" in form.url_message.value
    # said once, at the field, in the form's words; the line under the buttons only points there
    assert "webhook_url" not in form.url_message.value and "Webhook URL" in form.url_message.value
    assert form.reason.value and "http(s)" not in form.reason.value and "Webhook URL above" in form.reason.value

    form.url.value = "ftp://example.com/hook"
    assert form.submit.disabled and "http(s)" in form.url_message.value and "Webhook URL above" in form.reason.value

    form.url.value = "https://example.com/hook"
    assert form.submit.disabled
    assert "at least one event" in form.reason.value
    assert form.url_message.value == ""

    form.events.value = ("message.sent", "message.read")
    assert not form.submit.disabled and not form.preview_button.disabled
    assert form.reason.value == ""
    assert "2 events chosen" in form.events_message.value

    form.events.value = ()
    assert form.submit.disabled and "at least one event" in form.reason.value

    # a click on the disabled button (as .click() allows) sends nothing and says why
    form.submit.click()
    assert "at least one event" in form.status.value
    assert form.result is None
    assert sandbox.subscriptions() == []


def test_the_reason_sits_under_the_buttons_which_are_never_squeezed(client: Any) -> None:
    form = SubscriptionForm(client)
    form.url.value = "https://example.com/" + "very-long-path/" * 20 + " x"
    row = next(c for c in form.children if isinstance(c, widgets.HBox) and form.submit in c.children)
    assert form.reason not in row.children  # a long reason no longer shares the row with the buttons
    assert form.children.index(form.reason) == form.children.index(row) + 1
    for button in (form.submit, form.preview_button, form.create_anyway):
        assert button.layout.flex == "0 0 auto" and button.layout.width == "auto"
    assert row.layout.flex_flow == "row wrap"


def test_pasted_spaces_around_the_url_are_trimmed(client: Any, sandbox: Any) -> None:
    form = _fill(SubscriptionForm(client), url="  https://example.com/hook\n")
    assert form.url.value == "https://example.com/hook"
    assert not form.submit.disabled and form.url_message.value == ""
    form.submit.click()
    assert form.result is not None and form.result.webhook_url == "https://example.com/hook"


def test_saving_an_unchanged_subscription_sends_nothing(client: Any, sandbox: Any) -> None:
    sub = client.create_subscription(HOOK, ["message.received"])
    form = SubscriptionForm(client, sub)
    form.submit.click()
    assert "Nothing to save" in form.status.value and form.result is None
    assert client.get_subscription(sub) == sub
    form.active.value = False
    form.submit.click()
    assert form.result is not None and form.result.active is False


def test_plain_http_to_a_public_host_is_a_warning_not_a_block(client: Any) -> None:
    form = _fill(SubscriptionForm(client), url="http://example.com/hook")
    assert not form.submit.disabled
    assert "https" in form.url_message.value


def test_submit_is_disabled_while_the_request_is_in_flight(client: Any, sandbox: Any) -> None:
    form = _fill(SubscriptionForm(client))
    seen: list[tuple[bool, str]] = []
    form.submit.observe(lambda change: seen.append((change["new"], form.reason.value)), names="disabled")
    form.submit.click()
    assert seen[0][0] is True and "in flight" in seen[0][1]
    assert seen[-1][0] is False
    assert not form.submit.disabled
    assert len(sandbox.subscriptions()) == 1


# --------------------------------------------------------------------------- form: create


def test_create_shows_the_card_and_the_sandbox_has_it(client: Any, sandbox: Any) -> None:
    form = _fill(SubscriptionForm(client), events=("message.received", "message.sent"), secret=SENTINEL_SECRET)
    form.active.value = True
    form.submit.click()

    assert isinstance(form.result, WebhookSubscription)
    assert form.error is None
    assert f"Created subscription #{form.result.id}" in form.status.value
    shown = _html(form.output)
    assert 'class="linq-subscription"' in shown and HOOK in shown

    subs = sandbox.subscriptions()
    assert len(subs) == 1
    assert subs[0]["id"] == form.result.id
    assert subs[0]["webhook_url"] == HOOK
    assert sorted(subs[0]["events"]) == ["message.received", "message.sent"]
    assert subs[0]["secret_configured"] is True and subs[0]["active"] is True

    # the secret was sent, then dropped from the form; it is nowhere in any widget
    assert form.secret.value == "" and form.revealed.value == ""
    assert form.url.value == HOOK  # the rest is kept
    assert SENTINEL_SECRET not in _all_widget_text()
    assert SENTINEL_TOKEN not in _all_widget_text()


def test_create_without_secret_and_inactive(client: Any, sandbox: Any) -> None:
    form = _fill(SubscriptionForm(client), events=("call.completed",))
    form.active.value = False
    form.submit.click()
    (sub,) = sandbox.subscriptions()
    assert sub["secret_configured"] is False and sub["active"] is False
    assert form.result is not None and form.result.active is False


def test_success_callback_gets_the_subscription(client: Any) -> None:
    got: list[WebhookSubscription] = []
    form = _fill(SubscriptionForm(client, on_success=got.append))
    form.submit.click()
    assert got == [form.result]


# --------------------------------------------------------------------------- form: duplicate guard


def test_duplicate_guard_requires_create_anyway(client: Any, sandbox: Any) -> None:
    existing = client.create_subscription(HOOK, ["message.received", "message.read"])
    form = _fill(SubscriptionForm(client), events=("message.received", "call.completed"))
    assert not _visible(form.create_anyway)

    form.submit.click()
    assert len(sandbox.subscriptions()) == 1  # nothing created
    assert form.result is None
    assert _visible(form.create_anyway)
    assert [(sub.id, events) for sub, events in form.duplicates] == [(existing.id, ["message.received"])]
    shown = _html(form.output)
    assert f"#{existing.id}" in shown and HOOK in shown and "message.received" in shown
    assert "Create anyway" in form.status.value

    # clicking submit again does not create it either
    form.submit.click()
    assert len(sandbox.subscriptions()) == 1

    form.create_anyway.click()
    assert form.result is not None and form.result.id != existing.id
    assert len(sandbox.subscriptions()) == 2
    assert not _visible(form.create_anyway)
    assert form.duplicates == []


def test_changing_the_values_withdraws_create_anyway(client: Any, sandbox: Any) -> None:
    client.create_subscription(HOOK, ["message.received"])
    form = _fill(SubscriptionForm(client))
    form.submit.click()
    assert _visible(form.create_anyway)

    form.url.value = "http://127.0.0.1:9/other"
    assert not _visible(form.create_anyway) and form.duplicates == []
    form.submit.click()  # a different URL is not a duplicate
    assert form.result is not None
    assert len(sandbox.subscriptions()) == 2


def test_same_url_with_other_events_is_not_a_duplicate(client: Any, sandbox: Any) -> None:
    client.create_subscription(HOOK, ["message.received"])
    form = _fill(SubscriptionForm(client), events=("call.completed",))
    form.submit.click()
    assert form.result is not None and not _visible(form.create_anyway)
    assert len(sandbox.subscriptions()) == 2


# --------------------------------------------------------------------------- form: errors


def test_server_error_keeps_values_and_shows_the_messages(client: Any, sandbox: Any) -> None:
    url = "http://example.com/webhooks/linq"  # the sandbox refuses plain http to a public host
    form = _fill(SubscriptionForm(client), url=url, events=("message.sent",), secret=SENTINEL_SECRET)
    form.active.value = False
    form.submit.click()

    assert form.result is None
    assert isinstance(form.error, LinqError)
    assert sandbox.subscriptions() == []
    assert 'class="linq-error"' in form.status.value
    assert form.error.errors and all(m for m in form.error.errors)
    assert "https" in form.url_message.value  # the server's message, next to the URL field
    # every typed value kept
    assert form.url.value == url
    assert form.events.value == ("message.sent",)
    assert form.secret.value == SENTINEL_SECRET
    assert form.active.value is False
    assert SENTINEL_SECRET not in form.status.value + form.url_message.value + _html(form.output)

    # and the form stays usable: fix the URL, submit again
    form.url.value = "https://example.com/webhooks/linq"
    assert "https" not in form.url_message.value.replace("https://", "")
    assert not form.submit.disabled
    form.submit.click()
    assert form.result is not None and form.error is None
    assert len(sandbox.subscriptions()) == 1
    assert sandbox.subscriptions()[0]["active"] is False


def test_injected_failure_is_reported_and_the_form_recovers(client: Any, sandbox: Any) -> None:
    form = _fill(SubscriptionForm(client))
    sandbox.fail_next(1, status=422)
    form.submit.click()
    assert form.result is None and form.error is not None and form.error.status == 422
    assert 'class="linq-error"' in form.status.value
    assert not form.submit.disabled
    assert form.url.value == HOOK and form.events.value == ("message.received",)

    form.submit.click()
    assert form.result is not None
    assert len(sandbox.subscriptions()) == 1


# --------------------------------------------------------------------------- form: preview


def test_preview_shows_body_and_curl_with_token_and_secret_masked(client: Any, sandbox: Any) -> None:
    form = _fill(SubscriptionForm(client), events=("message.received", "contact.created"), secret=SENTINEL_SECRET)
    form.preview_button.click()

    shown = _html(form.output)
    assert "curl" in shown
    assert "X-LINQ-INTEGRATION-TOKEN" in shown
    assert HOOK in shown and "contact.created" in shown and "webhook_subscription" in shown
    assert "/api/partner/v2/webhook_subscriptions" in shown
    assert SENTINEL_TOKEN not in shown and SENTINEL_SECRET not in shown
    # nowhere but in the password field the user typed it into
    everything = _all_widget_text(exclude=(form.secret,))
    assert SENTINEL_SECRET not in everything and SENTINEL_TOKEN not in everything
    assert sandbox.subscriptions() == []  # a preview sends nothing


def test_preview_in_edit_mode(client: Any, sandbox: Any) -> None:
    sub = client.create_subscription(HOOK, ["message.received"])
    form = SubscriptionForm(client, sub)
    form.events.value = ("message.received", "message.read")
    form.preview_button.click()
    shown = _html(form.output)
    assert "PUT" in shown and f"/webhook_subscriptions/{sub.id}" in shown and "message.read" in shown
    assert SENTINEL_TOKEN not in shown
    assert sandbox.subscriptions()[0]["events"] == ["message.received"]


# --------------------------------------------------------------------------- form: secret field


def test_generate_and_reveal_the_secret(client: Any) -> None:
    form = SubscriptionForm(client)
    form.generate.click()
    secret = form.secret.value
    assert len(secret) >= 32
    assert not _visible(form.revealed) and form.revealed.value == ""

    form.reveal.value = True
    assert _visible(form.revealed) and form.revealed.value == secret and form.revealed.disabled
    form.generate.click()  # a new one shows while revealed
    assert form.revealed.value == form.secret.value != secret

    form.reveal.value = False
    assert not _visible(form.revealed) and form.revealed.value == ""
    assert form.secret.value not in _all_widget_text(exclude=(form.secret,))


# --------------------------------------------------------------------------- form: edit


def test_edit_mode_prefills_and_updates(client: Any, sandbox: Any) -> None:
    sub = client.create_subscription(HOOK, ["message.received"], secret=SENTINEL_SECRET)
    form = SubscriptionForm(client, sub)
    assert form.editing and form.submit.description == "Save changes"
    assert form.url.value == HOOK and form.events.value == ("message.received",) and form.active.value is True
    assert form.secret.value == "" and "keep" in form.secret.placeholder
    assert not form.submit.disabled

    form.events.value = ("message.received", "message.sent")
    form.active.value = False
    form.submit.click()  # empty secret: keep the stored one

    assert form.error is None and form.result is not None
    assert form.result.id == sub.id and form.result.active is False
    (stored,) = sandbox.subscriptions()
    assert stored["id"] == sub.id
    assert sorted(stored["events"]) == ["message.received", "message.sent"]
    assert stored["active"] is False
    assert stored["secret_configured"] is True
    assert f"Updated subscription #{sub.id}" in form.status.value
    assert 'class="linq-subscription"' in _html(form.output)


def test_edit_mode_errors_keep_values(client: Any, sandbox: Any) -> None:
    sub = client.create_subscription(HOOK, ["message.received"])
    form = SubscriptionForm(client, sub)
    form.url.value = "http://example.com/hook"
    form.submit.click()
    assert form.result is None and form.error is not None
    assert form.url.value == "http://example.com/hook"
    assert sandbox.subscriptions()[0]["webhook_url"] == HOOK


# --------------------------------------------------------------------------- manager


def _make(client: Any, n: int) -> list[WebhookSubscription]:
    return [client.create_subscription(f"http://127.0.0.1:9/hook/{i}", ["message.received"]) for i in range(n)]


def _by_id(sandbox: Any) -> dict[int, dict[str, Any]]:
    return {s["id"]: s for s in sandbox.subscriptions()}


def test_manager_table_marks_never_delivered_and_inactive(client: Any, sandbox: Any) -> None:
    a, b = _make(client, 2)
    client.update_subscription(b.id, active=False)
    manager = SubscriptionManager(client)

    assert manager.frame is not None and len(manager.frame) == 2
    assert list(manager.frame["id"]) == [a.id, b.id]
    table = manager.table.value
    assert "never delivered" in table and "linq-never-delivered" in table
    assert table.count("linq-inactive") == 1 and "inactive" in table
    assert [value for _label, value in manager.select.options] == [a.id, b.id]
    assert "inactive" in manager.select.options[1][0]
    assert manager.edit_button.disabled and manager.delete_button.disabled  # nothing selected yet


def test_manager_refresh_sees_new_subscriptions(client: Any) -> None:
    manager = SubscriptionManager(client)
    assert manager.frame is not None and manager.frame.empty
    assert "No subscriptions" in manager.table.value
    _make(client, 1)
    manager.refresh_button.click()
    assert len(manager.frame) == 1
    assert "1 subscription" in manager.status.value


def test_manager_deactivate_and_activate(client: Any, sandbox: Any) -> None:
    (a,) = _make(client, 1)
    manager = SubscriptionManager(client)
    manager.select.value = (a.id,)
    assert not manager.deactivate_button.disabled

    manager.deactivate_button.click()
    assert _by_id(sandbox)[a.id]["active"] is False
    assert "linq-inactive" in manager.table.value
    assert manager.frame is not None and not bool(manager.frame["active"].iloc[0])
    assert manager.select.value == (a.id,)  # selection survives the refresh

    manager.activate_button.click()
    assert _by_id(sandbox)[a.id]["active"] is True
    assert "linq-inactive" not in manager.table.value


def test_manager_delete_asks_for_confirmation(client: Any, sandbox: Any) -> None:
    a, b = _make(client, 2)
    manager = SubscriptionManager(client)
    manager.select.value = (a.id,)

    manager.delete_button.click()
    assert len(sandbox.subscriptions()) == 2  # only asked
    assert _visible(manager.confirm_delete) and _visible(manager.cancel_delete)
    assert f"#{a.id}" in manager.status.value

    manager.cancel_delete.click()
    assert not _visible(manager.confirm_delete)
    manager.confirm_delete.click()  # nothing pending any more
    assert len(sandbox.subscriptions()) == 2

    manager.delete_button.click()
    manager.confirm_delete.click()
    assert list(_by_id(sandbox)) == [b.id]
    assert not _visible(manager.confirm_delete)
    assert manager.frame is not None and list(manager.frame["id"]) == [b.id]
    assert manager.select.value == ()


def test_manager_changing_the_selection_cancels_a_pending_delete(client: Any, sandbox: Any) -> None:
    a, b = _make(client, 2)
    manager = SubscriptionManager(client)
    manager.select.value = (a.id,)
    manager.delete_button.click()
    manager.select.value = (b.id,)
    assert not _visible(manager.confirm_delete)
    manager.confirm_delete.click()
    assert len(sandbox.subscriptions()) == 2


def test_manager_bulk_actions_show_progress(client: Any, sandbox: Any) -> None:
    subs = _make(client, 4)
    ids = tuple(s.id for s in subs[:3])
    manager = SubscriptionManager(client)
    manager.select.value = ids
    assert manager.edit_button.disabled  # edit needs exactly one

    progress: list[int] = []
    manager.progress.observe(lambda change: progress.append(change["new"]), names="value")
    manager.deactivate_button.click()
    assert [_by_id(sandbox)[i]["active"] for i in ids] == [False, False, False]
    assert _by_id(sandbox)[subs[3].id]["active"] is True
    assert progress == [0, 1, 2, 3] or progress == [1, 2, 3]
    assert manager.progress.value == manager.progress.max == 3
    assert _visible(manager.progress) and manager.progress.bar_style == "success"
    assert "3 of 3 deactivated" in manager.status.value

    manager.select.value = (*ids[:2], subs[3].id)  # two inactive, one already active
    manager.activate_button.click()
    assert "already active" in manager.status.value
    assert [_by_id(sandbox)[i]["active"] for i in (*ids[:2], subs[3].id)] == [True, True, True]

    manager.select.value = ids
    manager.delete_button.click()
    assert manager.confirm_delete.description == "Yes, delete 3"
    manager.confirm_delete.click()
    assert list(_by_id(sandbox)) == [subs[3].id]
    assert manager.progress.value == 3 and "3 of 3 deleted" in manager.status.value


def test_manager_bulk_reports_each_failure_and_goes_on(client: Any, sandbox: Any) -> None:
    a, b = _make(client, 2)
    manager = SubscriptionManager(client)
    manager.select.value = (a.id, b.id)
    sandbox.fail_next(1, status=422)  # the first update fails, the second goes through
    manager.deactivate_button.click()
    assert "1 of 2 deactivated" in manager.status.value
    assert 'class="linq-error"' in manager.status.value
    assert manager.progress.value == 2 and manager.progress.bar_style == "danger"
    assert [s["active"] for s in sandbox.subscriptions()].count(False) == 1


def test_manager_edit_opens_the_form_and_refreshes_after_save(client: Any, sandbox: Any) -> None:
    (a,) = _make(client, 1)
    manager = SubscriptionManager(client)
    manager.select.value = (a.id,)
    manager.edit_button.click()

    form = manager.form
    assert isinstance(form, SubscriptionForm) and form.editing
    assert manager.editor.children[0] is form
    assert form.url.value == a.webhook_url

    form.url.value = "http://127.0.0.1:9/renamed"
    form.submit.click()
    assert _by_id(sandbox)[a.id]["webhook_url"] == "http://127.0.0.1:9/renamed"
    assert "renamed" in manager.table.value  # the manager refreshed itself

    manager.close_editor.click()
    assert manager.form is None and manager.editor.children == ()


def test_manager_new_opens_an_empty_form(client: Any, sandbox: Any) -> None:
    manager = SubscriptionManager(client)
    manager.new_button.click()
    assert manager.form is not None and not manager.form.editing
    _fill(manager.form)
    manager.form.submit.click()
    assert len(sandbox.subscriptions()) == 1
    assert manager.frame is not None and len(manager.frame) == 1


# --------------------------------------------------------------------------- token input


def test_token_input_switches_and_never_keeps_the_token(sandbox: Any) -> None:
    got: list[Any] = []
    box = token_input(base_url=sandbox.url, on_client=got.append)
    assert isinstance(box, TokenInput) and box.client is None

    box.token.value = SENTINEL_TOKEN
    box.use_button.click()

    assert box.token.value == ""
    assert box.client is not None and got == [box.client]
    assert box.client.mode == "sandbox"
    host = sandbox.url.split("://", 1)[1]
    assert f"Switched to sandbox mode ({host})" in box.status.value
    assert box.client.list_subscriptions() == []  # the client really holds the token
    everything = _all_widget_text()
    assert SENTINEL_TOKEN not in everything
    assert SENTINEL_TOKEN not in repr(box) + repr(box.client)
    box.client.close()


def test_token_input_refuses_a_wrong_token_and_clears_it(sandbox: Any) -> None:
    box = token_input(base_url=sandbox.url)
    box.token.value = "tok_wrong_" + SENTINEL_TOKEN
    box.use_button.click()
    assert box.token.value == ""
    assert box.client is None
    assert "refused" in box.status.value
    assert SENTINEL_TOKEN not in _all_widget_text()


def test_token_input_says_it_switched_to_live_mode() -> None:
    box = token_input(verify=False)  # no request: the tests never talk to the live API
    box.token.value = SENTINEL_TOKEN
    box.use_button.click()
    assert box.client is not None and box.client.mode == "live"
    assert "switched to live mode (api.linqapp.com)" in box.status.value.lower()
    assert SENTINEL_TOKEN not in _all_widget_text()
    box.client.close()


def test_token_input_with_an_empty_field_says_so() -> None:
    box = token_input()
    box.use_button.click()
    assert box.client is None and "Paste a token" in box.status.value


# --------------------------------------------------------------------------- delivery view


def test_delivery_view_refreshes_as_events_arrive(client: Any, sandbox: Any, receiver: Any) -> None:
    client.create_subscription(receiver.url, ["message.received"], secret=RECEIVER_SECRET)
    view = DeliveryView(receiver, every=0.05)
    try:
        assert view.running
        assert "Nothing received yet" in view.table.value
        sandbox.emit("message.received")
        assert receiver.wait_for_events(1, timeout=10)
        assert _wait(lambda: view.frame is not None and len(view.frame) == 1)
        assert _wait(lambda: "message.received" in view.table.value)
        assert "1 request" in view.summary.value
    finally:
        view.stop()
    assert not view.running
    assert "stopped" in repr(view)

    sandbox.emit("message.received")
    assert receiver.wait_for_events(2, timeout=10)
    frame = view.refresh()
    assert len(frame) == 2 and "2 requests" in view.summary.value
    assert RECEIVER_SECRET not in view.table.value + view.summary.value


def test_delivery_view_shows_the_columns_a_person_reads(client: Any, sandbox: Any, receiver: Any) -> None:
    sub = client.create_subscription(receiver.url, ["message.received", "message.sent"], secret=RECEIVER_SECRET)
    receiver.fail_next(1, status=503)
    first = sandbox.emit("message.received")
    assert receiver.wait_for_events(1, timeout=10)
    sandbox.emit("message.sent")
    assert receiver.wait_for_events(2, timeout=10)
    view = DeliveryView(receiver, autostart=False)
    table = view.table.value
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", table)
    assert heads == ["received (UTC)", "status", "event type", "event id", "subscription", "signature", "took",
                     "note"]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>")[1])
    assert len(rows) == 3
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    assert [c[2] for c in cells] == ["message.sent", "message.received", "message.received"]  # newest first
    assert [c[1] for c in cells] == ["200", "200", "503"]
    assert f'title="{first["event_id"]}">{first["event_id"][:8]}</code>' in cells[2][3]  # short id, full on hover
    assert all(c[4] == f"#{sub.id}" and c[5] == "✓ valid" for c in cells)
    assert re.fullmatch(r"\d{2}:\d{2}:\d{2}\.\d{3}", cells[0][0])  # milliseconds, not microseconds
    assert re.fullmatch(r"\d+(\.\d)? ms", cells[0][6])
    assert cells[0][7] == "" and "None" not in table and "503" in cells[2][7]
    row_styles = re.findall(r"<tr([^>]*)>", table.split("<tbody>")[1])
    assert row_styles == ["", "", ' style="color:#c0392b"']  # only the failed request is red
    assert RECEIVER_SECRET not in table


def test_delivery_view_close_stops_the_thread(receiver: Any) -> None:
    view = DeliveryView(receiver, every=0.05)
    assert view.running
    view.close()
    assert not view.running


# --------------------------------------------------------------------------- reprs


def test_reprs_are_useful_and_hold_no_secret(client: Any, sandbox: Any, receiver: Any) -> None:
    sub = client.create_subscription(HOOK, ["message.received"], secret=SENTINEL_SECRET)
    form = _fill(SubscriptionForm(client), secret=SENTINEL_SECRET)
    edit = SubscriptionForm(client, sub)
    manager = SubscriptionManager(client)
    view = DeliveryView(receiver, autostart=False)
    texts = [repr(form), repr(edit), repr(manager), repr(view), repr(token_input())]
    assert texts[0].startswith("SubscriptionForm(create") and sandbox.url in texts[0]
    assert f"edit #{sub.id}" in texts[1]
    assert "1 subscriptions" in texts[2] or "1 subscription" in texts[2]
    assert receiver.url in texts[3]
    for w in (form, edit, manager, view):
        bundle = w._repr_mimebundle_()
        assert "text/plain" in bundle
    joined = "\n".join(texts)
    assert SENTINEL_TOKEN not in joined and SENTINEL_SECRET not in joined
