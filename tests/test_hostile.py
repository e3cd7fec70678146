"""The shared sandbox against a hostile learner (issue 8): every input class over real HTTP, loopback only.

Each test names the point it proves; each checks the answer and that no state changed.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from linq_nb.client import LinqClient
from linq_nb.errors import NotFoundError
from linq_nb.receiver import Receiver
from linq_nb.sandbox import Caps, Sandbox, StateInUse
from linq_nb.signing import canonical_json, sign
from tests.conftest import RECEIVER_SECRET, SENTINEL_TOKEN

PATH = "/api/partner/v2/webhook_subscriptions"
HDR = {"X-LINQ-INTEGRATION-TOKEN": SENTINEL_TOKEN}


def raw(sb: Sandbox, data: bytes, *, token: str = SENTINEL_TOKEN, timeout: float = 5) -> tuple[int, bytes]:
    """Send ``data`` (a request line's rest: headers and body) as-is; (status, body) of the answer, (0, b"") if none."""
    host, port = sb.url.rsplit("/", 1)[-1].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data.replace(b"TOKEN", token.encode()))
        s.shutdown(socket.SHUT_WR)
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
        except OSError:
            pass
    if not got:
        return 0, b""
    head, _, body = got.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def good(url: str = "https://example.com/hook", **extra: Any) -> dict[str, Any]:
    return {"webhook_subscription": {"webhook_url": url, "events": ["message.sent"], "version": 2, **extra}}


def post_json(sb: Sandbox, path: str, text: str) -> requests.Response:
    return requests.post(sb.url + path, data=text.encode("utf-8", "surrogatepass"),
                         headers={**HDR, "Content-Type": "application/json"}, timeout=10)


# --- 1. no 500 for a client's mistake; a real 500 has a request id and a logged traceback ------------------------

HOSTILE_BODIES = {
    "surrogate in webhook_url": (PATH, '{"webhook_subscription": {"webhook_url": "https://e.com/\\ud800", '
                                       '"events": ["message.sent"], "version": 2}}'),
    "surrogate in secret": (PATH, '{"webhook_subscription": {"webhook_url": "https://e.com/h", "secret": "\\udfff",'
                                  ' "events": ["message.sent"], "version": 2}}'),
    "surrogate in event data": ("/_sandbox/events", '{"event_type": "message.sent", "data": {"x": "\\ud800"}}'),
    "JSON nested 100,000 deep": (PATH, "[" * 100_000 + "]" * 100_000),
    "Infinity rate limit": ("/_sandbox/faults", '{"rate_limit": {"limit": 1, "per_seconds": Infinity}}'),
    "NaN delay": ("/_sandbox/faults", '{"fail_next": 1, "delay": NaN}'),
    "NaN in event data": ("/_sandbox/events", '{"event_type": "message.sent", "data": {"amount": NaN}}'),
    "-Infinity as version": (PATH, '{"webhook_subscription": {"webhook_url": "https://e.com/h", '
                                   '"events": ["message.sent"], "version": -Infinity}}'),
    "not UTF-8": (PATH, '{"webhook_subscription": "\xff"}'),
}


@pytest.mark.parametrize("name", list(HOSTILE_BODIES))
def test_hostile_bodies_are_4xx_and_change_nothing(sandbox: Sandbox, receiver: Receiver, name: str) -> None:
    subscribe(sandbox, receiver.url)  # so that an event would be queued, were it accepted
    path, text = HOSTILE_BODIES[name]
    body = text.encode("latin-1") if name == "not UTF-8" else text.encode("utf-8", "surrogatepass")
    resp = requests.post(sandbox.url + path, data=body, headers={**HDR, "Content-Type": "application/json"},
                         timeout=10)
    assert 400 <= resp.status_code < 500, resp.text
    assert resp.json()["message"] and len(resp.text) < 2000
    # nothing changed: no new subscription, no delivery, no fault, no rate limit
    assert len(sandbox.subscriptions()) == 1 and sandbox.deliveries() == [] and sandbox.deliverer.idle()
    assert [requests.get(sandbox.url + PATH, headers=HDR, timeout=10).status_code for _ in range(3)] == [200] * 3


def test_framing_errors_and_odd_paths_are_4xx(sandbox: Sandbox) -> None:
    bad_chunk = (b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nX-LINQ-INTEGRATION-TOKEN: TOKEN\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
    status, body = raw(sandbox, bad_chunk)
    assert status == 400 and "chunk" in json.loads(body)["message"]  # waitress's own answer, as JSON
    huge = requests.post(sandbox.url + PATH, data=b"x" * 3_000_000, headers=HDR, timeout=30)
    assert huge.status_code == 413 and huge.json()["message"]
    cut_chunk = (b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nX-LINQ-INTEGRATION-TOKEN: TOKEN\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n10\r\n{\"webhook_")
    assert raw(sandbox, cut_chunk)[0] in (0, 400)  # never reaches the app: no answer or a 400, never a 500
    short = (b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nX-LINQ-INTEGRATION-TOKEN: TOKEN\r\n"
             b"Content-Length: 500\r\n\r\n{\"webhook_subscription\"")
    assert raw(sandbox, short)[0] in (0, 400)
    for odd in ("%B2", "%C2%B2", "%00", "١٢"):  # ² and Arabic-Indic digits pass str.isdigit
        resp = requests.get(f"{sandbox.url}{PATH}/{odd}", headers=HDR, timeout=10)
        assert resp.status_code == 404 and "not a valid id" in resp.json()["message"]
    assert sandbox.subscriptions() == []


def test_a_real_server_fault_is_a_short_500_with_a_request_id_in_the_log(
        sandbox: Sandbox, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("planted bug")

    monkeypatch.setattr(sandbox.store, "subscriptions", broken)
    with caplog.at_level(logging.ERROR, logger="linq_nb.sandbox"):
        resp = requests.get(sandbox.url + PATH, headers=HDR, timeout=10)
    assert resp.status_code == 500
    request_id = resp.json()["request_id"]
    assert resp.headers["X-Request-ID"] == request_id and "planted bug" not in resp.text
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None and "planted bug" in str(logged[0].exc_info[1])


# --- 2. a hard deadline per attempt, fairness between partners, a quick stop ------------------------------------

class Trickler:
    """A webhook endpoint that sends its status line at once, then its headers one byte every 0.2 s."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.done = threading.Event()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\n")  # a 200 so far: only the deadline can tell it failed
            except OSError:
                return
            for byte in b"X-Slow: " + b"x" * 10_000:
                if self.done.wait(0.2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self.done.set()
        self.sock.close()


@pytest.fixture
def trickler() -> Iterator[Trickler]:
    t = Trickler()
    yield t
    t.close()


def subscribe(sb: Sandbox, url: str, token: str = SENTINEL_TOKEN, secret: str | None = None) -> dict[str, Any]:
    extra = {"secret": secret} if secret else {}
    resp = requests.post(sb.url + PATH, json=good(url, **extra), headers={"X-LINQ-INTEGRATION-TOKEN": token},
                         timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()["webhook_subscription"]


def test_a_trickling_receiver_is_cut_off_at_the_deadline(trickler: Trickler) -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], retry_delays=[], delivery_timeout=1.0) as sb:
        subscribe(sb, trickler.url)
        sb.emit("message.sent")
        assert sb.wait_for_deliveries(timeout=10)
        (attempt,) = sb.deliveries()
        assert attempt["error"] == "timeout after 1 s" and attempt["duration_ms"] < 3000


def test_one_partners_stalled_endpoints_do_not_delay_another_partner(trickler: Trickler) -> None:
    with Sandbox(tokens=["alice", "bob"], retry_delays=[], delivery_timeout=5.0, workers=8,
                 deliver_to=["127.0.0.1"]) as sb, \
            Receiver() as fast:
        for _ in range(16):
            subscribe(sb, trickler.url, token="alice")
        subscribe(sb, fast.url, token="bob")
        sb.emit("message.sent", token="alice")
        deadline = time.monotonic() + 5
        while trickler.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        sb.emit("message.sent", token="bob")
        assert fast.wait_for_events(1, timeout=10)
        assert time.monotonic() - started < 1.0  # not behind alice's 16 stalled deliveries (5 s each)
        assert trickler.connections <= 2  # alice holds a quarter of the workers at most
        t0 = time.monotonic()
        sb.stop()  # with alice's attempts in flight
        assert time.monotonic() - t0 < 3.0


# --- 3. at most a prefix of an answer is read -------------------------------------------------------------------

def test_a_huge_answer_is_not_read_whole() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    sent = [0]

    def flood() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 300000000\r\n\r\n")
            chunk = b"e" * 65536
            try:
                while sent[0] < 300_000_000:
                    conn.sendall(chunk)
                    sent[0] += len(chunk)
            except OSError:
                pass

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    try:
        with Sandbox(tokens=[SENTINEL_TOKEN], retry_delays=[]) as sb:
            subscribe(sb, f"http://127.0.0.1:{server.getsockname()[1]}/hook")
            sb.emit("message.sent")
            assert sb.wait_for_deliveries(timeout=15)
            assert sb.deliveries()[0]["status_code"] == 500
            t.join(timeout=10)
            assert sent[0] < 30_000_000  # 64 KiB read, the rest refused (what was sent sat in socket buffers)
    finally:
        server.close()


# --- 4. per-partner caps; control routes rate limited; bodies stored once ---------------------------------------

def test_caps_are_clear_4xx_and_bodies_are_stored_once(receiver: Receiver) -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], retry_delays=[], max_subscriptions=3, max_event_bytes=5000,
                 event_rate=(4, 60)) as sb:
        for _ in range(3):
            subscribe(sb, receiver.url)
        over = requests.post(sb.url + PATH, json=good(), headers=HDR, timeout=10)
        assert (over.status_code, over.json()["message"]) == (422, "this partner has 3 subscriptions, the most this "
                                                                  "sandbox allows; delete some before creating more")
        assert len(sb.subscriptions()) == 3
        big = requests.post(sb.url + "/_sandbox/events", headers=HDR, timeout=10,
                            json={"event_type": "message.sent", "data": {"text": "x" * 6000}})
        assert big.status_code == 413 and "5000 bytes" in big.json()["message"]
        ok = requests.post(sb.url + "/_sandbox/events", headers=HDR, timeout=10,
                           json={"event_type": "message.sent", "data": {"text": "y" * 3000}})
        assert ok.status_code == 202 and ok.json()["deliveries_queued"] == 3
        # one body for three jobs
        assert sb.store._query("SELECT COUNT(*) FROM events")[0][0] <= 1
        assert sb.store._query("SELECT COUNT(*) FROM jobs WHERE length(body) > 0")[0][0] == 0
        codes = [requests.post(sb.url + "/_sandbox/events", headers=HDR, timeout=10,
                               json={"event_type": "call.completed"}).status_code for _ in range(5)]
        assert codes == [202, 202, 429, 429, 429]  # 4 per minute: ok, big (refused but counted), and two more
        assert sb.wait_for_deliveries(timeout=10) and receiver.wait_for_requests(3)


def test_control_routes_count_against_the_operators_rate_limit() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], rate_limit=(3, 60)) as sb:
        codes = [requests.get(sb.url + "/_sandbox/deliveries", headers=HDR, timeout=10).status_code
                 for _ in range(4)]
        assert codes == [200, 200, 200, 429]


# --- 5. what the operator set no partner can loosen ------------------------------------------------------------

def test_a_partner_cannot_lift_the_operators_rate_limit() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], rate_limit=(5, 60)) as sb:
        looser = requests.post(sb.url + "/_sandbox/faults", headers=HDR, timeout=10,
                               json={"rate_limit": {"limit": 1_000_000, "per_seconds": 0.001}})
        assert looser.status_code == 422 and "stricter" in looser.json()["message"]
        lifted = requests.post(sb.url + "/_sandbox/faults", headers=HDR, timeout=10, json={"rate_limit": None})
        assert lifted.status_code == 200  # lifts only the partner's own
        passed = sum(requests.get(sb.url + PATH, headers=HDR, timeout=10).status_code == 200 for _ in range(50))
        assert passed == 3  # five per minute, two used by the two faults requests above


def test_nan_and_infinity_are_refused_in_python_settings_too() -> None:
    for bad in ({"rate_limit": (1, float("inf"))}, {"rate_limit": (1, float("nan"))},
                {"retry_delays": [float("nan")]}, {"delivery_timeout": float("inf")},
                {"event_rate": (1, float("inf"))}):
        with pytest.raises(ValueError):
            Sandbox(tokens=["t"], **bad)  # type: ignore[arg-type]
    with Sandbox(tokens=["t"]) as sb, Receiver() as r:
        for value in (float("inf"), float("nan")):
            with pytest.raises(ValueError):
                sb.fail_next(1, delay=value)
            with pytest.raises(ValueError):
                sb.set_rate_limit(1, value)
            with pytest.raises(ValueError):
                r.delay(value)
        assert requests.get(sb.url + PATH, headers={"X-LINQ-INTEGRATION-TOKEN": "t"}, timeout=10).ok


# --- 6. the state file: owner-only, one process, busy is a 503 --------------------------------------------------

def test_state_files_are_owner_only_and_used_by_one_process(tmp_path: Path) -> None:
    state = tmp_path / "class.sqlite"
    sqlite3.connect(state).execute("CREATE TABLE older (x)").connection.close()  # as an older version left it
    os.chmod(state, 0o644)
    with Sandbox(tokens=[SENTINEL_TOKEN], state=state) as sb:
        subscribe(sb, "https://example.com/h", secret="whsec_private")
        for name in (state, Path(f"{state}-wal"), Path(f"{state}-shm")):
            assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name
        with pytest.raises(StateInUse, match=f"in use by process {os.getpid()}"):
            Sandbox(tokens=[SENTINEL_TOKEN], state=state)
        assert sb.subscriptions()  # the first one is untouched
    Sandbox(tokens=[SENTINEL_TOKEN], state=state).close()  # free again once closed


def test_a_busy_database_is_a_503_with_retry_after(tmp_path: Path) -> None:
    state = tmp_path / "busy.sqlite"
    with Sandbox(tokens=[SENTINEL_TOKEN], state=state) as sb:
        other = sqlite3.connect(state, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        try:
            resp = requests.post(sb.url + PATH, json=good(), headers=HDR, timeout=30)
            assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert sb.subscriptions() == []
        assert requests.post(sb.url + PATH, json=good(), headers=HDR, timeout=10).status_code == 201


# --- 7. idle and half-sent connections: timed out, no thread each -----------------------------------------------

def test_half_sent_connections_hold_no_thread_and_are_timed_out() -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], channel_timeout=1.0) as sb:
        port = int(sb.url.rsplit(":", 1)[1])
        before = threading.active_count()
        socks = []
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            socks.append(s)
        try:
            assert requests.get(sb.url + PATH, headers=HDR, timeout=10).status_code == 200
            assert threading.active_count() - before < 10
            assert socks[0].recv(100) == b""  # closed by the server after its channel timeout
        finally:
            for s in socks:
                s.close()


# --- 8. the receiver ---------------------------------------------------------------------------------------------

def test_receiver_framing_errors_are_400_without_internals(receiver: Receiver) -> None:
    host, port = "127.0.0.1", receiver.port
    for request in (b"POST /webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"event_id\"",
                    b"POST /webhooks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n"):
        with socket.create_connection((host, port), timeout=20) as s:
            s.sendall(request)
            s.shutdown(socket.SHUT_WR)
            answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
        assert b"Error" not in answer.partition(b"\r\n\r\n")[2]  # no exception name or text
    assert receiver.counts()["rejected"] == 2 and receiver.events == []


def test_receiver_never_parses_a_forged_body_and_keeps_a_bounded_history(monkeypatch: pytest.MonkeyPatch) -> None:
    import linq_nb.receiver as receiver_module

    parsed: list[Any] = []

    def spy(text: Any, *args: Any, **kwargs: Any) -> Any:
        parsed.append(text)
        return json.loads(text, *args, **kwargs)

    monkeypatch.setattr(receiver_module, "json", type("J", (), {"loads": staticmethod(spy), "dumps": json.dumps}))
    with Receiver(secrets=RECEIVER_SECRET, history=5) as r:
        for i in range(8):
            requests.post(r.url, data=json.dumps({"event_id": f"forged-{i}"}),
                          headers={"X-Webhook-Signature": "v1,nope"}, timeout=10)
        assert parsed == []  # refused on the signature, before any JSON parsing
        # the newest 5 are kept, with the ids their bodies claim (read from the bytes, for the record only)
        assert [x["event_id"] for x in r.requests] == [f"forged-{i}" for i in range(3, 8)]
        assert r.counts() == {"requests": 8, "events": 0, "duplicates": 0, "rejected": 8}


# --- 9. secrets out of ps and pickles ---------------------------------------------------------------------------

def test_a_client_refuses_to_be_pickled(client: LinqClient) -> None:
    with pytest.raises(TypeError, match="holds an integration token") as info:
        pickle.dumps(client)
    assert SENTINEL_TOKEN not in str(info.value)


# --- 10. the client's delete and create rules -------------------------------------------------------------------

def test_a_404_after_a_503_is_a_real_404(sandbox: Sandbox) -> None:
    c = LinqClient(token=SENTINEL_TOKEN, base_url=sandbox.url, backoff_factor=0.01, max_retries=2)
    sandbox.fail_next(1, 503)  # not done; the retry's 404 is the truth
    with pytest.raises(NotFoundError):
        c.delete_subscription(424242)
    c.close()


def test_creates_through_one_client_are_serialised(sandbox: Sandbox, client: LinqClient) -> None:
    sandbox.app.caps = Caps(max_delayed=16)
    sandbox.fail_next(16, status=None, delay=0.2)  # every check and create is slow: the race window is wide
    errors: list[BaseException] = []

    def create() -> None:
        try:
            client.create_subscription("https://example.com/same", ["message.sent"])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(sandbox.subscriptions()) == 1 and len(errors) == 7


# --- 11. validation ---------------------------------------------------------------------------------------------

BAD_FIELDS = {
    "duplicate events": {"events": ["message.sent"] * 40_000},
    "empty secret": {"secret": ""},
    "NUL in URL": {"webhook_url": "https://example.com/a\x00b"},
    "control character in URL": {"webhook_url": "https://example.com/\x1b[31m"},
    "* in host": {"webhook_url": "https://*.example.com/hook"},
    "URL of 100 kB": {"webhook_url": "https://example.com/" + "a" * 100_000},
}


@pytest.mark.parametrize("name", list(BAD_FIELDS))
def test_validation_refuses_with_a_short_422(sandbox: Sandbox, name: str) -> None:
    body = good()
    body["webhook_subscription"].update(BAD_FIELDS[name])
    resp = requests.post(sandbox.url + PATH, json=body, headers=HDR, timeout=10)
    assert resp.status_code == 422, resp.text
    assert len(resp.content) < 1500
    assert sandbox.subscriptions() == []


# --- 12. retention, paging, bounded rate limiter ----------------------------------------------------------------

def test_the_attempt_log_keeps_the_newest_n_and_pages(receiver: Receiver) -> None:
    with Sandbox(tokens=[SENTINEL_TOKEN], retry_delays=[0.01] * 5, max_attempts=4) as sb:
        sub = subscribe(sb, receiver.url, secret=RECEIVER_SECRET)
        receiver.fail_next(5, 503)
        event = sb.emit("message.sent")["event_id"]
        assert sb.wait_for_deliveries(timeout=10)
        log = sb.deliveries()
        assert [d["attempt"] for d in log] == [3, 4, 5, 6]  # the newest 4 of 6
        assert sb.subscriptions()[0]["delivery_attempts"] == 6  # the counter stays exact
        page = requests.get(sb.url + "/_sandbox/deliveries?limit=3", headers=HDR, timeout=10).json()
        assert [d["attempt"] for d in page["deliveries"]] == [3, 4, 5] and page["next_cursor"]
        rest = requests.get(sb.url + f"/_sandbox/deliveries?limit=3&cursor={page['next_cursor']}"
                            f"&subscription_id={sub['id']}&event_id={event}", headers=HDR, timeout=10).json()
        assert [d["attempt"] for d in rest["deliveries"]] == [6] and rest["next_cursor"] is None
        assert requests.get(sb.url + "/_sandbox/deliveries?event_id=other", headers=HDR,
                            timeout=10).json()["deliveries"] == []
        assert requests.get(sb.url + "/_sandbox/deliveries?limit=0", headers=HDR, timeout=10).status_code == 422


def test_the_rate_limiter_keeps_constant_memory_per_partner(sandbox: Sandbox) -> None:
    sandbox.set_rate_limit(1_000_000, 3600)
    for _ in range(50):
        requests.get(sandbox.url + PATH, headers=HDR, timeout=10)
    limiter = sandbox.app._operator_limit
    assert limiter is not None and all(isinstance(v, float) for v in limiter._tat.values())
    assert len(limiter._tat) == 1


# --- 9 (command line). secrets from files and the environment, never in the process list ------------------------

def _spawn(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "linq_nb", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **env})
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if not first:
        proc.kill()
        pytest.fail(f"did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc, first


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def test_sandbox_tokens_from_the_environment_or_a_file_stay_out_of_ps(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text("tok_from_file_7f3a\n")
    state = tmp_path / "s.sqlite"
    proc, first = _spawn(["sandbox", "--port", "0", "--token-file", str(token_file), "--state", str(state)],
                         {"LINQ_SANDBOX_TOKENS": "tok_from_env_91bc"})
    try:
        url = re.search(r"http://\S+", first).group(0)  # type: ignore[union-attr]
        for token in ("tok_from_env_91bc", "tok_from_file_7f3a"):
            assert requests.get(url + PATH, headers={"X-LINQ-INTEGRATION-TOKEN": token}, timeout=10).ok
            assert token.encode() not in _cmdline(proc.pid)
        # a second sandbox on the same state file refuses, naming the first
        second = subprocess.run([sys.executable, "-m", "linq_nb", "sandbox", "--port", "0", "--state", str(state),
                                 "--token", "x"], capture_output=True, text=True, timeout=60)
        assert second.returncode == 1 and f"in use by process {proc.pid}" in second.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("how", ["file", "env"])
def test_receiver_secret_from_a_file_or_the_environment(tmp_path: Path, how: str) -> None:
    secret = "whsec_cli_secret_55e1"
    secret_file = tmp_path / "secret"
    secret_file.write_text(f"# rotated monthly\n{secret}\n")
    args, env = (["--secret-file", str(secret_file)], {}) if how == "file" else ([], {"LINQ_WEBHOOK_SECRET": secret})
    proc, first = _spawn(["receiver", "--port", "0", *args], env)
    try:
        assert "with 1 secret" in first and secret not in first
        assert secret.encode() not in _cmdline(proc.pid)
        url = re.search(r"http://\S+", first).group(0)  # type: ignore[union-attr]
        body = canonical_json({"event_id": "e1", "event_type": "message.sent"})
        assert requests.post(url, data=body, headers={"X-Webhook-Signature": sign(body, secret)},
                             timeout=10).status_code == 200
        assert requests.post(url, data=body, headers={"X-Webhook-Signature": sign(body, "whsec_other")},
                             timeout=10).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- 6 (deliveries). a busy database never makes a delivery go out twice unlogged -------------------------------

def test_a_delivery_finishing_while_the_database_is_busy_is_logged_once(tmp_path: Path, receiver: Receiver) -> None:
    state = tmp_path / "busy.sqlite"
    with Sandbox(tokens=[SENTINEL_TOKEN], state=state, retry_delays=[0.05]) as sb:
        subscribe(sb, receiver.url, secret=RECEIVER_SECRET)
        receiver.delay(0.5)
        sb.emit("message.sent")
        deadline = time.monotonic() + 10
        while receiver._in_flight == 0 and time.monotonic() < deadline:  # until the attempt is at the receiver
            time.sleep(0.01)
        other = sqlite3.connect(state, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # held past the store's 2 s busy timeout
        time.sleep(3.0)
        other.execute("ROLLBACK")
        other.close()
        assert sb.wait_for_deliveries(timeout=10)
        assert len(receiver.requests) == 1 and len(sb.deliveries()) == 1 and sb.deliveries()[0]["ok"]


# --- 7 (receiver). a bounded number of threads -------------------------------------------------------------------

def test_the_receiver_serves_half_sent_connections_with_bounded_threads(receiver: Receiver) -> None:
    before = threading.active_count()
    socks = []
    try:
        for _ in range(60):
            s = socket.create_connection(("127.0.0.1", receiver.port), timeout=10)
            s.sendall(b"POST /webhooks HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            socks.append(s)
        time.sleep(1.5)
        assert threading.active_count() - before <= 33
    finally:
        for s in socks:
            s.close()


# --- 2 (API). a partner's injected delays cannot occupy the server's shared threads -----------------------------

@pytest.mark.parametrize("most", [2, 1])  # 2 by default; an operator may allow fewer
def test_a_partner_holds_at_most_two_threads_in_injected_delays(sandbox: Sandbox, most: int) -> None:
    if most != Caps().max_delayed:
        sandbox.app.caps = Caps(max_delayed=most)
    resp = requests.post(sandbox.url + "/_sandbox/faults", headers=HDR, timeout=10,
                         json={"fail_next": 20, "status": None, "delay": 2})
    assert resp.status_code == 200

    def wave() -> list[float]:
        took: list[float] = []

        def get() -> None:
            t0 = time.monotonic()
            requests.get(sandbox.url + PATH, headers=HDR, timeout=30)
            took.append(time.monotonic() - t0)

        threads = [threading.Thread(target=get) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        return took

    for _ in range(2):  # and the threads are given back: the second wave is held the same way
        took = wave()
        assert len(took) == 5 and sum(1 for s in took if s >= 2) == most  # they slept the 2 s; the rest were not


def test_an_event_of_exactly_the_size_cap_is_accepted(receiver: Receiver) -> None:
    event = {"event_type": "message.sent", "data": {"text": "y" * 3000}}
    with Sandbox(tokens=[SENTINEL_TOKEN], max_event_bytes=1000) as sb:
        subscribe(sb, receiver.url)
        refused = requests.post(sb.url + "/_sandbox/events", headers=HDR, timeout=10, json=event).json()["message"]
    size = int(refused.split("the event is ")[1].split(" bytes")[0])  # what this event weighs, as delivered
    for cap, status in ((size, 202), (size - 1, 413)):
        with Sandbox(tokens=[SENTINEL_TOKEN], max_event_bytes=cap, retry_delays=[]) as sb:
            subscribe(sb, receiver.url)
            assert requests.post(sb.url + "/_sandbox/events", headers=HDR, timeout=10,
                                 json=event).status_code == status, cap
            assert sb.wait_for_deliveries(timeout=10)
