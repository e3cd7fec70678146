"""The support app's widgets (linq_nb.dashboard), driven from pytest with .value and .click() against real sandboxes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest

from linq_nb.dashboard import SubscriptionCard, SupportDashboard
from linq_nb.support import SupportDesk
from tests.conftest import RECEIVER_SECRET, SENTINEL_TOKEN

OTHER_TOKEN = "sandbox_dashboard_first_account"
APP = Path(__file__).resolve().parent.parent / "apps" / "support.ipynb"


def widget_states(root: widgets.Widget) -> str:
    """Every synced value of the widget tree, as the browser (and a saved notebook) would get them."""
    seen: dict[str, Any] = {}

    def walk(w: Any) -> None:
        if not isinstance(w, widgets.Widget) or w.model_id in seen:
            return
        state = w.get_state()
        seen[w.model_id] = {k: v for k, v in state.items() if not isinstance(v, (bytes, memoryview))}
        for child in getattr(w, "children", ()):
            walk(child)

    walk(root)
    return json.dumps(seen, default=str)


@pytest.fixture
def account(sandbox: Any, client: Any, receiver: Any) -> dict[str, int]:
    """A working and a never-delivered subscription in the test sandbox."""
    ids = {
        "ok": client.create_subscription(receiver.url, ["message.received"], secret=RECEIVER_SECRET).id,
        "never": client.create_subscription(receiver.url + "?new", ["participant.added"], secret=RECEIVER_SECRET).id,
    }
    sandbox.emit("message.received")
    assert sandbox.wait_for_deliveries(10)
    return ids


@pytest.fixture
def dash(client: Any, account: dict[str, int]) -> Iterator[SupportDashboard]:
    d = SupportDashboard(SupportDesk(client), autostart=False)
    yield d
    d.stop()


def test_one_card_per_subscription_with_state_line_and_plot(dash: SupportDashboard, account: dict[str, int]) -> None:
    assert set(dash.cards) == set(account.values())
    assert [c.sub_id for c in dash.card_box.children] == [account["never"], account["ok"]]  # urgent first
    ok, never = dash.cards[account["ok"]], dash.cards[account["never"]]
    assert isinstance(ok, SubscriptionCard)
    assert "Working" in ok.title.value and "Nothing to do" in ok.line.value
    assert "Nothing sent yet" in never.title.value and "participant.added" in never.line.value
    assert bytes(ok.plot.value).startswith(b"\x89PNG")
    assert "2 subscriptions: 1 nothing sent yet, 1 working." in dash.summary.value
    assert "The sandbox at" in dash.where.value
    assert not dash.running  # autostart=False: no thread


def test_deactivate_then_activate_from_the_card(sandbox: Any, dash: SupportDashboard, account: dict[str, int]) -> None:
    card = dash.cards[account["ok"]]
    assert card.deactivate_button.layout.display != "none" and card.activate_button.layout.display == "none"
    card.deactivate_button.click()
    assert {s["id"]: s["active"] for s in sandbox.subscriptions()}[account["ok"]] is False
    assert "Switched off" in card.title.value
    assert "Linq sends this endpoint nothing" in card.line.value
    assert "is switched off" in card.result.value
    assert card.activate_button.layout.display != "none" and card.deactivate_button.layout.display == "none"
    assert card.test_button.disabled  # nothing to send to a switched-off subscription
    assert [c.sub_id for c in dash.card_box.children] == [account["never"], account["ok"]]  # the card stayed put
    card.activate_button.click()
    assert {s["id"]: s["active"] for s in sandbox.subscriptions()}[account["ok"]] is True
    assert "Working" in card.title.value and "switched on" in card.result.value


def test_send_a_test_event_from_the_card(dash: SupportDashboard, account: dict[str, int]) -> None:
    card = dash.cards[account["never"]]
    assert not card.test_button.disabled
    card.test_button.click()
    assert "the endpoint accepted it" in card.result.value
    assert "Working" in card.title.value  # delivered: it is no longer "nothing sent yet"


def test_a_new_subscription_gets_a_card_and_a_deleted_one_loses_it(client: Any, dash: SupportDashboard,
                                                                   account: dict[str, int]) -> None:
    new = client.create_subscription("https://example.com/hooks/later", ["message.read"])
    client.delete_subscription(account["never"])
    dash.refresh_button.click()
    assert set(dash.cards) == {account["ok"], new.id}
    assert len(dash.card_box.children) == 2


def test_an_error_is_shown_not_raised(sandbox: Any, dash: SupportDashboard) -> None:
    sandbox.fail_next(10, 503)
    dash.refresh()
    assert "503" in dash.status.value
    sandbox.app.clear_faults()
    dash.refresh()
    assert dash.status.value == ""


def test_token_field_switches_account_and_keeps_the_token_nowhere(receiver: Any) -> None:
    """Start on one partner's account, paste the other's token and the sandbox's address, see that account."""
    from linq_nb.client import LinqClient
    from linq_nb.sandbox import Sandbox

    with Sandbox(tokens=[OTHER_TOKEN, SENTINEL_TOKEN], retry_delays=[0.05], deliver_to=["127.0.0.1"]) as sandbox:
        first = LinqClient(token=OTHER_TOKEN, base_url=sandbox.url)
        first.create_subscription("https://example.com/hooks/first", ["message.sent"])
        with LinqClient(token=SENTINEL_TOKEN, base_url=sandbox.url) as second:
            second.create_subscription("https://example.com/hooks/second-a", ["message.sent"])
            second.create_subscription("https://example.com/hooks/second-b", ["message.read"])
        dash = SupportDashboard(SupportDesk(first), autostart=False)
        assert len(dash.cards) == 1
        assert dash.token_input.token.description  # a masked field (ipywidgets.Password)
        assert isinstance(dash.token_input.token, widgets.Password)
        dash.base_url.value = sandbox.url
        dash.token_input.token.value = SENTINEL_TOKEN
        dash.token_input.use_button.click()
        assert dash.token_input.token.value == ""  # cleared as soon as it was used
        assert len(dash.cards) == 2
        assert all("second" in c.title.value for c in dash.cards.values())
        assert "demo" not in dash.desk.where and sandbox.url in dash.where.value
        assert dash.demo_button.layout.display != "none"  # a way back to the demo account
        assert SENTINEL_TOKEN not in widget_states(dash)
        assert SENTINEL_TOKEN not in repr(dash) + repr(dash.desk.client)
        dash.close()


def test_back_to_the_demo_account(client: Any, account: dict[str, int]) -> None:
    dash = SupportDashboard(SupportDesk(client), autostart=False)
    dash.demo_button.click()
    try:
        assert dash.desk.mode == "demo" and "demo account" in dash.where.value
        assert dash.demo_button.layout.display == "none"
        titles = sorted(c.triage.title for c in dash.cards.values() if c.triage is not None)
        assert titles == ["Failing", "Nothing sent yet", "Quiet", "Switched off", "Working"]
    finally:
        dash.close()
    assert dash.desk.demo is not None and dash.desk.demo.sandbox is None  # closed with the dashboard


def test_auto_refresh_thread_starts_and_stops(dash: SupportDashboard) -> None:
    dash.every = 0.05
    dash.auto.value = True
    assert dash.running
    dash.auto.value = False
    assert not dash.running


def test_the_app_notebook_only_shows_the_dashboard() -> None:
    nb = json.loads(APP.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(code) == 1 and not code[0]["outputs"], "the app notebook is committed without outputs"
    source = "".join(code[0]["source"])
    assert "SupportDashboard()" in source
    assert "token" not in source.lower().replace("linq_integration_token", "")  # nothing stored in it


def test_a_shared_sandbox_address_from_the_environment_is_filled_in(
        monkeypatch: pytest.MonkeyPatch, sandbox: Any, client: Any) -> None:
    monkeypatch.setenv("LINQ_API_BASE_URL", sandbox.url)
    dash = SupportDashboard(SupportDesk(client), autostart=False)
    assert dash.base_url.value == sandbox.url
    assert dash.token_input.base_url == sandbox.url  # what a pasted token will be used with
    dash.base_url.value = "  "
    assert dash.token_input.base_url is None  # empty: the live API
