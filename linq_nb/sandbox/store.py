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
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import wire
from ..models import format_datetime

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows: no lock there
    fcntl = None  # type: ignore[assignment]

__all__ = ["Store", "Job", "Target", "partner_key", "now_iso", "LimitReached", "Conflict", "StateInUse",
           "DEFAULT_MAX_ATTEMPTS"]

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
# Columns added for v3 (issue 9): (table, column, declaration). Added to older state files on open.
_ADDED_COLUMNS = (
    ("subscriptions", "api", "TEXT NOT NULL DEFAULT 'v2'"),
    ("subscriptions", "uid", "TEXT"),                 # v3's public id (a UUID); v2's is the integer id
    ("subscriptions", "phone_numbers", "TEXT"),        # comma-joined E.164 numbers, or NULL: every line
    ("subscriptions", "routing_key_header", "TEXT"),
    ("subscriptions", "routing_id_header", "TEXT"),
    ("attempts", "subscription_ref", "TEXT"),          # the subscription's public id as text, for v3's UUIDs
)
# jobs.body is empty for a job whose body is in events (all new ones); older state files had it inline.

# A subscription's record, column by column (see _record). Events and phone numbers are stored comma-joined:
# validated event names and E.164 numbers never contain a comma.
_RECORD_COLUMNS = ("id, api, uid, webhook_url, version, events, active, secret IS NOT NULL, last_delivered_at,"
                   " delivery_attempts, created_at, updated_at, phone_numbers, routing_key_header, routing_id_header")


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


def _split(text: str | None) -> list[str]:
    return text.split(",") if text else []


def _record(row: Sequence[Any]) -> dict[str, Any]:
    """A row of ``_RECORD_COLUMNS`` as a version-neutral record (see :mod:`linq_nb.wire.v2`)."""
    return {
        "key": row[0],
        "api": row[1],
        "id": row[2] if row[1] != "v2" else row[0],
        "url": row[3],
        "version": row[4],
        "events": _split(row[5]),
        "active": bool(row[6]),
        "has_secret": bool(row[7]),
        "last_delivered_at": row[8],
        "delivery_attempts": row[9],
        "created_at": row[10],
        "updated_at": row[11],
        "phone_numbers": _split(row[12]) or None,
        "routing_key_header": row[13],
        "routing_id_header": row[14],
    }


class Conflict(ValueError):
    """A v3 ``target_url`` is in use by another subscription of the partner; the message names it."""


@dataclass(frozen=True)
class Target:
    """Where and how to deliver a job now."""

    url: str
    secret: str | None
    api: str
    subscription_id: object  # the public id: an int for v2, a UUID string for v3
    routing_key_header: str | None
    routing_id_header: str | None


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
            self._migrate()
        except BaseException:
            self._release()
            raise
        self._attempt_counts: dict[str, int] = {
            row[0]: row[1] for row in self._db.execute("SELECT partner, COUNT(*) FROM attempts GROUP BY partner")}
        # SQLite is the record; this is a read model of it, kept in step by every write below, so that
        # list and get (most of the traffic) never touch the database. (api, partner) -> public id -> record,
        # and the API objects built from them, kept until the record changes.
        self._subs: dict[tuple[str, str], dict[Any, dict[str, Any]]] = {}
        self._objects: dict[int, dict[str, Any]] = {}
        for row in self._db.execute(f"SELECT partner, {_RECORD_COLUMNS} FROM subscriptions ORDER BY id"):
            self._remember(row[0], _record(tuple(row)[1:]))

    def _migrate(self) -> None:
        for table, column, declaration in _ADDED_COLUMNS:
            have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        self._db.execute("CREATE UNIQUE INDEX IF NOT EXISTS subscriptions_uid ON subscriptions (uid)")

    def _remember(self, partner: str, record: dict[str, Any]) -> None:
        record["partner"] = partner
        self._subs.setdefault((record["api"], partner), {})[record["id"]] = record
        self._objects.pop(record["key"], None)

    def _object(self, record: dict[str, Any]) -> dict[str, Any]:
        """The API object of ``record`` (a fresh copy: callers may change it)."""
        obj = self._objects.get(record["key"])
        if obj is None:
            obj = self._objects[record["key"]] = wire.get(record["api"]).subscription_object(record)
        return {k: list(v) if isinstance(v, list) else v for k, v in obj.items()}

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
    # ``api`` is "v2" or "v3"; ids are the version's public ids; bodies are the version's API fields,
    # already validated (see linq_nb.wire). The two versions' lists of a partner are separate.
    def subscriptions(self, partner: str, api: str = "v2") -> list[dict[str, Any]]:
        with self._lock:
            return [self._object(r) for r in self._subs.get((api, partner), {}).values()]

    def get(self, partner: str, sub_id: Any, api: str = "v2") -> dict[str, Any] | None:
        with self._lock:
            record = self._subs.get((api, partner), {}).get(sub_id)
            return self._object(record) if record is not None else None

    def count(self, partner: str) -> int:
        """The partner's subscriptions in every version."""
        with self._lock:
            return sum(len(subs) for (_, p), subs in self._subs.items() if p == partner)

    def _holder(self, partner: str, api: str, url: str, other_than: Any = None) -> dict[str, Any] | None:
        return next((r for r in self._subs.get((api, partner), {}).values()
                     if r["url"] == url and r["id"] != other_than), None)

    # Each write is committed before it returns (one statement, or one transaction), then mirrored.
    def create(self, partner: str, body: Mapping[str, Any], *, max_per_partner: int | None = None,
               api: str = "v2", secret: str | None = None, unique_url: bool = False) -> dict[str, Any]:
        """Store a new subscription and return its API object.

        LimitReached if the partner has ``max_per_partner`` subscriptions (all versions) already;
        Conflict if ``unique_url`` and another of its ``api`` subscriptions has this URL.
        ``secret`` is the secret to keep when the body does not carry one (v3 makes its own).
        """
        fields = wire.get(api).record_fields(body, create=True)  # a create's fields always say "active"
        stamp = now_iso()
        secret = fields.get("secret") or secret
        uid = str(uuid.uuid4()) if api != "v2" else None
        with self._lock:
            if max_per_partner is not None and self.count(partner) >= max_per_partner:
                raise LimitReached(f"this partner has {max_per_partner} subscriptions, the most this sandbox "
                                   "allows; delete some before creating more")
            holder = self._holder(partner, api, fields["url"]) if unique_url else None
            if holder is not None:
                raise Conflict(f"target_url {fields['url'][:200]} is already used by webhook subscription "
                               f"{holder['id']}; each target_url can be used once per account: update that "
                               "subscription, or make the URL unique (for example add ?line=2)")
            phones = fields.get("phone_numbers")
            cur = self._db.execute(
                "INSERT INTO subscriptions (partner, api, uid, webhook_url, version, events, active, secret,"
                " phone_numbers, routing_key_header, routing_id_header, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (partner, api, uid, fields["url"], fields["version"], ",".join(fields["events"]),
                 int(fields["active"]), secret, ",".join(phones) if phones else None,
                 fields.get("routing_key_header"), fields.get("routing_id_header"), stamp, stamp),
            )
            key = int(cur.lastrowid or 0)
            record = {"key": key, "api": api, "id": uid if uid is not None else key, "url": fields["url"],
                      "version": fields["version"], "events": list(fields["events"]),
                      "active": bool(fields["active"]), "has_secret": secret is not None,
                      "last_delivered_at": None, "delivery_attempts": 0, "created_at": stamp, "updated_at": stamp,
                      "phone_numbers": list(phones) if phones else None,
                      "routing_key_header": fields.get("routing_key_header"),
                      "routing_id_header": fields.get("routing_id_header")}
            self._remember(partner, record)
            return self._object(record)

    def update(self, partner: str, sub_id: Any, body: Mapping[str, Any], *, api: str = "v2",
               unique_url: bool = False) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Change the fields the body names (v2: all but an absent ``secret``); the subscription's API object
        before and after, read in the same lock (so a concurrent change cannot come between); None if no such id.

        Conflict as for :meth:`create` when the new URL is another subscription's.
        """
        fields = wire.get(api).record_fields(body, create=False)
        stamp = now_iso()
        with self._lock:
            record = self._subs.get((api, partner), {}).get(sub_id)
            if record is None:
                return None
            if unique_url and "url" in fields:
                holder = self._holder(partner, api, fields["url"], other_than=sub_id)
                if holder is not None:
                    raise Conflict(f"target_url {fields['url'][:200]} is already used by webhook subscription "
                                   f"{holder['id']}; each target_url can be used once per account")
            new = {**record, **{k: v for k, v in fields.items() if k != "secret"}, "updated_at": stamp}
            if "secret" in fields:
                new["has_secret"] = fields["secret"] is not None
            phones = new.get("phone_numbers")
            self._db.execute(
                "UPDATE subscriptions SET webhook_url = ?, version = ?, events = ?, active = ?,"
                " secret = CASE WHEN ? THEN ? ELSE secret END, phone_numbers = ?, routing_key_header = ?,"
                " routing_id_header = ?, updated_at = ? WHERE id = ?",
                (new["url"], new["version"], ",".join(new["events"]), int(new["active"]), "secret" in fields,
                 fields.get("secret"), ",".join(phones) if phones else None, new.get("routing_key_header"),
                 new.get("routing_id_header"), stamp, record["key"]),
            )
            new["events"] = list(new["events"])
            before = self._object(record)
            self._remember(partner, new)
            return before, self._object(new)

    def delete(self, partner: str, sub_id: Any, api: str = "v2") -> dict[str, Any] | None:
        """Delete the subscription and its pending deliveries; its API object as it was, or None if no such id."""
        with self._lock:
            record = self._subs.get((api, partner), {}).pop(sub_id, None)
            if record is None:
                return None
            gone = self._object(record)
            self._objects.pop(record["key"], None)
            with self._tx() as db:
                db.execute("DELETE FROM subscriptions WHERE id = ?", (record["key"],))
                db.execute("DELETE FROM jobs WHERE subscription_id = ?", (record["key"],))
                db.execute("DELETE FROM events WHERE event_id NOT IN (SELECT event_id FROM jobs)")
        return gone

    # -- deliveries ----------------------------------------------------------------
    def enqueue(self, partner: str, event_type: str, event_id: str, body: bytes, *, api: str = "v2",
                phone_number: str | None = None, max_bytes: int | None = None) -> int:
        """Queue ``body`` for every active ``api`` subscription of ``partner`` to ``event_type``.

        A subscription with ``phone_numbers`` gets an event about a line only if the line is one of
        them; an event about no line (``phone_number`` None: an account event) reaches it anyway.
        LimitReached, queueing nothing, if ``body`` is over ``max_bytes`` and some subscription would get it.
        """
        when = time.time()
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, events, phone_numbers FROM subscriptions WHERE partner = ? AND api = ? AND active = 1"
                " ORDER BY id", (partner, api)
            ).fetchall()
            targets = [r["id"] for r in rows if event_type in r["events"].split(",")
                       and (phone_number is None or not r["phone_numbers"]
                            or phone_number in r["phone_numbers"].split(","))]
            if not targets:
                return 0
            if max_bytes is not None and len(body) > max_bytes:
                raise LimitReached(f"the event is {len(body)} bytes, over this sandbox's limit of {max_bytes} bytes "
                                   "for one event; send less data")
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

    def target(self, job: Job) -> Target | None:
        """Where and how to deliver ``job`` now, or None if it should be dropped."""
        rows = self._query("SELECT webhook_url, secret, active, api, uid, routing_key_header, routing_id_header"
                           " FROM subscriptions WHERE id = ?", (job.subscription_id,))
        if not rows or not rows[0]["active"]:
            return None
        r = rows[0]
        return Target(r["webhook_url"], r["secret"], r["api"], r["uid"] if r["api"] != "v2" else job.subscription_id,
                      r["routing_key_header"], r["routing_id_header"])

    def drop(self, job: Job) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job.id,))
            self._forget_event(db, job.event_id)

    def record_attempt(self, job: Job, target: Target, *, status_code: int | None, error: str | None, ok: bool,
                       started_at: str, duration_ms: float, retry_at: float | None) -> None:
        """Log one HTTP attempt to ``target``, move the counters, and reschedule or finish the job, atomically.

        The log names the subscription by its public id from ``target``: the subscription may have been
        deleted while the attempt was in flight, and the attempt is still its own.
        """
        attempt = job.attempts + 1
        stamp = now_iso()
        ref = None if target.api == "v2" else str(target.subscription_id)  # v2's integer id is the key itself
        with self._tx() as db:
            record = self._subs.get((target.api, job.partner), {}).get(target.subscription_id)  # None: deleted
            db.execute(
                "INSERT INTO attempts (partner, event_id, event_type, subscription_id, attempt, status_code, error,"
                " ok, started_at, duration_ms, subscription_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job.partner, job.event_id, job.event_type, job.subscription_id, attempt, status_code, error,
                 int(ok), started_at, duration_ms, ref),
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
            if record is not None:
                record["delivery_attempts"] += 1
                if ok:
                    record["last_delivered_at"] = stamp
                self._objects.pop(record["key"], None)

    def attempts(self, partner: str | None = None) -> list[dict[str, Any]]:
        """Every kept attempt (of one partner, or all), oldest first."""
        if partner is None:
            rows = self._query("SELECT * FROM attempts ORDER BY id")
        else:
            rows = self._query("SELECT * FROM attempts WHERE partner = ? ORDER BY id", (partner,))
        return [_attempt(r) for r in rows]

    def attempts_page(self, partner: str, *, limit: int, cursor: int | None = None,
                      subscription_id: int | str | None = None, event_id: str | None = None
                      ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` attempts after ``cursor``, oldest first, and the cursor of the next page (or None).

        ``subscription_id`` is a v2 id (an int) or a v3 one (a UUID string).
        """
        sql, args = "SELECT * FROM attempts WHERE partner = ? AND id > ?", [partner, cursor or 0]
        if isinstance(subscription_id, str):
            sql, args = sql + " AND subscription_ref = ?", [*args, subscription_id]
        elif subscription_id is not None:
            sql, args = sql + " AND subscription_id = ? AND subscription_ref IS NULL", [*args, subscription_id]
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
        "subscription_id": r["subscription_ref"] or r["subscription_id"],
        "attempt": r["attempt"],
        "status_code": r["status_code"],
        "error": r["error"],
        "ok": bool(r["ok"]),
        "started_at": r["started_at"],
        "duration_ms": r["duration_ms"],
    }
