"""WebhookSubscription and the timestamp helpers: pure, no HTTP."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from linq_nb.models import WebhookSubscription, format_datetime, humanize_since, parse_datetime

RAW = {"id": 7, "webhook_url": "https://example.com/h", "version": 2, "events": ["message.sent", "call.completed"],
       "active": False, "secret_configured": True, "last_delivered_at": None, "delivery_attempts": 3,
       "created_at": "2026-11-28T04:13:16.407Z", "updated_at": "2026-11-28T05:00:00+01:00"}


def test_from_api_builds_the_same_frozen_object_as_the_constructor() -> None:
    sub = WebhookSubscription.from_api(RAW)
    built = WebhookSubscription(**{f.name: getattr(sub, f.name) for f in dataclasses.fields(sub)})
    assert sub == built and hash(sub) == hash(built) and repr(sub) == repr(built)
    assert sub.events == ("message.sent", "call.completed") and sub.never_delivered
    assert sub.updated_at == datetime(2026, 11, 28, 4, 0, tzinfo=timezone.utc)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sub.active = True  # type: ignore[misc]


def test_to_api_round_trips() -> None:
    sub = WebhookSubscription.from_api(RAW)
    assert WebhookSubscription.from_api(sub.to_api()) == sub
    assert sub.to_api()["created_at"] == "2026-11-28T04:13:16.407Z"


@pytest.mark.parametrize("text", ["2025-06-01T16:00:00Z", "2025-06-01T10:00:00-06:00", "2025-06-01T16:00:00",
                                  "2025-06-01T16:00:00.000z"])
def test_parse_datetime_gives_aware_utc(text: str) -> None:
    assert parse_datetime(text) == datetime(2025, 6, 1, 16, tzinfo=timezone.utc)


def test_nulls_and_relative_times() -> None:
    assert parse_datetime(None) is None and parse_datetime("") is None and format_datetime(None) is None
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert humanize_since(None) == "never"
    assert humanize_since(now - timedelta(seconds=5), now) == "5 s ago"
    assert humanize_since(now - timedelta(minutes=3), now) == "3 min ago"
    assert humanize_since(now - timedelta(days=2), now) == "2 d ago"


def test_card_shows_the_facts_and_no_secret() -> None:
    card = WebhookSubscription.from_api(RAW)._repr_html_()
    assert "#7" in card and "call.completed" in card and "never" in card and "receives nothing" in card
