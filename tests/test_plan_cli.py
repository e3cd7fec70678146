"""``linq-nb plan / apply / migrate`` in real subprocesses against a sandbox: the exit codes hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from linq_nb.client import LinqClient
from linq_nb.receiver import Receiver
from linq_nb.sandbox import Sandbox
from tests.conftest import SENTINEL_SECRET, SENTINEL_TOKEN

HOOK = "http://127.0.0.1:9/hook"


def run(sandbox: Sandbox | None, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINQ_")}
    if sandbox is not None:
        env.update(LINQ_INTEGRATION_TOKEN=SENTINEL_TOKEN, LINQ_API_BASE_URL=sandbox.url)
    env["HOOK_SECRET"] = SENTINEL_SECRET
    return subprocess.run([sys.executable, "-m", "linq_nb", *args], capture_output=True, text=True, env=env,
                          input=stdin, timeout=60)


def write(tmp_path: Path, body: str) -> str:
    path = tmp_path / "subs.toml"
    path.write_text(body)
    return str(path)


def test_plan_exits_2_then_apply_then_0(sandbox: Sandbox, tmp_path: Path) -> None:
    f = write(tmp_path, f'[[v2]]\nurl = "{HOOK}"\nevents = ["message.received"]\nsecret_env = "HOOK_SECRET"\n')
    first = run(sandbox, "plan", f)
    assert first.returncode == 2 and "+ create" in first.stdout and "1 to create" in first.stdout
    assert sandbox.subscriptions() == []
    applied = run(sandbox, "apply", f)
    assert applied.returncode == 0, applied.stderr
    assert "[1/1] done" in applied.stdout and len(sandbox.subscriptions()) == 1
    again = run(sandbox, "plan", f, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["changed"] is False
    assert run(sandbox, "apply", f).stdout.rstrip().endswith("Nothing to do.")
    outputs = first.stdout + first.stderr + applied.stdout + applied.stderr + again.stdout
    assert SENTINEL_SECRET not in outputs and SENTINEL_TOKEN not in outputs


def test_errors_exit_1(sandbox: Sandbox, tmp_path: Path) -> None:
    inline = write(tmp_path, f'[[v2]]\nurl = "{HOOK}"\nevents = ["message.received"]\nsecret = "x"\n')
    bad = run(sandbox, "plan", inline)
    assert bad.returncode == 1 and "secrets never go in this file" in bad.stderr
    ok = write(tmp_path, f'[[v2]]\nurl = "{HOOK}"\nevents = ["message.received"]\n')
    assert run(None, "plan", ok).returncode == 1  # no token: which account?
    assert "LINQ_INTEGRATION_TOKEN" in run(None, "plan", ok).stderr
    assert run(sandbox, "plan", str(tmp_path / "missing.toml")).returncode == 1


def test_apply_asks_before_deleting(sandbox: Sandbox, client: LinqClient, tmp_path: Path) -> None:
    client.create_subscription("http://127.0.0.1:9/old", ["chat.created"])
    f = write(tmp_path, 'managed = "full"\nv2 = []\n')
    assert run(sandbox, "plan", f).returncode == 2
    refused = run(sandbox, "apply", f)  # stdin is not a terminal: no silent delete
    assert refused.returncode == 1 and "--yes" in refused.stderr and len(sandbox.subscriptions()) == 1
    done = run(sandbox, "apply", f, "--yes")
    assert done.returncode == 0 and sandbox.subscriptions() == []


def test_migrate_steps_from_the_command_line(sandbox: Sandbox, client: LinqClient, tmp_path: Path) -> None:
    with Receiver() as receiver:  # verifies nothing: it only has to accept the v3 delivery
        _migrate_steps(sandbox, client, receiver, tmp_path)


def _migrate_steps(sandbox: Sandbox, client: LinqClient, receiver: Receiver, tmp_path: Path) -> None:
    client.create_subscription(receiver.url, ["message.received", "contact.created"])
    state = str(tmp_path / "move.json")
    shown = run(sandbox, "migrate", state)
    assert shown.returncode == 0 and "NEEDS A DECISION" in shown.stdout
    assert run(sandbox, "migrate", state, "create_v3", "--secrets-dir", str(tmp_path)).returncode == 1
    made = run(sandbox, "migrate", state, "create_v3", "--decide", "contact.created=", "--secrets-dir",
               str(tmp_path / "s"))
    assert made.returncode == 0, made.stderr
    assert len(sandbox.subscriptions(api="v3")) == 1 and "whsec_" not in made.stdout
    assert run(sandbox, "migrate", state, "side_by_side").returncode == 0
    assert run(sandbox, "migrate", state, "deactivate_v2").returncode == 1  # not confirmed yet
    assert run(sandbox, "migrate", state, "confirm_v3").returncode == 1  # no v3 delivery yet
    sandbox.emit("message.received")
    assert sandbox.wait_for_deliveries(10)
    confirmed = run(sandbox, "migrate", state, "confirm_v3")  # from the sandbox's attempt log
    assert confirmed.returncode == 0, confirmed.stderr
    assert run(sandbox, "migrate", state, "deactivate_v2").returncode == 0
    assert [s["active"] for s in sandbox.subscriptions()] == [False]
    for _ in range(4):  # deactivate_v2, confirm_v3, side_by_side, create_v3
        assert run(sandbox, "migrate", state, "undo").returncode == 0
    assert sandbox.subscriptions(api="v3") == [] and [s["active"] for s in sandbox.subscriptions()] == [True]
