"""Benchmark 2: the list endpoint's JSON -> ``subscriptions_frame``, against the obvious pandas baseline.

    python bench/bench_frames.py

For 1,000, 10,000 and 100,000 subscriptions, parsed from one JSON body shaped like
``GET /api/partner/v2/webhook_subscriptions``'s (json.loads is not timed: both sides
start from the same list of dicts), times

- linq_nb:  ``linq_nb.frames.subscriptions_frame(raw_dicts)``
- baseline: ``pd.DataFrame.from_records(raw_dicts)`` then ``pd.to_datetime(col, utc=True)``
  on ``last_delivered_at``, ``created_at`` and ``updated_at``

in the same process, alternating, best of several runs (``time.perf_counter``, a
``gc.collect()`` before each). Target (issue 4): ratio <= 1.5 at every size, and time
growing linearly, which the per-row column shows. No assertions: it reports.

``run()`` returns the rows for ``bench/run_all.py``: the keys ``name, linq_nb,
baseline, unit, ratio, target, met`` plus ``size`` and per-row microseconds.
"""

from __future__ import annotations

import gc
import json
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from linq_nb.events import EVENT_TYPES  # noqa: E402
from linq_nb.frames import subscriptions_frame  # noqa: E402

SIZES: tuple[int, ...] = (1_000, 10_000, 100_000)
TARGET_RATIO = 1.5
TIME_COLUMNS = ("last_delivered_at", "created_at", "updated_at")


def _stamp(dt: datetime) -> str:
    """The API's timestamp form: UTC, milliseconds, ``Z``."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def make_body(n: int, seed: int = 2) -> str:
    """A list response with ``n`` varied subscriptions, as the JSON text the API would send."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    events = list(EVENT_TYPES)
    subs = []
    for i in range(1, n + 1):
        created = start + timedelta(seconds=i * 37.5 + rng.random())
        updated = created + timedelta(seconds=rng.uniform(0, 86_400))
        delivered = None if rng.random() < 0.25 else updated + timedelta(seconds=rng.uniform(0, 3_600))
        subs.append(
            {
                "id": i,
                "webhook_url": f"https://hooks.example.com/linq/{i}",
                "version": 2,
                "events": rng.sample(events, rng.randint(1, 4)),
                "active": rng.random() > 0.1,
                "secret_configured": rng.random() > 0.3,
                "last_delivered_at": None if delivered is None else _stamp(delivered),
                "delivery_attempts": 0 if delivered is None else rng.randint(1, 500),
                "created_at": _stamp(created),
                "updated_at": _stamp(updated),
            }
        )
    return json.dumps({"webhook_subscriptions": subs})


def baseline(raw: list[dict[str, Any]]) -> pd.DataFrame:
    """What one would write by hand."""
    df = pd.DataFrame.from_records(raw)
    for column in TIME_COLUMNS:
        df[column] = pd.to_datetime(df[column], utc=True)
    return df


def _once(fn: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _best_pair(a: Callable[[], object], b: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best times of ``a`` and ``b``, run alternately so that drift hits both alike."""
    best_a = best_b = float("inf")
    for _ in range(repeats):
        best_a = min(best_a, _once(a))
        best_b = min(best_b, _once(b))
    return best_a, best_b


def _repeats(n: int) -> int:
    return max(9, min(50, 200_000 // n))


def run(sizes: Sequence[int] = SIZES) -> list[dict[str, Any]]:
    """Measure every size; one row per size plus one for linear growth."""
    rows: list[dict[str, Any]] = []
    per_row: dict[int, tuple[float, float]] = {}
    for n in sizes:
        raw = json.loads(make_body(n))["webhook_subscriptions"]
        mine = subscriptions_frame(raw)  # warm-up, and a check that both sides read the same data
        theirs = baseline(raw)
        assert len(mine) == len(theirs) == n
        t_mine, t_base = _best_pair(partial(subscriptions_frame, raw), partial(baseline, raw), _repeats(n))
        ratio = t_mine / t_base
        per_row[n] = (t_mine / n * 1e6, t_base / n * 1e6)
        rows.append(
            {
                "name": f"frames: subscriptions_frame, {n:,} rows",
                "linq_nb": t_mine,
                "baseline": t_base,
                "unit": "s",
                "ratio": ratio,
                "target": f"<= {TARGET_RATIO}",
                "met": ratio <= TARGET_RATIO,
                "size": n,
                "linq_nb_us_per_row": per_row[n][0],
                "baseline_us_per_row": per_row[n][1],
            }
        )
    if len(per_row) >= 2:
        # Linear growth: per-row time at the largest size over that at the second largest (1.0 = linear).
        small, large = sorted(per_row)[-2:]
        growth_mine = per_row[large][0] / per_row[small][0]
        growth_base = per_row[large][1] / per_row[small][1]
        rows.append(
            {
                "name": f"frames: per-row time, {large:,} vs {small:,} rows",
                "linq_nb": growth_mine,
                "baseline": growth_base,
                "unit": "x (1 = linear)",
                "ratio": None,
                "target": "<= 1.5 (linear)",
                "met": growth_mine <= 1.5,
            }
        )
    return rows


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        f"pandas {pd.__version__}, Python {sys.version.split()[0]}; best of several runs",
        "",
        f"{'size':>9}  {'linq_nb s':>10}  {'baseline s':>10}  {'ratio':>6}  {'linq_nb us/row':>14}  "
        f"{'baseline us/row':>15}  target met",
    ]
    for r in rows:
        if "size" not in r:
            continue
        lines.append(
            f"{r['size']:>9,}  {r['linq_nb']:>10.4f}  {r['baseline']:>10.4f}  {r['ratio']:>6.2f}  "
            f"{r['linq_nb_us_per_row']:>14.2f}  {r['baseline_us_per_row']:>15.2f}  {'yes' if r['met'] else 'NO'}"
        )
    for r in rows:
        if "size" not in r:
            lines.append(
                f"\n{r['name']}: linq_nb {r['linq_nb']:.2f}x, baseline {r['baseline']:.2f}x "
                f"(target {r['target']}: {'met' if r['met'] else 'NOT met'})"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_rows(run()))
