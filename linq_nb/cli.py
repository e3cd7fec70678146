"""The linq-nb command: serve a Linq v2 sandbox, send events through it, receive webhooks.

examples:
  linq-nb sandbox                                   # a sandbox on http://127.0.0.1:8765 with a random token
  linq-nb sandbox --port 8765 --token alice --token bob --state classroom.sqlite
  linq-nb trigger message.received --token alice    # send one event through a running sandbox
  linq-nb receiver --port 8766 --secret whsec_123   # a local endpoint that verifies signatures
  linq-nb listen --forward-to http://127.0.0.1:8766/webhooks --token-file tok   # deliveries through the relay
  linq-nb app                                       # the support app (Voila) on http://127.0.0.1:8866/
  linq-nb plan subscriptions.toml                   # what applying the file would change (exit 0/2/1)
  linq-nb apply subscriptions.toml                  # carry it out (asks before deleting)
  linq-nb migrate move.json                         # the v2 -> v3 move, one resumable step at a time

Run "linq-nb COMMAND --help" for a command's options. In a checkout, the command is .venv/bin/linq-nb.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .events import EVENT_TYPES
from .validation import is_loopback_host

if TYPE_CHECKING:  # pragma: no cover
    import requests

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


def _reachable_hosts(host: str) -> list[str]:
    """The addresses other machines can use for a server bound to ``host``.

    A wildcard (``0.0.0.0``, ``::`` or empty) is no address to connect to: list this machine's
    non-loopback addresses instead (from its host name, and from the route a UDP socket would take,
    which sends nothing). Loopback when nothing else is found; any other host as it is.
    """
    import ipaddress
    import socket

    if host not in ("0.0.0.0", "::", ""):
        return [host]
    family = socket.AF_INET6 if host == "::" else socket.AF_INET
    found: list[str] = []
    with suppress(OSError):
        infos = socket.getaddrinfo(socket.gethostname(), None, family, socket.SOCK_STREAM)
        found += [str(info[4][0]) for info in infos]
    probe = "2001:db8::1" if family == socket.AF_INET6 else "192.0.2.1"  # documentation ranges: never reached
    with suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as udp:
        udp.connect((probe, 9))  # UDP connect only picks a route; no packet is sent
        found.append(udp.getsockname()[0])
    usable = []
    for address in dict.fromkeys(a.split("%")[0] for a in found):
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if not (ip.is_loopback or ip.is_unspecified or ip.is_link_local):
            usable.append(address)
    return usable or (["::1"] if family == socket.AF_INET6 else ["127.0.0.1"])


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _check_port(host: str, port: int) -> None:
    """Raise the OSError that binding ``host:port`` would raise (as the server binds: address reuse on)."""
    import socket

    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _cmd_sandbox(args: argparse.Namespace) -> int:
    import errno

    from ._accesslog import AccessLog
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
    if not args.quiet:  # one line per request on stderr; the ServerThread serves whatever app it holds
        sandbox._server.app = AccessLog(sandbox.app, sys.stderr, sandbox.tokens)
    if not is_loopback_host(args.host):
        print(f"WARNING: listening on {args.host}: anyone who can reach this port and holds one of the tokens can "
              "use this sandbox. It delivers webhooks only to relay sessions (linq-nb listen) and to --deliver-to "
              "destinations.", file=sys.stderr)

    def ready(url: str) -> None:
        port = int(url.rsplit(":", 1)[1])
        urls = [_url(h, port) for h in _reachable_hosts(args.host)]
        many = len(sandbox.tokens) > 1
        shown = ", ".join(sandbox.tokens[:5]) + (f" (+{len(sandbox.tokens) - 5} more)" if len(sandbox.tokens) > 5
                                                 else "")
        print(f"Linq v2 sandbox on {urls[0]}  token{'s' if many else ''}: {shown}", flush=True)
        for other in urls[1:]:
            print(f"  also reachable at {other}", flush=True)
        if sandbox.shared:
            allowed = ", ".join(args.deliver_to) or "nowhere else"
            print(f"  shared: delivers to relay sessions (linq-nb listen, port {sandbox.relay.port}) and to "
                  f"{allowed} (--deliver-to)", flush=True)
        token = "<one of the tokens>" if many else sandbox.tokens[0]
        print(f"  export LINQ_API_BASE_URL={urls[0]} LINQ_INTEGRATION_TOKEN={token}", flush=True)
        print("  Ctrl-C stops it" + ("" if args.quiet else "; one line per request follows (--quiet: none)"),
              flush=True)

    from ._server import stop_on_ctrl_c

    stop_on_ctrl_c()
    try:
        _check_port(args.host, args.port)  # werkzeug would print its own message and exit, naming no option
        sandbox.serve_forever(ready)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"linq-nb sandbox: port {args.port} on {args.host} is already in use (another linq-nb sandbox?). "
                  f"Stop that one, or choose another port with --port, e.g. --port {args.port + 1} "
                  "(--port 0 picks a free one).", file=sys.stderr)
        elif exc.errno == errno.EACCES:
            print(f"linq-nb sandbox: not allowed to listen on port {args.port} (ports below 1024 need root). "
                  "Choose another with --port, e.g. --port 8765.", file=sys.stderr)
        else:
            print(f"linq-nb sandbox: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}. "
                  "Check --host and --port.", file=sys.stderr)
        return 1
    finally:
        sandbox.store.close()
    return 0


def _refusal(resp: requests.Response) -> str:
    """The sandbox's own message from an error answer, not its raw JSON."""
    try:
        body = resp.json()
        found = body.get("errors") or [body["message"]]
        messages = [str(m.get("detail") or m.get("title") or m) if isinstance(m, dict) else str(m) for m in found]
    except (ValueError, KeyError, TypeError, AttributeError):
        return resp.text[:300]
    return "; ".join(messages)[:500]


def _why_nobody(args: argparse.Namespace, token: str) -> str:
    """Why an event reached no subscription, from the token's subscriptions (best effort)."""
    import requests

    try:
        resp = requests.get(args.url.rstrip("/") + "/api/partner/v2/webhook_subscriptions",
                            headers={"X-LINQ-INTEGRATION-TOKEN": token}, timeout=10)
        subs = resp.json()["webhook_subscriptions"]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return "no active subscription of this token receives it."
    if not subs:
        return "this token has no subscriptions yet; create one first (linq_nb: client.create_subscription)."
    inactive = [s["id"] for s in subs if args.event_type in s.get("events", ()) and not s.get("active", True)]
    if inactive:
        return (f"the subscription(s) for it are inactive: {', '.join(f'#{i}' for i in inactive)}; "
                "activate one (client.update_subscription(id, active=True)).")
    return (f"none of this token's {len(subs)} subscription(s) lists {args.event_type}; add it to one "
            "(client.update_subscription(id, events=[...])) or trigger an event they list.")


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
              "is `linq-nb sandbox` running? Give its address with --url.", file=sys.stderr)
        return 1
    if resp.status_code in (401, 403):
        print(f"linq-nb trigger: the sandbox at {args.url} refused the token ({resp.status_code}). Use one of the "
              "tokens `linq-nb sandbox` printed when it started (--token or LINQ_INTEGRATION_TOKEN).",
              file=sys.stderr)
        return 1
    if resp.status_code == 404:
        print(f"linq-nb trigger: {args.url} has no /_sandbox/events route (404): is it a linq-nb sandbox? "
              "The live API cannot trigger events.", file=sys.stderr)
        return 1
    if resp.status_code != 202:
        print(f"linq-nb trigger: the sandbox answered {resp.status_code}: {_refusal(resp)}", file=sys.stderr)
        return 1
    body = resp.json()
    queued = int(body["deliveries_queued"])
    print(f"{body['event_type']} {body['event_id']}: {queued} delivery(ies) queued")
    if not queued:
        print(f"  nothing will be delivered: {_why_nobody(args, token)}")
    return 0


def _cmd_listen(args: argparse.Namespace) -> int:
    import signal

    from ._server import stop_on_ctrl_c
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
    stop_on_ctrl_c()
    try:
        client = LinqClient(token=token, base_url=args.url, backoff_factor=0.2)
        listener = Listener(client, args.forward_to, events, secret=secret, name=args.name,
                            on_delivery=on_delivery, on_problem=on_problem)
        listener.open()
    except LinqError as exc:
        return fail(f"the sandbox at {args.url} refused or did not answer: {exc}")
    sub = listener.subscription
    code = 0
    try:  # from the banner on, so that a Ctrl-C right after it still deletes the subscription
        print(f"Listening: subscription {sub.id} -> relay {listener.relay_url} -> {args.forward_to}", flush=True)
        print(f"  events: {', '.join(sub.events)}", flush=True)
        if secret is None:
            print(f"  webhook secret (shown once; verify with it): {listener.secret}", flush=True)
        print("  Ctrl-C stops and deletes the subscription", flush=True)
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
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="linq-nb", description=__doc__, formatter_class=raw)
    parser.add_argument("--version", action="version", version=f"linq-nb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    sb = sub.add_parser(
        "sandbox", help="serve the Linq v2 sandbox in the foreground (Ctrl-C stops it)", formatter_class=raw,
        description="Serve an imitation of Linq's Partner API v2 that delivers signed webhooks, in the\n"
                    "foreground until Ctrl-C. It prints its URL and token(s), then one line per request\n"
                    "(a token is never shown in those lines).",
        epilog="examples:\n"
               "  linq-nb sandbox                                # 127.0.0.1:8765, one random token\n"
               "  linq-nb sandbox --token alice --token bob      # two partners, isolated from each other\n"
               "  linq-nb sandbox --host 0.0.0.0 --tokens-file tokens.txt --state classroom.sqlite "
               "--retry-delays 0.5,1,2\n"
               "then, in a notebook's environment:\n"
               "  export LINQ_API_BASE_URL=http://HOST:8765 LINQ_INTEGRATION_TOKEN=<token>")
    sb.add_argument("--host", default="127.0.0.1",
                    help="interface to listen on (default: 127.0.0.1, this machine only; 0.0.0.0: every "
                         "interface, for a classroom)")
    sb.add_argument("--port", type=int, default=8765, help="port to listen on (default: 8765; 0 picks a free one)")
    sb.add_argument("--token", action="append", metavar="TOKEN",
                    help="a partner's token; repeat for several partners (default: one random token)")
    sb.add_argument("--tokens-file", "--token-file", dest="tokens_file", metavar="FILE",
                    help="a file with one token per line, one partner each (# starts a comment); unlike --token, "
                         "not shown in ps. Or set $LINQ_SANDBOX_TOKENS")
    sb.add_argument("--state", metavar="FILE",
                    help="SQLite file that keeps everything across restarts (default: in memory, gone on exit)")
    sb.add_argument("--retry-delays", type=_delays, default=None, metavar="SECONDS,...",
                    help="seconds before each delivery retry, e.g. 0.5,1,2 (default: Linq's 10 retries over ~25 min)")
    sb.add_argument("--rate-limit", type=_rate, default=None, metavar="LIMIT/SECONDS",
                    help="requests allowed per partner per period, e.g. 10/1; more are answered 429 "
                         "(default: no limit)")
    sb.add_argument("--max-body-bytes", type=int, default=1_048_576, metavar="BYTES",
                    help="refuse request bodies larger than this with 413 (default: 1048576, 1 MiB)")
    sb.add_argument("--max-subscriptions", type=int, default=100, metavar="N",
                    help="subscriptions allowed per partner (default: 100)")
    sb.add_argument("--max-event-bytes", type=int, default=262_144, metavar="BYTES",
                    help="largest triggered event (default: 262144, 256 KiB)")
    sb.add_argument("--event-rate", type=_rate, default=(100, 1.0), metavar="LIMIT/SECONDS",
                    help="triggered events allowed per partner per period (default: 100/1)")
    sb.add_argument("--max-attempts", type=int, default=10_000, metavar="N",
                    help="delivery attempts kept in the log per partner (default: 10000)")
    sb.add_argument("--deliver-to", action="append", default=[], metavar="HOST[:PORT]",
                    help="a destination a shared sandbox may deliver to (repeat); it delivers nowhere else but to "
                         "relay sessions (linq-nb listen)")
    sb.add_argument("--relay-port", type=int, default=0, help="port listeners poll (default: a free one, shown)")
    sb.add_argument("--relay-url", default=None, help="the relay port's public base URL, behind a proxy")
    sb.add_argument("--quiet", action="store_true", help="do not print a line per request")
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

    default_url = os.environ.get("LINQ_API_BASE_URL", "http://127.0.0.1:8765")
    tr = sub.add_parser(
        "trigger", help="send one event through a running sandbox", formatter_class=raw,
        description="Ask a running linq-nb sandbox to emit one event, with a realistic sample payload,\n"
                    "to every active subscription of the token that lists it.",
        epilog="example:\n  linq-nb trigger contact.created --token alice --data '{\"first_name\": \"Grace\"}'")
    tr.add_argument("event_type", choices=EVENT_TYPES, metavar="EVENT_TYPE", help="one of: " + ", ".join(EVENT_TYPES))
    tr.add_argument("--url", default=default_url,
                    help=f"the sandbox's base URL (default: $LINQ_API_BASE_URL, else http://127.0.0.1:8765; "
                         f"now {default_url})")
    tr.add_argument("--token", default=None,
                    help="one of the sandbox's tokens (default: $LINQ_INTEGRATION_TOKEN)")
    tr.add_argument("--data", default=None, metavar="JSON",
                    help="a JSON object of fields to override in the sample payload (default: the sample as is)")
    tr.set_defaults(func=_cmd_trigger)

    ap = sub.add_parser("app", help="serve the support app (a Voila dashboard) for people who do not code",
                        description="Serve apps/support.ipynb with Voila: the account's subscriptions, their health, "
                                    "what to check, and the actions. Without LINQ_INTEGRATION_TOKEN it shows a demo "
                                    "account; a token pasted into the page shows that account.")
    ap.add_argument("--port", type=int, default=8866, help="port to serve on (default: 8866)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    ap.add_argument("--no-browser", action="store_true", help="do not open a browser")
    ap.set_defaults(func=_cmd_app)

    from ._plan_cli import add_parsers

    add_parsers(sub, os.environ.get("LINQ_API_BASE_URL"))  # plan, apply, migrate
    sub.add_parser("receiver", add_help=False,
                   help="serve a local webhook receiver that verifies signatures (see: linq-nb receiver --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["receiver"]:  # the receiver parses its own options (and --help)
        from .receiver import main as receiver_main

        return int(receiver_main(argv[1:]) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # a bare `linq-nb`: show what there is rather than an error
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
