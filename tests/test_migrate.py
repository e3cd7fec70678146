"""The v2 -> v3 move over real HTTP: a sandbox delivering to real receivers while events flow the whole time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from linq_nb.client import LinqClient
from linq_nb.errors import ValidationError
from linq_nb.migrate import Deduplicator, MigrationError, migrate_v2_to_v3, wait_until
from linq_nb.receiver import Receiver
from linq_nb.sandbox import Sandbox
from tests.conftest import RECEIVER_SECRET

TRAFFIC = ("message.received", "message.sent", "chat.created")


@pytest.fixture
def account(client: LinqClient, receiver: Receiver) -> Iterator[dict[str, Any]]:
    """Four v2 subscriptions: two share the receiver's URL, one has an event with no v3 twin, one is inactive."""
    with Receiver(secrets=RECEIVER_SECRET) as idle:
        subs = [
            client.create_subscription(receiver.url, ["message.received"], secret=RECEIVER_SECRET),
            client.create_subscription(receiver.url, ["message.sent"], secret=RECEIVER_SECRET),
            client.create_subscription(receiver.url + "?team=b", ["chat.created", "contact.created"],
                                       secret=RECEIVER_SECRET),
            client.create_subscription(idle.url, ["message.read", "call.completed"], secret=RECEIVER_SECRET,
                                       active=False),
        ]
        yield {"subs": subs, "idle": idle}


def test_the_proposal_merges_urls_maps_events_and_keeps_inactive(account: dict[str, Any], client: LinqClient,
                                                                 receiver: Receiver, tmp_path: Path) -> None:
    m = migrate_v2_to_v3(client, tmp_path / "m.json")
    by_url = {p.url: p for p in m.proposal()}
    assert set(by_url[receiver.url].events) == {"message.received", "message.sent"}
    assert "merges v2" in by_url[receiver.url].note and by_url[receiver.url].active
    idle = by_url[account["idle"].url]
    assert not idle.active and set(idle.events) == {"message.read", "call.ended", "call.no_answer",
                                                    "call.declined", "call.failed"}
    assert sorted(m.undecided) == ["call.completed", "contact.created"]
    with pytest.raises(MigrationError, match=r"wait for a decision: .*contact\.created"):
        m.create_v3(secrets_dir=tmp_path)
    m.decide("contact.created", [])
    m.decide("call.completed", ["call.ended"])
    assert m.undecided == [] and set(by_url[account["idle"].url].events) != set(
        {p.url: p for p in m.proposal()}[account["idle"].url].events)
    assert "NEEDS A DECISION" not in str(m) and "call.completed -> call.ended" in str(m)
    assert m.frame().shape[0] == 3
    assert migrate_v2_to_v3(client, tmp_path / "m.json").state["decisions"]["contact.created"] == []  # kept


def test_steps_are_resumable_not_redone_and_undoable(account: dict[str, Any], client: LinqClient,
                                                     sandbox: Sandbox, tmp_path: Path) -> None:
    state = tmp_path / "m.json"
    decisions = {"contact.created": [], "call.completed": ["call.ended"]}
    m = migrate_v2_to_v3(client, state, decisions=decisions)
    sandbox.fail_next(3, status=None)  # the first create (its listing, its POST), the second create's listing
    sandbox.fail_next(1, 422)  # the second create is refused: the run stops half way
    with pytest.raises(ValidationError):
        m.create_v3(secrets_dir=tmp_path / "secrets")
    assert len(sandbox.subscriptions(api="v3")) == 1 and not m.done("create_v3")
    m = migrate_v2_to_v3(client, state)  # resumed from the file: creates the rest only
    ids = m.create_v3(secrets_dir=tmp_path / "secrets")
    assert len(ids) == 3 and len(sandbox.subscriptions(api="v3")) == 3
    assert m.create_v3(secrets_dir=tmp_path / "secrets") == ids  # done: not done again
    v3 = {s["target_url"]: s for s in sandbox.subscriptions(api="v3")}
    assert v3[account["idle"].url]["is_active"] is False
    secrets = sorted((tmp_path / "secrets").iterdir())
    assert len(secrets) == 3 and all(p.read_text().startswith("whsec_") for p in secrets)
    assert "whsec_" not in state.read_text()  # the state file says where, never what
    with pytest.raises(MigrationError, match="after side_by_side"):
        m.confirm_v3([])
    m.side_by_side()
    with pytest.raises(MigrationError, match="no accepted v3 delivery"):
        m.confirm_v3([])  # nothing delivered yet
    m.confirm_v3(m.v3_ids())
    assert m.deactivate_v2() == [s.id for s in account["subs"][:3]]
    assert [s["active"] for s in sandbox.subscriptions()] == [False] * 4
    with pytest.raises(MigrationError, match="soak is not over"):
        m.delete_v2(soak=3600)
    assert m.undo() == "deactivate_v2"  # reactivates only the three that were active
    assert [s["active"] for s in sandbox.subscriptions()] == [True, True, True, False]
    m.deactivate_v2()
    m.delete_v2(soak=0)
    assert sandbox.subscriptions() == []
    assert m.undo(v2_secret=RECEIVER_SECRET) == "delete_v2"
    assert [(s["webhook_url"], s["active"]) for s in sandbox.subscriptions()] == [
        (s.webhook_url, False) for s in account["subs"]]
    for step in ("deactivate_v2", "confirm_v3", "side_by_side", "create_v3"):
        assert m.undo() == step
    assert sandbox.subscriptions(api="v3") == [] and m.undo() is None
    assert [s["active"] for s in sandbox.subscriptions()] == [True, True, True, False]


def test_a_full_migration_under_traffic_loses_nothing_and_delivers_nothing_twice(
        account: dict[str, Any], client: LinqClient, sandbox: Sandbox, receiver: Receiver, tmp_path: Path) -> None:
    emitted: list[tuple[str, str]] = []
    stop = threading.Event()

    def traffic() -> None:
        n = 0
        while not stop.is_set() and n < 3000:  # bounded; stopped at the end
            name = TRAFFIC[n % len(TRAFFIC)]
            sandbox.emit(name, {"id": f"evt-{n}"})
            emitted.append((name, f"evt-{n}"))
            n += 1
            stop.wait(0.02)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        wait_until(lambda: len(emitted) > 20)
        m = migrate_v2_to_v3(client, tmp_path / "m.json",
                             decisions={"contact.created": [], "call.completed": ["call.ended"]})
        m.create_v3(secrets_dir=tmp_path / "secrets")
        m.side_by_side(receiver)  # the receiver now verifies v3's signatures too
        assert wait_until(lambda: not m.unconfirmed(receiver)), m.unconfirmed(receiver)
        m.confirm_v3(receiver)
        m.deactivate_v2()
        mark = len(emitted)
        assert wait_until(lambda: len(emitted) > mark + 10)  # the soak: v2 off, v3 alone
        m.delete_v2(soak=0.1)
        mark = len(emitted)
        assert wait_until(lambda: len(emitted) > mark + 20)  # v3 alone carries the traffic for a while
    finally:
        stop.set()
        sender.join()
    assert sandbox.wait_for_deliveries(30)
    assert sandbox.subscriptions() == [] and len(sandbox.subscriptions(api="v3")) == 3
    app = Deduplicator()
    handled = [(e["event_type"], e["data"]["id"]) for e in app(receiver.events)]
    assert sorted(handled) == sorted(emitted)  # not one lost, not one handled twice
    assert len(handled) == len(set(handled)) == len(emitted)
    assert app.twins > 0  # both versions did deliver side by side
    forms = {r.get("event_type") for r in receiver.requests if r["status"] == 200}
    assert forms >= set(TRAFFIC)
    assert {str(r["subscription_id"]) for r in receiver.requests if r["status"] == 200} >= set(m.v3_ids(
        active_only=True))
