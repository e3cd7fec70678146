"""Mutation testing of the code that decides (mutmut), and its report: ``make mutate``.

    python mutation/mutate.py                  run every decision module, then print the report
    python mutation/mutate.py signing client   run only those modules (the others keep their last results)
    python mutation/mutate.py --changed REF    run only the modules whose files differ from git REF (CI)
    python mutation/mutate.py --report         print the report of the last run, run nothing

mutmut copies the package into ``mutants/`` with every mutant built in, runs the suite once to learn
which tests reach which function, then runs each mutant against only the tests that reach its
function. So each module's run selects the tests that matter for it.

The report gives, per module: mutants, killed, equivalent, survived, and the score
``killed / (mutants - equivalent)``; then every surviving mutant as a diff. A survivor is either
killed by a new test or listed in ``mutation/equivalent.txt`` with a one-line reason. Exit status 1
when a module run here scores under ``TARGET`` or a mutant was not run.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = ROOT / "mutation" / "equivalent.txt"
TARGET = 90.0

#: module -> (file, the functions that decide, as mutmut's mangled names: x_func, xǁClassǁmethod).
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "signing": ("linq_nb/signing.py", ("x_*",)),
    "validation": ("linq_nb/validation.py", ("x_*",)),
    # retries (urllib3 Retry set-up, Retry-After cap, ok-on-retry), lost-create recovery, duplicate guard,
    # the token's destination and its redaction from error text.
    "client": ("linq_nb/client.py", (
        "xǁ_TokenAuthǁ__call__", "xǁ_Retryǁ*", "x__origin", "x__normalize_base_url", "x__normalize_webhook_url",
        "xǁLinqClientǁ__init__", "xǁLinqClientǁrequest", "xǁLinqClientǁ_secrets_in", "xǁLinqClientǁ_redact",
        "xǁLinqClientǁ_no_answer_error", "xǁLinqClientǁcreate_subscription", "xǁLinqClientǁdelete_subscription",
        "xǁLinqClientǁ_refuse_duplicates", "xǁLinqClientǁ_duplicates_in", "xǁLinqClientǁ_ambiguous",
        "xǁLinqClientǁ_recover_create",
    )),
    # which answers are final and which are retried, and what each attempt records
    "delivery": ("linq_nb/sandbox/delivery.py", ("x__retryable", "xǁDelivererǁ_attempt")),
    # partners kept apart: every read and write keyed by the partner, jobs dropped with their subscription
    "store": ("linq_nb/sandbox/store.py", (
        "x_partner_key", "xǁStoreǁsubscriptions", "xǁStoreǁget", "xǁStoreǁcreate", "xǁStoreǁupdate",
        "xǁStoreǁdelete", "xǁStoreǁenqueue", "xǁStoreǁtarget", "xǁStoreǁrecord_attempt", "xǁStoreǁattempts",
    )),
    "app": ("linq_nb/sandbox/app.py", (
        "xǁSandboxAppǁ__init__", "xǁSandboxAppǁdispatch", "xǁSandboxAppǁ_take_fault", "xǁSandboxAppǁ_rate_limited",
        "xǁRateLimiterǁcheck", "xǁSandboxAppǁ_route_collection", "xǁSandboxAppǁ_route_member",
        "xǁSandboxAppǁ_route_deliveries", "xǁSandboxAppǁemit",
    )),
    # what the receiver accepts: path, method, size, signature (with rotation), JSON; duplicates by event_id
    "receiver": ("linq_nb/receiver.py", (
        "x__check_secret", "xǁReceiverǁadd_secret", "xǁReceiverǁremove_secret", "xǁReceiverǁ_check",
        "xǁReceiverǁ_answer",
    )),
    "frames": ("linq_nb/frames.py", ("x_health", "x__health_row", "x__ago")),
}

KILLED = {1, 3, 36, 37, -24, 24, 152, 255, -11, -9}  # a failing test, a timeout, a crash
SURVIVED = {0, 5, 33}  # every test passed, or no test reaches the function
NOT_RUN = {None}


def module_of(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def globs(module: str) -> list[str]:
    path, functions = MODULES[module]
    return [f"{module_of(path)}.{f}__mutmut_*" for f in functions]


def function_key(name: str) -> str:
    """``linq_nb.client.xǁLinqClientǁrequest__mutmut_7`` -> ``client.xǁLinqClientǁrequest``."""
    return name.partition("__mutmut_")[0].split(".", 1)[1].replace("sandbox.", "")


# --------------------------------------------------------------------------- running


def run(modules: list[str], max_children: int) -> float:
    mutmut = Path(sys.executable).parent / "mutmut"
    started = time.monotonic()
    for module in modules:
        t0 = time.monotonic()
        print(f"::: mutmut: {module} ({MODULES[module][0]})", flush=True)
        log = ROOT / "mutants" / f"run-{module}.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("w") as out:
            done = subprocess.run([str(mutmut), "run", "--max-children", str(max_children), *globs(module)],
                                  cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            print(log.read_text()[-4000:])
            raise SystemExit(f"mutmut run failed for {module} (exit {done.returncode}); its output: {log}")
        print(f"::: mutmut: {module} done in {time.monotonic() - t0:.0f} s", flush=True)
    return time.monotonic() - started


def changed_modules(ref: str) -> list[str]:
    out = subprocess.run(["git", "diff", "--name-only", ref, "--"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
    return [m for m, (path, _) in MODULES.items() if path in out]


# --------------------------------------------------------------------------- the report


@dataclass
class Equivalent:
    function: str
    change: str
    reason: str
    used: bool = False


def load_equivalents() -> list[Equivalent]:
    """``function | the mutated line(s) | reason``, one per line; # starts a comment."""
    out = []
    for line in EQUIVALENT_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        function, change, reason = (part.strip() for part in line.split(" | ", 2))
        out.append(Equivalent(function, change, reason))
    return out


def mutated_lines(diff: str) -> str:
    """The lines the mutant has instead of the original, stripped and joined with " / "."""
    return " / ".join(line[1:].strip() for line in diff.splitlines()
                      if line.startswith("+") and not line.startswith("+++"))


@dataclass
class Row:
    module: str
    total: int = 0
    killed: int = 0
    equivalent: int = 0
    not_run: int = 0
    survivors: list[tuple[str, str]] = field(default_factory=list)  # (name, diff)

    @property
    def score(self) -> float:
        scored = self.total - self.equivalent
        return 100.0 * self.killed / scored if scored else 100.0


def report(modules: list[str]) -> list[Row]:
    os.chdir(ROOT)
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    equivalents = load_equivalents()
    rows = []
    for module in modules:
        path, _ = MODULES[module]
        row = Row(module)
        meta = ROOT / "mutants" / (path + ".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        wanted = globs(module)
        for name, code in sorted(codes.items(), key=lambda kv: (kv[0].partition("__mutmut_")[0],
                                                                 int(kv[0].rpartition("_")[2]))):
            if not any(fnmatch.fnmatchcase(name, g) for g in wanted):
                continue
            row.total += 1
            if code in KILLED:
                row.killed += 1
            elif code in NOT_RUN:
                row.not_run += 1
            else:
                diff = get_diff_for_mutant(name, path=path)
                change, fn = mutated_lines(diff), function_key(name)
                match = next((e for e in equivalents if e.function == fn and e.change == change), None)
                if match:
                    match.used = True
                    row.equivalent += 1
                else:
                    row.survivors.append((name, diff))
        rows.append(row)

    print(f"\n{'module':<12}{'file':<30}{'mutants':>8}{'killed':>8}{'equiv.':>8}{'survived':>9}{'score':>8}")
    for row in rows:
        survived = len(row.survivors)
        extra = f"  ({row.not_run} not run)" if row.not_run else ""
        print(f"{row.module:<12}{MODULES[row.module][0]:<30}{row.total:>8}{row.killed:>8}{row.equivalent:>8}"
              f"{survived:>9}{row.score:>7.1f}%{extra}")
    for row in rows:
        for name, diff in row.survivors:
            print(f"\n--- survived: {name}\n{diff}")
    stale = [e for e in equivalents if not e.used and e.function.split(".", 1)[0] in modules]
    for e in stale:
        print(f"\nnote: equivalent.txt entry matches no surviving mutant now: {e.function} | {e.change}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE",
                        help=f"any of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--report", action="store_true", help="print the last results; run nothing")
    parser.add_argument("--changed", metavar="REF", help="run only the modules whose file differs from REF")
    parser.add_argument("--keep", action="store_true",
                        help="reuse mutants/ from the last run (faster; only while linq_nb/ is unchanged)")
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested at once (default 2)")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    modules = args.modules or list(MODULES)
    if args.changed:
        modules = changed_modules(args.changed)
        if not modules:
            print(f"mutation: no decision module differs from {args.changed}; nothing to run "
                  "(the full report: make mutate)")
            return 0
    if not args.report:
        if not args.keep:  # mutmut copies the sources once; start from today's code
            shutil.rmtree(ROOT / "mutants", ignore_errors=True)
        elapsed = run(modules, args.max_children)
        print(f"::: mutation run of {len(modules)} module(s) took {elapsed:.0f} s")
    rows = report(modules)
    low = [r.module for r in rows if r.score < TARGET or r.not_run]
    if low:
        print(f"\nunder {TARGET:g} % or not fully run: {', '.join(low)}")
    return 1 if low and not args.report else 0


if __name__ == "__main__":
    sys.exit(main())
