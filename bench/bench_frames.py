"""Frames against the pandas code a user would write instead, from where the user starts, 1,000 to 1,000,000 rows.

    python bench/bench_frames.py                 # every size (the 1,000,000 rows take a minute or two)
    python bench/bench_frames.py --sizes 1000,10000

The plain code (what one writes without linq_nb)::

    records = session.get(url).json()["webhook_subscriptions"]     # raise_for_status() too
    df = pd.DataFrame.from_records(records)
    for c in ("last_delivered_at", "created_at", "updated_at"):
        df[c] = pd.to_datetime(df[c], utc=True)

- **from the response**: ``subscriptions_frame(client.list_subscriptions())`` against the plain
  code above, both GETting the same bytes from :mod:`canned` (a server in another process that
  answers at once), so each side pays the same GET and the ratio is what each adds on top;
- **from the raw records**: ``subscriptions_frame(records)`` against the last three lines, both
  from the same parsed list of dicts; and ``deliveries_frame(records)`` against
  ``from_records`` + ``to_datetime`` of ``started_at``, from a delivery log of that many attempts;
- **growth**: how much the time grows per tenfold size, linq_nb's over the plain code's
  (1.0: the same curve; target within 20 %);
- **memory**: the peak of traced allocations (``tracemalloc``: Python objects, numpy and pandas
  buffers) while each side builds its frame from the response, linq_nb over plain (target <= 1.2).

Rounds alternate which side goes first, a ``gc.collect()`` before each run; times are medians,
ratios the median of the per-round ratios with their range. Targets: ratio <= 1.0 at every size.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
for p in (str(BENCH_DIR), str(REPO)):
    if p not in sys.path:
        sys.path.insert(0, p)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import requests  # noqa: E402
from canned import API_PATH, CannedServer, make_records  # noqa: E402
from run_all import paired, pinned, print_table, row, split_cpus  # noqa: E402

from linq_nb.client import LinqClient  # noqa: E402
from linq_nb.frames import deliveries_frame, subscriptions_frame  # noqa: E402

SIZES: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
TIME_COLUMNS = ("last_delivered_at", "created_at", "updated_at")
TARGET = 1.0
GROWTH_TARGET = 1.2
MEMORY_TARGET = 1.2
TOKEN = "bench-frames-token"


def plain_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """What one writes by hand from the records."""
    df = pd.DataFrame.from_records(records)
    for column in TIME_COLUMNS:
        df[column] = pd.to_datetime(df[column], utc=True)
    return df


def plain_deliveries(records: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(records)
    df["started_at"] = pd.to_datetime(df["started_at"], utc=True)
    return df


def make_deliveries(n: int, seed: int = 3) -> list[dict[str, Any]]:
    """``n`` attempts shaped like ``Sandbox.deliveries()``: one in five failed, some of those with no answer."""
    rng = np.random.default_rng(seed)
    failed = (rng.random(n) < 0.2).tolist()
    no_answer = (rng.random(n) < 0.3).tolist()
    attempt = rng.integers(1, 5, n).tolist()
    started = np.datetime_as_string((1_735_689_600_000_000 + np.arange(n) * 250_000
                                     + rng.integers(0, 100_000, n)).astype("datetime64[us]"), unit="us").tolist()
    duration = np.round(rng.uniform(0.5, 40.0, n), 3).tolist()
    out = []
    for i in range(n):
        status = (None if no_answer[i] else 503) if failed[i] else 200
        out.append({
            "event_id": f"evt_{i // 2:012x}",
            "event_type": "message.received" if i % 3 else "message.sent",
            "subscription_id": 1 + i % 97,
            "attempt": attempt[i] if failed[i] else 1,
            "status_code": status,
            "error": "connection refused" if status is None else None,
            "ok": not failed[i],
            "started_at": started[i] + "Z",
            "duration_ms": duration[i],
        })
    return out


def _rounds(n: int) -> tuple[int, int]:
    """(rounds, calls per round) for a size: about the same total time per size, at least 3 rounds."""
    return {1_000: (15, 5), 10_000: (11, 1), 100_000: (7, 1)}.get(n, (5, 1))


def peak_bytes(fn: Callable[[], object]) -> int:
    """The peak of traced allocations while ``fn`` runs (its result included)."""
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
        del result
    finally:
        tracemalloc.stop()
    return peak


def _growth_rows(label: str, times: dict[int, tuple[float, float]]) -> list[dict[str, Any]]:
    rows = []
    sizes = sorted(times)
    for small, large in itertools.pairwise(sizes):
        mine = times[large][0] / times[small][0]
        theirs = times[large][1] / times[small][1]
        linear = large / small
        # Met when it grows like plain (within 20 %), or no faster than the rows (a side with less fixed
        # cost grows faster towards linear from a small size: that is not the blow-up this looks for).
        got = row(f"{label}: time growth {small:,} -> {large:,} rows (best runs)", mine, theirs, "x",
                  f"within {GROWTH_TARGET - 1:.0%} of plain, or <= {linear:g}x (linear)", None, limit=GROWTH_TARGET)
        got["margin"] = max(got["margin"], 1 - mine / linear)
        got["met"] = got["margin"] >= 0
        rows.append(got)
    return rows


def _from_records(rows: list[dict[str, Any]], name: str, mine: Callable[[Any], object], plain: Callable[[Any], object],
                  records: list[dict[str, Any]], rounds: int, calls: int) -> tuple[float, float]:
    got = paired(lambda: mine(records), lambda: plain(records), rounds, calls)
    rows.append(row(name, got.a * 1e3, got.b * 1e3, "ms", f"ratio <= {TARGET:.2f}", None, ratio=got.ratio,
                    spread=got.spread, limit=TARGET))
    return got.best_a, got.best_b


def run(sizes: Sequence[int] = SIZES) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    response_times: dict[int, tuple[float, float]] = {}
    record_times: dict[int, tuple[float, float]] = {}
    delivery_times: dict[int, tuple[float, float]] = {}
    memory_rows: list[dict[str, Any]] = []
    load_cpus, server_cpus = split_cpus()
    with CannedServer(cpus=server_cpus) as canned, pinned(load_cpus):
        for n in sizes:
            rounds, calls = _rounds(n)
            url = canned.url(n)
            with LinqClient(token=TOKEN, base_url=url, timeout=120) as client, requests.Session() as session:
                session.headers["X-LINQ-INTEGRATION-TOKEN"] = TOKEN
                session.trust_env = False

                def mine() -> pd.DataFrame:
                    return subscriptions_frame(client.list_subscriptions())

                def plain() -> pd.DataFrame:
                    resp = session.get(url + API_PATH, timeout=120)  # noqa: B023
                    resp.raise_for_status()
                    return plain_frame(resp.json()["webhook_subscriptions"])

                a, b = mine(), plain()
                assert len(a) == len(b) == n and a["id"].tolist() == b["id"].tolist()
                del a, b
                got = paired(mine, plain, rounds, calls, warm=1)
                response_times[n] = (got.best_a, got.best_b)
                rows.append(row(f"subscriptions_frame(client.list_subscriptions()) of {n:,}, from the response",
                                got.a * 1e3, got.b * 1e3, "ms", f"ratio <= {TARGET:.2f}", None, ratio=got.ratio,
                                spread=got.spread, limit=TARGET))
                m_mine, m_plain = peak_bytes(mine), peak_bytes(plain)
                memory_rows.append(row(f"peak memory building the frame of {n:,} from the response",
                                       m_mine / 2**20, m_plain / 2**20, "MiB", f"ratio <= {MEMORY_TARGET}", None,
                                       limit=MEMORY_TARGET))

            record_times[n] = _from_records(rows, f"subscriptions_frame(records) of {n:,}, from the raw records",
                                            subscriptions_frame, plain_frame, make_records(n), rounds, calls)
            delivery_times[n] = _from_records(rows, f"deliveries_frame of {n:,} attempts, from the raw records",
                                              deliveries_frame, plain_deliveries, make_deliveries(n), rounds, calls)
            gc.collect()
    rows += _growth_rows("subscriptions_frame from the response", response_times)
    rows += _growth_rows("subscriptions_frame from the records", record_times)
    rows += _growth_rows("deliveries_frame", delivery_times)
    return rows + memory_rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = parser.parse_args()
    print_table(run([int(s) for s in args.sizes.split(",")]), f"Frames (pandas {pd.__version__})")
