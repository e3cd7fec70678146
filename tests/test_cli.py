"""The ``linq-nb`` command in real subprocesses: sandbox, trigger, receiver."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from linq_nb.receiver import Receiver
from tests.conftest import RECEIVER_SECRET

CMD = [sys.executable, "-m", "linq_nb"]


def _start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([*CMD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if not first:
        proc.kill()
        pytest.fail(f"{args[0]} did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc, first


@pytest.fixture
def cli_sandbox(tmp_path: Path) -> Iterator[tuple[str, str]]:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("# one partner per line\nalice\nbob\n")
    proc, first = _start(["sandbox", "--port", "0", "--tokens-file", str(tokens), "--retry-delays", "0.05,0.1",
                          "--deliver-to", "127.0.0.1"])
    try:
        url = first.split()[4]
        assert "alice, bob" in first
        yield url, first
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sandbox_prints_url_and_tokens_then_serves(cli_sandbox: tuple[str, str]) -> None:
    url, first = cli_sandbox
    assert first.startswith("Linq v2 sandbox on http://127.0.0.1:")
    resp = requests.get(url + "/api/partner/v2/webhook_subscriptions", headers={"X-LINQ-INTEGRATION-TOKEN": "bob"},
                        timeout=10)
    assert resp.json() == {"webhook_subscriptions": []}


def test_trigger_delivers_through_a_running_sandbox(cli_sandbox: tuple[str, str]) -> None:
    url, _ = cli_sandbox
    with Receiver(secrets=RECEIVER_SECRET) as receiver:
        body = {"webhook_subscription": {"webhook_url": receiver.url, "version": 2, "events": ["contact.created"],
                                         "secret": RECEIVER_SECRET}}
        requests.post(url + "/api/partner/v2/webhook_subscriptions", json=body,
                      headers={"X-LINQ-INTEGRATION-TOKEN": "alice"}, timeout=10).raise_for_status()
        done = subprocess.run([*CMD, "trigger", "contact.created", "--url", url, "--token", "alice",
                               "--data", json.dumps({"first_name": "Grace"})], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        assert "contact.created" in done.stdout and "1 delivery(ies) queued" in done.stdout
        assert receiver.wait_for_events(1, timeout=10)
        assert receiver.requests[0]["verified"] is True
        assert receiver.events[0]["data"]["first_name"] == "Grace"


@pytest.mark.parametrize(("args", "code", "message"), [
    (["trigger", "message.sent", "--url", "http://127.0.0.1:9", "--token", "x"], 1, "could not reach"),
    (["trigger", "message.sent", "--url", "http://127.0.0.1:9", "--token", "x", "--data", "{bad"], 2, "not valid JSON"),
    (["trigger", "message.sent", "--url", "http://127.0.0.1:9"], 2, "LINQ_INTEGRATION_TOKEN"),
    (["trigger", "message.snt", "--token", "x"], 2, "invalid choice"),
    (["sandbox", "--retry-delays", "a,b"], 2, "--retry-delays"),
    (["sandbox", "--port", "0", "--deliver-to", "host:http"], 2, "HOST:PORT"),
])
def test_cli_errors_say_what_to_do(args: list[str], code: int, message: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LINQ_INTEGRATION_TOKEN"}
    done = subprocess.run([*CMD, *args], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == code
    assert message in done.stderr


def test_trigger_reports_the_sandbox_refusal(cli_sandbox: tuple[str, str]) -> None:
    url, _ = cli_sandbox
    done = subprocess.run([*CMD, "trigger", "message.sent", "--url", url, "--token", "mallory"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "401" in done.stderr


def test_receiver_command_prints_each_request_without_secrets() -> None:
    proc, first = _start(["receiver", "--port", "0", "--secret", RECEIVER_SECRET])
    try:
        assert "verifying signatures" in first
        url = first.split()[4]
        resp = requests.post(url, data=b"{}", headers={"X-Webhook-Signature": "sha256=" + "0" * 64}, timeout=10)
        assert resp.status_code == 401
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert RECEIVER_SECRET not in first + out


# --------------------------------------------------------------------------- what a newcomer reads


def test_help_is_plain_text_and_every_option_says_what_it_does() -> None:
    from linq_nb.cli import build_parser

    top = subprocess.run([*CMD, "--help"], capture_output=True, text=True, timeout=60)
    assert top.returncode == 0 and "``" not in top.stdout and "linq-nb sandbox" in top.stdout
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("sandbox", "trigger"):
        sub = commands.choices[name]
        assert sub.description, name
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    assert "default: 8765" in " ".join(commands.choices["sandbox"].format_help().split())
    trigger_help = " ".join(commands.choices["trigger"].format_help().split())
    assert "default: $LINQ_API_BASE_URL, else http://127.0.0.1:8765" in trigger_help
    bare = subprocess.run(CMD, capture_output=True, text=True, timeout=60)
    assert bare.returncode == 2 and "commands:" in bare.stdout  # the help, not just an error


def test_banner_with_one_token_prints_it_ready_to_export(tmp_path: Path) -> None:
    proc, first = _start(["sandbox", "--port", "0", "--token", "solo", "--quiet"])
    try:
        assert proc.stdout is not None
        export = proc.stdout.readline()
        url = first.split()[4]
        assert export.split() == ["export", f"LINQ_API_BASE_URL={url}", "LINQ_INTEGRATION_TOKEN=solo"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_banner_with_several_tokens_does_not_pick_one(cli_sandbox: tuple[str, str]) -> None:
    _url, first = cli_sandbox
    assert "tokens: alice, bob" in first


def test_wildcard_host_banner_lists_addresses_that_answer() -> None:
    proc, first = _start(["sandbox", "--host", "0.0.0.0", "--port", "0", "--quiet"])
    try:
        assert proc.stdout is not None
        lines = [first]
        while not (line := proc.stdout.readline()).lstrip().startswith("Ctrl-C"):
            lines.append(line)
        text = "".join(lines)
        assert "0.0.0.0" not in text
        urls = [first.split()[4]] + [line.split()[-1] for line in lines if "also reachable at" in line]
        for url in urls:
            host = urlsplit(url).hostname or ""
            if ipaddress.ip_address(host).is_loopback:  # tests send traffic to loopback only
                assert requests.get(url + "/_sandbox/health", timeout=10).json() == {"ok": True}, url
            else:  # an address of this machine's interfaces: binding to it succeeds, and nothing is sent
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                with socket.socket(family, socket.SOCK_DGRAM) as probe:
                    probe.bind((host, 0))
        port = urlsplit(urls[0]).port  # bound to every interface, so loopback answers on the same port
        assert requests.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=10).json() == {"ok": True}
        assert f"LINQ_API_BASE_URL={urls[0]}" in text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_access_log_has_one_line_per_request_and_never_a_token(tmp_path: Path) -> None:
    proc, first = _start(["sandbox", "--port", "0", "--token", "alice-secret-token", "--token", "bob-secret-token"])
    try:
        url = first.split()[4]
        api = url + "/api/partner/v2/webhook_subscriptions"
        requests.get(api, headers={"X-LINQ-INTEGRATION-TOKEN": "bob-secret-token"}, timeout=10)
        requests.get(api + "?token=alice-secret-token", headers={"X-LINQ-INTEGRATION-TOKEN": "wrong-secret-token"},
                     timeout=10)
        requests.get(api, timeout=10)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    lines = [line for line in err.splitlines() if "/api/partner/v2/webhook_subscriptions" in line]
    assert len(lines) == 3, err
    assert lines[0].split()[1:] == ["127.0.0.1", "partner", "2", "GET", "/api/partner/v2/webhook_subscriptions",
                                    "200", lines[0].split()[-2], "ms"]
    assert " unknown token GET " in lines[1] and lines[1].split()[-3] == "401"
    assert " no token GET " in lines[2]
    assert "secret-token" not in err and "secret-token" not in out.replace(first, "")


def test_quiet_sandbox_prints_no_request_lines() -> None:
    proc, first = _start(["sandbox", "--port", "0", "--quiet"])
    try:
        requests.get(first.split()[4] + "/_sandbox/health", timeout=10)
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=10)
    assert "/_sandbox/health" not in err


def test_trigger_with_a_wrong_token_says_which_token_to_use(cli_sandbox: tuple[str, str]) -> None:
    url, _ = cli_sandbox
    done = subprocess.run([*CMD, "trigger", "message.sent", "--url", url, "--token", "mallory"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "refused the token (401)" in done.stderr and "--token" in done.stderr
    assert "{" not in done.stderr  # the sandbox's JSON is not dumped


def _subscribe(url: str, token: str, events: list[str], *, active: bool = True) -> None:
    body = {"webhook_subscription": {"webhook_url": "https://example.com/hook", "version": 2, "events": events,
                                     "active": active}}
    requests.post(url + "/api/partner/v2/webhook_subscriptions", json=body,
                  headers={"X-LINQ-INTEGRATION-TOKEN": token}, timeout=10).raise_for_status()


def test_trigger_of_an_event_nobody_receives_says_why(cli_sandbox: tuple[str, str]) -> None:
    url, _ = cli_sandbox

    def trigger(token: str) -> str:
        done = subprocess.run([*CMD, "trigger", "call.completed", "--url", url, "--token", token],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "0 delivery(ies) queued" in done.stdout
        return done.stdout

    assert "has no subscriptions yet" in trigger("alice")
    _subscribe(url, "alice", ["message.sent"])
    assert "none of this token's 1 subscription(s) lists call.completed" in trigger("alice")
    _subscribe(url, "bob", ["call.completed"], active=False)
    assert "inactive" in trigger("bob") and "#" in trigger("bob")


@pytest.mark.parametrize("command", ["sandbox", "receiver"])
def test_a_port_in_use_says_to_choose_another_with_port(command: str) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([*CMD, command, "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert str(port) in done.stderr and "in use" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [
    ["sandbox", "--port", "0", "--quiet"],
    ["receiver", "--port", "0"],
], ids=["sandbox", "receiver"])
def test_a_foreground_command_started_with_sigint_ignored_still_stops_on_ctrl_c(command: list[str]) -> None:
    """A script's `linq-nb sandbox &` (a shell without job control) starts it with SIGINT ignored."""
    import signal

    proc = subprocess.Popen([sys.executable, "-m", "linq_nb", *command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "Ctrl-C" in banner or "Linq" in banner, banner + (proc.stderr.read() if proc.stderr else "")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
