"""Classroom load: thirty partners run a scripted onboarding against ONE sandbox in another process.

    python bench/classroom.py                       # 30 partners, in-memory sandbox
    python bench/classroom.py --partners 60 --state /tmp/classroom.sqlite

Each partner has its own token, its own local :class:`linq_nb.Receiver` (with its own
secret, made to fail its first deliveries so the sandbox has to retry) and its own
:class:`linq_nb.LinqClient`, and does what a learner does in the session:

1. create three subscriptions to its receiver (different events; one event type reaches two of them),
2. list twenty times, and look up another partner's id (must be a 404),
3. update one subscription (it gains an event),
4. trigger ten events through ``POST /_sandbox/events`` (one type nobody subscribed to),
5. wait (polling ``GET /_sandbox/deliveries``) until every expected delivery succeeded,
6. deactivate the three subscriptions, then delete them, and check the list is empty.

The report: errors (target 0), cross-partner visibility (target 0: foreign ids in a list,
a foreign id readable, a delivery to another partner's receiver), events delivered
exactly once to each subscribed receiver after retries (target 100 %), and p50/p99
latency of the client calls. :func:`run_classroom` is used by ``tests/test_classroom.py``
with fewer partners; :class:`SandboxProcess` is shared with the other benchmarks and the
durability test.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # a fresh clone works without installing
    sys.path.insert(0, str(REPO))

from linq_nb.client import LinqClient  # noqa: E402
from linq_nb.errors import LinqError, NotFoundError  # noqa: E402
from linq_nb.receiver import Receiver  # noqa: E402

__all__ = ["SandboxProcess", "free_port", "run_classroom", "ClassroomReport", "run", "FAST_RETRY_DELAYS",
           "run_relay_classroom", "RelayReport"]

FAST_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4)

# What each partner subscribes to; "message.received" reaches A and B, and after the update
# "contact.created" reaches B and C. "message.read" reaches nobody: it must queue nothing.
SUBSCRIPTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("a", ("message.received", "message.sent")),
    ("b", ("message.received", "reaction.received")),
    ("c", ("contact.created",)),
)
UPDATE = ("b", ("message.received", "reaction.received", "contact.created"))
EVENT_CYCLE = ("message.received", "message.sent", "reaction.received", "contact.created", "message.read")


# --------------------------------------------------------------------------- a sandbox in another process


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_ok(url: str, path: str = "/_sandbox/health", timeout: float = 1.0) -> bool:
    """True when ``GET url+path`` answers 200."""
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class SandboxProcess:
    """``python -m linq_nb sandbox`` in a subprocess on a free loopback port.

    The tokens go through ``--tokens-file`` (a temporary file) and the process's stdout,
    which prints them, goes nowhere; stderr goes to :attr:`log_path`.
    """

    def __init__(self, tokens: Sequence[str], *, state: str | Path | None = None,
                 retry_delays: Sequence[float] | None = None, port: int | None = None,
                 extra_args: Sequence[str] = (), cpus: set[int] | None = None) -> None:
        self.tokens = list(tokens)
        self.state = state
        self.retry_delays = retry_delays
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.cpus = cpus  # pin the process to these CPUs (Linux), to keep it off the load's core
        self._dir = tempfile.TemporaryDirectory(prefix="linq-nb-sandbox-")
        self.tokens_file = Path(self._dir.name) / "tokens.txt"
        self.tokens_file.write_text("".join(t + "\n" for t in self.tokens), encoding="utf-8")
        self.log_path = Path(self._dir.name) / "stderr.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_in: float | None = None  # seconds from spawn to a healthy answer

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "linq_nb", "sandbox", "--host", "127.0.0.1", "--port", str(self.port),
               "--tokens-file", str(self.tokens_file), "--deliver-to", "127.0.0.1"]
        if self.state is not None:
            cmd += ["--state", str(self.state)]
        if self.retry_delays is not None:
            cmd += ["--retry-delays", ",".join(f"{d:g}" for d in self.retry_delays)]
        return cmd + self.extra_args

    def start(self, timeout: float = 30.0) -> SandboxProcess:
        """Spawn and wait until ``/_sandbox/health`` answers 200."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        for name in ("LINQ_INTEGRATION_TOKEN", "LINQ_API_BASE_URL"):
            env.pop(name, None)
        t0 = time.perf_counter()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log)
        if self.cpus and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.proc.pid, self.cpus)
        deadline = time.monotonic() + timeout
        while not http_ok(self.url, timeout=0.5):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the sandbox exited with {self.proc.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the sandbox did not answer within {timeout} s: {self.log_tail()}")
            time.sleep(0.01)
        self.started_in = time.perf_counter() - t0
        return self

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a crash or ``kill -9`` would do."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Ctrl-C (SIGINT), then SIGKILL if it does not exit within 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- the onboarding script


@dataclass
class ClassroomReport:
    partners: int
    wall_s: float = 0.0
    calls: int = 0
    errors: list[str] = field(default_factory=list)
    cross_visibility: list[str] = field(default_factory=list)
    expected_deliveries: int = 0
    exactly_once: int = 0
    duplicates: int = 0
    missing: int = 0
    unexpected: int = 0  # accepted by a receiver but not expected (wrong subscription, inactive, ...)
    unverified: int = 0  # accepted requests whose signature did not verify
    attempts: int = 0
    retries: int = 0
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)

    @property
    def exactly_once_pct(self) -> float:
        return 100.0 * self.exactly_once / self.expected_deliveries if self.expected_deliveries else 0.0

    @property
    def ok(self) -> bool:
        return (not self.errors and not self.cross_visibility and self.expected_deliveries > 0
                and self.exactly_once == self.expected_deliveries and not self.unexpected and not self.unverified)

    def percentile(self, q: float, op: str | None = None) -> float:
        values = sorted(v for k, vs in self.latencies_ms.items() if op in (None, k) for v in vs)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]

    def summary(self) -> str:
        ops = ", ".join(f"{op} {self.percentile(50, op):.1f}/{self.percentile(99, op):.1f}"
                        for op in sorted(self.latencies_ms))
        lines = [
            f"classroom: {self.partners} partners, {self.calls} client calls in {self.wall_s:.1f} s",
            f"  errors: {len(self.errors)}" + (f"  e.g. {self.errors[:3]}" if self.errors else ""),
            f"  cross-partner visibility: {len(self.cross_visibility)}"
            + (f"  e.g. {self.cross_visibility[:3]}" if self.cross_visibility else ""),
            f"  deliveries: {self.exactly_once}/{self.expected_deliveries} exactly once "
            f"({self.exactly_once_pct:.1f} %), {self.duplicates} duplicated, {self.missing} missing, "
            f"{self.unexpected} unexpected, {self.unverified} unverified; "
            f"{self.attempts} HTTP attempts of which {self.retries} retries",
            f"  latency ms p50 {self.percentile(50):.1f}, p99 {self.percentile(99):.1f}  (per call, p50/p99: {ops})",
            f"  => {'OK' if self.ok else 'NOT OK'}",
        ]
        return "\n".join(lines)


class _Partner:
    def __init__(self, index: int, token: str, url: str, shared: _Shared, *, lists: int, events: int,
                 fail_first: int, delivery_timeout: float) -> None:
        self.index = index
        self.url = url
        self.shared = shared
        self.lists = lists
        self.events = events
        self.fail_first = fail_first
        self.delivery_timeout = delivery_timeout
        self.secret = "whsec_" + secrets.token_hex(16)
        self.receiver = Receiver(secrets=self.secret)
        self.client = LinqClient(token=token, base_url=url, timeout=30.0)
        self.errors: list[str] = []
        self.cross: list[str] = []
        self.latencies: dict[str, list[float]] = {}
        self.sub_ids: dict[str, int] = {}
        self.expected: set[tuple[str, int]] = set()  # (event_id, subscription_id)
        self.calls = 0

    def _call(self, op: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.latencies.setdefault(op, []).append((time.perf_counter() - t0) * 1000)
            self.calls += 1

    def run(self, start: threading.Barrier) -> None:
        try:
            self.receiver.start()
            self.receiver.fail_next(self.fail_first, 503)
            start.wait(timeout=60)
            self._script()
        except threading.BrokenBarrierError:
            self.errors.append(f"partner {self.index}: the start barrier broke")
        except LinqError as exc:
            self.errors.append(f"partner {self.index}: {type(exc).__name__}: {exc}"[:300])
        except Exception as exc:  # a bug in this script still counts, with its reason
            self.errors.append(f"partner {self.index}: unexpected {type(exc).__name__}: {exc}"[:300])
        finally:
            self.client.close()

    def _script(self) -> None:
        c = self.client
        events_of: dict[int, set[str]] = {}
        for name, events in SUBSCRIPTIONS:
            sub = self._call("create", c.create_subscription, f"{self.receiver.url}?sub={name}", list(events),
                             secret=self.secret)
            self.sub_ids[name] = sub.id
            events_of[sub.id] = set(events)
        mine = set(self.sub_ids.values())
        self.shared.publish(self.index, mine)

        for _ in range(self.lists):
            seen = {s.id for s in self._call("list", c.list_subscriptions)}
            if seen - mine:
                self.cross.append(f"partner {self.index} listed foreign ids {sorted(seen - mine)[:5]}")
            if mine - seen:
                self.errors.append(f"partner {self.index}: its own ids {sorted(mine - seen)} missing from a list")
        for foreign in self.shared.foreign_ids(self.index, 3):
            try:
                self._call("get", c.get_subscription, foreign)
            except NotFoundError:
                continue
            self.cross.append(f"partner {self.index} could read subscription {foreign} of another partner")
        got = self._call("get", c.get_subscription, self.sub_ids["a"])
        if got.id != self.sub_ids["a"]:
            self.errors.append(f"partner {self.index}: get returned id {got.id}, not {self.sub_ids['a']}")

        name, new_events = UPDATE
        updated = self._call("update", c.update_subscription, self.sub_ids[name], events=list(new_events))
        if set(updated.events) != set(new_events) or not updated.secret_configured:
            self.errors.append(f"partner {self.index}: update returned events {updated.events}")
        events_of[self.sub_ids[name]] = set(new_events)

        for i in range(self.events):
            event_type = EVENT_CYCLE[i % len(EVENT_CYCLE)]
            emitted = self._call("trigger", c.sandbox_route, "POST", "/_sandbox/events", {"event_type": event_type})
            targets = [sid for sid, evs in events_of.items() if event_type in evs]
            if emitted.get("deliveries_queued") != len(targets):
                self.errors.append(f"partner {self.index}: {event_type} queued {emitted.get('deliveries_queued')}"
                                   f" deliveries, expected {len(targets)}")
            self.expected |= {(emitted["event_id"], sid) for sid in targets}

        self._wait_for_deliveries()
        for sid in self.sub_ids.values():
            self._call("deactivate", c.update_subscription, sid, active=False)
        for sid in self.sub_ids.values():
            self._call("delete", c.delete_subscription, sid)
        left = self._call("list", c.list_subscriptions)
        if left:
            self.errors.append(f"partner {self.index}: {len(left)} subscription(s) left after deleting all")

    def _wait_for_deliveries(self) -> None:
        """Poll the sandbox's delivery log until every expected (event, subscription) succeeded."""
        deadline = time.monotonic() + self.delivery_timeout
        while True:
            log = self._call("deliveries", self.client.sandbox_route, "GET", "/_sandbox/deliveries")["deliveries"]
            done = {(d["event_id"], d["subscription_id"]) for d in log if d["ok"]}
            if self.expected <= done:
                return
            if time.monotonic() > deadline:
                self.errors.append(f"partner {self.index}: {len(self.expected - done)} deliveries not done "
                                   f"after {self.delivery_timeout:g} s")
                return
            time.sleep(0.05)


class _Shared:
    """Which subscription ids each partner owns, for the cross-partner checks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: dict[int, set[int]] = {}

    def publish(self, partner: int, ids: set[int]) -> None:
        with self._lock:
            self._ids[partner] = set(ids)

    def foreign_ids(self, partner: int, n: int) -> list[int]:
        with self._lock:
            others = [min(ids) for p, ids in sorted(self._ids.items()) if p != partner and ids]
        return others[partner % max(1, len(others)):][:n] or others[:n]

    def owner_of(self, sub_id: int) -> int | None:
        with self._lock:
            return next((p for p, ids in self._ids.items() if sub_id in ids), None)


def run_classroom(partners: int = 30, *, lists: int = 20, events: int = 10, fail_first: int = 2,
                  state: str | Path | None = None, retry_delays: Sequence[float] = FAST_RETRY_DELAYS,
                  delivery_timeout: float = 60.0) -> ClassroomReport:
    """Start a sandbox in another process, run ``partners`` onboardings at once, and report."""
    tokens = [f"classroom-{i:02d}-{secrets.token_hex(8)}" for i in range(partners)]
    report = ClassroomReport(partners=partners)
    with SandboxProcess(tokens, state=state, retry_delays=retry_delays) as sandbox:
        shared = _Shared()
        crowd = [_Partner(i, tok, sandbox.url, shared, lists=lists, events=events, fail_first=fail_first,
                          delivery_timeout=delivery_timeout) for i, tok in enumerate(tokens)]
        start = threading.Barrier(partners + 1)
        threads = [threading.Thread(target=p.run, args=(start,), name=f"partner-{p.index}") for p in crowd]
        for t in threads:
            t.start()
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait(timeout=60)
        t0 = time.perf_counter()
        for t in threads:
            t.join(timeout=delivery_timeout + 120)
        report.wall_s = time.perf_counter() - t0
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            report.errors.append(f"{len(stuck)} partner(s) still running after the deadline: {stuck[:5]}")
        attempts = []
        for p, tok in zip(crowd, tokens, strict=True):
            p.receiver.stop()
            report.errors += p.errors
            report.cross_visibility += p.cross
            report.calls += p.calls
            for op, values in p.latencies.items():
                report.latencies_ms.setdefault(op, []).extend(values)
            _score_receiver(report, p, shared)
            with LinqClient(token=tok, base_url=sandbox.url) as c:
                attempts += c.sandbox_route("GET", "/_sandbox/deliveries")["deliveries"]
        report.attempts = len(attempts)
        report.retries = sum(1 for a in attempts if a["attempt"] > 1)
    return report


def _score_receiver(report: ClassroomReport, p: _Partner, shared: _Shared) -> None:
    """Compare what the partner's receiver accepted with what it should have, pair by pair."""
    accepted: Counter[tuple[str, int]] = Counter()
    for r in p.receiver.requests:
        if not 200 <= r["status"] < 300:
            continue
        if r["verified"] is not True:
            report.unverified += 1
        accepted[(r["event_id"], r["subscription_id"])] += 1
    mine = set(p.sub_ids.values())
    report.expected_deliveries += len(p.expected)
    for pair in p.expected:
        n = accepted.get(pair, 0)
        report.exactly_once += n == 1
        report.duplicates += n > 1
        report.missing += n == 0
    for (event_id, sid), _n in accepted.items():
        if (event_id, sid) in p.expected:
            continue
        report.unexpected += 1
        if sid not in mine:
            report.cross_visibility.append(f"partner {p.index}'s receiver got a delivery for subscription {sid} "
                                           f"(partner {shared.owner_of(sid)})")


# --------------------------------------------------------------------------- the relay run


@dataclass
class RelayReport:
    """Learners listening through the relay (``linq-nb listen`` in a process each), beside direct delivery."""

    partners: int
    wall_s: float = 0.0
    errors: list[str] = field(default_factory=list)
    cross: int = 0
    expected: int = 0
    exactly_once: int = 0
    duplicates: int = 0
    missing: int = 0
    unverified: int = 0
    attempts: int = 0
    retries: int = 0
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: {"relay": [], "direct": []})

    def percentile(self, q: float, via: str) -> float:
        values = sorted(self.latency_ms[via])
        return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))] if values else float("nan")

    @property
    def exactly_once_pct(self) -> float:
        return 100.0 * self.exactly_once / self.expected if self.expected else 0.0

    @property
    def ok(self) -> bool:
        return not self.errors and not self.cross and self.expected > 0 and self.exactly_once == self.expected \
            and not self.unverified

    def summary(self) -> str:
        lat = "; ".join(f"{via} p50 {self.percentile(50, via):.1f} ms, p99 {self.percentile(99, via):.1f} ms"
                        for via in ("relay", "direct"))
        return "\n".join([
            f"relay classroom: {self.partners} learners, each `linq-nb listen` in its own process, {self.wall_s:.1f} s",
            f"  errors: {len(self.errors)}" + (f"  e.g. {self.errors[:3]}" if self.errors else ""),
            f"  cross-partner deliveries: {self.cross}",
            f"  deliveries: {self.exactly_once}/{self.expected} exactly once ({self.exactly_once_pct:.1f} %), "
            f"{self.duplicates} duplicated, {self.missing} missing, {self.unverified} unverified; "
            f"{self.attempts} attempts of which {self.retries} retries",
            f"  trigger -> local receiver: {lat}",
            f"  => {'OK' if self.ok else 'NOT OK'}",
        ])


def run_relay_classroom(partners: int = 30, *, events: int = 10, fail_first: int = 2, pace: float = 1.0,
                        retry_delays: Sequence[float] = FAST_RETRY_DELAYS, timeout: float = 120.0) -> RelayReport:
    """Each learner: a receiver, a direct subscription to it and ``linq-nb listen`` (its own process) forwarding
    the relay's deliveries to it; every event goes both ways, so the two latencies come from the same run.
    Each learner triggers one event every ``pace`` seconds (30 learners: 30 events, 60 deliveries a second).

    The sandbox is shared (several tokens) and allows 127.0.0.1 (``--deliver-to``) for the direct half only.
    """
    from linq_nb.receiver import Receiver

    tokens = [f"relay-{i:02d}-{secrets.token_hex(8)}" for i in range(partners)]
    report = RelayReport(partners=partners)
    work = tempfile.TemporaryDirectory(prefix="linq-nb-relay-")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               PYTHONUNBUFFERED="1")
    procs: list[subprocess.Popen[str]] = []
    receivers: list[Receiver] = []
    clients: list[LinqClient] = []
    with SandboxProcess(tokens, retry_delays=retry_delays) as sandbox, work:
        try:
            subs: list[dict[str, int]] = []
            for i, token in enumerate(tokens):
                secret = "whsec_" + secrets.token_hex(16)
                (Path(work.name) / f"t{i}").write_text(token)
                (Path(work.name) / f"s{i}").write_text(secret)
                receiver = Receiver(secrets=secret).start()
                receivers.append(receiver)
                client = LinqClient(token=token, base_url=sandbox.url, timeout=30.0)
                clients.append(client)
                direct = client.create_subscription(receiver.url + "?via=direct", ["message.received"],
                                                    secret=secret)
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "linq_nb", "listen", "--forward-to", receiver.url + "?via=relay",
                     "--url", sandbox.url, "--token-file", str(Path(work.name) / f"t{i}"), "--secret-file",
                     str(Path(work.name) / f"s{i}"), "--events", "message.received"],
                    cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
                subs.append({"direct": direct.id})
            for i, proc in enumerate(procs):
                assert proc.stdout is not None
                line = proc.stdout.readline()
                if not line.startswith("Listening: subscription "):
                    report.errors.append(f"learner {i}: linq-nb listen did not start ({line.strip()[:200]})")
                    continue
                subs[i]["relay"] = int(line.split()[2])
            for receiver in receivers:
                receiver.fail_next(fail_first, 503)
            triggered: list[dict[str, float]] = [{} for _ in tokens]
            t0 = time.perf_counter()

            def learner(i: int) -> None:
                time.sleep(pace * i / partners)  # staggered: a room clicks at its own pace, not in lockstep
                for _ in range(events):
                    at = time.time()
                    emitted = clients[i].sandbox_route("POST", "/_sandbox/events", {"event_type": "message.received"})
                    triggered[i][emitted["event_id"]] = at
                    time.sleep(pace)

            threads = [threading.Thread(target=learner, args=(i,)) for i in range(partners)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=timeout)
            deadline = time.monotonic() + timeout
            for i, receiver in enumerate(receivers):
                want = len(triggered[i]) * len(subs[i])
                while receiver.counts()["events"] < want and time.monotonic() < deadline:
                    # both subscriptions deliver the same event_id: the receiver keeps one per id, so count pairs
                    pairs = {(r["event_id"], r["subscription_id"]) for r in receiver.requests if r["status"] == 200}
                    if len(pairs) >= want:
                        break
                    time.sleep(0.05)
            report.wall_s = time.perf_counter() - t0
            for i, receiver in enumerate(receivers):
                _score_relay(report, i, receiver, subs[i], triggered[i])
                log = clients[i].sandbox_route("GET", "/_sandbox/deliveries")["deliveries"]
                report.attempts += len(log)
                report.retries += sum(1 for a in log if a["attempt"] > 1)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for i, proc in enumerate(procs):
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    report.errors.append(f"learner {i}: linq-nb listen did not exit on SIGTERM")
            for i, client in enumerate(clients):
                left = [s.id for s in client.list_subscriptions()]
                direct_only = [subs[i]["direct"]] if i < len(subs) else []
                if left != direct_only:
                    report.errors.append(f"learner {i}: subscriptions {left} left after linq-nb listen exited")
                client.close()
            for receiver in receivers:
                receiver.stop()
    return report


def _score_relay(report: RelayReport, i: int, receiver: Any, subs: dict[str, int],
                 triggered: dict[str, float]) -> None:
    by_sub = {sid: via for via, sid in subs.items()}
    accepted: Counter[tuple[str, int]] = Counter()
    first_seen: dict[tuple[str, int], float] = {}
    for r in receiver.requests:
        key = (r["event_id"], r["subscription_id"])
        if r["subscription_id"] not in by_sub or r["event_id"] not in triggered:
            report.cross += 1
            continue
        first_seen.setdefault(key, r["received_at"].timestamp())
        if r["status"] == 200 or (r["duplicate"] and 200 <= r["status"] < 300):
            accepted[key] += 1
            report.unverified += r["verified"] is not True
    for event_id, at in triggered.items():
        for via, sid in subs.items():
            report.expected += 1
            n = accepted.get((event_id, sid), 0)
            report.exactly_once += n == 1
            report.duplicates += n > 1
            report.missing += n == 0
            if (event_id, sid) in first_seen:
                report.latency_ms[via].append((first_seen[(event_id, sid)] - at) * 1000)


# --------------------------------------------------------------------------- bench interface and CLI


def run(partners: int = 30) -> list[dict[str, Any]]:
    """Rows for ``bench/run_all.py``: the classroom targets (no baseline: they are absolute)."""
    from run_all import row

    rep = run_classroom(partners)
    print(rep.summary(), file=sys.stderr)
    n = f"classroom ({partners} partners)"
    return [
        row(f"{n}: errors", len(rep.errors), None, "count", "0", not rep.errors),
        row(f"{n}: cross-partner visibility", len(rep.cross_visibility), None, "count", "0",
            not rep.cross_visibility),
        row(f"{n}: delivered exactly once ({rep.expected_deliveries} expected, {rep.retries} retries)",
            round(rep.exactly_once_pct, 1), None, "%", "100 %",
            rep.exactly_once == rep.expected_deliveries and not rep.unexpected),
        row(f"{n}: client call latency p50", rep.percentile(50), None, "ms", "report", None),
        row(f"{n}: client call latency p99", rep.percentile(99), None, "ms", "report", None),
        row(f"{n}: wall time ({rep.calls} calls)", rep.wall_s, None, "s", "report", None),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partners", type=int, default=30)
    parser.add_argument("--lists", type=int, default=20, help="list calls per partner")
    parser.add_argument("--events", type=int, default=10, help="events each partner triggers")
    parser.add_argument("--fail-first", type=int, default=2, help="deliveries each receiver fails first (503)")
    parser.add_argument("--state", help="SQLite state file for the sandbox (default: in memory)")
    parser.add_argument("--relay", action="store_true",
                        help="the relay run: each learner's `linq-nb listen` beside direct delivery")
    args = parser.parse_args(argv)
    if args.relay:
        relay = run_relay_classroom(args.partners, events=args.events, fail_first=args.fail_first)
        print(relay.summary())
        return 0 if relay.ok else 1
    rep = run_classroom(args.partners, lists=args.lists, events=args.events, fail_first=args.fail_first,
                        state=args.state)
    print(rep.summary())
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
