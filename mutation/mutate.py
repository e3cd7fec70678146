"""Mutation testing of the code that decides (mutmut), and its report: ``make mutate``.

    python mutation/mutate.py                  run every decision module, then print the report
    python mutation/mutate.py signing client   run only those modules (the others keep their last results)
    python mutation/mutate.py --changed        run only the modules changed since the last full run (CI)
    python mutation/mutate.py --report         print the report of the last run, run nothing
    python mutation/mutate.py --survivors      re-test the last run's survivors, and any function changed since
    python mutation/mutate.py signing --record record signing's last results in baseline.json (see below)

A full run records each module's score and the hash of its file in ``mutation/baseline.json`` (commit
it); ``--changed`` runs the modules whose file no longer has that hash. A run of some modules records
nothing by itself; ``--record`` then records those of them whose last results are complete (every
mutant run) and were made from the file as it is now. The record is per module: recording some
modules keeps the others' entries. ``--budget SECONDS`` stops
starting modules (and cuts the one running) when the time is up; the report then says what was not run.

mutmut copies the package into ``mutants/`` with every mutant built in, runs the suite once to learn
which tests reach which function, then runs each mutant against only the tests that reach its
function. So each module's run selects the tests that matter for it. mutmut traces a test only the first
time it sees it: a test that is changed to reach a new function is not run against that function's mutants
until ``mutants/`` is removed (a full run), so a test written to kill a survivor is best a new test.

The report gives, per module: mutants, killed, equivalent, survived, and the score
``killed / (mutants - equivalent)``; then every surviving mutant as a diff. A survivor is either
killed by a new test or listed in ``mutation/equivalent.txt`` with a one-line reason. Exit status 1
when a module run here scores under ``TARGET`` or a mutant was not run.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = ROOT / "mutation" / "equivalent.txt"
TARGET = 90.0

#: module -> (file, the functions that decide, as mutmut's mangled names: x_func, xǁClassǁmethod).
#: The rules only: message building, logging, routing and DataFrame assembly around them are left out,
#: so that a full run fits in CI on a shared 2-core machine.
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    # what each scheme accepts (v2, v3 legacy, Standard Webhooks), which scheme a delivery speaks, the
    # timestamp window and the key forms; the explanations of a refusal (_explain_*) only word the error
    "signing": ("linq_nb/signing.py", (
        "x_canonical_json", "x__hmac", "x__raw", "x__secret_list", "x__header", "x__timestamp_problem", "x__digest",
        "x_sign", "x_verify", "x__reserialised_hint", "x__legacy_digest", "x_sign_legacy", "x_verify_legacy",
        "x__b64", "x__key_problem", "x_standard_key", "x_sign_standard", "x__standard_signatures",
        "x_verify_standard", "x__webhook_accepts", "x_detect_scheme", "x_verify_delivery",
    )),
    "validation": ("linq_nb/validation.py", ("x_*",)),
    # retries (the Retry-After cap), lost-create recovery (what is ambiguous, what matches), the duplicate
    # guard, the token's destination and its redaction from error text, delete's 404-on-retry, and no
    # sandbox route in live mode (the shared rules live in _ApiClient since v3)
    "client": ("linq_nb/client.py", (
        "xǁ_TokenAuthǁ__call__", "xǁ_Retryǁ*", "x__normalize_webhook_url", "xǁ_ApiClientǁ_secrets_in",
        "xǁ_ApiClientǁ_redact", "xǁLinqClientǁdelete_subscription", "xǁLinqClientǁ_duplicates_in",
        "xǁ_ApiClientǁ_ambiguous", "xǁLinqClientǁ_recover_create",
        "x__origin", "xǁ_ApiClientǁ_post_once", "xǁ_ApiClientǁ_find_created", "xǁ_ApiClientǁsandbox_route",
    )),
    # which answers are final and which are retried, and what each attempt records; what is sent where
    # (relay, refused destinations, the deadline)
    "delivery": ("linq_nb/sandbox/delivery.py", ("x__retryable", "xǁDelivererǁ_attempt", "xǁDelivererǁsend")),
    # partners kept apart: every read keyed by the partner; jobs go with their subscription; the per-partner
    # cap and unique URLs, the attempt log's retention and pages
    "store": ("linq_nb/sandbox/store.py", (
        "x_partner_key", "xǁStoreǁsubscriptions", "xǁStoreǁget", "xǁStoreǁdelete", "xǁStoreǁenqueue",
        "xǁStoreǁtarget",
        "xǁStoreǁcount", "xǁStoreǁ_holder", "xǁStoreǁcreate", "xǁStoreǁrecord_attempt", "xǁStoreǁattempts_page",
        "xǁStoreǁdue_jobs",
    )),
    # faults and rate limits apply to the partner they were set for; routes act for the caller's partner;
    # the caps (body, event size, faults, delays) and a partner's limit only ever stricter than the operator's
    "app": ("linq_nb/sandbox/app.py", (
        "xǁSandboxAppǁ__init__", "xǁSandboxAppǁ_take_fault", "xǁSandboxAppǁ_rate_limited", "xǁRateLimiterǁcheck",
        "xǁSandboxAppǁ_route_collection", "xǁSandboxAppǁ_route_member", "xǁSandboxAppǁ_route_deliveries",
        "xǁRateLimiterǁtighter_than", "xǁSandboxAppǁset_rate_limit", "xǁSandboxAppǁ_sleep", "xǁSandboxAppǁ_token",
        "xǁSandboxAppǁdispatch", "xǁSandboxAppǁ_body", "xǁSandboxAppǁ_emit_form", "xǁSandboxAppǁ_route_faults",
    )),
    # what the receiver accepts: path, method, size, signature (with rotation), JSON
    "receiver": ("linq_nb/receiver.py", (
        "x__check_secret", "xǁReceiverǁadd_secret", "xǁReceiverǁremove_secret", "xǁReceiverǁ_check",
    )),
    # the health verdict of one subscription (health() itself assembles the DataFrame)
    "frames": ("linq_nb/frames.py", ("x__health_row", "x__ago")),
    # what a v3 request may contain (and the sentence and code each problem gets), the headers a v3 delivery
    # carries, the secret shown only at create, a body's fields as the store keeps them, which changes raise
    # which account events. Left out: the error builders and the signatures (their schemes are signing's)
    "wire_v3": ("linq_nb/wire/v3.py", (
        "x_parse_id", "x_fields_of", "x__events_problems", "x__phone_problems", "x__header_problems",
        "x__problems", "x_problem_code", "x_routing_headers", "x_created_body", "x_delivery_headers",
        "x_record_fields", "x_subscription_object", "x_event_phone_number", "x__public_url", "x_change_events",
    )),
    # v2's ids, bodies, the headers a v2 delivery carries and its signature, a body as the store keeps it
    "wire_v2": ("linq_nb/wire/v2.py", (
        "x_parse_id", "x_fields_of", "x_signature", "x_delivery_headers", "x_record_fields",
    )),
    # the shared-mode policy (where a partner may be delivered to), relay URLs, session liveness, a held
    # delivery's answer (the listener's report of its forward). Left out for time: deliver() and close()
    # (their mutants wait out delivery deadlines, 25 to 60 s each; tests/test_relay_rules.py covers them)
    "relay": ("linq_nb/sandbox/relay.py", (
        "x_parse_destination", "xǁDeliveryPolicyǁrefusal", "xǁ_Sessionǁconnected", "xǁRelayǁowns",
        "xǁRelayǁ_report", "x__resolve",
    )),
    # v3 ids, the fields a call sends, the one-per-URL duplicate guard, a 409 as the holder, a lost create
    "client_v3": ("linq_nb/client_v3.py", (
        "x__subscription_id", "xǁLinqClientV3ǁ_fields", "xǁLinqClientV3ǁ_duplicates_in",
        "xǁLinqClientV3ǁ_refuse_duplicates", "xǁLinqClientV3ǁ_conflict", "xǁLinqClientV3ǁ_recovered",
    )),
    # the event mapping and what waits for a decision, the proposal (one v3 subscription per URL), step
    # order and guards (confirmation, the soak), undo, de-duplication across versions
    "migrate": ("linq_nb/migrate.py", (
        "xǁMigrationǁmapping", "xǁMigrationǁdecide", "xǁMigrationǁproposal", "xǁMigrationǁ_need",
        "x_dedupe_key", "xǁDeduplicatorǁaccept", "xǁMigrationǁunconfirmed", "xǁMigrationǁconfirm_v3",
        "xǁMigrationǁdeactivate_v2", "xǁMigrationǁdelete_v2", "xǁMigrationǁundo",
    )),
    # what a desired-state file may say, how it is paired with the account, what differs, duplicates, what
    # apply sends. Left out for time: plan()'s assembly of the rows (Plan.pending/changed are properties,
    # which mutmut does not mutate)
    "plans": ("linq_nb/plans.py", (
        "x_load_desired", "x__entry", "x__check_unique", "x__actual_fields", "x__wanted_fields", "x__same",
        "x__match", "x__duplicate_of",
        "xǁPlanǁcounts", "xǁPlanǁ_apply_one",
    )),
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
    return name.partition("__mutmut_")[0].split(".", 1)[1].replace("sandbox.", "").replace("wire.", "wire_")


# --------------------------------------------------------------------------- running


def run(modules: list[str], max_children: int, budget: float | None = None,
        names: list[str] | None = None) -> tuple[float, bool]:
    """One mutmut run over the modules' functions (or just ``names``); returns its time and whether it finished.

    One run, not one per module: mutmut's set-up (copying, learning which tests reach which function,
    a clean run of those tests) is paid once.
    """
    mutmut = Path(sys.executable).parent / "mutmut"
    patterns = names if names is not None else [g for m in modules for g in globs(m)]
    started = time.monotonic()
    print(f"::: mutmut: {', '.join(modules)} ({len(patterns)} pattern(s))", flush=True)
    log = ROOT / "mutants" / "run.log"
    log.parent.mkdir(exist_ok=True)
    # The files these results are of. A --survivors run regenerates the mutants from today's files too, and
    # re-runs every mutant of a function that changed (see survivors()), so its results are of today's files.
    made_from = json.loads(RUN_HASHES.read_text()) if names is not None and RUN_HASHES.exists() else {}
    RUN_HASHES.write_text(json.dumps({**made_from, **{m: file_hash(m) for m in modules}}))
    with log.open("w") as out:
        proc = subprocess.Popen([str(mutmut), "run", "--max-children", str(max_children), *patterns],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)  # mutmut and the workers it forked
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            print(f"::: mutmut: cut short, the time budget of {budget:g} s is spent", flush=True)
            return time.monotonic() - started, False
    if code != 0:
        print(log.read_text()[-4000:])
        raise SystemExit(f"mutmut run failed (exit {code}); its output: {log}")
    return time.monotonic() - started, True


def read_meta(path: str) -> dict[str, Any]:
    """mutmut's results for one file; empty when there are none, or when a cut-short run left the file
    empty or half-written (its mutants then count as not run)."""
    meta = ROOT / "mutants" / (path + ".meta")
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def changed_functions(module: str) -> list[str]:
    """The module's decision functions whose code differs from the code its mutants in mutants/ were made
    from, as mutmut's mangled names (mutmut hashes each function the same way and resets their results)."""
    from mutmut.mutation.file_mutation import compute_function_hashes

    path = MODULES[module][0]
    then = read_meta(path).get("hash_by_function_name", {})
    now = compute_function_hashes((ROOT / path).read_text(encoding="utf-8"))
    prefix = module_of(path)
    return [name for name, digest in now.items() if then.get(name) != digest
            and any(fnmatch.fnmatchcase(f"{prefix}.{name}__mutmut_1", g) for g in globs(module))]


def survivors(modules: list[str]) -> list[str]:
    """What a --survivors run tests: the mutants of these modules that no test killed last time (only they
    can change by adding tests), less those listed as equivalent; and every mutant of a function changed
    since (as a pattern: its mutants are new)."""
    os.chdir(ROOT)
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    equivalent = {(e.function, e.change) for e in load_equivalents()}
    out = []
    for module in modules:
        path = MODULES[module][0]
        changed = changed_functions(module)
        out += [f"{module_of(path)}.{name}__mutmut_*" for name in changed]
        codes = read_meta(path).get("exit_code_by_key", {})
        for name, code in codes.items():
            if code in KILLED or not any(fnmatch.fnmatchcase(name, g) for g in globs(module)):
                continue
            if name.partition("__mutmut_")[0].rpartition(".")[2] in changed:
                continue  # re-run whole, above
            if code is not None and (function_key(name), mutated_lines(get_diff_for_mutant(name, path=path))) \
                    in equivalent:
                continue
            out.append(name)
    return out


BASELINE = ROOT / "mutation" / "baseline.json"
RUN_HASHES = ROOT / "mutants" / "hashes.json"  # module -> hash of the file the mutants in mutants/ were made from


def file_hash(module: str) -> str:
    return hashlib.sha256((ROOT / MODULES[module][0]).read_bytes()).hexdigest()[:16]


def changed_modules() -> list[str]:
    """The modules whose file differs from the one the last full run measured (all, without a record)."""
    recorded = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    return [m for m in MODULES if recorded.get(m, {}).get("sha256") != file_hash(m)]


def save_baseline(rows: list[Row], seconds: float, kind: str | None) -> None:
    """Record these modules' results (the other modules' entries stay as they are); a run of all, as ``kind``."""
    record = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    record.update({row.module: {"sha256": file_hash(row.module), "mutants": row.total, "killed": row.killed,
                                "equivalent": row.equivalent, "survived": len(row.survivors),
                                "score": round(row.score, 1)} for row in rows})
    if kind is not None:
        record["_last_run"] = {"kind": kind, "seconds": round(seconds)}
    BASELINE.write_text(json.dumps(record, indent=2) + "\n")


def recordable(rows: list[Row]) -> tuple[list[Row], list[str]]:
    """The rows whose results are complete and of today's file, and why each other one is not."""
    made_from = json.loads(RUN_HASHES.read_text()) if RUN_HASHES.exists() else {}
    ok, why = [], []
    for row in rows:
        if not row.total:
            why.append(f"{row.module}: no results in mutants/ (run it first)")
        elif row.not_run:
            why.append(f"{row.module}: {row.not_run} mutant(s) not run")
        elif made_from.get(row.module) != file_hash(row.module):
            why.append(f"{row.module}: {MODULES[row.module][0]} changed since its mutants were made (run it again)")
        else:
            ok.append(row)
    return ok, why


# --------------------------------------------------------------------------- the report


@dataclass
class Equivalent:
    function: str
    change: str
    reason: str
    used: bool = False


def load_equivalents() -> list[Equivalent]:
    """``function | the mutated line(s) | reason``, one per line; # starts a comment. The change is what lies
    between the first and the last " | ", so it may hold one itself (``x: A | None``); a reason may not."""
    out = []
    for line in EQUIVALENT_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        function, _, rest = line.partition(" | ")
        change, _, reason = rest.rpartition(" | ")
        out.append(Equivalent(function.strip(), change.strip(), reason.strip()))
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
    seconds: float = 0.0  # time spent testing its mutants (summed over the parallel workers)
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
        data = read_meta(path)
        codes, durations = data.get("exit_code_by_key", {}), data.get("durations_by_key", {})
        wanted = globs(module)
        for name, code in sorted(codes.items(), key=lambda kv: (kv[0].partition("__mutmut_")[0],
                                                                 int(kv[0].rpartition("_")[2]))):
            if not any(fnmatch.fnmatchcase(name, g) for g in wanted):
                continue
            row.total += 1
            row.seconds += durations.get(name, 0.0)
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

    print(f"\n{'module':<12}{'file':<30}{'mutants':>8}{'killed':>8}{'equiv.':>8}{'survived':>9}{'score':>8}"
          f"{'test s':>8}")
    for row in rows:
        survived = len(row.survivors)
        extra = f"  ({row.not_run} not run)" if row.not_run else "  (no results: not run)" if not row.total else ""
        print(f"{row.module:<12}{MODULES[row.module][0]:<30}{row.total:>8}{row.killed:>8}{row.equivalent:>8}"
              f"{survived:>9}{f'{row.score:.1f}%' if row.total else '-':>8}{row.seconds:>8.0f}{extra}")
    for row in rows:
        for name, diff in row.survivors:
            print(f"\n--- survived: {name}\n{diff}")
    measured = {row.module for row in rows if row.total and not row.not_run}  # a partial run proves nothing stale
    stale = [e for e in equivalents if not e.used and e.function.split(".", 1)[0] in measured]
    for e in stale:
        print(f"\nnote: equivalent.txt entry matches no surviving mutant now: {e.function} | {e.change}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"any of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--report", action="store_true", help="print the last results; run nothing")
    parser.add_argument("--changed", action="store_true",
                        help="run only the modules changed since the full run recorded in mutation/baseline.json")
    parser.add_argument("--budget", type=float, metavar="SECONDS", help="stop running modules after this long")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a module run is under the target")
    parser.add_argument("--survivors", action="store_true",
                        help="re-test only the last run's survivors (after adding tests; keeps mutants/)")
    parser.add_argument("--keep", action="store_true",
                        help="reuse mutants/ from the last run (faster; only while linq_nb/ is unchanged)")
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--record", action="store_true",
                        help="record these modules' last results in mutation/baseline.json (complete ones, "
                             "of the files as they are now)")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    modules = args.modules or list(MODULES)
    if args.changed:
        modules = changed_modules()
        if not modules:
            print("mutation: no decision module changed since the last full run; nothing to run "
                  "(the full report: make mutate)")
            return 0
        print(f"mutation: changed since the last full run: {', '.join(modules)}")
    finished, elapsed = True, 0.0
    if args.survivors:
        names = survivors(modules)
        print(f"mutation: re-testing {len(names)} mutant(s) or changed function(s): the survivors of last time, "
              "and every mutant of a function changed since")
        if names:
            elapsed, finished = run(modules, args.max_children, args.budget, names)
    elif not (args.report or args.record):
        if not args.keep:  # mutmut copies the sources once; start from today's code
            shutil.rmtree(ROOT / "mutants", ignore_errors=True)
        elapsed, finished = run(modules, args.max_children, args.budget)
    if elapsed:
        print(f"::: mutation run of {', '.join(modules)} took {elapsed:.0f} s")
    rows = report(modules)
    if not finished:
        print("\nthe run was cut short: the mutants marked 'not run' were not tested (the full report: make mutate)")
    # Every module measured in full (by this run, or a full one and then --survivors): record it for --changed.
    if not (args.report or args.changed or args.modules or args.record) and finished \
            and not any(r.not_run for r in rows):
        save_baseline(rows, elapsed, "survivors re-tested" if args.survivors else "full run")
        print(f"recorded in {BASELINE.relative_to(ROOT)}")
    if args.record:
        ok, why = recordable(rows)
        if ok:
            save_baseline(ok, elapsed, None)
            print(f"recorded {', '.join(r.module for r in ok)} in {BASELINE.relative_to(ROOT)}")
        for line in why:
            print(f"not recorded: {line}")
    low = [r.module for r in rows if r.score < TARGET or r.not_run or not r.total]
    if low:
        print(f"\nunder {TARGET:g} % or not fully run: {', '.join(low)}")
    return 1 if low and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
