"""Run every benchmark in ``bench/`` and print one markdown table (also written to bench/results/latest.md).

    python bench/run_all.py                 # everything, a few minutes on 2 cores; rewrites README's table
    python bench/run_all.py --only client,startup          # README untouched (unless --readme)

Each benchmark module has ``run() -> list[dict]``; a row is
``{"name", "linq_nb", "baseline", "unit", "ratio", "target", "met"}`` where ``met`` is
True/False, or None for a figure that has no target. Baselines are measured in the
same run, on the same machine, so ratios compare like with like. Loads stay on
127.0.0.1, are bounded in count and time, and stop by themselves.

This module also owns the table format: the other scripts import :func:`row` and
:func:`print_table` from here.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results" / "latest.md"
README = REPO / "README.md"
#: The README's Performance table lives between these two lines; a full run rewrites it.
README_START = "<!-- bench:start (written by bench/run_all.py; edit the text around it, not this) -->"
README_END = "<!-- bench:end -->"

#: (short name, module) in the order they run; the short names are what --only takes.
BENCHMARKS: tuple[tuple[str, str], ...] = (
    ("startup", "bench_startup"),
    ("client", "bench_client"),
    ("v3", "bench_v3"),
    ("frames", "bench_frames"),
    ("monitor", "bench_monitor"),
    ("latency", "bench_latency"),
    ("sandbox", "bench_sandbox"),
    ("delivery", "bench_delivery"),
    ("classroom", "classroom"),
    ("relay", "bench_relay"),
    ("hostile", "bench_hostile"),
    ("notebooks", "bench_notebooks"),
)

COLUMNS = ("name", "linq_nb", "baseline", "unit", "ratio", "target", "met")


def row(name: str, linq_nb: float | str | None, baseline: float | str | None, unit: str, target: str,
        met: bool | None, ratio: float | None = None, *, spread: tuple[float, float] | None = None,
        limit: float | None = None, at_least: bool = False) -> dict[str, Any]:
    """One table row. ``ratio`` defaults to linq_nb / baseline when both are numbers.

    ``spread``: the lowest and highest per-round ratio, shown beside the median. ``limit``: the
    target as a number (``ratio <= limit``, or ``>=`` with ``at_least``); then ``met`` may be None
    and is computed, and the row shows the margin, how far the ratio is inside (or outside) it.
    """
    if ratio is None and isinstance(linq_nb, (int, float)) and isinstance(baseline, (int, float)) and baseline:
        ratio = linq_nb / baseline
    margin = None
    if limit is not None and ratio is not None:
        margin = (ratio / limit - 1) if at_least else (1 - ratio / limit)
        if met is None:
            met = margin >= 0
    return {"name": name, "linq_nb": linq_nb, "baseline": baseline, "unit": unit, "ratio": ratio,
            "target": target, "met": met, "spread": spread, "margin": margin}


class Paired(NamedTuple):
    """What :func:`paired` measured: seconds per call (medians, and bests) and the per-round ratios."""

    a: float
    b: float
    ratio: float
    spread: tuple[float, float]
    best_a: float
    best_b: float


def paired(a: Callable[[], Any], b: Callable[[], Any], rounds: int, calls: int = 1, warm: int = 2) -> Paired:
    """Time ``a`` against ``b`` in alternating rounds of ``calls`` calls each.

    Returns the median seconds per call of each, the median of the per-round ratios a/b and
    their (lowest, highest): drift on a shared machine hits both sides of a round alike, and the
    spread shows how much is left; and the best time of each (noise only ever adds time, so
    growth across sizes compares bests). A ``gc.collect()`` precedes every timed run.
    """
    import gc

    for _ in range(warm):
        a()
        b()
    ta: list[float] = []
    tb: list[float] = []
    for i in range(rounds):
        order = ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta))
        for fn, out in order:
            gc.collect()
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            out.append((time.perf_counter() - t0) / calls)
    ratios = [x / y for x, y in zip(ta, tb, strict=True)]
    return Paired(median(ta), median(tb), median(ratios), (min(ratios), max(ratios)), min(ta), min(tb))


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def split_cpus() -> tuple[set[int] | None, set[int] | None]:
    """(CPUs for the load, CPUs for the server under test): one core each when there are two or more.

    Pinning keeps the server and the load generator from trading places on the same core,
    which is most of the run-to-run noise on a 2-core machine. (None, None) where it is not possible,
    or when the environment sets ``BENCH_PIN=0``.
    """
    if not hasattr(os, "sched_getaffinity") or os.environ.get("BENCH_PIN") == "0":
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    half = len(cpus) // 2
    return set(cpus[:half]), set(cpus[half:])


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Run the block with this process (its calling thread and the threads it starts) on ``cpus``."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value).replace("|", "\\|")


def _met(value: Any) -> str:
    return {True: "✅ yes", False: "❌ **no**", None: "–"}.get(value, str(value))


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a GitHub markdown table."""
    lines = ["| benchmark | linq_nb | baseline | unit | ratio (range) | target | met (margin) |",
             "|---|---:|---:|---|---:|---|---|"]
    for r in rows:
        ratio, spread, margin = r.get("ratio"), r.get("spread"), r.get("margin")
        shown = "–" if ratio is None else f"{ratio:.3f}"
        if spread is not None:
            shown += f" ({spread[0]:.2f}–{spread[1]:.2f})"
        met = _met(r.get("met")) + ("" if margin is None else f" ({margin:+.0%})")
        lines.append("| " + " | ".join([
            _fmt(r.get("name")), _fmt(r.get("linq_nb")), _fmt(r.get("baseline")), _fmt(r.get("unit")),
            shown, _fmt(r.get("target")), met,
        ]) + " |")
    return "\n".join(lines)


def print_table(rows: Sequence[dict[str, Any]], title: str | None = None) -> None:
    if title:
        print(f"\n{title}\n")
    print(format_table(rows), flush=True)


def machine() -> str:
    """One line about where the numbers came from."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{dt.date.today().isoformat()} · {os.cpu_count()} cores ({cpu}) · {platform.system()} "
            f"{platform.release()} · Python {platform.python_version()} · commit {commit}")


def _load(module: str) -> Callable[[], list[dict[str, Any]]]:
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    return importlib.import_module(module).run  # type: ignore[no-any-return]


def run_benchmarks(names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for short, module in BENCHMARKS:
        if names and short not in names:
            continue
        started = time.perf_counter()
        print(f"-- {short} ({module}.py) ...", file=sys.stderr, flush=True)
        try:
            got = _load(module)()
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            got = [row(f"{short}: {module}.py not written yet", None, None, "", "", None)]
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc()
            got = [row(f"{short}: FAILED ({type(exc).__name__}: {str(exc)[:120]})", None, None, "", "runs",
                       False)]
        rows += got
        print(f"   {short} took {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated: " + ", ".join(s for s, _ in BENCHMARKS))
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"markdown file to write (default {RESULTS})")
    parser.add_argument("--readme", action=argparse.BooleanOptionalAction, default=None,
                        help="write the table into README.md's Performance section (default: on a full run)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - {s for s, _ in BENCHMARKS}
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    rows = run_benchmarks(names)
    total = time.perf_counter() - started
    table = format_table(rows)
    missed = [r["name"] for r in rows if r.get("met") is False]
    text = (f"Measured {machine()}; all benchmarks took {total:.0f} s.\n\n{table}\n\n"
            + (f"Targets not met: {'; '.join(missed)}.\n" if missed else "Every target with a figure is met.\n"))
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"(written to {args.out})", file=sys.stderr)
    if args.readme if args.readme is not None else not names:
        write_readme(text)
        print(f"(and into {README}'s Performance section)", file=sys.stderr)
    return 0


def write_readme(text: str, readme: Path = README) -> None:
    """Put ``text`` between the README's bench markers (a full run's table replaces the last one)."""
    page = readme.read_text(encoding="utf-8")
    start, end = page.find(README_START), page.find(README_END)
    if start < 0 or end < start:
        raise SystemExit(f"{readme} has no {README_START!r} ... {README_END!r} block to write the table into")
    start += len(README_START)
    readme.write_text(page[:start] + "\n" + text.rstrip() + "\n" + page[end:], encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
