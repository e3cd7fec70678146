"""A short classroom: six partners onboard at once against one sandbox in another process.

The full-size run (30 partners) is ``python bench/classroom.py``; this is the same script,
smaller, asserting the targets instead of reporting them. No timing is asserted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from classroom import run_classroom, run_relay_classroom

PARTNERS = 6
FAIL_FIRST = 2
# One pass through the event cycle: message.received -> a, b; message.sent -> a; reaction.received -> b;
# contact.created -> b (after its update) and c; message.read -> nobody.
EVENTS = 5
EXPECTED_PER_PARTNER = 6


@pytest.mark.parametrize("state", [None, "file"], ids=["in-memory", "state-file"])
def test_partners_onboarding_at_once_see_only_their_own_and_get_every_event_exactly_once(
        state: Any, tmp_path: Path) -> None:
    report = run_classroom(PARTNERS, lists=5, events=EVENTS, fail_first=FAIL_FIRST,
                           state=tmp_path / "classroom.sqlite" if state else None)

    assert report.errors == [], report.summary()
    assert report.cross_visibility == [], report.summary()
    assert report.expected_deliveries == PARTNERS * EXPECTED_PER_PARTNER
    assert report.exactly_once == report.expected_deliveries, report.summary()
    assert (report.duplicates, report.missing, report.unexpected, report.unverified) == (0, 0, 0, 0)
    # Every receiver refused its first two deliveries with a 503: each was retried once, and only once.
    assert report.retries == PARTNERS * FAIL_FIRST, report.summary()
    assert report.attempts == report.expected_deliveries + PARTNERS * FAIL_FIRST
    assert report.ok


def test_learners_listening_through_the_relay_get_every_event_exactly_once_beside_direct_delivery() -> None:
    report = run_relay_classroom(3, events=2, fail_first=FAIL_FIRST, pace=0.1)
    assert report.errors == [] and report.cross == 0, report.summary()
    assert report.expected == 3 * 2 * 2  # each event both ways: direct and through the relay
    assert report.exactly_once == report.expected and report.unverified == 0, report.summary()
    assert report.retries == 3 * FAIL_FIRST  # a local 503 through the relay is retried like a direct one
    assert len(report.latency_ms["relay"]) == len(report.latency_ms["direct"]) == 3 * 2
