"""Subscriptions as code over real HTTP: a desired-state file, its plan against a sandbox, apply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from linq_nb.client import LinqClient
from linq_nb.plans import DesiredStateError, load_desired, plan
from linq_nb.sandbox import Sandbox
from tests.conftest import SENTINEL_SECRET

A = "http://127.0.0.1:9/a"
B = "http://127.0.0.1:9/b"
C = "http://127.0.0.1:9/c"

DESIRED = f"""
[[v2]]
url = "{A}"
events = ["message.received", "message.sent"]
secret_env = "PLAN_TEST_SECRET"

[[v2]]
url = "{B}"
events = ["message.read"]
active = false

[[v3]]
url = "{C}"
events = ["message.received", "chat.created"]
secret_file = "SECRET_FILE"
"""


@pytest.fixture
def desired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PLAN_TEST_SECRET", SENTINEL_SECRET)
    path = tmp_path / "subs.toml"
    path.write_text(DESIRED.replace("SECRET_FILE", str(tmp_path / "c.whsec")))
    return path


def actions(p: Any) -> list[tuple[str, str, str]]:
    return [(c.action, c.api, c.url) for c in p.changes]


def test_plan_then_apply_is_idempotent(desired: Path, client: LinqClient, sandbox: Sandbox, tmp_path: Path) -> None:
    p = plan(desired, client)
    assert actions(p) == [("create", "v2", A), ("create", "v2", B), ("create", "v3", C)]
    assert sandbox.subscriptions() == []  # a plan changes nothing
    lines: list[str] = []
    result = p.apply(progress=lines.append)
    assert result.ok and len(result.done) == 3 and not result.not_done
    assert any("[3/3] done" in line for line in lines)
    v2 = {s["webhook_url"]: s for s in sandbox.subscriptions()}
    assert set(v2[A]["events"]) == {"message.received", "message.sent"} and v2[A]["secret_configured"]
    assert v2[B]["active"] is False
    (_v3,) = sandbox.subscriptions(api="v3")
    secret_file = tmp_path / "c.whsec"
    assert secret_file.read_text().startswith("whsec_") and secret_file.stat().st_mode & 0o077 == 0
    again = plan(desired, client)
    assert not again.changed and [c.action for c in again.changes] == ["leave"] * 3
    assert again.apply().done == []
    assert len(sandbox.subscriptions()) == 2 and len(sandbox.subscriptions(api="v3")) == 1
    # data first: a frame, JSON, a terminal table, HTML; the secret in none of them
    shown = [str(p), p.to_json(), p._repr_html_(), p.frame().to_string(), str(result)]
    assert all(SENTINEL_SECRET not in s for s in shown)
    assert json.loads(p.to_json())["counts"]["create"] == 3 and "+ create" in str(p)


def test_drift_outside_the_file_shows_in_the_next_plan(desired: Path, client: LinqClient, sandbox: Sandbox) -> None:
    plan(desired, client).apply()
    sub_a = next(s for s in client.list_subscriptions() if s.webhook_url == A)
    client.update_subscription(sub_a, events=["message.received"], active=False)  # a change made by hand
    p = plan(desired, client)
    (change,) = p.pending
    assert change.action == "update" and change.id == sub_a.id
    assert change.diff == {"events": (("message.received",), ("message.received", "message.sent")),
                           "active": (False, True)}
    assert "events: [message.received] -> [message.received, message.sent]" in str(p)
    assert p.apply().ok and not plan(desired, client).changed
    assert set(client.get_subscription(sub_a.id).events) == {"message.received", "message.sent"}


def test_deletes_only_when_fully_managed_and_duplicates_flagged(desired: Path, client: LinqClient) -> None:
    plan(desired, client).apply()
    twin = client.create_subscription(A, ["message.sent"], allow_duplicate=True)
    other = client.create_subscription("http://127.0.0.1:9/other", ["chat.created"])
    p = plan(desired, client)
    left = {c.id: c for c in p.changes if c.action == "leave"}
    assert left[twin.id].duplicate_of is not None and "duplicate" in left[twin.id].note
    assert "left alone" in left[other.id].note and not p.changed
    full = desired.read_text().replace("[[v2]]", 'managed = "full"\n[[v2]]', 1)
    p = plan(full, client)
    assert sorted(c.id for c in p.pending) == sorted([twin.id, other.id])
    assert {c.action for c in p.pending} == {"delete"}
    assert p.apply().ok
    assert {s.id for s in client.list_subscriptions()} == {c.id for c in plan(full, client).changes if c.api == "v2"}


def test_lost_create_answer_during_apply_is_not_duplicated(desired: Path, client: LinqClient,
                                                           sandbox: Sandbox) -> None:
    client.recovery_delays = (0.0, 0.1)
    p = plan(desired, client)
    sandbox.fail_next(1, status=None)  # the create's duplicate-guard listing passes
    sandbox.fail_next(1, 500, after=True)  # the POST is stored, its answer lost
    result = p.apply()
    assert result.ok, str(result)
    assert [s["webhook_url"] for s in sandbox.subscriptions()].count(A) == 1
    assert not plan(desired, client).changed


def test_lost_v3_create_answer_stops_apply_and_says_what_was_not_done(desired: Path, client: LinqClient,
                                                                      sandbox: Sandbox) -> None:
    text = desired.read_text()
    v3_only = text[text.index("[[v3]]"):]
    p = plan(v3_only, client)
    p.clients["v3"].recovery_delays = (0.0, 0.1)
    sandbox.fail_next(1, status=None)
    sandbox.fail_next(1, 503, after=True)  # stored; the only answer with the signing secret is lost
    result = p.apply()
    assert not result.ok and "was lost" in str(result) and "not resent" in str(result)
    assert len(sandbox.subscriptions(api="v3")) == 1  # never created twice
    again = plan(v3_only, client)
    assert not again.changed  # the next plan sees it; it does not create another
    assert "is missing" in again.changes[0].note and "delete the subscription" in again.changes[0].note


def test_apply_stops_at_the_first_failure(desired: Path, client: LinqClient, sandbox: Sandbox) -> None:
    p = plan(desired, client)
    sandbox.fail_next(1, status=None)
    sandbox.fail_next(1, 422)  # the first create is refused
    result = p.apply()
    assert not result.ok and result.done == [] and len(result.not_done) == 2
    assert "FAILED: create v2" in str(result) and "not done (2)" in str(result)


@pytest.mark.parametrize("text, problem", [
    (f'[[v2]]\nurl = "{A}"\nevents = ["message.sent"]\nsecret = "whsec_x"', "secrets never go in this file"),
    (f'[[v3]]\nurl = "{A}"\nevents = ["message.sent"]\nsecret_env = "X"', "secret_file"),
    (f'[[v2]]\nurl = "{A}"\nevents = ["chat.typing_indicator.started"]', "typing_indicator.received"),
    (f'[[v3]]\nurl = "{A}"\nevents = ["message.sent"]\n[[v3]]\nurl = "{A}"\nevents = ["chat.created"]',
     "once per account"),
    (f'[[v2]]\nurl = "{A}"\nevents = ["message.sent"]\nurl2 = 1', "unknown key"),
    ('managed = "all"\nv2 = []', 'managed must be "full"'),
    ("[[v2]\n", "not valid TOML"),
])
def test_bad_desired_state_is_a_clear_error(text: str, problem: str) -> None:
    with pytest.raises(DesiredStateError, match=problem.replace("(", r"\(")):
        load_desired(text)


def test_a_missing_secret_reference_fails_the_plan_not_the_apply(desired: Path, client: LinqClient,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAN_TEST_SECRET")
    with pytest.raises(DesiredStateError, match=r"PLAN_TEST_SECRET.*not set"):
        plan(desired, client)


def test_v3_drift_and_a_stale_plan_never_duplicates(client: LinqClient, sandbox: Sandbox, tmp_path: Path) -> None:
    text = f'[[v3]]\nurl = "{C}"\nevents = ["message.received"]\nsecret_file = "{tmp_path / "c.whsec"}"\n'
    stale = plan(text, client)
    assert plan(text, client).apply().ok
    v3 = client.for_api("v3")
    (sub,) = v3.list_subscriptions()
    v3.update_subscription(sub, subscribed_events=["message.received", "chat.created"], is_active=False)
    (change,) = plan(text, client).pending
    assert change.diff == {"events": (("message.received", "chat.created"), ("message.received",)),
                           "active": (False, True)}
    result = stale.apply()  # planned before the first apply: its create is refused, not made twice
    assert not result.ok and "once per account" in str(result)
    assert len(sandbox.subscriptions(api="v3")) == 1
