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


# --------------------------------------------------------------------------- what a desired-state file may say

ENTRY = {"url": "https://a.example/h", "events": ["message.sent"]}


@pytest.mark.parametrize(("raw", "message"), [
    ({"x": 1, "v2": []}, "<dict>: unknown top-level key(s) x; the file has managed, [[v2]] and [[v3]]"),
    ({"y": 1, "x": 1, "v2": []}, "<dict>: unknown top-level key(s) x, y; the file has managed, [[v2]] and [[v3]]"),
    ({"managed": "all", "v2": []}, "<dict>: managed must be \"full\" or \"partial\", not 'all'"),
    ({"v2": {}}, "<dict>: v2 must be an array of tables ([[v2]] ... ) or v2 = []"),
    ({"v3": "x"}, "<dict>: v3 must be an array of tables ([[v3]] ... ) or v3 = []"),
    ({}, "<dict>: no [[v2]] or [[v3]] subscriptions (write v2 = [] to manage an empty v2 account)"),
    ({"managed": "full"}, "<dict>: no [[v2]] or [[v3]] subscriptions (write v2 = [] to manage an empty v2 account)"),
    ({"v2": [ENTRY, 1]}, "<dict> [[v2]] #2: each entry is a table with url and events"),
    ({"v2": [{**ENTRY, "secret": "s"}]}, "<dict> [[v2]] #1: secret is written inline; secrets never go in this file. "
                                         'Use secret_env = "NAME" (an environment variable) or secret_file = "PATH"'),
    ({"v2": [{**ENTRY, "webhook_secret": "s"}]}, "<dict> [[v2]] #1: webhook_secret is written inline; secrets never "
     'go in this file. Use secret_env = "NAME" (an environment variable) or secret_file = "PATH"'),
    ({"v3": [{**ENTRY, "signing_secret": "s"}]}, "<dict> [[v3]] #1: signing_secret is written inline; secrets never "
     'go in this file. Use secret_file = "PATH" (v3 makes the secret; create saves it there)'),
    ({"v3": [{**ENTRY, "secret_env": "S"}]},
     "<dict> [[v3]] #1: v3 makes the signing secret itself and shows it once: name a secret_file to save it in"),
    ({"v2": [{**ENTRY, "phone_numbers": [], "zz": 1}]},
     "<dict> [[v2]] #1: unknown key(s) phone_numbers, zz; allowed: active, events, secret_env, secret_file, url"),
    ({"v3": [{**ENTRY, "zz": 1}]},
     "<dict> [[v3]] #1: unknown key(s) zz; allowed: active, events, phone_numbers, secret_file, url"),
    ({"v2": [{**ENTRY, "url": "ftp://a/h"}]}, "<dict> [[v2]] #1: url must be an http(s) URL, got 'ftp://a/h'"),
    ({"v2": [{**ENTRY, "url": 5}]}, "<dict> [[v2]] #1: url must be an http(s) URL, got 5"),
    ({"v2": [{**ENTRY, "url": "ftp://" + "x" * 300}]},
     "<dict> [[v2]] #1: url must be an http(s) URL, got 'ftp://" + "x" * 161),
    ({"v2": [{**ENTRY, "events": []}]},
     '<dict> [[v2]] #1: events must be a non-empty list of event names, such as ["message.received"]'),
    ({"v2": [{**ENTRY, "events": "message.sent"}]},
     '<dict> [[v2]] #1: events must be a non-empty list of event names, such as ["message.received"]'),
    ({"v2": [{**ENTRY, "events": ["message.sent", 1]}]},
     '<dict> [[v2]] #1: events must be a non-empty list of event names, such as ["message.received"]'),
    ({"v2": [{**ENTRY, "events": ["message.sent", "nope"]}]}, "<dict> [[v2]] #1: nope is not v2 event name(s)"),
    ({"v2": [{**ENTRY, "events": ["nope", "nada"]}]}, "<dict> [[v2]] #1: nope, nada are not v2 event name(s)"),
    ({"v2": [{**ENTRY, "events": ["chat.typing_indicator.started"]}]},
     "<dict> [[v2]] #1: chat.typing_indicator.started is not v2 event name(s) (in v2, typing_indicator.received)"),
    ({"v3": [{**ENTRY, "events": ["typing_indicator.received"]}]},
     "<dict> [[v3]] #1: typing_indicator.received is not v3 event name(s) (in v3, chat.typing_indicator.started)"),
    ({"v2": [{**ENTRY, "active": "yes"}]}, "<dict> [[v2]] #1: active must be true or false, got 'yes'"),
    ({"v2": [{**ENTRY, "active": 1}]}, "<dict> [[v2]] #1: active must be true or false, got 1"),
    ({"v2": [{**ENTRY, "secret_env": "A", "secret_file": "f"}]},
     "<dict> [[v2]] #1: give secret_env or secret_file, not both"),
    ({"v3": [{**ENTRY, "phone_numbers": "+1"}]},
     '<dict> [[v3]] #1: phone_numbers must be a list of E.164 numbers, such as ["+14155551234"]'),
    ({"v3": [{**ENTRY, "phone_numbers": ["+1", 1]}]},
     '<dict> [[v3]] #1: phone_numbers must be a list of E.164 numbers, such as ["+14155551234"]'),
])
def test_each_mistake_in_a_desired_state_is_named_where_it_is(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(DesiredStateError) as info:
        load_desired(raw)
    assert str(info.value) == message


def test_a_desired_state_as_parsed() -> None:
    d = load_desired({"v3": [{**ENTRY, "events": ["message.sent", "message.read", "message.sent"],
                              "phone_numbers": ["+14155551234"], "active": False, "secret_file": "f"},
                             {"url": "http://b.example/h", "events": ["message.sent"], "phone_numbers": []}],
                      "managed": "full"})
    assert d.full and d.source == "<dict>" and list(d.subscriptions) == ["v3"]
    first, second = d.subscriptions["v3"]
    assert (first.api, first.url, first.events, first.active, first.secret_env, first.secret_file,
            first.phone_numbers) == ("v3", ENTRY["url"], ("message.sent", "message.read"), False, None, "f",
                                     ("+14155551234",))
    assert (second.active, second.phone_numbers, second.secret_file) == (True, None, None)
    partial = load_desired({"v2": [{**ENTRY, "secret_env": "E"}], "v3": [], "managed": "partial"})
    assert not partial.full and partial.subscriptions["v3"] == () and partial.subscriptions["v2"][0].secret_env == "E"
    assert not load_desired({"v2": []}).full


def test_a_desired_state_from_a_file_or_toml_text_is_named_by_where_it_came_from(tmp_path: Path) -> None:
    path = tmp_path / "subs.toml"
    path.write_text('[[v2]]\nurl = "https://a.example/h"\nevents = ["nope"]\n')
    for source in (path, str(path)):
        with pytest.raises(DesiredStateError) as info:
            load_desired(source)
        assert str(info.value) == f"{path} [[v2]] #1: nope is not v2 event name(s)"
    path.write_text('v2 = []\nmanaged = "full"\n')
    assert load_desired(path).source == str(path) and load_desired(path).full
    with pytest.raises(DesiredStateError) as info:
        load_desired('[[v2]]\nurl = "https://a.example/h"\nevents = ["nope"]\n')
    assert str(info.value) == "<toml> [[v2]] #1: nope is not v2 event name(s)"
    assert load_desired("v2 = []\n").source == "<toml>"
    with pytest.raises(DesiredStateError) as info:
        load_desired('[[v2]]\nurl = 1\n=')
    assert str(info.value) == "<toml> is not valid TOML: Invalid statement (at line 3, column 1)"
    with pytest.raises(DesiredStateError) as info:
        load_desired(str(tmp_path / "missing.toml"))
    assert str(info.value) == (f"cannot read the desired-state file {str(tmp_path / 'missing.toml')!r}: "
                               "No such file or directory")
    with pytest.raises(DesiredStateError) as info:  # one line starting with "[" is TOML text, not a file name
        load_desired('[[v3]]')
    assert str(info.value) == "<toml> [[v3]] #1: url must be an http(s) URL, got None"
    with pytest.raises(DesiredStateError) as info:  # also after leading blanks
        load_desired('  [[v3]]')
    assert str(info.value) == "<toml> [[v3]] #1: url must be an http(s) URL, got None"
