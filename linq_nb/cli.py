"""The ``linq-nb`` command: ``sandbox``, ``trigger`` and ``receiver``.

    linq-nb sandbox --port 8765 --token alice --token bob --state classroom.sqlite
    linq-nb trigger message.received --url http://127.0.0.1:8765 --token alice
    linq-nb receiver --port 8766 --secret whsec_123
    linq-nb listen --forward-to http://127.0.0.1:8766/webhooks --url http://classroom:8765 --token-file tok
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .events import EVENT_TYPES
from .validation import is_loopback_host

__all__ = ["main"]


def _delays(text: str) -> list[float]:
    from .sandbox import parse_delays

    try:
        return parse_delays(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--retry-delays: {exc}") from None


def _rate(text: str) -> tuple[int, float]:
    try:
        limit, _, per = text.partition("/")
        value = int(limit), float(per or 1)
    except ValueError:
        value = (0, 0.0)
    if value[0] < 1 or not 0 < value[1] < 1e9:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"takes LIMIT/SECONDS such as 10/1 (a whole number >= 1, finite seconds "
                                         f"> 0), got {text[:40]!r}")
    return value


def _read_tokens(args: argparse.Namespace) -> list[str]:
    """--token values, then --tokens-file's lines, then $LINQ_SANDBOX_TOKENS (the last two stay out of ps)."""
    from .sandbox import TOKENS_ENV, read_tokens_file

    tokens = list(args.token or [])
    if args.tokens_file:
        tokens += read_tokens_file(args.tokens_file)
    tokens += os.environ.get(TOKENS_ENV, "").replace(",", " ").split()
    return tokens


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from .sandbox import Sandbox, StateInUse

    tokens = _read_tokens(args) or None
    try:
        sandbox = Sandbox(tokens, host=args.host, port=args.port, state=args.state, retry_delays=args.retry_delays,
                          rate_limit=args.rate_limit, max_body_bytes=args.max_body_bytes,
                          max_subscriptions=args.max_subscriptions, max_event_bytes=args.max_event_bytes,
                          event_rate=args.event_rate, max_attempts=args.max_attempts, deliver_to=args.deliver_to,
                          relay_port=args.relay_port, relay_url=args.relay_url)
    except StateInUse as exc:
        print(f"linq-nb sandbox: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"linq-nb sandbox: {exc}", file=sys.stderr)
        return 2
    if not is_loopback_host(args.host):
        print(f"WARNING: listening on {args.host}: anyone who can reach this port and holds one of the tokens can "
              "use this sandbox, and its webhooks go wherever subscriptions point.", file=sys.stderr)
    shown = ", ".join(sandbox.tokens[:5]) + (f" (+{len(sandbox.tokens) - 5} more)" if len(sandbox.tokens) > 5 else "")

    def ready(url: str) -> None:
        print(f"Linq v2 sandbox on {url}  token(s): {shown}", flush=True)
        if sandbox.shared:
            allowed = ", ".join(args.deliver_to) or "nowhere else"
            print(f"  shared: delivers to relay sessions (linq-nb listen, port {sandbox.relay.port}) and to "
                  f"{allowed} (--deliver-to)", flush=True)
        print(f"  export LINQ_API_BASE_URL={url} LINQ_INTEGRATION_TOKEN=<token>   # Ctrl-C stops", flush=True)

    try:
        sandbox.serve_forever(ready)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.store.close()
    return 0


def _cmd_trigger(args: argparse.Namespace) -> int:
    import requests

    token = args.token or os.environ.get("LINQ_INTEGRATION_TOKEN")
    if not token:
        print("linq-nb trigger: give --token or set LINQ_INTEGRATION_TOKEN (the sandbox's token)", file=sys.stderr)
        return 2
    try:
        data = json.loads(args.data) if args.data else None
    except ValueError as exc:
        print(f"linq-nb trigger: --data is not valid JSON ({exc})", file=sys.stderr)
        return 2
    url = args.url.rstrip("/") + "/_sandbox/events"
    try:
        resp = requests.post(url, json={"event_type": args.event_type, "data": data},
                             headers={"X-LINQ-INTEGRATION-TOKEN": token}, timeout=10)
    except requests.RequestException as exc:
        print(f"linq-nb trigger: could not reach the sandbox at {args.url} ({type(exc).__name__}); "
              "is `linq-nb sandbox` running?", file=sys.stderr)
        return 1
    if resp.status_code != 202:
        print(f"linq-nb trigger: the sandbox answered {resp.status_code}: {resp.text[:500]}", file=sys.stderr)
        return 1
    body = resp.json()
    print(f"{body['event_type']} {body['event_id']}: {body['deliveries_queued']} delivery(ies) queued")
    return 0


def _cmd_listen(args: argparse.Namespace) -> int:
    import signal

    from .client import LinqClient
    from .errors import LinqError
    from .listen import Listener, format_record

    def fail(message: str, code: int = 1) -> int:
        print(f"linq-nb listen: {message}", file=sys.stderr, flush=True)
        return code

    token = args.token or os.environ.get("LINQ_INTEGRATION_TOKEN")
    try:
        if args.token_file:
            with open(args.token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
        secret = None
        if args.secret_file:
            with open(args.secret_file, encoding="utf-8") as fh:
                secret = fh.read().strip()
            if not secret:
                return fail(f"--secret-file {args.secret_file} is empty; put the webhook secret in it", 2)
    except OSError as exc:
        return fail(f"cannot read {exc.filename}: {exc.strerror}", 2)
    if not token:
        return fail("give --token-file, --token or set LINQ_INTEGRATION_TOKEN (the sandbox's token)", 2)
    events = [e.strip() for e in args.events.split(",") if e.strip()] if args.events else None
    unknown = [e for e in events or [] if e not in EVENT_TYPES]
    if unknown:
        return fail(f"unknown event(s) {', '.join(unknown)}; valid: {', '.join(EVENT_TYPES)}", 2)

    def on_delivery(record: dict[str, object]) -> None:
        print(format_record(record), flush=True)

    def on_problem(text: str) -> None:
        print(f"linq-nb listen: {text}", file=sys.stderr, flush=True)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        client = LinqClient(token=token, base_url=args.url, backoff_factor=0.2)
        listener = Listener(client, args.forward_to, events, secret=secret, name=args.name,
                            on_delivery=on_delivery, on_problem=on_problem)
        listener.open()
    except LinqError as exc:
        return fail(f"the sandbox at {args.url} refused or did not answer: {exc}")
    sub = listener.subscription
    print(f"Listening: subscription {sub.id} -> relay {listener.relay_url} -> {args.forward_to}", flush=True)
    print(f"  events: {', '.join(sub.events)}", flush=True)
    if secret is None:
        print(f"  webhook secret (shown once; verify with it): {listener.secret}", flush=True)
    print("  Ctrl-C stops and deletes the subscription", flush=True)
    code = 0
    try:
        listener.start()  # in a thread: a signal then never cuts a delivery short between forward and report
        while not listener.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        listener.stop()
        if listener.error is not None:
            code = fail(f"stopped: {listener.error}")
        c = listener.counts()
        print(f"stopped: subscription {sub.id} deleted; {c['deliveries']} forwarded, {c['delivered']} delivered, "
              f"{c['failed']} failed, {c['reconnects']} reconnects", flush=True)
    return code


#: The support app's notebook, in the repository next to the package (an editable install or a clone).
APP_NOTEBOOK = Path(__file__).resolve().parent.parent / "apps" / "support.ipynb"


def _cmd_app(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("voila") is None:
        print("linq-nb app: Voila is not installed; run `make app`, or pip install -e '.[app]' in the clone",
              file=sys.stderr)
        return 2
    if not APP_NOTEBOOK.is_file():
        print(f"linq-nb app: {APP_NOTEBOOK} is missing; the app runs from a clone of the repository "
              "(pip install -e '.[app]' there)", file=sys.stderr)
        return 2
    if not is_loopback_host(args.host):
        print(f"WARNING: listening on {args.host}: anyone who can reach this port can use the app, and with it "
              "any account whose token is pasted into it.", file=sys.stderr)
    account = ("the account of $LINQ_INTEGRATION_TOKEN" if os.environ.get("LINQ_INTEGRATION_TOKEN", "").strip()
               else "a demo account in a built-in sandbox")
    print(f"Support app on http://{args.host}:{args.port}/ showing {account}   # Ctrl-C stops", flush=True)
    cmd = [sys.executable, "-m", "voila", str(APP_NOTEBOOK), f"--port={args.port}", f"--Voila.ip={args.host}",
           "--Voila.port_retries=0"]
    if args.no_browser:
        cmd.append("--no-browser")
    # Become Voila, so that Ctrl-C and a kill reach it (and its kernels) directly.
    os.execv(sys.executable, cmd)
    return 1  # pragma: no cover - execv does not return


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="linq-nb", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"linq-nb {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sb = sub.add_parser("sandbox", help="serve the Linq v2 sandbox in the foreground")
    sb.add_argument("--host", default="127.0.0.1")
    sb.add_argument("--port", type=int, default=8765)
    sb.add_argument("--token", action="append", help="a partner's token; repeat for several partners")
    sb.add_argument("--tokens-file", "--token-file", dest="tokens_file",
                    help="a file with one token per line (one partner each); unlike --token, not shown in ps. "
                         "Or set $LINQ_SANDBOX_TOKENS")
    sb.add_argument("--state", help="SQLite file that keeps everything across restarts (default: in memory)")
    sb.add_argument("--retry-delays", type=_delays, default=None,
                    help="seconds before each delivery retry, e.g. 0.1,0.2,0.4 (default: Linq's 10 over ~25 min)")
    sb.add_argument("--rate-limit", type=_rate, default=None, help="LIMIT/SECONDS per partner, e.g. 10/1")
    sb.add_argument("--max-body-bytes", type=int, default=1_048_576)
    sb.add_argument("--max-subscriptions", type=int, default=100, help="per partner (default 100)")
    sb.add_argument("--max-event-bytes", type=int, default=262_144, help="one event's size (default 262144)")
    sb.add_argument("--event-rate", type=_rate, default=(100, 1.0),
                    help="triggered events per partner, LIMIT/SECONDS (default 100/1)")
    sb.add_argument("--max-attempts", type=int, default=10_000,
                    help="delivery attempts kept in the log per partner (default 10000)")
    sb.add_argument("--deliver-to", action="append", default=[], metavar="HOST[:PORT]",
                    help="a destination a shared sandbox may deliver to (repeat); it delivers nowhere else but to "
                         "relay sessions (linq-nb listen)")
    sb.add_argument("--relay-port", type=int, default=0, help="port listeners poll (default: a free one, shown)")
    sb.add_argument("--relay-url", default=None, help="the relay port's public base URL, behind a proxy")
    sb.set_defaults(func=_cmd_sandbox)

    li = sub.add_parser("listen", help="receive a sandbox's deliveries on this machine through its relay",
                        description="Create a temporary subscription whose URL is the sandbox's relay, forward each "
                                    "delivery (original bytes and headers) to --forward-to, report the answer back; "
                                    "Ctrl-C or SIGTERM deletes the subscription.")
    li.add_argument("--forward-to", required=True, metavar="URL", help="the local URL to POST each delivery to")
    li.add_argument("--events", default=None, help="comma-separated events (default: all)")
    li.add_argument("--url", default=os.environ.get("LINQ_API_BASE_URL", "http://127.0.0.1:8765"),
                    help="the sandbox (default: $LINQ_API_BASE_URL)")
    li.add_argument("--token", default=None, help="the sandbox token (shows in ps: prefer --token-file)")
    li.add_argument("--token-file", default=None, help="a file holding the token")
    li.add_argument("--secret-file", default=None,
                    help="the subscription's webhook secret (default: a new one, printed once)")
    li.add_argument("--name", default=None, help="the relay session's name (default: host, URL and events); "
                                                 "the same name resumes it")
    li.set_defaults(func=_cmd_listen)

    tr = sub.add_parser("trigger", help="send one event through a running sandbox")
    tr.add_argument("event_type", choices=EVENT_TYPES, metavar="EVENT_TYPE", help=", ".join(EVENT_TYPES))
    tr.add_argument("--url", default=os.environ.get("LINQ_API_BASE_URL", "http://127.0.0.1:8765"))
    tr.add_argument("--token", default=None, help="the sandbox token (default: $LINQ_INTEGRATION_TOKEN)")
    tr.add_argument("--data", default=None, help="JSON object of fields to override in the sample payload")
    tr.set_defaults(func=_cmd_trigger)

    ap = sub.add_parser("app", help="serve the support app (a Voila dashboard) for people who do not code",
                        description="Serve apps/support.ipynb with Voila: the account's subscriptions, their health, "
                                    "what to check, and the actions. Without LINQ_INTEGRATION_TOKEN it shows a demo "
                                    "account; a token pasted into the page shows that account.")
    ap.add_argument("--port", type=int, default=8866, help="port to serve on (default: 8866)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    ap.add_argument("--no-browser", action="store_true", help="do not open a browser")
    ap.set_defaults(func=_cmd_app)

    sub.add_parser("receiver", add_help=False,
                   help="serve a local webhook receiver that verifies signatures (see: receiver --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["receiver"]:  # the receiver parses its own options (and --help)
        from .receiver import main as receiver_main

        return int(receiver_main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
