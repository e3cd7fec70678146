"""Health verdicts that mutation testing (``make mutate``) found unpinned: each reason in full, each boundary.

The reason is what a person reads in the health table, so each one is pinned word for word.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest

from linq_nb.frames import health
from linq_nb.models import WebhookSubscription

T0 = datetime(2025, 6, 1, 10, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def sub(*, attempts: int = 0, delivered: datetime | None = None, active: bool = True) -> WebhookSubscription:
    return WebhookSubscription(id=1, webhook_url="https://example.com/hook", version=2, events=("message.sent",),
                               active=active, secret_configured=True, delivery_attempts=attempts,
                               last_delivered_at=delivered, created_at=T0 - timedelta(days=1),
                               updated_at=T0 - timedelta(days=1))


def verdict(snaps: list[tuple[datetime, list[WebhookSubscription]]], **kwargs: Any) -> tuple[str, str]:
    row = health(snaps, **kwargs).iloc[0]
    return str(row["status"]), str(row["reason"])


def test_each_verdict_gives_its_reason_in_full() -> None:
    assert verdict([(at(0), [sub(attempts=3, delivered=None, active=False)])]) == (
        "inactive", "inactive: it receives nothing until it is activated again")
    assert verdict([(at(0), [sub()])]) == ("never delivered", "no delivery has been attempted yet")
    assert verdict([(at(0), [sub(attempts=3)])]) == (
        "failing", "3 attempt(s) and not one succeeded: check the receiver at webhook_url")
    assert verdict([(at(0), [sub(attempts=4, delivered=at(-90))]), (at(1), [sub(attempts=6, delivered=at(-90))])]) \
        == ("failing", "2 attempt(s) since the last successful delivery (1 h before now) and none succeeded")
    assert verdict([(at(0), [sub(attempts=7, delivered=at(-120))])]) == (
        "idle", "no attempts while watched; last delivery 2 h before now")
    assert verdict([(at(0), [sub(attempts=1, delivered=at(-1))]), (at(1), [sub(attempts=2, delivered=at(0.5))])]) \
        == ("healthy", "deliveries succeed")
    assert verdict([(at(0), [sub(attempts=1, delivered=at(-1))])]) == (
        "healthy", "no failed attempts since the last delivery")


def test_idle_only_once_the_last_delivery_is_older_than_idle_after() -> None:
    snaps = [(at(0), [sub(attempts=1, delivered=at(-60))])]
    assert verdict(snaps)[0] == "healthy"  # exactly the 1 h default: not yet idle
    assert verdict(snaps, now=at(0) + timedelta(seconds=1))[0] == "idle"
    rising = [(at(0), [sub(attempts=1, delivered=at(-120))]), (at(1), [sub(attempts=2, delivered=at(0.5))])]
    assert verdict(rising)[0] == "healthy"  # a delivery seen in the window is never idle


def test_attempts_since_delivery_count_from_the_snapshot_where_the_delivery_first_showed() -> None:
    snaps = [
        (at(0), [sub(attempts=1, delivered=None)]),
        (at(1), [sub(attempts=3, delivered=at(0.5))]),  # delivered here
        (at(2), [sub(attempts=3, delivered=at(0.5))]),
        (at(3), [sub(attempts=6, delivered=at(0.5))]),  # then three failed attempts
    ]
    row = health(snaps).iloc[0]
    assert (row["status"], row["attempts_since_delivery"], row["new_attempts"]) == ("failing", 3, 5)
    assert row["reason"].startswith("3 attempt(s) since the last successful delivery (2 min before now)")
    assert row["since_last_delivery"] == pd.Timedelta(minutes=2.5)


@pytest.mark.parametrize(("seconds", "shown"), [
    (1, "1 s"), (59, "59 s"), (60, "1 min"), (3599, "59 min"), (3600, "1 h"), (86399, "23 h"), (86400, "1 d"),
    (3 * 86400 + 5, "3 d"),
])
def test_the_time_since_the_last_delivery_reads_in_its_largest_whole_unit(seconds: int, shown: str) -> None:
    snaps = [(at(0), [sub(attempts=1, delivered=at(0))]), (at(0) + timedelta(seconds=seconds),
                                                          [sub(attempts=2, delivered=at(0))])]
    assert verdict(snaps)[1] == f"1 attempt(s) since the last successful delivery ({shown} before now) and none " \
                                "succeeded"


def test_failing_right_at_the_last_delivery_reads_zero_seconds_even_with_clock_skew() -> None:
    snaps = [(at(0), [sub(attempts=1, delivered=at(1))]), (at(1), [sub(attempts=3, delivered=at(1))])]
    for now in (at(1), at(0.5)):  # exactly at it, and before it (the server's clock runs ahead)
        assert verdict(snaps, now=now) == (
            "failing", "2 attempt(s) since the last successful delivery (0 s before now) and none succeeded")
