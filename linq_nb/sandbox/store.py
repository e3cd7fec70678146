"""The sandbox's state in SQLite: subscriptions, pending deliveries and the attempt log.

One store serves both modes: ``":memory:"`` by default, or a file for a sandbox
that must survive a restart. Every change is committed before the HTTP answer
that acknowledges it, so a sandbox killed with SIGKILL and restarted on the same
file has everything it acknowledged (WAL journal; a process crash loses nothing
committed). Partners are kept apart by a hash of their token: the token itself
is never written down.
"""

from __future__ import annotations

import hashlib
import json
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

__all__ = ["Store", "Job", "partner_key", "now_iso"]

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
"""

_PUBLIC_COLUMNS = ("id", "webhook_url", "version", "events", "active", "secret_configured",
                   "last_delivered_at", "delivery_attempts", "created_at", "updated_at")


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


def _public(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "webhook_url": row["webhook_url"],
        "version": row["version"],
        "events": json.loads(row["events"]),
        "active": bool(row["active"]),
        "secret_configured": bool(row["secret"]),
        "last_delivered_at": row["last_delivered_at"],
        "delivery_attempts": row["delivery_attempts"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


class Store:
    """Thread-safe access to the sandbox state. ``path=None`` keeps it in memory."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else ":memory:"
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

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
        return [_public(r) for r in self._query(
            "SELECT * FROM subscriptions WHERE partner = ? ORDER BY id", (partner,))]

    def get(self, partner: str, sub_id: int) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM subscriptions WHERE partner = ? AND id = ?", (partner, sub_id))
        return _public(rows[0]) if rows else None

    def create(self, partner: str, body: Mapping[str, Any]) -> dict[str, Any]:
        stamp = now_iso()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO subscriptions (partner, webhook_url, version, events, active, secret, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (partner, body["webhook_url"], body["version"], json.dumps(list(body["events"])),
                 int(body.get("active", True)), body.get("secret") or None, stamp, stamp),
            )
            row = db.execute("SELECT * FROM subscriptions WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _public(row)

    def update(self, partner: str, sub_id: int, body: Mapping[str, Any]) -> dict[str, Any] | None:
        with self._tx() as db:
            row = db.execute("SELECT secret FROM subscriptions WHERE partner = ? AND id = ?",
                             (partner, sub_id)).fetchone()
            if row is None:
                return None
            secret = (body.get("secret") or None) if "secret" in body else row["secret"]
            db.execute(
                "UPDATE subscriptions SET webhook_url = ?, version = ?, events = ?, active = ?, secret = ?,"
                " updated_at = ? WHERE id = ?",
                (body["webhook_url"], body["version"], json.dumps(list(body["events"])),
                 int(body.get("active", True)), secret, now_iso(), sub_id),
            )
            new = db.execute("SELECT * FROM subscriptions WHERE id = ?", (sub_id,)).fetchone()
        return _public(new)

    def delete(self, partner: str, sub_id: int) -> bool:
        with self._tx() as db:
            cur = db.execute("DELETE FROM subscriptions WHERE partner = ? AND id = ?", (partner, sub_id))
            db.execute("DELETE FROM jobs WHERE subscription_id = ?", (sub_id,))
        return cur.rowcount > 0

    # -- deliveries ----------------------------------------------------------------
    def enqueue(self, partner: str, event_type: str, event_id: str, body: bytes) -> int:
        """Queue ``body`` for every active subscription of ``partner`` to ``event_type``."""
        when = time.time()
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, events FROM subscriptions WHERE partner = ? AND active = 1 ORDER BY id", (partner,)
            ).fetchall()
            targets = [r["id"] for r in rows if event_type in json.loads(r["events"])]
            db.executemany(
                "INSERT INTO jobs (partner, subscription_id, event_id, event_type, body, next_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(partner, sid, event_id, event_type, body, when) for sid in targets],
            )
        return len(targets)

    def due_jobs(self, now: float, exclude: Sequence[int], limit: int) -> tuple[list[Job], float | None]:
        """Up to ``limit`` jobs due by ``now`` (not in ``exclude``), and when the next other one is due."""
        skip = f"WHERE id NOT IN ({','.join('?' * len(exclude))})" if exclude else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM jobs {skip} ORDER BY next_at, id LIMIT ?", (*exclude, limit + 1)
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

    def record_attempt(self, job: Job, *, status_code: int | None, error: str | None, ok: bool,
                       started_at: str, duration_ms: float, retry_at: float | None) -> None:
        """Log one HTTP attempt, move the counters, and reschedule or finish the job, atomically."""
        attempt = job.attempts + 1
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
                (int(ok), now_iso(), job.subscription_id),
            )
            if retry_at is None:
                db.execute("DELETE FROM jobs WHERE id = ?", (job.id,))
            else:
                db.execute("UPDATE jobs SET attempts = ?, next_at = ? WHERE id = ?", (attempt, retry_at, job.id))

    def attempts(self, partner: str | None = None) -> list[dict[str, Any]]:
        if partner is None:
            rows = self._query("SELECT * FROM attempts ORDER BY id")
        else:
            rows = self._query("SELECT * FROM attempts WHERE partner = ? ORDER BY id", (partner,))
        return [
            {
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
            for r in rows
        ]
