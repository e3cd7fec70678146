"""The ``linq-nb`` command in real subprocesses: sandbox, trigger, receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
