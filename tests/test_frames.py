"""linq_nb.frames: exact columns and dtypes, health verdicts, the Monitor over real HTTP, plots."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from linq_nb.frames import (
    DATETIME_DTYPE,
    DELIVERY_COLUMNS,
    HEALTH_COLUMNS,
    HEALTH_STATUSES,
    SUBSCRIPTION_COLUMNS,
    Monitor,
    deliveries_frame,
    health,
    plot_attempts,
    plot_since_last_delivery,
    snapshots_frame,
    style_subscriptions,
    subscription_marks,
    subscriptions_frame,
)
from linq_nb.models import WebhookSubscription
from tests.conftest import RECEIVER_SECRET

STR = pd.Series([], dtype=str).dtype  # pandas' default string dtype: "str" on pandas 3, object on pandas 2

SUBSCRIPTION_DTYPES = {
    "id": "Int64",
    "webhook_url": STR,
    "version": "Int64",
    "events": "object",
    "active": "bool",
    "secret_configured": "bool",
    "delivery_attempts": "Int64",
    "last_delivered_at": DATETIME_DTYPE,
    "created_at": DATETIME_DTYPE,
    "updated_at": DATETIME_DTYPE,
}

T0 = datetime(2025, 6, 1, 10, 0, 0, tzinfo=timezone.utc)


def raw(i: int = 1, **changes: Any) -> dict[str, Any]:
    """A subscription object exactly as the API returns it."""
    obj: dict[str, Any] = {
        "id": i,
        "webhook_url": f"https://example.com/hooks/{i}",
        "version": 2,
        "events": ["message.sent", "message.received"],
        "active": True,
        "secret_configured": i % 2 == 0,
        "last_delivered_at": "2025-06-01T10:05:00.250Z",
        "delivery_attempts": 3,
        "created_at": "2025-06-01T09:00:00.000Z",
        "updated_at": "2025-06-01T09:30:00.125Z",
    }
    obj.update(changes)
    return obj


def sub(
    i: int = 1, *, attempts: int = 0, delivered: datetime | None = None, active: bool = True
) -> WebhookSubscription:
    return WebhookSubscription(
        id=i,
        webhook_url=f"https://example.com/hooks/{i}",
        version=2,
        events=("message.received",),
        active=active,
        secret_configured=True,
        delivery_attempts=attempts,
        last_delivered_at=delivered,
        created_at=T0 - timedelta(days=1),
        updated_at=T0 - timedelta(days=1),
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def dtypes(df: pd.DataFrame) -> dict[str, Any]:
    return {name: df[name].dtype for name in df.columns}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


# --------------------------------------------------------------------------- subscriptions_frame


def test_columns_and_dtypes_are_exact() -> None:
    df = subscriptions_frame([raw(1), raw(2)])
    assert tuple(df.columns) == SUBSCRIPTION_COLUMNS
    assert dtypes(df) == SUBSCRIPTION_DTYPES
    assert isinstance(df.index, pd.RangeIndex)
    assert len(df) == 2


def test_values_are_parsed() -> None:
    df = subscriptions_frame([raw(7)])
    row = df.iloc[0]
    assert row["id"] == 7
    assert row["webhook_url"] == "https://example.com/hooks/7"
    assert row["events"] == ["message.sent", "message.received"]
    assert isinstance(row["events"], list)
    assert row["active"] is np.True_ or row["active"] is True
    assert row["last_delivered_at"] == pd.Timestamp("2025-06-01T10:05:00.250", tz="UTC")
    assert row["updated_at"] == pd.Timestamp("2025-06-01T09:30:00.125", tz="UTC")
    assert row["delivery_attempts"] == 3


def test_null_timestamps_become_nat() -> None:
    df = subscriptions_frame([raw(1, last_delivered_at=None, delivery_attempts=0), raw(2)])
    assert df["last_delivered_at"].isna().tolist() == [True, False]
    assert df["last_delivered_at"].dtype == DATETIME_DTYPE


def test_empty_input_gives_empty_frame_with_same_columns_and_dtypes() -> None:
    empties: list[Any] = [[], (), iter([]), {"webhook_subscriptions": []}]
    for empty in empties:
        df = subscriptions_frame(empty)
        assert df.empty
        assert tuple(df.columns) == SUBSCRIPTION_COLUMNS
        assert dtypes(df) == SUBSCRIPTION_DTYPES


def test_raw_dicts_and_models_give_equal_frames() -> None:
    dicts = [raw(1), raw(2, last_delivered_at=None, active=False), raw(3, events=["call.completed"])]
    models = [WebhookSubscription.from_api(d) for d in dicts]
    expected = subscriptions_frame(dicts)
    pd.testing.assert_frame_equal(subscriptions_frame(models), expected)
    pd.testing.assert_frame_equal(subscriptions_frame([models[0], dicts[1], models[2]]), expected)


def test_model_round_trip_through_to_api() -> None:
    models = [WebhookSubscription.from_api(raw(i)) for i in range(1, 4)]
    pd.testing.assert_frame_equal(subscriptions_frame([m.to_api() for m in models]), subscriptions_frame(models))


def test_whole_list_body_and_single_objects_are_accepted() -> None:
    expected = subscriptions_frame([raw(1), raw(2)])
    pd.testing.assert_frame_equal(subscriptions_frame({"webhook_subscriptions": [raw(1), raw(2)]}), expected)
    pd.testing.assert_frame_equal(subscriptions_frame(raw(1)), expected.iloc[:1])
    pd.testing.assert_frame_equal(subscriptions_frame({"webhook_subscription": raw(1)}), expected.iloc[:1])
    pd.testing.assert_frame_equal(subscriptions_frame(WebhookSubscription.from_api(raw(1))), expected.iloc[:1])  # type: ignore[arg-type]


def test_other_iso_forms_are_tolerated() -> None:
    forms = [
        "2025-06-01T10:05:00Z",
        "2025-06-01T10:05:00+00:00",
        "2025-06-01T12:05:00+02:00",
        "2025-06-01T10:05:00.000000Z",
        "2025-06-01 10:05:00Z",
        "2025-06-01T10:05:00",  # no offset: UTC, as parse_datetime reads it
    ]
    df = subscriptions_frame([raw(i, last_delivered_at=v) for i, v in enumerate(forms, 1)])
    assert df["last_delivered_at"].dtype == DATETIME_DTYPE
    assert set(df["last_delivered_at"]) == {pd.Timestamp("2025-06-01T10:05:00", tz="UTC")}


def test_non_iso_timestamps_fall_back_to_lenient_parsing() -> None:
    df = subscriptions_frame([raw(1, created_at="2025-05-21 15:30:00 -0600"), raw(2)])
    assert df["created_at"].iloc[0] == pd.Timestamp("2025-05-21T21:30:00", tz="UTC")
    assert df["created_at"].dtype == DATETIME_DTYPE


def test_nanosecond_input_keeps_the_documented_unit() -> None:
    df = subscriptions_frame([raw(1, created_at="2025-06-01T10:00:00.123456789Z")])
    assert df["created_at"].dtype == DATETIME_DTYPE
    assert df["created_at"].iloc[0].nanosecond == 789


def test_a_value_that_is_not_a_date_names_its_column() -> None:
    with pytest.raises(ValueError, match="updated_at"):
        subscriptions_frame([raw(1, updated_at="yesterday-ish")])


def test_missing_keys_take_the_same_defaults_as_the_model() -> None:
    partial = {"id": 5, "webhook_url": "https://example.com/x", "events": ["message.read"]}
    pd.testing.assert_frame_equal(
        subscriptions_frame([partial]), subscriptions_frame([WebhookSubscription.from_api(partial)])
    )
    row = subscriptions_frame([partial]).iloc[0]
    assert row["version"] == 2 and row["active"] and not row["secret_configured"]
    assert row["delivery_attempts"] == 0 and pd.isna(row["created_at"])


def test_wrong_inputs_say_what_is_expected() -> None:
    with pytest.raises(TypeError, match="WebhookSubscription"):
        subscriptions_frame([raw(1), 42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="string"):
        subscriptions_frame('[{"id": 1}]')  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keys"):
        subscriptions_frame({"unexpected": 1})


def test_large_frame_is_correct() -> None:
    dicts = [
        raw(i, delivery_attempts=i, last_delivered_at=None if i % 3 == 0 else f"2025-06-01T10:{i % 60:02d}:00Z")
        for i in range(2000)
    ]
    df = subscriptions_frame(dicts)
    assert len(df) == 2000
    assert df["delivery_attempts"].sum() == sum(range(2000))
    assert int(df["last_delivered_at"].isna().sum()) == len(range(0, 2000, 3))
    assert dtypes(df) == SUBSCRIPTION_DTYPES


# --------------------------------------------------------------------------- marks and styling


def test_marks_and_styler() -> None:
    df = subscriptions_frame(
        [raw(1), raw(2, last_delivered_at=None), raw(3, active=False), raw(4, active=False, last_delivered_at=None)]
    )
    assert subscription_marks(df).tolist() == ["", "never delivered", "inactive", "inactive"]
    styler = style_subscriptions(df)
    assert type(styler).__name__ == "Styler"
    page = styler.to_html()
    assert "rgba(241, 196, 15" in page  # never delivered
    assert "rgba(127, 140, 141" in page  # inactive
    assert "message.sent, message.received" in page
    assert "never" in page
    assert "inactive" in page  # the caption explains the colours


def test_styler_on_empty_frame() -> None:
    assert "<table" in style_subscriptions(subscriptions_frame([])).to_html()


# --------------------------------------------------------------------------- deliveries_frame

DELIVERY_DTYPES = {
    "event_id": STR,
    "event_type": STR,
    "subscription_id": "Int64",
    "attempt": "Int64",
    "status_code": "Int64",
    "error": STR,
    "ok": "bool",
    "started_at": DATETIME_DTYPE,
    "duration_ms": "float64",
}


def delivery(attempt: int, status: int | None, error: str | None = None) -> dict[str, Any]:
    return {
        "event_id": "evt-1",
        "event_type": "message.received",
        "subscription_id": 4,
        "attempt": attempt,
        "status_code": status,
        "error": error,
        "ok": status is not None and 200 <= status < 300,
        "started_at": f"2025-06-01T10:00:0{attempt}.500Z",
        "duration_ms": 12.5 * attempt,
    }


def test_deliveries_frame_columns_dtypes_and_nulls() -> None:
    records = [delivery(1, None, "connection refused"), delivery(2, 500), delivery(3, 200)]
    df = deliveries_frame(records)
    assert tuple(df.columns) == DELIVERY_COLUMNS
    assert dtypes(df) == DELIVERY_DTYPES
    assert df["status_code"].isna().tolist() == [True, False, False]
    assert df["error"].isna().tolist() == [False, True, True]
    assert df["ok"].tolist() == [False, False, True]
    assert df["started_at"].iloc[2] == pd.Timestamp("2025-06-01T10:00:03.5", tz="UTC")
    assert df["duration_ms"].tolist() == [12.5, 25.0, 37.5]
    pd.testing.assert_frame_equal(deliveries_frame({"deliveries": records}), df)


def test_deliveries_frame_empty() -> None:
    empties: list[Any] = [[], {"deliveries": []}]
    for empty in empties:
        df = deliveries_frame(empty)
        assert df.empty and tuple(df.columns) == DELIVERY_COLUMNS and dtypes(df) == DELIVERY_DTYPES
    with pytest.raises(TypeError, match="deliveries"):
        deliveries_frame({"nope": []})


# --------------------------------------------------------------------------- health (pure)


def status_of(snapshots: Any, sub_id: int = 1, **kwargs: Any) -> str:
    df = health(snapshots, **kwargs)
    return str(df.set_index("id").loc[sub_id, "status"])


def test_health_columns_and_dtypes() -> None:
    df = health([(at(0), [sub(2, attempts=1, delivered=at(0)), sub(1)])])
    assert tuple(df.columns) == HEALTH_COLUMNS
    assert df["id"].tolist() == [1, 2]  # sorted by id
    assert dtypes(df) == {
        "id": "Int64",
        "webhook_url": STR,
        "status": STR,
        "reason": STR,
        "active": "bool",
        "attempts_first": "Int64",
        "attempts_last": "Int64",
        "new_attempts": "Int64",
        "attempts_since_delivery": "Int64",
        "last_delivered_at": DATETIME_DTYPE,
        "since_last_delivery": "timedelta64[ns]",
        "first_seen": DATETIME_DTYPE,
        "last_seen": DATETIME_DTYPE,
        "snapshots": "Int64",
    }
    assert set(df["status"]) <= set(HEALTH_STATUSES)


def test_health_of_no_snapshots_is_an_empty_frame() -> None:
    df = health([])
    assert df.empty and tuple(df.columns) == HEALTH_COLUMNS


def test_healthy_when_deliveries_succeed() -> None:
    snaps = [
        (at(0), [sub(attempts=2, delivered=at(-1))]),
        (at(1), [sub(attempts=3, delivered=at(0.5))]),
        (at(2), [sub(attempts=5, delivered=at(1.5))]),
    ]
    row = health(snaps).iloc[0]
    assert row["status"] == "healthy"
    assert (row["attempts_first"], row["attempts_last"], row["new_attempts"]) == (2, 5, 3)
    assert row["attempts_since_delivery"] == 0
    assert row["last_delivered_at"] == pd.Timestamp(at(1.5))
    assert row["since_last_delivery"] == pd.Timedelta(seconds=30)  # measured from the latest snapshot
    assert row["snapshots"] == 3
    assert row["first_seen"] == pd.Timestamp(at(0)) and row["last_seen"] == pd.Timestamp(at(2))


def test_failing_when_attempts_rise_and_last_delivered_stands_still() -> None:
    snaps = [
        (at(0), [sub(attempts=4, delivered=at(-1))]),
        (at(1), [sub(attempts=6, delivered=at(-1))]),
        (at(2), [sub(attempts=9, delivered=at(-1))]),
    ]
    row = health(snaps).iloc[0]
    assert row["status"] == "failing"
    assert row["new_attempts"] == 5 and row["attempts_since_delivery"] == 5
    assert "5 attempt" in row["reason"]


def test_failing_after_a_delivery_earlier_in_the_window() -> None:
    snaps = [
        (at(0), [sub(attempts=1, delivered=None)]),
        (at(1), [sub(attempts=2, delivered=at(0.5))]),  # delivered
        (at(2), [sub(attempts=4, delivered=at(0.5))]),  # then two failed attempts
    ]
    row = health(snaps).iloc[0]
    assert row["status"] == "failing"
    assert row["attempts_since_delivery"] == 2


def test_recovers_to_healthy_once_a_delivery_is_seen() -> None:
    snaps = [
        (at(0), [sub(attempts=4, delivered=at(-1))]),
        (at(1), [sub(attempts=8, delivered=at(-1))]),
        (at(2), [sub(attempts=9, delivered=at(1.9))]),
    ]
    assert status_of(snaps) == "healthy"


def test_failing_when_attempts_were_made_and_none_succeeded() -> None:
    assert status_of([(at(0), [sub(attempts=3, delivered=None)])]) == "failing"
    snaps = [(at(0), [sub(attempts=0)]), (at(1), [sub(attempts=2)])]
    assert status_of(snaps) == "failing"


def test_never_delivered_when_nothing_was_attempted() -> None:
    snaps = [(at(0), [sub(attempts=0)]), (at(5), [sub(attempts=0)])]
    df = health(snaps)
    assert df["status"].tolist() == ["never delivered"]
    assert pd.isna(df["since_last_delivery"].iloc[0]) and pd.isna(df["last_delivered_at"].iloc[0])


def test_idle_when_no_attempts_and_last_delivery_is_old() -> None:
    snaps = [(at(0), [sub(attempts=7, delivered=at(-120))]), (at(10), [sub(attempts=7, delivered=at(-120))])]
    assert status_of(snaps) == "idle"  # 130 min > the 1 h default
    assert status_of(snaps, idle_after=timedelta(hours=3)) == "healthy"
    assert status_of(snaps, idle_after=3 * 3600) == "healthy"
    assert status_of(snaps, idle_after=pd.Timedelta(minutes=5)) == "idle"


def test_now_moves_the_reference_point() -> None:
    snaps = [(at(0), [sub(attempts=1, delivered=at(-1))])]
    assert status_of(snaps) == "healthy"
    assert status_of(snaps, now=at(120)) == "idle"
    df = health(snaps, now=at(120))
    assert df["since_last_delivery"].iloc[0] == pd.Timedelta(minutes=121)
    # never negative, even with clock skew between the server and here
    assert health(snaps, now=at(-30))["since_last_delivery"].iloc[0] == pd.Timedelta(0)


def test_inactive_wins_over_everything() -> None:
    snaps = [(at(0), [sub(attempts=1, delivered=None)]), (at(1), [sub(attempts=5, delivered=None, active=False)])]
    assert status_of(snaps) == "inactive"
    assert not health(snaps)["active"].iloc[0]


def test_every_status_at_once_and_deleted_subscriptions_drop_out() -> None:
    first = [
        sub(1, attempts=2, delivered=at(-0.5)),
        sub(2, attempts=2, delivered=at(-0.5)),
        sub(3),
        sub(4, attempts=1, delivered=at(-300)),
        sub(5, attempts=1, delivered=at(-1), active=False),
        sub(6, attempts=1, delivered=at(-1)),
    ]
    last = [
        sub(1, attempts=3, delivered=at(0.5)),
        sub(2, attempts=5, delivered=at(-0.5)),
        sub(3),
        sub(4, attempts=1, delivered=at(-300)),
        sub(5, attempts=1, delivered=at(-1), active=False),
    ]  # 6 was deleted
    df = health([(at(1), last), (at(0), first)])  # order of the pairs does not matter
    assert df["id"].tolist() == [1, 2, 3, 4, 5]
    assert df["status"].tolist() == ["healthy", "failing", "never delivered", "idle", "inactive"]
    assert df["reason"].map(len).gt(0).all()


def test_snapshots_may_hold_raw_dicts_and_iso_strings() -> None:
    snaps = [
        ("2025-06-01T10:00:00Z", [raw(1, delivery_attempts=1, last_delivered_at="2025-06-01T09:59:00Z")]),
        ("2025-06-01T10:01:00Z", [raw(1, delivery_attempts=4, last_delivered_at="2025-06-01T09:59:00Z")]),
    ]
    row = health(snaps).iloc[0]
    assert row["status"] == "failing" and row["new_attempts"] == 3


def test_bad_snapshots_say_what_is_expected() -> None:
    with pytest.raises(TypeError, match="pair"):
        health([sub(1)])
    with pytest.raises(TypeError, match="Monitor"):
        health({"webhook_subscriptions": []})


def test_snapshots_frame_is_long() -> None:
    snaps = [(at(0), [sub(1), sub(2)]), (at(1), [sub(1, attempts=1)])]
    df = snapshots_frame(snaps)
    assert tuple(df.columns) == ("taken_at", *SUBSCRIPTION_COLUMNS)
    assert df["taken_at"].dtype == DATETIME_DTYPE
    assert df["id"].tolist() == [1, 2, 1]
    assert df["taken_at"].tolist() == [pd.Timestamp(at(0))] * 2 + [pd.Timestamp(at(1))]
    empty = snapshots_frame([])
    assert empty.empty and tuple(empty.columns) == ("taken_at", *SUBSCRIPTION_COLUMNS)


# --------------------------------------------------------------------------- plots


def story() -> list[tuple[datetime, list[WebhookSubscription]]]:
    return [
        (at(0), [sub(1, attempts=1, delivered=at(-1)), sub(2, attempts=0)]),
        (at(1), [sub(1, attempts=2, delivered=at(0.5)), sub(2, attempts=2)]),
        (at(2), [sub(1, attempts=3, delivered=at(1.5)), sub(2, attempts=4)]),
    ]


def test_plot_attempts_draws_a_line_per_subscription_and_delivery_markers() -> None:
    from matplotlib.axes import Axes

    ax = plot_attempts(story())
    assert isinstance(ax, Axes)
    assert len(ax.get_lines()) == 2
    markers = ax.collections
    assert len(markers) == 1  # only subscription 1 delivered, in two snapshots
    assert np.asarray(markers[0].get_offsets()).shape[0] == 2
    assert ax.get_ylabel() == "delivery_attempts"
    ax.figure.canvas.draw()  # renders under Agg without error


def test_plot_attempts_on_given_axes_and_empty() -> None:
    _fig, ax = plt.subplots()
    assert plot_attempts(story(), ax=ax) is ax
    empty = plot_attempts([])
    assert "no snapshots" in empty.texts[0].get_text()


def test_plot_since_last_delivery() -> None:
    from matplotlib.axes import Axes

    ax = plot_since_last_delivery(story())
    assert isinstance(ax, Axes)
    assert len(ax.patches) == 2
    assert any("never" in t.get_text() for t in ax.texts)
    assert "s since last delivery" in ax.get_xlabel()
    ax.figure.canvas.draw()
    assert "no snapshots" in plot_since_last_delivery([]).texts[0].get_text()


# --------------------------------------------------------------------------- Monitor over real HTTP


def test_monitor_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError, match="list_subscriptions"):
        Monitor(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        Monitor(SimpleNamespace(list_subscriptions=list), every=0)


def test_monitor_take_against_the_sandbox(client: Any) -> None:
    created = client.create_subscription("http://127.0.0.1:9/hook", ["message.received"])
    mon = Monitor(client, every=60)
    taken_at, subs = mon.take()
    assert taken_at.tzinfo is not None and taken_at.utcoffset() == timedelta(0)
    assert [s.id for s in subs] == [created.id]
    assert mon.snapshots == [(taken_at, subs)]
    df = mon.frame()
    assert tuple(df.columns) == ("taken_at", *SUBSCRIPTION_COLUMNS)
    assert df["id"].tolist() == [created.id]
    assert mon.health()["status"].tolist() == ["never delivered"]
    assert "1 snapshot" in repr(mon) and "stopped" in repr(mon)


def test_monitor_polls_in_the_background_and_stops(client: Any) -> None:
    client.create_subscription("http://127.0.0.1:9/hook", ["message.received"])
    with Monitor(client, every=0.02) as mon:
        assert mon.running
        assert mon.start() is mon  # already running: no second thread
        assert wait_until(lambda: len(mon.snapshots) >= 3)
    assert not mon.running
    count = len(mon.snapshots)
    time.sleep(0.1)
    assert len(mon.snapshots) == count  # nothing after stop
    assert mon.errors == []
    times = [t for t, _ in mon.snapshots]
    assert times == sorted(times)
    # can be started again
    mon.start()
    assert wait_until(lambda: len(mon.snapshots) > count)
    mon.stop()
    assert not mon.running
    mon.clear()
    assert mon.snapshots == [] and mon.errors == []


def test_monitor_records_errors_and_keeps_polling(client: Any, sandbox: Any) -> None:
    sandbox.fail_next(8, status=500)  # more than the client's retries: at least one poll fails
    with Monitor(client, every=0.02) as mon:
        assert wait_until(lambda: len(mon.errors) >= 1 and len(mon.snapshots) >= 1)
    when, exc = mon.errors[0]
    assert when.tzinfo is not None
    from linq_nb.errors import LinqError

    assert isinstance(exc, LinqError)
    assert "error" in repr(mon)


def test_monitor_sees_failing_then_healthy_over_real_deliveries(client: Any, sandbox: Any, receiver: Any) -> None:
    created = client.create_subscription(receiver.url, ["message.received"], secret=RECEIVER_SECRET)
    mon = Monitor(client, every=60)
    mon.take()
    assert mon.health()["status"].tolist() == ["never delivered"]

    sandbox.emit("message.received")
    assert sandbox.wait_for_deliveries(10)
    mon.take()
    assert mon.health()["status"].tolist() == ["healthy"]

    # the sandbox tries 4 times (retry_delays has 3 entries): make every one fail
    receiver.fail_next(4, status=503)
    sandbox.emit("message.received")
    assert sandbox.wait_for_deliveries(10)
    mon.take()
    row = mon.health().iloc[0]
    assert row["status"] == "failing"
    assert row["attempts_since_delivery"] == 4
    assert row["id"] == created.id

    sandbox.emit("message.received")
    assert sandbox.wait_for_deliveries(10)
    mon.take()
    row = mon.health().iloc[0]
    assert row["status"] == "healthy"
    assert row["attempts_last"] == 6 and row["new_attempts"] == 6

    # the delivery log as a frame agrees with the counters
    log = deliveries_frame(sandbox.deliveries())
    assert dtypes(log) == DELIVERY_DTYPES
    assert len(log) == 6
    assert log["ok"].tolist() == [True, False, False, False, False, True]
    codes = log["status_code"].tolist()
    assert codes[1:5] == [503] * 4 and 200 <= codes[0] < 300 and 200 <= codes[5] < 300
    assert (log["subscription_id"] == created.id).all()

    ax = plot_attempts(mon)
    assert len(ax.get_lines()) == 1
    assert np.asarray(ax.collections[0].get_offsets()).shape[0] == 2  # two deliveries seen after the first snapshot
