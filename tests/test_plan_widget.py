"""PlanView driven as a notebook would: ``.click()``, against a real sandbox."""

from __future__ import annotations

from linq_nb.client import LinqClient
from linq_nb.plan_widget import PlanView
from linq_nb.plans import plan
from linq_nb.sandbox import Sandbox

HOOK = "http://127.0.0.1:9/hook"
FILE = f'managed = "full"\n[[v2]]\nurl = "{HOOK}"\nevents = ["message.received"]\n'


def test_apply_asks_before_deleting_and_cancel_changes_nothing(client: LinqClient, sandbox: Sandbox) -> None:
    client.create_subscription("http://127.0.0.1:9/old", ["chat.created"])
    view = PlanView(plan(FILE, client))
    assert "create" in view.table.value and "delete" in view.table.value
    view.apply_button.click()
    assert "deletes 1" in view.status.value and view.confirm_button.layout.display == ""
    assert view.result is None and len(sandbox.subscriptions()) == 1  # nothing yet
    view.cancel_button.click()
    assert "Not applied" in view.status.value and len(sandbox.subscriptions()) == 1
    view.apply_button.click()
    view.confirm_button.click()
    assert view.result is not None and view.result.ok
    assert [s["webhook_url"] for s in sandbox.subscriptions()] == [HOOK]
    assert view.progress.value == 2 and "done (2)" in view.status.value
    view.refresh_button.click()
    assert not view.plan.changed and view.apply_button.disabled


def test_a_plan_without_deletes_applies_at_once(client: LinqClient, sandbox: Sandbox) -> None:
    view = PlanView(plan(FILE.replace('managed = "full"\n', ""), client))
    view.apply_button.click()
    assert view.result is not None and view.result.ok and len(sandbox.subscriptions()) == 1
