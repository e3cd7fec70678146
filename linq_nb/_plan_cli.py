"""``linq-nb plan``, ``linq-nb apply`` and ``linq-nb migrate``: the command-line ends of plans.py and migrate.py.

Exit codes: ``plan`` 0 when nothing would change, 2 when something would (as ``terraform plan
-detailed-exitcode``), 1 on error; ``apply`` and ``migrate`` 0 when done, 1 on error or refusal.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .errors import LinqError

__all__ = ["add_parsers"]

_ENV = "export LINQ_INTEGRATION_TOKEN=<token> (and LINQ_API_BASE_URL=http://HOST:PORT for a sandbox)"


def _client(args: argparse.Namespace) -> Any:
    from .client import LinqClient

    if not os.environ.get("LINQ_INTEGRATION_TOKEN"):
        raise LinqError("LINQ_INTEGRATION_TOKEN is not set: which account?", hint=_ENV)
    return LinqClient(base_url=args.url) if args.url else LinqClient()


def _fail(command: str, exc: Exception) -> int:
    print(f"linq-nb {command}: {exc}", file=sys.stderr)  # a LinqError's text ends with its "What to do"
    return 1


def _cmd_plan(args: argparse.Namespace) -> int:
    from .plans import DesiredStateError, plan

    try:
        p = plan(args.file, _client(args))
    except (LinqError, DesiredStateError) as exc:
        return _fail("plan", exc)
    print(p.to_json() if args.json else p)
    return 2 if p.changed else 0


def _cmd_apply(args: argparse.Namespace) -> int:
    from .plans import DesiredStateError, plan

    try:
        p = plan(args.file, _client(args))
    except (LinqError, DesiredStateError) as exc:
        return _fail("apply", exc)
    print(p)
    if not p.changed:
        print("Nothing to do.")
        return 0
    deletes = p.counts()["delete"]
    if deletes and not args.yes:
        if not sys.stdin.isatty():
            print(f"linq-nb apply: the plan deletes {deletes} subscription(s); give --yes to confirm",
                  file=sys.stderr)
            return 1
        if input(f"Delete {deletes} subscription(s)? Type yes to go on: ").strip().lower() != "yes":
            print("Not applied: nothing was changed.")
            return 1
    result = p.apply(progress=lambda line: print(line, flush=True))
    print(result)
    return 0 if result.ok else 1


def _cmd_migrate(args: argparse.Namespace) -> int:
    from .migrate import migrate_v2_to_v3

    try:
        decisions = {}
        for text in args.decide or []:
            name, sep, events = text.partition("=")
            if not sep:
                raise LinqError(f"--decide takes V2_EVENT=V3_EVENT,... (or V2_EVENT= to drop it), got {text!r}")
            decisions[name.strip()] = [e.strip() for e in events.split(",") if e.strip()]
        m = migrate_v2_to_v3(_client(args), args.state, decisions=decisions)
        step = args.step
        if step == "create_v3":
            m.create_v3(secrets_dir=args.secrets_dir)
        elif step == "side_by_side":
            m.side_by_side()
        elif step == "confirm_v3":
            m.confirm_v3()  # the sandbox's attempt log; a live account confirms in Python with its Receiver
        elif step == "deactivate_v2":
            m.deactivate_v2()
        elif step == "delete_v2":
            m.delete_v2(soak=args.soak)
        elif step == "undo":
            print(f"undone: {m.undo() or 'nothing'}")
    except LinqError as exc:
        return _fail("migrate", exc)
    print(m)
    return 0


def add_parsers(sub: Any, default_url: str | None) -> None:
    """Register plan, apply and migrate on the ``linq-nb`` subparsers."""
    raw = argparse.RawDescriptionHelpFormatter
    url_help = ("the API's base URL (default: $LINQ_API_BASE_URL, else the live API); "
                "the token is $LINQ_INTEGRATION_TOKEN")
    pl = sub.add_parser("plan", help="show what applying a desired-state file would change (exit 0: nothing, 2: "
                                     "something, 1: error)", formatter_class=raw,
                        description="Compare a desired-state TOML file with the account and print the plan.",
                        epilog="example:\n  linq-nb plan subscriptions.toml && echo in sync")
    pl.add_argument("file", help="the desired-state TOML file")
    pl.add_argument("--json", action="store_true", help="print the plan as JSON")
    pl.add_argument("--url", default=default_url, help=url_help)
    pl.set_defaults(func=_cmd_plan)
    ap = sub.add_parser("apply", help="apply a desired-state file (asks before deleting unless --yes)",
                        description="Plan, print the plan, then carry it out; stops at the first failure.")
    ap.add_argument("file", help="the desired-state TOML file")
    ap.add_argument("--yes", action="store_true", help="do not ask before deleting subscriptions")
    ap.add_argument("--url", default=default_url, help=url_help)
    ap.set_defaults(func=_cmd_apply)
    mg = sub.add_parser("migrate", help="move v2 subscriptions to v3, one resumable step at a time",
                        formatter_class=raw,
                        description="Show the v2 -> v3 proposal and the steps' state (STEP show), or run one step.\n"
                                    "State is kept in STATE (JSON, no secrets); a step done is not done again.",
                        epilog="example:\n"
                               "  linq-nb migrate move.json show\n"
                               "  linq-nb migrate move.json create_v3 --decide contact.created= "
                               "--decide call.completed=call.ended --secrets-dir secrets/")
    mg.add_argument("state", help="the migration's state file (created on first use)")
    mg.add_argument("step", nargs="?", default="show",
                    choices=["show", "create_v3", "side_by_side", "confirm_v3", "deactivate_v2", "delete_v2", "undo"])
    mg.add_argument("--decide", action="append", metavar="V2_EVENT=V3_EVENT,...",
                    help="settle an uncertain mapping (V2_EVENT= drops it); repeatable")
    mg.add_argument("--secrets-dir", default=None, help="where create_v3 saves each signing secret (mode 0600)")
    mg.add_argument("--soak", type=float, default=86400.0,
                    help="seconds v2 stays deactivated before delete_v2 may run (default: 86400)")
    mg.add_argument("--url", default=default_url, help=url_help)
    mg.set_defaults(func=_cmd_migrate)
