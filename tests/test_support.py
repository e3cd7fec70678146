"""The support app's logic (linq_nb.support): triage lines, the desk's actions over real HTTP, the demo account."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from linq_nb.frames import HEALTH_STATUSES, health
from linq_nb.support import (
    LIVE_TEST_EVENTS,
    STATE_ORDER,
    STATE_TITLES,
    DemoAccount,
    SupportDesk,
    describe_attempt,
    last_attempts,
    triage,
)
from tests.conftest import RECEIVER_SECRET, SENTINEL_TOKEN

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def sub(id: int, *, attempts: int = 0, delivered: datetime | None = None, active: bool = True,
        events: tuple[str, ...] = ("message.received",)) -> dict[str, Any]:
    return {"id": id, "webhook_url": f"https://example.com/hooks/{id}", "version": 2, "events": list(events),
            "active": active, "secret_configured": False, "delivery_attempts": attempts,
            "last_delivered_at": delivered.isoformat() if delivered else None,
            "created_at": T0.isoformat(), "updated_at": T0.isoformat()}


def rows(snapshots: list[tuple[datetime, list[dict[str, Any]]]]) -> dict[int, dict[str, Any]]:
    """frames.health's rows by id: the one health rule, which the triage must follow."""
    return {int(r["id"]): r for r in health(snapshots).to_dict("records")}


# --------------------------------------------------------------------------- triage lines


def test_every_health_status_has_a_title_and_a_place() -> None:
    assert set(STATE_TITLES) == set(HEALTH_STATUSES) == set(STATE_ORDER)


def test_each_state_gets_a_line_that_says_what_to_check() -> None:
    snaps = [
        (T0, [sub(1, attempts=4, delivered=T0 - timedelta(seconds=5)), sub(2, attempts=3), sub(3),
              sub(4, attempts=1, delivered=T0 - timedelta(hours=3), events=("contact.created",)),
              sub(5, attempts=1, delivered=T0 - timedelta(days=2), active=False)]),
    ]
    by_id = rows(snaps)
    events = {s["id"]: s["events"] for s in snaps[0][1]}
    got = {i: triage(by_id[i], events[i]) for i in by_id}
    assert {i: t.status for i, t in got.items()} == {
        1: "healthy", 2: "failing", 3: "never delivered", 4: "idle", 5: "inactive"}
    assert got[1].title == "Working" and "Nothing to do" in got[1].line
    assert got[2].title == "Failing"
    assert "3 attempts and not one succeeded" in got[2].line
    assert "2xx status within 10 seconds" in got[2].line
    assert got[3].title == "Nothing sent yet"
    assert "listens for the events the customer expects (message.received)" in got[3].line
    assert got[4].title == "Quiet" and "the last one came 3 h ago" in got[4].line and "contact.created" in got[4].line
    assert got[5].title == "Switched off" and "activate it" in got[5].line
    assert got[2].facts == ("3 delivery attempts", "last delivered: never")


def test_failing_after_a_success_counts_the_attempts_since_and_quotes_the_last_answer() -> None:
    ok_at = T0 - timedelta(minutes=10)
    snaps = [(T0, [sub(7, attempts=5, delivered=ok_at)]), (T0 + timedelta(seconds=30), [sub(7, attempts=8,
                                                                                          delivered=ok_at)])]
    row = rows(snaps)[7]
    assert row["status"] == "failing"
    t = triage(row, ("message.received",), last_attempt={"status_code": 503, "error": None, "ok": False})
    assert "3 attempts since the last success, 10 min ago" in t.line
    assert "Its last answer: HTTP 503, an error on the customer's server" in t.line
    assert "last answer: HTTP 503, an error on the customer's server" in t.facts


def test_test_event_hint_only_where_test_events_exist() -> None:
    row = rows([(T0, [sub(3)])])[3]
    assert "Send a test event" in triage(row, ("message.received",)).line
    assert "Send a test event" not in triage(row, ("message.received",), test_events=False).line


def test_unknown_status_is_refused_with_the_valid_ones() -> None:
    row = {**rows([(T0, [sub(3)])])[3], "status": "exploded"}
    with pytest.raises(ValueError, match=r"unknown health status 'exploded'.*failing"):
        triage(row)


@pytest.mark.parametrize(("record", "expected"), [
    ({"status_code": 200, "ok": True}, "HTTP 200: accepted"),
    ({"status_code": 301}, "redirect (Linq does not follow redirects"),
    ({"status_code": 401}, "signature check failing"),
    ({"status_code": 404}, "path is wrong"),
    ({"status_code": 429}, "rate limiting"),
    ({"status_code": 500}, "an error on the customer's server"),
    ({"status_code": 418}, "HTTP 418, refused"),
    ({"status_code": None, "error": "timeout after 10 s"}, "no answer within 10 seconds"),
    ({"status_code": None, "error": "connection error: NewConnectionError"}, "could not connect"),
])
def test_describe_attempt_in_plain_language(record: dict[str, Any], expected: str) -> None:
    assert expected in describe_attempt(record)


def test_last_attempts_keeps_the_latest_per_subscription() -> None:
    log = [{"subscription_id": 1, "attempt": 1}, {"subscription_id": 2, "attempt": 1},
           {"subscription_id": 1, "attempt": 2}, {"subscription_id": None, "attempt": 9}]
    assert last_attempts(log) == {1: {"subscription_id": 1, "attempt": 2}, 2: {"subscription_id": 2, "attempt": 1}}
    assert describe_attempt(None) == ""


# --------------------------------------------------------------------------- the desk, over real HTTP


@pytest.fixture
def account(sandbox: Any, client: Any, receiver: Any) -> dict[str, int]:
    """A working, a failing, a never-delivered and a switched-off subscription in the test sandbox."""
    from linq_nb.receiver import Receiver

    broken = Receiver(path="/broken").start()
    broken.fail_next(10**6, 500)
    ids = {
        "ok": client.create_subscription(receiver.url, ["message.received"], secret=RECEIVER_SECRET).id,
        "broken": client.create_subscription(broken.url, ["call.completed"]).id,
        "never": client.create_subscription(receiver.url + "?new", ["participant.added"], secret=RECEIVER_SECRET).id,
        "off": client.create_subscription(receiver.url + "?off", ["message.sent"], active=False).id,
    }
    sandbox.emit("message.received")
    sandbox.emit("call.completed")
    assert sandbox.wait_for_deliveries(10)
    yield ids
    broken.stop()


def test_refresh_judges_with_frames_health_and_puts_the_urgent_first(client: Any, account: dict[str, int]) -> None:
    desk = SupportDesk(client)
    triages = desk.refresh()
    assert [(t.id, t.status) for t in triages] == [
        (account["broken"], "failing"), (account["never"], "never delivered"), (account["off"], "inactive"),
        (account["ok"], "healthy")]
    assert desk.summary() == "4 subscriptions: 1 failing, 1 nothing sent yet, 1 switched off, 1 working."
    broken = triages[0]
    assert "4 attempts and not one succeeded" in broken.line  # 1 + the 3 retries of the test sandbox
    assert "Its last answer: HTTP 500" in broken.line  # from the sandbox's delivery log
    assert desk.mode == "sandbox" and desk.can_send_test_events
    assert SENTINEL_TOKEN not in desk.where + repr([t.line for t in triages])


def test_set_active_switches_a_subscription_off_and_on(sandbox: Any, client: Any, account: dict[str, int]) -> None:
    desk = SupportDesk(client)
    desk.refresh()
    outcome = desk.set_active(account["ok"], False)
    assert outcome.ok and "switched off" in outcome.text
    assert {s["id"]: s["active"] for s in sandbox.subscriptions()}[account["ok"]] is False
    assert {t.id: t.status for t in desk.refresh()}[account["ok"]] == "inactive"
    assert desk.set_active(account["ok"], True).ok
    assert {t.id: t.status for t in desk.refresh()}[account["ok"]] == "healthy"
    missing = desk.set_active(99999, True)
    assert missing.kind == "error" and "#99999 could not be activated" in missing.text


def test_send_test_event_reports_the_endpoints_answer(sandbox: Any, client: Any, account: dict[str, int]) -> None:
    desk = SupportDesk(client)
    desk.refresh()
    accepted = desk.send_test_event(account["never"])
    assert accepted.ok and "participant.added" in accepted.text and "HTTP 200" in accepted.text
    assert {t.id: t.status for t in desk.refresh()}[account["never"]] == "healthy"
    refused = desk.send_test_event(account["broken"])
    assert refused.kind == "error" and "HTTP 500" in refused.text
    off = desk.send_test_event(account["off"])
    assert off.kind == "warn" and "activate it first" in off.text
    gone = desk.send_test_event(12345)
    assert gone.kind == "warn" and "no longer listed" in gone.text


def test_live_mode_sends_no_test_event_and_says_why() -> None:
    from linq_nb.client import DEFAULT_BASE_URL, LinqClient

    with LinqClient(token=SENTINEL_TOKEN, base_url=DEFAULT_BASE_URL) as live:
        desk = SupportDesk(live)
        assert desk.mode == "live" and not desk.can_send_test_events
        assert "changes here are real" in desk.where and SENTINEL_TOKEN not in desk.where
        outcome = desk.send_test_event(1)  # answered before any request: no network in tests
        assert outcome.kind == "warn" and outcome.text == LIVE_TEST_EVENTS


def test_plot_png_is_a_picture_and_redrawn_only_when_needed(client: Any, account: dict[str, int]) -> None:
    desk = SupportDesk(client)
    desk.refresh()
    desk.refresh()
    png = desk.plot_png(account["broken"])
    assert png.startswith(b"\x89PNG")
    assert desk.plot_png(account["broken"]) is png  # nothing changed: the same picture
    desk.set_active(account["broken"], False)
    desk.refresh()
    assert desk.plot_png(account["broken"]) is not png  # its state changed: drawn again


def test_refresh_error_propagates_as_a_linq_error(sandbox: Any, client: Any) -> None:
    from linq_nb.errors import LinqError

    desk = SupportDesk(client)
    sandbox.fail_next(10, 401)
    with pytest.raises(LinqError):
        desk.refresh()


# --------------------------------------------------------------------------- the demo account


def test_demo_account_has_one_subscription_in_each_state() -> None:
    demo = DemoAccount()
    state_dir = Path(demo._dir)
    desk = SupportDesk(demo.client, demo=demo)
    try:
        triages = desk.refresh()
        assert sorted(t.status for t in triages) == sorted(HEALTH_STATUSES)
        by_name = {name: next(t for t in triages if t.id == i) for name, i in demo.ids.items()}
        assert by_name["orders"].status == "healthy"
        assert by_name["billing"].status == "failing" and "HTTP 500" in by_name["billing"].line
        assert by_name["new-app"].status == "never delivered"
        assert by_name["crm"].status == "idle" and "3 h ago" in by_name["crm"].line
        assert by_name["old-app"].status == "inactive"
        assert desk.mode == "demo" and "demo account" in desk.where
        created = desk.subscription(demo.ids["old-app"]).created_at  # type: ignore[union-attr]
        assert created is not None and datetime.now(timezone.utc) - created > timedelta(days=100)
    finally:
        desk.close()
    assert not state_dir.exists()
    assert not demo.receivers["orders"].running


# --------------------------------------------------------------------------- the command


def test_linq_nb_app_help_names_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    from linq_nb.cli import APP_NOTEBOOK, main

    with pytest.raises(SystemExit) as exit_info:
        main(["app", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--port" in out and "--no-browser" in out and "demo account" in out
    assert APP_NOTEBOOK.is_file()


def test_the_desk_keeps_only_its_window_of_snapshots(client: Any, account: dict[str, int]) -> None:
    desk = SupportDesk(client, window=3)
    for _ in range(5):
        desk.refresh()
    assert len(desk.snapshots) == 3
    assert [at for at, _ in desk.snapshots] == sorted(at for at, _ in desk.snapshots)
