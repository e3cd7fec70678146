"""The sandbox's state in SQLite: subscriptions, pending deliveries and the attempt log.

One store serves both modes: ``":memory:"`` by default, or a file for a sandbox
that must survive a restart. Every change is committed before the HTTP answer
that acknowledges it, so a sandbox killed with SIGKILL and restarted on the same
file has everything it acknowledged (WAL journal; a process crash loses nothing
committed). Partners are kept apart by a hash of their token: the token itself
is never written down.

A state file holds webhook secrets: it and its journals are readable by the owner
only, and one process at a time may use it (a lock file beside it names the holder).
An event's body is stored once, however many subscriptions it goes to; the attempt
log keeps the newest ``max_attempts`` attempts of each partner (the counters on the
subscriptions stay exact).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..models import format_datetime

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: no lock there
    fcntl = None  # type: ignore[assignment]

__all__ = ["Store", "Job", "partner_key", "now_iso", "LimitReached", "StateInUse", "DEFAULT_MAX_ATTEMPTS"]

#: Attempts kept in the log per partner.
DEFAULT_MAX_ATTEMPTS = 10_000


class LimitReached(ValueError):
    """A partner is at one of the operator's caps; the message says which and what to do."""


class StateInUse(RuntimeError):
    """Another process has this state file open."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    partner           TEXT    NOT NULL,
    webhook_url       TEXT    NOT NULL,
    version           INTEGER NOT NULL,
    events            TEXT    NOT NULL,
    active            INTEGER NOT NULL,
    secret            TEXT,
    delivery_attempts INTEGER NOT NULL DEFAULT 0,
    last_delivered_at TEXT,
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS subscriptions_partner ON subscriptions (partner);
CREATE TABLE IF NOT EXISTS jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    partner         TEXT    NOT NULL,
    subscription_id INTEGER NOT NULL,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    body            BLOB    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at         REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_next_at ON jobs (next_at);
CREATE INDEX IF NOT EXISTS jobs_event ON jobs (event_id);
CREATE TABLE IF NOT EXISTS attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    partner         TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    subscription_id INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    status_code     INTEGER,
    error           TEXT,
    ok              INTEGER NOT NULL,
    started_at      TEXT    NOT NULL,
    duration_ms     REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_partner ON attempts (partner);
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    body     BLOB NOT NULL
);
"""
# jobs.body is empty for a job whose body is in events (all new ones); older state files had it inline.

# The API's subscription object, column by column (see _public). Events are stored comma-joined:
# validated event names never contain a comma.
_PUBLIC_COLUMNS = ("id, webhook_url, version, events, active, secret IS NOT NULL, last_delivered_at,"
                   " delivery_attempts, created_at, updated_at")


def partner_key(token: str) -> str:
    """A stable, non-reversible key for a token's partner (the token is never stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:24]


def now_iso() -> str:
    return format_datetime(datetime.now(timezone.utc)) or ""


@dataclass(frozen=True)
class Job:
    """One pending delivery of one event to one subscription."""

    id: int
    partner: str
    subscription_id: int
    event_id: str
    event_type: str
    body: bytes
    attempts: int  # attempts made so far


def _public(row: Sequence[Any]) -> dict[str, Any]:
    """A row of ``_PUBLIC_COLUMNS`` as the API's subscription object."""
    return {
        "id": row[0],
        "webhook_url": row[1],
        "version": row[2],
        "events": row[3].split(",") if row[3] else [],
        "active": bool(row[4]),
        "secret_configured": bool(row[5]),
        "last_delivered_at": row[6],
        "delivery_attempts": row[7],
        "created_at": row[8],
        "updated_at": row[9],
    }


def _copy(sub: dict[str, Any]) -> dict[str, Any]:
    return {**sub, "events": list(sub["events"])}


class Store:
    """Thread-safe access to the sandbox state. ``path=None`` keeps it in memory."""

    def __init__(self, path: str | Path | None = None, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 busy_timeout: float = 2.0) -> None:
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(f"max_attempts must be an integer >= 1, not {max_attempts!r}")
        self.path = str(path) if path is not None else ":memory:"
        self.max_attempts = max_attempts
        self._lock = threading.RLock()
        self._lock_fd: int | None = None
        if self.path != ":memory:":
            self._claim(self.path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                       timeout=busy_timeout)
            self._db.row_factory = sqlite3.Row
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except BaseException:
            self._release()
            raise
        self._attempt_counts: dict[str, int] = {
            row[0]: row[1] for row in self._db.execute("SELECT partner, COUNT(*) FROM attempts GROUP BY partner")}
        # SQLite is the record; this is a read model of it, kept in step by every write below, so that
        # list and get (most of the traffic) never touch the database. partner -> id -> API object.
        self._subs: dict[str, dict[int, dict[str, Any]]] = {}
        for row in self._db.execute(f"SELECT partner, {_PUBLIC_COLUMNS} FROM subscriptions ORDER BY id"):
            self._subs.setdefault(row[0], {})[row[1]] = _public(tuple(row)[1:])

    def _claim(self, path: str) -> None:
        """Owner-only files, and this process alone on them (StateInUse names the one that has them)."""
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        for name in (path, path + "-wal", path + "-shm"):  # SQLite gives new journals the file's mode
            if os.path.exists(name):
                os.chmod(name, 0o600)
        if fcntl is None:  # pragma: no cover
            return
        fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 100).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StateInUse(f"the state file {path} is in use by process {holder}; stop that sandbox first, "
                             "or give this one another --state file") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing drops the lock
            self._lock_fd = None

    def close(self) -> None:
        with self._lock:
            self._db.close()
            self._release()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction, serialised with every other access."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- subscriptions -------------------------------------------------------------
    def subscriptions(self, partner: str) -> list[dict[str, Any]]:
        with self._lock:
            return [_copy(sub) for sub in self._subs.get(partner, {}).values()]

    def get(self, partner: str, sub_id: int) -> dict[str, Any] | None:
        with self._lock:
            sub = self._subs.get(partner, {}).get(sub_id)
            return _copy(sub) if sub is not None else None

    # Each write is committed before it returns (one statement, or one transaction), then mirrored.
    def create(self, partner: str, body: Mapping[str, Any], *, max_per_partner: int | None = None) -> dict[str, Any]:
        """Store a new subscription; LimitReached if the partner has ``max_per_partner`` already."""
        stamp = now_iso()
        secret = body.get("secret") or None
        with self._lock:
            if max_per_partner is not None and len(self._subs.get(partner, {})) >= max_per_partner:
                raise LimitReached(f"this partner has {max_per_partner} subscriptions, the most this sandbox "
                                   "allows; delete some before creating more")
            cur = self._db.execute(
                "INSERT INTO subscriptions (partner, webhook_url, version, events, active, secret, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (partner, body["webhook_url"], body["version"], ",".join(body["events"]),
                 int(body.get("active", True)), secret, stamp, stamp),
            )
            sub = _public((cur.lastrowid, body["webhook_url"], body["version"], ",".join(body["events"]),
                           body.get("active", True), secret is not None, None, 0, stamp, stamp))
            self._subs.setdefault(partner, {})[sub["id"]] = sub
            return _copy(sub)

    def update(self, partner: str, sub_id: int, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """Replace the fields; a body without ``secret`` keeps the stored one. None if no such id."""
        stamp = now_iso()
        secret = body.get("secret") or None
        with self._lock:
            sub = self._subs.get(partner, {}).get(sub_id)
            if sub is None:
                return None
            self._db.execute(
                "UPDATE subscriptions SET webhook_url = ?, version = ?, events = ?, active = ?,"
                " secret = CASE WHEN ? THEN ? ELSE secret END, updated_at = ? WHERE id = ?",
                (body["webhook_url"], body["version"], ",".join(body["events"]), int(body.get("active", True)),
                 "secret" in body, secret, stamp, sub_id),
            )
            sub.update(webhook_url=body["webhook_url"], version=body["version"], events=list(body["events"]),
                       active=bool(body.get("active", True)), updated_at=stamp)
            if "secret" in body:
                sub["secret_configured"] = secret is not None
            return _copy(sub)

    def delete(self, partner: str, sub_id: int) -> bool:
        with self._lock:
            if self._subs.get(partner, {}).pop(sub_id, None) is None:
                return False
            with self._tx() as db:
                db.execute("DELETE FROM subscriptions WHERE id = ?", (sub_id,))
                db.execute("DELETE FROM jobs WHERE subscription_id = ?", (sub_id,))
                db.execute("DELETE FROM events WHERE event_id NOT IN (SELECT event_id FROM jobs)")
        return True

    # -- deliveries ----------------------------------------------------------------
    def enqueue(self, partner: str, event_type: str, event_id: str, body: bytes) -> int:
        """Queue ``body`` for every active subscription of ``partner`` to ``event_type``."""
        when = time.time()
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, events FROM subscriptions WHERE partner = ? AND active = 1 ORDER BY id", (partner,)
            ).fetchall()
            targets = [r["id"] for r in rows if event_type in r["events"].split(",")]
            if not targets:
                return 0
            db.execute("INSERT OR REPLACE INTO events (event_id, body) VALUES (?, ?)", (event_id, body))
            db.executemany(  # the body once, in events; each job refers to it
                "INSERT INTO jobs (partner, subscription_id, event_id, event_type, body, next_at)"
                " VALUES (?, ?, ?, ?, x'', ?)",
                [(partner, sid, event_id, event_type, when) for sid in targets],
            )
        return len(targets)

    def body(self, job: Job) -> bytes:
        """The event body ``job`` delivers (empty if the event is gone)."""
        if job.body:
            return job.body
        rows = self._query("SELECT body FROM events WHERE event_id = ?", (job.event_id,))
        return bytes(rows[0][0]) if rows else b""

    @staticmethod
    def _forget_event(db: sqlite3.Connection, event_id: str) -> None:
        """Drop an event's body once no job needs it."""
        db.execute("DELETE FROM events WHERE event_id = ? AND NOT EXISTS (SELECT 1 FROM jobs WHERE event_id = ?)",
                   (event_id, event_id))

    def due_jobs(self, now: float, exclude: Sequence[int], limit: int, *, skip_partners: Sequence[str] = ()
                 ) -> tuple[list[Job], float | None]:
        """Up to ``limit`` jobs due by ``now`` (not in ``exclude``, not of ``skip_partners``), and when the
        next other one is due. Bodies are not loaded (see :meth:`body`)."""
        where = []
        if exclude:
            where.append(f"id NOT IN ({','.join('?' * len(exclude))})")
        if skip_partners:
            where.append(f"partner NOT IN ({','.join('?' * len(skip_partners))})")
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, partner, subscription_id, event_id, event_type, body, attempts, next_at FROM jobs"
                f" {clause} ORDER BY next_at, id LIMIT ?", (*exclude, *skip_partners, limit + 1)
            ).fetchall()
        due = [r for r in rows if r["next_at"] <= now][:limit]
        later = [r["next_at"] for r in rows if r["next_at"] > now]
        jobs = [Job(r["id"], r["partner"], r["subscription_id"], r["event_id"], r["event_type"], bytes(r["body"]),
                    r["attempts"]) for r in due]
        return jobs, (min(later) if later else None)

    def pending_count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM jobs")[0][0])

    def target(self, job: Job) -> tuple[str, str | None] | None:
        """(webhook_url, secret) to deliver ``job`` to now, or None if it should be dropped."""
        rows = self._query("SELECT webhook_url, secret, active FROM subscriptions WHERE id = ?",
                           (job.subscription_id,))
        if not rows or not rows[0]["active"]:
            return None
        return rows[0]["webhook_url"], rows[0]["secret"]

    def drop(self, job: Job) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job.id,))
            self._forget_event(db, job.event_id)

    def record_attempt(self, job: Job, *, status_code: int | None, error: str | None, ok: bool,
                       started_at: str, duration_ms: float, retry_at: float | None) -> None:
        """Log one HTTP attempt, move the counters, and reschedule or finish the job, atomically."""
        attempt = job.attempts + 1
        stamp = now_iso()
        with self._tx() as db:
            db.execute(
                "INSERT INTO attempts (partner, event_id, event_type, subscription_id, attempt, status_code, error,"
                " ok, started_at, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job.partner, job.event_id, job.event_type, job.subscription_id, attempt, status_code, error,
                 int(ok), started_at, duration_ms),
            )
            db.execute(
                "UPDATE subscriptions SET delivery_attempts = delivery_attempts + 1,"
                " last_delivered_at = CASE WHEN ? THEN ? ELSE last_delivered_at END WHERE id = ?",
                (int(ok), stamp, job.subscription_id),
            )
            if retry_at is None:
                db.execute("DELETE FROM jobs WHERE id = ?", (job.id,))
                self._forget_event(db, job.event_id)
            else:
                db.execute("UPDATE jobs SET attempts = ?, next_at = ? WHERE id = ?", (attempt, retry_at, job.id))
            kept = self._attempt_counts.get(job.partner, 0) + 1
            if kept > self.max_attempts:  # retention: the oldest go; the counters above stay exact
                db.execute("DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE partner = ?"
                           " ORDER BY id LIMIT ?)", (job.partner, kept - self.max_attempts))
                kept = self.max_attempts
            self._attempt_counts[job.partner] = kept
            sub = self._subs.get(job.partner, {}).get(job.subscription_id)
            if sub is not None:
                sub["delivery_attempts"] += 1
                if ok:
                    sub["last_delivered_at"] = stamp

    def attempts(self, partner: str | None = None) -> list[dict[str, Any]]:
        """Every kept attempt (of one partner, or all), oldest first."""
        if partner is None:
            rows = self._query("SELECT * FROM attempts ORDER BY id")
        else:
            rows = self._query("SELECT * FROM attempts WHERE partner = ? ORDER BY id", (partner,))
        return [_attempt(r) for r in rows]

    def attempts_page(self, partner: str, *, limit: int, cursor: int | None = None,
                      subscription_id: int | None = None, event_id: str | None = None
                      ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` attempts after ``cursor``, oldest first, and the cursor of the next page (or None)."""
        sql, args = "SELECT * FROM attempts WHERE partner = ? AND id > ?", [partner, cursor or 0]
        if subscription_id is not None:
            sql, args = sql + " AND subscription_id = ?", [*args, subscription_id]
        if event_id is not None:
            sql, args = sql + " AND event_id = ?", [*args, event_id]
        rows = self._query(sql + " ORDER BY id LIMIT ?", [*args, limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        return [_attempt(r) for r in rows], (str(rows[-1]["id"]) if more else None)


def _attempt(r: sqlite3.Row) -> dict[str, Any]:
    return {
        "event_id": r["event_id"],
        "event_type": r["event_type"],
        "subscription_id": r["subscription_id"],
        "attempt": r["attempt"],
        "status_code": r["status_code"],
        "error": r["error"],
        "ok": bool(r["ok"]),
        "started_at": r["started_at"],
        "duration_ms": r["duration_ms"],
    }
