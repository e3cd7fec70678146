"""The migration's rules that mutation testing (``make mutate``) found unpinned: the event mapping and what
waits for a decision, what a decision may say, the proposal (one v3 subscription per URL, inactive kept
inactive), the order of the steps, and which deliveries are the same event across versions.

A migration resumes from its state file, so most cases write the v2 snapshot there and open it with a client
of a sandbox on a free port; the snapshot of a real account is tested over HTTP in tests/test_migrate.py.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from linq_nb import catalog
from linq_nb.client import LinqClient
from linq_nb.migrate import Deduplicator, Migration, MigrationError, ProposedV3, dedupe_key
from linq_nb.sandbox import Sandbox


def _migration(client: LinqClient, tmp_path: Path, v2: list[dict[str, Any]], **state: Any) -> Migration:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"v2": v2, "decisions": {}, "steps": {}, "started_at": "t", **state}))
    return Migration(client, path)


def _sub(id: int, url: str, events: list[str], active: bool = True) -> dict[str, Any]:
    return {"id": id, "url": url, "events": events, "active": active, "secret_configured": True}


NOTE = catalog.v2_to_v3()


def test_the_mapping_lists_each_v2_event_in_use_once_and_what_waits_for_a_decision(client: LinqClient,
                                                                                   tmp_path: Path) -> None:
    m = _migration(client, tmp_path, [
        _sub(1, "https://a.example/h", ["message.sent", "typing_indicator.received"]),
        _sub(2, "https://b.example/h", ["call.completed", "message.sent", "contact.created"], active=False)])
    assert m.mapping() == [
        {"v2_event": "message.sent", "v3_events": ("message.sent",), "confidence": "exact",
         "needs_decision": False, "decided": False, "note": NOTE["message.sent"]["note"]},
        {"v2_event": "typing_indicator.received", "v3_events": ("chat.typing_indicator.started",),
         "confidence": "renamed", "needs_decision": False, "decided": False,
         "note": NOTE["typing_indicator.received"]["note"]},
        {"v2_event": "call.completed", "v3_events": ("call.ended", "call.no_answer", "call.declined", "call.failed"),
         "confidence": "split", "needs_decision": True, "decided": False, "note": NOTE["call.completed"]["note"]},
        {"v2_event": "contact.created", "v3_events": (), "confidence": "none", "needs_decision": True,
         "decided": False, "note": NOTE["contact.created"]["note"]},
    ]
    assert m.undecided == ["call.completed", "contact.created"]
    m.decide("contact.created", [])
    m.decide("message.sent", ["message.sent", "message.delivered"])  # a certain one may be decided too
    rows = {r["v2_event"]: r for r in m.mapping()}
    assert rows["contact.created"]["v3_events"] == () and rows["contact.created"]["decided"]
    assert not rows["contact.created"]["needs_decision"]
    assert rows["message.sent"]["v3_events"] == ("message.sent", "message.delivered")
    assert rows["message.sent"]["decided"] and not rows["message.sent"]["needs_decision"]
    assert m.undecided == ["call.completed"]


def test_a_decision_names_a_v2_event_and_v3_events_and_comes_before_the_create(client: LinqClient,
                                                                              tmp_path: Path) -> None:
    m = _migration(client, tmp_path, [_sub(1, "https://a.example/h", ["call.completed"])])
    with pytest.raises(MigrationError) as info:
        m.decide("call.ended", ["call.ended"])
    assert (info.value.message, info.value.hint) == ("'call.ended' is not a v2 event", "See migration.mapping().")
    with pytest.raises(MigrationError) as info:
        m.decide("call.completed", ["call.ended", "nope", "call.completed"])
    assert info.value.message == "nope, call.completed not v3 event name(s)"
    assert info.value.hint == "catalog.load('v3').names lists them."
    assert m.undecided == ["call.completed"]  # nothing settled by a refused decision
    m.decide("call.completed", ["call.failed", "call.ended", "call.failed"])
    assert m.mapping()[0]["v3_events"] == ("call.failed", "call.ended")  # repeats dropped, order kept
    assert json.loads((tmp_path / "m.json").read_text())["decisions"] == {"call.completed": ["call.failed",
                                                                                            "call.ended"]}
    m.decide("call.completed", ["call.ended"], save=False)
    assert json.loads((tmp_path / "m.json").read_text())["decisions"]["call.completed"] == ["call.failed",
                                                                                           "call.ended"]
    m.state["steps"]["create_v3"] = {}  # started (even half done): too late to decide
    with pytest.raises(MigrationError) as info:
        m.decide("call.completed", [])
    assert info.value.message == "the v3 subscriptions are created: a decision now would not reach them"
    assert info.value.hint == "migration.undo() the create_v3 step first, then decide again."


def test_decisions_given_at_the_start_are_kept_in_the_state(client: LinqClient, tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"v2": [_sub(1, "https://a.example/h", ["contact.created"])], "decisions": {},
                                "steps": {}, "started_at": "t"}))
    m = Migration(client, path, decisions={"contact.created": []})
    assert m.undecided == [] and json.loads(path.read_text())["decisions"] == {"contact.created": []}


def test_the_proposal_is_one_v3_subscription_per_url(client: LinqClient, tmp_path: Path) -> None:
    m = _migration(client, tmp_path, [
        _sub(1, "https://a.example/h", ["message.sent", "call.completed"]),
        _sub(2, "https://A.example/h", ["typing_indicator.received", "message.sent"]),
        _sub(3, "https://a.example/h", ["message.read"], active=False),
        _sub(4, "https://b.example/h", ["message.read"], active=False),
        _sub(5, "https://b.example/h", ["message.received"], active=False),
        _sub(6, "https://c.example/h", ["contact.created"]),
        _sub(7, "https://d.example/h", ["message.sent"]),
        _sub(8, "https://a.example/h", ["chat.created"], active=False),
    ], decisions={"call.completed": ["call.ended", "call.failed"], "contact.created": []})
    assert m.proposal() == [
        ProposedV3("https://a.example/h", ("message.sent", "call.ended", "call.failed",
                                           "chat.typing_indicator.started"), True, (1, 2, 3, 8),
                   "merges v2 1, 2, 3, 8 (v3 allows one per URL); v2 3, 8 inactive: not merged"),
        ProposedV3("https://b.example/h", ("message.read", "message.received"), False, (4, 5),
                   "merges v2 4, 5 (v3 allows one per URL); inactive in v2: created inactive"),
        ProposedV3("https://c.example/h", (), True, (6,),
                   "no v3 event left after the decisions: no v3 subscription"),
        ProposedV3("https://d.example/h", ("message.sent",), True, (7,), ""),
    ]


def test_the_steps_go_in_order(client: LinqClient, tmp_path: Path) -> None:
    m = _migration(client, tmp_path, [_sub(1, "https://a.example/h", ["message.sent"])])
    with pytest.raises(MigrationError) as info:
        m.side_by_side()
    assert info.value.message == "side_by_side comes after create_v3, which is not done yet"
    assert info.value.hint == "Run migration.create_v3(...) first."
    m.state["steps"]["create_v3"] = {"created": {}}  # started, not done: still not
    with pytest.raises(MigrationError, match="side_by_side comes after create_v3"):
        m.side_by_side()
    m.state["steps"]["create_v3"]["done_at"] = "2026-01-01T00:00:00+00:00"
    m.side_by_side()
    with pytest.raises(MigrationError) as info:
        m.deactivate_v2()
    assert info.value.message == "deactivate_v2 comes after confirm_v3, which is not done yet"
    assert m.done("side_by_side") and not m.done("confirm_v3")


def test_confirming_and_deleting_each_name_the_step_they_wait_for(client: LinqClient, tmp_path: Path) -> None:
    m = _migration(client, tmp_path, [_sub(1, "https://a.example/h", ["message.sent"])])
    with pytest.raises(MigrationError) as info:
        m.confirm_v3([])
    assert info.value.message == "confirm_v3 comes after side_by_side, which is not done yet"
    with pytest.raises(MigrationError) as info:
        m.delete_v2(soak=0)
    assert info.value.message == "delete_v2 comes after deactivate_v2, which is not done yet"
    assert info.value.hint == "Run migration.deactivate_v2(...) first."


# --------------------------------------------------------------------------- the same event from both versions

def test_the_same_event_from_v2_and_v3_has_one_key() -> None:
    v2 = {"event_type": "typing_indicator.received", "event_id": "e-v2", "data": {"id": "chat-1"}}
    v3 = {"event_type": "chat.typing_indicator.started", "event_id": "e-v3", "data": {"id": "chat-1"}}
    assert dedupe_key(v2) == dedupe_key(v3) == ("chat.typing_indicator.started", "chat-1")
    assert dedupe_key({"event_type": "message.sent", "event_id": "e1", "data": {"id": 7}}) == ("message.sent", "7")
    assert dedupe_key({"event_type": "message.sent", "event_id": "e1", "data": {"id": 0}}) == ("message.sent", "0")
    # no object id: the event's own id (each version gives an event its own, so no twin is dropped)
    assert dedupe_key({"event_type": "message.sent", "event_id": "e1", "data": {}}) == ("message.sent", "e1")
    assert dedupe_key({"event_type": "message.sent", "event_id": "e1", "data": ["id"]}) == ("message.sent", "e1")
    assert dedupe_key({"event_type": "message.sent", "event_id": "e1"}) == ("message.sent", "e1")
    assert dedupe_key({"event_type": "contact.created", "event_id": "e1", "data": {"id": "c"}}) == (
        "contact.created", "c")  # no v3 name: its own
    assert dedupe_key({}) == ("None", "None")


def test_the_deduplicator_passes_each_event_once_and_forgets_the_oldest_past_its_history() -> None:
    d = Deduplicator(history=2)
    a, b, c = ({"event_type": "message.sent", "event_id": x, "data": {"id": x}} for x in "abc")
    assert [d.accept(a), d.accept(a), d.accept(b), d.accept(a)] == [True, False, True, False]
    assert d.twins == 2
    assert d.accept(c)  # three kept would be over the history of 2: a is forgotten, b and c kept
    assert d.accept(a) and not d.accept(c)
    assert d.twins == 3
    keep_two = Deduplicator(history=2)
    assert [keep_two.accept(e) for e in (a, b, b, a)] == [True, True, False, False]  # two fit in a history of 2
    assert Deduplicator(key=lambda e: 1)([a, b, c]) == [a]


# --------------------------------------------------------------------------- the steps' guards, over HTTP

class _Seen:
    """Evidence shaped as a Receiver's: its request records."""

    def __init__(self, requests: list[dict[str, Any]]) -> None:
        self.requests = requests


def _created(client: LinqClient, tmp_path: Path, urls: dict[str, bool]) -> Migration:
    """A migration whose v3 subscriptions are created (one per URL, active or not) and side by side."""
    v2 = client.for_api("v2")
    for url, active in urls.items():
        v2.create_subscription(url, ["message.sent"], active=active)
    m = Migration(client, tmp_path / "m.json")
    m.create_v3(save_secret=lambda url, secret: "nowhere")
    m.side_by_side()
    return m


def test_a_v3_subscription_is_confirmed_by_an_accepted_verified_delivery_only(client: LinqClient,
                                                                             tmp_path: Path) -> None:
    m = _created(client, tmp_path, {"http://127.0.0.1:9/a": True, "http://127.0.0.1:9/b": True,
                                    "http://127.0.0.1:9/c": False})
    a, b = m.v3_ids(active_only=True)
    assert len(m.v3_ids()) == 3  # the inactive one needs no confirmation
    assert m.unconfirmed([]) == [a, b] and m.unconfirmed([a]) == [b] and m.unconfirmed(iter([b, a])) == []
    assert m.unconfirmed(_Seen([{"subscription_id": a, "status": 200, "verified": True},
                                {"subscription_id": b, "status": 200, "verified": None}])) == []  # no secret known
    assert m.unconfirmed(_Seen([{"subscription_id": a, "status": 401, "verified": False},
                                {"subscription_id": b, "status": 200, "verified": False},
                                {"subscription_id": b, "status": 500, "verified": True}])) == [a, b]
    with pytest.raises(MigrationError) as info:
        m.confirm_v3([a])
    assert info.value.message == f"no accepted v3 delivery yet for {b}"
    assert info.value.hint == ("Wait for (or trigger) an event those subscriptions get, then confirm again; a 401 "
                               "at the receiver means it lacks that subscription's signing secret.")
    with pytest.raises(MigrationError) as info:
        m.confirm_v3([])
    assert info.value.message == f"no accepted v3 delivery yet for {a}, {b}"
    assert not m.done("confirm_v3")
    m.confirm_v3([a, b])
    assert m.done("confirm_v3")
    assert json.loads((tmp_path / "m.json").read_text())["steps"]["confirm_v3"]["done_at"]


def test_without_evidence_the_sandbox_log_confirms(client: LinqClient, sandbox: Sandbox, tmp_path: Path) -> None:
    from linq_nb.receiver import Receiver

    with Receiver() as receiver:
        m = _created(client, tmp_path, {receiver.url: True, "http://127.0.0.1:9/dead": True})
        dead = m.v3_ids(active_only=True)[1]
        sandbox.emit("message.sent")  # to both versions' subscriptions
        assert sandbox.wait_for_deliveries(15)
        assert m.unconfirmed() == [dead]


def test_deactivating_v2_touches_only_those_that_were_active_and_resumes(client: LinqClient, sandbox: Sandbox,
                                                                         tmp_path: Path) -> None:
    m = _created(client, tmp_path, {"http://127.0.0.1:9/a": True, "http://127.0.0.1:9/b": False,
                                    "http://127.0.0.1:9/c": True})
    a, _b, c = (s["id"] for s in m.state["v2"])
    m.confirm_v3(m.v3_ids())
    m.state["steps"]["deactivate_v2"] = {"ids": [a]}  # a was done before an interruption
    assert m.deactivate_v2() == [a, c]
    assert [s["active"] for s in sandbox.subscriptions()] == [True, False, False]  # a was not touched again
    assert json.loads((tmp_path / "m.json").read_text())["steps"]["deactivate_v2"]["ids"] == [a, c]


def test_deleting_v2_waits_for_the_soak_and_takes_a_404_as_done(client: LinqClient, sandbox: Sandbox,
                                                                tmp_path: Path) -> None:
    m = _created(client, tmp_path, {"http://127.0.0.1:9/a": True, "http://127.0.0.1:9/b": True})
    a, b = (s["id"] for s in m.state["v2"])
    m.confirm_v3(m.v3_ids())
    m.deactivate_v2()
    hundred_ago = (datetime.now(timezone.utc) - timedelta(seconds=100)).isoformat(timespec="seconds")
    m.state["steps"]["deactivate_v2"]["done_at"] = hundred_ago
    with pytest.raises(MigrationError) as info:
        m.delete_v2(soak=7200)
    assert re.fullmatch(r"the soak is not over: 7(099|100) s left of 7200 s", info.value.message)
    assert info.value.hint == "Wait, and watch that nothing is missed while v2 is off, then run it again."
    with pytest.raises(MigrationError) as info:
        m.delete_v2(soak=1e10)
    assert re.fullmatch(r"the soak is not over: \d{10} s left of 1e\+10 s", info.value.message)
    with pytest.raises(MigrationError):
        m.delete_v2(soak=102)  # 100 s have passed, not 102
    now = datetime.now(timezone.utc)
    m.state["steps"]["deactivate_v2"]["done_at"] = now.isoformat(timespec="seconds")
    already = (now - now.replace(microsecond=0)).total_seconds()
    with pytest.raises(MigrationError, match="the soak is not over"):  # under a second left is still not over
        m.delete_v2(soak=already + 0.5)
    assert "delete_v2" not in m.state["steps"]
    client.delete_subscription(a)  # gone already: a 404 counts as deleted
    sandbox.fail_next(1, status=None)  # a's delete passes through (a real 404)
    sandbox.fail_next(1, 400)  # b's delete is refused: the step stops, a is recorded
    with pytest.raises(Exception):  # noqa: B017 - whichever error the client raises for a 400
        m.delete_v2(soak=0)
    assert json.loads((tmp_path / "m.json").read_text())["steps"]["delete_v2"]["ids"] == [a]
    assert not m.done("delete_v2")
    sandbox.app.clear_faults()
    assert m.delete_v2(soak=0) == [a, b] and m.done("delete_v2")
    assert sandbox.subscriptions() == []


def test_undo_rolls_back_the_last_step_only_and_tolerates_what_is_gone(client: LinqClient, sandbox: Sandbox,
                                                                       tmp_path: Path) -> None:
    m = _created(client, tmp_path, {"http://127.0.0.1:9/a": True, "http://127.0.0.1:9/b": False})
    assert m.undo() == "side_by_side" and not m.done("side_by_side") and m.done("create_v3")
    assert len(sandbox.subscriptions(api="v3")) == 2
    v3_a = m.v3_ids()[0]
    client.for_api("v3").delete_subscription(v3_a)  # one is gone already
    assert m.undo() == "create_v3"
    assert sandbox.subscriptions(api="v3") == [] and "create_v3" not in m.state["steps"]
    assert json.loads((tmp_path / "m.json").read_text())["steps"] == {}
    assert m.undo() is None
    m.create_v3(save_secret=lambda url, secret: "nowhere")
    m.side_by_side()
    m.confirm_v3(m.v3_ids())
    m.deactivate_v2()
    m.delete_v2(soak=0)
    old = [s["id"] for s in m.state["v2"]]
    assert m.undo(v2_secret="whsec_back") == "delete_v2"
    back = sandbox.subscriptions()
    assert [(s["webhook_url"], s["active"], s["secret_configured"]) for s in back] == [
        ("http://127.0.0.1:9/a", False, True), ("http://127.0.0.1:9/b", False, True)]
    new = [s["id"] for s in m.state["v2"]]
    assert new == [s["id"] for s in back] and set(new).isdisjoint(old)
    assert m.state["steps"]["deactivate_v2"]["ids"] == new[:1]  # the one that was active, under its new id
    assert m.undo() == "deactivate_v2"
    assert [s["active"] for s in sandbox.subscriptions()] == [True, False]


def test_undoing_the_delete_recreates_v2_twins_of_one_url_as_they_were(client: LinqClient, sandbox: Sandbox,
                                                                      tmp_path: Path) -> None:
    v2 = client.for_api("v2")
    v2.create_subscription("http://127.0.0.1:9/a", ["message.sent"])
    v2.create_subscription("http://127.0.0.1:9/a", ["message.sent", "message.read"], allow_duplicate=True)
    m = Migration(client, tmp_path / "m.json")
    m.create_v3(save_secret=lambda url, secret: "nowhere")
    m.side_by_side()
    m.confirm_v3(m.v3_ids())
    m.deactivate_v2()
    m.delete_v2(soak=0)
    assert m.undo() == "delete_v2"  # the second is a duplicate of the first: recreated all the same
    assert [(s["events"], s["active"], s["secret_configured"]) for s in sandbox.subscriptions()] == [
        (["message.sent"], False, False), (["message.sent", "message.read"], False, False)]
