"""Plans' rules that mutation testing (``make mutate``) found unpinned, over real HTTP against a sandbox: a URL
listed twice, how the file's subscriptions pair with the account's, what counts as a difference, duplicates on
the account, and exactly what apply sends for each kind of change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from linq_nb.client import LinqClient
from linq_nb.models import WebhookSubscriptionV3
from linq_nb.plans import DesiredStateError, _duplicate_of, load_desired, plan
from linq_nb.sandbox import Sandbox

A = "http://127.0.0.1:9/a"
B = "http://127.0.0.1:9/b"


def rows(p: Any) -> list[tuple[Any, ...]]:
    return [(c.action, c.api, c.url, c.id, c.diff, c.duplicate_of) for c in p.changes]


# --------------------------------------------------------------------------- a URL listed twice

def test_a_v2_url_listed_twice_is_refused_only_when_their_events_overlap() -> None:
    ok = load_desired({"v2": [{"url": A, "events": ["message.sent"]}, {"url": A, "events": ["message.read"]}]})
    assert len(ok.subscriptions["v2"]) == 2
    with pytest.raises(DesiredStateError) as info:
        load_desired({"v2": [{"url": "http://localhost:9/a", "events": ["message.sent", "message.read",
                                                                       "message.received"]},
                             {"url": "http://LOCALHOST:9/a", "events": ["message.received", "message.read"]}]})
    assert str(info.value) == ("<dict> [[v2]]: http://LOCALHOST:9/a is listed twice; both list "
                               "message.read, message.received: Linq would deliver those twice")


def test_a_v2_url_listed_three_times_is_checked_against_every_earlier_entry() -> None:
    with pytest.raises(DesiredStateError) as info:  # the 2nd and 3rd overlap, neither overlaps the 1st
        load_desired({"v2": [{"url": A, "events": ["message.sent"]}, {"url": A, "events": ["message.read"]},
                             {"url": A, "events": ["message.read"]}]})
    assert str(info.value) == (f"<dict> [[v2]]: {A} is listed twice; both list message.read: Linq would "
                               "deliver those twice")


def test_a_v3_url_listed_twice_is_refused_whatever_the_events() -> None:
    with pytest.raises(DesiredStateError) as info:
        load_desired({"v3": [{"url": A, "events": ["message.sent"]}, {"url": A + "?", "events": ["message.read"]}],
                      "v2": [{"url": A, "events": ["message.sent"]}]})
    assert str(info.value) == (f"<dict> [[v3]]: {A}? is listed twice; v3 allows each URL once per account: "
                               "merge their events")
    assert len(load_desired({"v3": [{"url": A, "events": ["message.sent"]},
                                    {"url": B, "events": ["message.sent"]}]}).subscriptions["v3"]) == 2


# --------------------------------------------------------------------------- pairing and differences

def test_a_file_entry_pairs_with_the_account_one_sharing_most_events_then_the_active_one(client: LinqClient
                                                                                       ) -> None:
    few = client.create_subscription(A, ["message.sent"], allow_duplicate=True)
    many = client.create_subscription(A, ["message.sent", "message.read"], allow_duplicate=True)
    p = plan({"v2": [{"url": A, "events": ["message.read", "message.sent"]}]}, client)
    assert rows(p) == [("leave", "v2", A, many.id, {}, None), ("leave", "v2", A, few.id, {}, many.id)]
    assert p.counts() == {"create": 0, "update": 0, "delete": 0, "leave": 2} and not p.changed and p.pending == []

    client.update_subscription(many, active=False)
    tie = client.create_subscription(A, ["message.read", "message.received"], allow_duplicate=True)
    p = plan({"v2": [{"url": A, "events": ["message.read", "message.sent"], "active": False}]}, client)
    assert rows(p)[0][:4] == ("leave", "v2", A, many.id)  # two shared events beat one
    p = plan({"v2": [{"url": A, "events": ["message.read", "chat.created"]}]}, client)
    # one shared event each (many, tie); tie is active: it is the pair, an update of events only
    assert rows(p)[0] == ("update", "v2", A, tie.id,
                          {"events": (("message.read", "message.received"), ("message.read", "chat.created"))},
                          None)


def test_what_counts_as_a_difference(client: LinqClient) -> None:
    v3 = client.for_api("v3")
    v2sub = client.create_subscription(A, ["message.sent", "message.read"])
    v3sub = v3.create_subscription(B, ["message.sent"], phone_numbers=["+14155551234"])
    same = plan({"v2": [{"url": A, "events": ["message.read", "message.sent", "message.read"]}],
                 "v3": [{"url": B, "events": ["message.sent"], "phone_numbers": ["+14155551234"]}]}, client)
    assert [c.action for c in same.changes] == ["leave", "leave"]  # the order of events is no difference
    p = plan({"v2": [{"url": A, "events": ["message.read", "message.sent"], "active": False}],
              "v3": [{"url": B, "events": ["message.sent", "message.read"], "phone_numbers": []}]}, client)
    assert rows(p) == [
        ("update", "v2", A, v2sub.id, {"active": (True, False)}, None),
        ("update", "v3", B, v3sub.id, {"events": (("message.sent",), ("message.sent", "message.read")),
                                       "phone_numbers": (("+14155551234",), None)}, None)]
    assert p.counts() == {"create": 0, "update": 2, "delete": 0, "leave": 0}
    cleared = v3.update_subscription(v3sub, phone_numbers=None)
    assert cleared.phone_numbers is None
    p = plan({"v3": [{"url": B, "events": ["message.sent"], "phone_numbers": []}]}, client)
    assert [c.action for c in p.changes] == ["leave"]  # no filter, however it is written
    p = plan({"v3": [{"url": B, "events": ["message.sent"], "phone_numbers": ["+14155550000"]}]}, client)
    assert p.changes[0].diff == {"phone_numbers": (None, ("+14155550000",))}
    v3.update_subscription(v3sub, phone_numbers=["+14155551234", "+14155550000"])
    p = plan({"v3": [{"url": B, "events": ["message.sent"], "phone_numbers": ["+14155550000", "+14155551234"]}]},
             client)
    assert [c.action for c in p.changes] == ["leave"]  # nor the order of numbers


def test_duplicates_on_the_account_are_flagged_per_version_rules(client: LinqClient) -> None:
    first = client.create_subscription("http://localhost:9/a", ["message.sent", "message.read"])
    twin = client.create_subscription("http://LOCALHOST:9/a", ["message.read"], allow_duplicate=True)
    apart = client.create_subscription("http://localhost:9/a", ["message.received"], allow_duplicate=True)
    p = plan({"v2": [], "managed": "full"}, client)
    assert [(c.action, c.id, c.duplicate_of) for c in p.changes] == [
        ("delete", first.id, twin.id), ("delete", twin.id, first.id), ("delete", apart.id, None)]
    assert p.changes[2].note == "not in the file (managed = full)"
    assert p.counts() == {"create": 0, "update": 0, "delete": 3, "leave": 0} and p.changed
    assert p.pending == p.changes
    v3 = client.for_api("v3")
    one = v3.create_subscription(B, ["message.sent"])
    p = plan({"v3": []}, client)
    assert [(c.action, c.id, c.duplicate_of) for c in p.changes] == [("leave", one.id, None)]


def test_two_v3_subscriptions_of_one_url_are_duplicates_whatever_their_events() -> None:
    # the API never lets an account hold two (a 409), so the rule is checked on the objects themselves
    def v3(id: str, url: str, events: list[str]) -> WebhookSubscriptionV3:
        return WebhookSubscriptionV3.from_api({"id": id, "target_url": url, "subscribed_events": events,
                                               "is_active": True, "created_at": None, "updated_at": None})

    a, b, c = v3("a", A, ["message.sent"]), v3("b", A.replace("http", "HTTP"), ["message.read"]), v3("c", B, [])
    assert _duplicate_of(a, [a, b, c]) is b and _duplicate_of(b, [a, b, c]) is a
    assert _duplicate_of(c, [a, b, c]) is None and _duplicate_of(a, [a]) is None


# --------------------------------------------------------------------------- what apply sends

def test_apply_creates_v2_with_its_secret_and_state_and_updates_only_what_differs(
        client: LinqClient, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAN_RULES_SECRET", "whsec_plan_rules")
    result = plan({"v2": [{"url": A, "events": ["message.sent"], "active": False, "secret_env": "PLAN_RULES_SECRET"},
                          {"url": B, "events": ["message.read"]}]}, client).apply()
    assert result.ok and [c.action for c in result.done] == ["create", "create"]
    a, b = sorted(client.list_subscriptions(), key=lambda s: s.webhook_url)
    assert (a.active, a.secret_configured, a.events) == (False, True, ("message.sent",))
    assert (b.active, b.secret_configured) == (True, False)
    assert result.done[0].id == a.id
    # b: events and a secret now; a: active only (its events unchanged)
    p = plan({"v2": [{"url": A, "events": ["message.sent"], "secret_env": "PLAN_RULES_SECRET"},
                     {"url": B, "events": ["message.read", "message.sent"], "secret_env": "PLAN_RULES_SECRET"}]},
             client)
    assert [c.diff for c in p.changes] == [{"active": (False, True)},
                                           {"events": (("message.read",), ("message.read", "message.sent")),
                                            "secret": ("none", "set")}]
    assert p.apply().ok
    a, b = sorted(client.list_subscriptions(), key=lambda s: s.webhook_url)
    assert (a.active, a.events) == (True, ("message.sent",))
    assert (b.active, b.secret_configured, b.events) == (True, True, ("message.read", "message.sent"))
    assert [c.action for c in plan({"v2": [{"url": A, "events": ["message.sent"], "active": False}]},
                                   client).changes] == ["update", "leave"]
    # events in another order are no change: an update of the state alone leaves their order as it is
    client.update_subscription(b.id, events=["message.sent", "message.read"], active=False)
    p = plan({"v2": [{"url": B, "events": ["message.read", "message.sent"]}]}, client)
    assert p.changes[0].diff == {"active": (False, True)}
    assert p.apply().ok
    assert {s.webhook_url: (s.events, s.active) for s in client.list_subscriptions()}[B] == (
        ("message.sent", "message.read"), True)
    only_events = plan({"v2": [{"url": A, "events": ["message.read"]}]}, client)
    assert only_events.apply().ok
    assert {s.webhook_url: (s.events, s.active) for s in client.list_subscriptions()}[A] == (("message.read",), True)


def test_apply_creates_v3_saving_its_secret_and_updates_events_state_and_numbers(client: LinqClient,
                                                                               tmp_path: Path) -> None:
    v3 = client.for_api("v3")
    secret_file = tmp_path / "s" / "b.whsec"
    result = plan({"v3": [{"url": B, "events": ["message.sent"], "active": False, "secret_file": str(secret_file),
                           "phone_numbers": ["+14155551234"]},
                          {"url": A, "events": ["message.read"]}]}, client).apply()
    assert result.ok
    subs = {s.target_url: s for s in v3.list_subscriptions()}
    b = subs[B]
    assert (b.is_active, b.phone_numbers, b.subscribed_events) == (False, ("+14155551234",), ("message.sent",))
    assert secret_file.read_text().strip().startswith("whsec_") and result.done[0].id == b.id
    assert (subs[A].is_active, subs[A].phone_numbers) == (True, None)
    p = plan({"v3": [{"url": B, "events": ["message.sent", "message.read"], "secret_file": str(secret_file)},
                     {"url": A, "events": ["message.read"], "active": False, "phone_numbers": ["+14155550000"]}]},
             client)
    assert [sorted(c.diff) for c in p.changes] == [["active", "events", "phone_numbers"], ["active", "phone_numbers"]]
    assert p.apply().ok
    subs = {s.target_url: s for s in v3.list_subscriptions()}
    assert (subs[B].is_active, subs[B].phone_numbers, subs[B].subscribed_events) == (
        True, None, ("message.sent", "message.read"))
    assert (subs[A].is_active, subs[A].phone_numbers, subs[A].subscribed_events) == (
        False, ("+14155550000",), ("message.read",))
    gone = plan({"v3": [], "managed": "full"}, client).apply()
    assert [c.action for c in gone.done] == ["delete", "delete"] and v3.list_subscriptions() == []
    assert all(c.id is not None for c in gone.done)
