"""list_subscriptions()'s lazy result, frames built from its JSON, and the Monitor's bounded memory, over real HTTP."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
from werkzeug.wrappers import Request, Response

from linq_nb import SubscriptionList
from linq_nb._server import ServerThread
from linq_nb.client import API_PATH, LinqClient
from linq_nb.errors import ServerError
from linq_nb.frames import Monitor, health, snapshots_frame, subscriptions_frame
from linq_nb.models import WebhookSubscription
from tests.conftest import SENTINEL_TOKEN

HOOK = "http://127.0.0.1:9/hook/"


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the WebhookSubscription objects built from JSON (from_api calls)."""
    calls: list[int] = []
    original = WebhookSubscription.from_api.__func__  # type: ignore[attr-defined]

    def counting(cls: type[WebhookSubscription], obj: Any) -> WebhookSubscription:
        calls.append(1)
        return original(cls, obj)  # type: ignore[no-any-return]

    monkeypatch.setattr(WebhookSubscription, "from_api", classmethod(counting))
    return calls


def make_subs(client: Any, n: int) -> list[WebhookSubscription]:
    return [client.create_subscription(f"{HOOK}{i}", ["message.received"], secret=f"s{i}" if i % 2 else None)
            for i in range(n)]


def test_the_result_reads_as_the_list_of_subscriptions(client: Any) -> None:
    subs = make_subs(client, 3)
    result = client.list_subscriptions()
    assert isinstance(result, SubscriptionList)
    assert len(result) == 3
    assert result == subs and subs == result and result == client.list_subscriptions()
    assert result != subs[:2] and result != subs[::-1] and result != tuple(subs)
    assert result[0] == subs[0] and result[-1] == subs[-1] and isinstance(result[1], WebhookSubscription)
    assert result[1:] == subs[1:] and type(result[1:]) is list
    assert list(result) == subs and [s.id for s in result] == [s.id for s in subs]
    assert subs[2] in result and result.index(subs[1]) == 1 and result.count(subs[0]) == 1
    assert list(reversed(result)) == subs[::-1]
    assert result + [] == subs and [] + result == subs  # noqa: RUF005 (the + operator is what is tested)
    assert repr(result) == repr(subs)
    from IPython.lib.pretty import pretty

    assert pretty(result) == pretty(subs)  # a notebook cell shows the same text as for the list
    assert result[0] is result[0]  # built once, then kept
    with pytest.raises(IndexError):
        result[3]
    with pytest.raises(TypeError):
        hash(result)
    assert pickle.loads(pickle.dumps(result)) == subs
    assert client.get_subscription(result[1]) == subs[1]


def test_listing_builds_no_objects_until_they_are_read(client: Any, built: list[int]) -> None:
    make_subs(client, 4)
    built.clear()
    result = client.list_subscriptions()
    assert built == []
    assert result[2].id and len(built) == 1
    list(result)
    assert len(built) == 4
    list(result)
    assert len(built) == 4  # not rebuilt


def test_frame_from_the_result_is_the_frame_from_the_objects(client: Any, built: list[int]) -> None:
    subs = make_subs(client, 5)
    client.update_subscription(subs[1], active=False)
    result = client.list_subscriptions()
    built.clear()
    df = subscriptions_frame(result)
    assert built == []  # built column-wise from the JSON
    expected = subscriptions_frame(list(client.list_subscriptions()))
    pd.testing.assert_frame_equal(df, expected)
    assert df["active"].tolist() == [True, False, True, True, True]
    assert df["secret_configured"].tolist() == [False, True, False, True, False]
    assert {str(t) for t in df.dtypes} >= {"Int64", "bool", "datetime64[ns, UTC]"}


def test_the_empty_result(client: Any) -> None:
    result = client.list_subscriptions()
    assert result == [] and len(result) == 0 and not result and list(result) == []
    assert subscriptions_frame(result).empty


@pytest.fixture
def odd_list_server() -> Iterator[tuple[str, dict[str, Any]]]:
    """A server whose list endpoint answers whatever body the test puts in ``state["body"]``."""
    state: dict[str, Any] = {"body": {"webhook_subscriptions": []}}

    @Request.application  # type: ignore[arg-type]
    def app(request: Request) -> Response:
        return Response(json.dumps(state["body"]), 200, mimetype="application/json")

    server = ServerThread(app).start()
    yield server.url, state
    server.stop()


def good(i: int) -> dict[str, Any]:
    return {"id": i, "webhook_url": f"{HOOK}{i}", "version": 2, "events": ["message.sent"], "active": True,
            "secret_configured": False, "last_delivered_at": None, "delivery_attempts": 0,
            "created_at": "2025-06-01T10:00:00.000Z", "updated_at": "2025-06-01T10:00:00.000Z"}


def test_a_malformed_answer_is_a_server_error(odd_list_server: tuple[str, dict[str, Any]]) -> None:
    url, state = odd_list_server
    with LinqClient(token=SENTINEL_TOKEN, base_url=url, max_retries=0) as c:
        for body in ({"webhook_subscriptions": [good(1), "not an object"]}, {"webhook_subscriptions": [{"x": 1}]},
                     {"webhook_subscriptions": {}}, [good(1)]):
            state["body"] = body
            with pytest.raises(ServerError, match="webhook_subscriptions"):
                c.list_subscriptions()  # the shape is checked when listing
        state["body"] = {"webhook_subscriptions": [good(1), {**good(2), "created_at": "not a date"}]}
        result = c.list_subscriptions()
        assert result[0].id == 1
        with pytest.raises(ServerError, match="subscription object") as info:
            result[1]  # a field that does not parse: when it is read
        assert info.value.method == "GET" and info.value.path == API_PATH
        with pytest.raises(ValueError, match="created_at"):
            subscriptions_frame(result)


def test_a_large_list_is_parsed_whole_and_leaves_the_collector_as_it_was(
        odd_list_server: tuple[str, dict[str, Any]]) -> None:
    import gc

    url, state = odd_list_server
    state["body"] = {"webhook_subscriptions": [good(i) for i in range(1, 6001)]}  # over 1 MB: parsed with gc paused
    with LinqClient(token=SENTINEL_TOKEN, base_url=url, max_retries=0) as c:
        assert gc.isenabled()
        result = c.list_subscriptions()
        assert gc.isenabled()
        assert len(result) == 6000 and result[-1].id == 6000 and result[0] == WebhookSubscription.from_api(good(1))
        gc.disable()
        try:
            assert len(c.list_subscriptions()) == 6000
            assert not gc.isenabled()  # the caller's choice is kept
        finally:
            gc.enable()


# --------------------------------------------------------------------------- Monitor memory


class Counter:
    """A stand-in client: 3 subscriptions; subscription 1's attempts rise on every call."""

    def __init__(self) -> None:
        self.calls = 0

    def list_subscriptions(self) -> SubscriptionList:
        self.calls += 1
        records = [good(1), good(2), good(3)]
        records[0]["delivery_attempts"] = self.calls
        return SubscriptionList(records)


def test_monitor_keeps_the_latest_snapshots_and_shares_unchanged_subscriptions() -> None:
    mon = Monitor(Counter(), every=60, keep=5)
    for _ in range(12):
        mon.take()
    snaps = mon.snapshots
    assert len(snaps) == 5
    assert [s[0].delivery_attempts for _, s in snaps] == [8, 9, 10, 11, 12]
    assert all(s[1] is snaps[0][1][1] and s[2] is snaps[0][1][2] for _, s in snaps)  # unchanged: one object
    assert len({id(s[0]) for _, s in snaps}) == 5  # changed: one object each
    h = mon.health().set_index("id")
    assert h["snapshots"].tolist() == [5, 5, 5]
    assert h.loc[1, "attempts_first"] == 8 and h.loc[1, "new_attempts"] == 4
    assert (h["first_seen"] == pd.Timestamp(snaps[0][0])).all()
    assert (h["last_seen"] == pd.Timestamp(snaps[-1][0])).all()
    # the same verdicts as from the snapshots themselves
    pd.testing.assert_frame_equal(mon.health(), health(snaps))
    assert len(snapshots_frame(mon)) == 15
    with pytest.raises(ValueError, match="keep"):
        Monitor(Counter(), keep=0)


def test_health_from_runs_matches_a_long_history() -> None:
    t0 = datetime(2025, 6, 1, tzinfo=timezone.utc)
    base = WebhookSubscription.from_api(good(1))
    delivered = t0 + timedelta(seconds=30)
    snaps = []
    for i in range(100):
        attempts = 1 if i < 50 else 1 + (i - 49)  # delivered once, then attempts keep rising
        sub = WebhookSubscription.from_api({**base.to_api(), "delivery_attempts": attempts,
                                            "last_delivered_at": delivered.isoformat()})
        snaps.append((t0 + timedelta(seconds=i), [sub]))
    row = health(snaps).iloc[0]
    assert row["status"] == "failing" and row["attempts_since_delivery"] == 50
    assert row["snapshots"] == 100 and row["new_attempts"] == 50


def test_plots_of_many_subscriptions_stay_readable() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from linq_nb.frames import plot_attempts, plot_since_last_delivery

    t0 = datetime(2025, 6, 1, tzinfo=timezone.utc)
    ok = t0 - timedelta(minutes=5)

    def state(i: int, attempts: int, delivered: datetime | None) -> WebhookSubscription:
        return WebhookSubscription.from_api({**good(i), "delivery_attempts": attempts,
                                             "last_delivered_at": None if delivered is None else delivered.isoformat()})

    # 40 subscriptions; 35 and 36 fail (attempts rise, no delivery), the rest delivered once
    snaps = [(t0 + timedelta(seconds=k),
              [state(i, 1 + (k if i in (35, 36) else 0), ok + timedelta(seconds=k == 2 and i == 5))
               for i in range(1, 41)])
             for k in range(3)]
    try:
        ax = plot_since_last_delivery(snaps)
        assert len(ax.patches) == 20 and "20 of 40" in ax.get_title()
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert "#35  failing" in labels and "#36  failing" in labels
        ax = plot_attempts(snaps)
        lines = ax.collections[0]  # one collection for 40 lines
        assert len(lines.get_segments()) == 40 and ax.get_lines() == []
        markers = ax.collections[1]  # one collection for every delivery marker
        assert np.asarray(markers.get_offsets()).shape[0] == 1  # subscription 5's delivery in the last snapshot
        legend = ax.get_legend()
        assert legend is None or all(not t.get_text().startswith("#") for t in legend.get_texts())
        ax.figure.canvas.draw()
        assert len(plot_since_last_delivery(snaps, max_rows=50).patches) == 40
    finally:
        plt.close("all")
