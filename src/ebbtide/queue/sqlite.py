"""The embedded default queue: one SQLite file, safe across threads and processes, no server.

Durability: WAL with `synchronous=NORMAL` — a commit survives a process crash at once and a power
loss after the next checkpoint, which is SQLite's own recommendation for WAL and what makes a
thousand jobs a second possible without a server.

Every process opens its own connection (a `SqliteQueue` must not cross `fork`); leasing runs
inside `BEGIN IMMEDIATE`, so two consumers never take the same message. Each lease gets its own
receipt, and `ack`/`extend`/`release`/`dead_letter` match on it: a consumer whose lease lapsed
and whose message was re-leased by another gets False and changes nothing.

A message received `max_receives` times is never leased again; it is moved to the dead letters
by the first receive that finds no other message to lease (so under a constant backlog it may
show as visible for a moment before it is counted as dead).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.fsperm import private_file
from ebbtide.queue.base import (
    REQUIRED_FIELDS,
    BadMessage,
    DeadLetter,
    Delivery,
    QueueStats,
    decode_body,
    encode_body,
    job_ids_of,
)
from ebbtide.queue.polling import long_poll

log = logging.getLogger(__name__)

DEDUP_WINDOW = 300.0
POLL_MAX = 0.05  # long-poll DB interval backs off to 50 ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receipt TEXT,
    receive_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, visible_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    receive_count INTEGER NOT NULL,
    dead_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_by_queue ON dead_letters (queue, dead_at);
CREATE TABLE IF NOT EXISTS dedup (
    queue TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (queue, dedup_id)
);
"""

# Same-process senders wake same-process long pollers at once; other processes are seen by polling.
_wakeups: dict[str, threading.Condition] = {}
_wakeups_lock = threading.Lock()


def _wakeup_for(path: str) -> threading.Condition:
    with _wakeups_lock:
        return _wakeups.setdefault(path, threading.Condition())


def exhausted_reason(receive_count: int, max_receives: int) -> str:
    return f"received {receive_count} times (max_receives={max_receives})"


class SqliteQueue:
    def __init__(
        self,
        path: str | Path,
        name: str = "jobs",
        max_receives: int = 5,
        clock: Clock = SYSTEM_CLOCK,
        busy_timeout_ms: int = 30_000,
        accept_foreign: bool = False,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        private_file(self.path)  # 0600: message bodies name users' media
        self.name = name
        self.max_receives = max_receives
        self.required: tuple[str, ...] = () if accept_foreign else REQUIRED_FIELDS
        self.clock = clock
        self._lock = threading.RLock()
        self._wakeup = _wakeup_for(str(self.path))
        self._busy = False  # the last lease filled its batch
        self._db = sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
        )
        self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._tx() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    # -- plumbing -------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE takes the write lock up front (no upgrade deadlock)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        """One statement in its own implicit transaction; returns the rows it changed."""
        with self._lock:
            return int(self._db.execute(sql, params).rowcount)

    def _notify(self) -> None:
        with self._wakeup:
            self._wakeup.notify_all()

    # -- producer -------------------------------------------------------------------------------

    def send(self, body: Mapping[str, Any] | str, delay: float = 0, dedup_id: str | None = None) -> str:
        raw = encode_body(body)
        now = self.clock.now()
        if dedup_id is None:  # the hot path: one statement, no explicit transaction
            message_id = uuid.uuid4().hex
            self._write(
                "INSERT INTO messages (id, queue, body, sent_at, visible_at) VALUES (?,?,?,?,?)",
                (message_id, self.name, raw, now, now + max(0.0, delay)),
            )
            self._notify()
            return message_id
        with self._tx() as db:
            if dedup_id is not None:
                row = db.execute(
                    "SELECT message_id FROM dedup WHERE queue=? AND dedup_id=? AND created_at>?",
                    (self.name, dedup_id, now - DEDUP_WINDOW),
                ).fetchone()
                if row:
                    return str(row[0])
            message_id = uuid.uuid4().hex
            db.execute(
                "INSERT INTO messages (id, queue, body, sent_at, visible_at) VALUES (?,?,?,?,?)",
                (message_id, self.name, raw, now, now + max(0.0, delay)),
            )
            if dedup_id is not None:
                db.execute(
                    "DELETE FROM dedup WHERE queue=? AND created_at<=?", (self.name, now - DEDUP_WINDOW)
                )
                db.execute(
                    "INSERT OR REPLACE INTO dedup (queue, dedup_id, message_id, created_at) VALUES (?,?,?,?)",
                    (self.name, dedup_id, message_id, now),
                )
        self._notify()
        return message_id

    # -- consumer -------------------------------------------------------------------------------

    def receive(self, wait: float = 0, lease: float = 120, max_messages: int = 1) -> list[Delivery]:
        return long_poll(lambda: self._lease(lease, max_messages), self._pause, wait, self.clock, POLL_MAX)

    def _pause(self, seconds: float) -> None:
        with self._wakeup:
            self._wakeup.wait(seconds)

    def _lease(self, lease: float, max_messages: int) -> list[Delivery]:
        out: list[Delivery] = []
        for _ in range(1000):  # every extra round buried at least one message; bound it anyway
            now, want = self.clock.now(), max_messages - len(out)
            with self._lock:
                # Look before writing, so idle pollers never take the write lock from producers
                # (skipped while the last lease came back full: the queue is busy, the look is waste).
                if not self._busy and not self._db.execute(
                    "SELECT 1 FROM messages WHERE queue=? AND visible_at<=? LIMIT 1", (self.name, now)
                ).fetchone():
                    return out
                # One statement leases the batch: SQLite takes the write lock before it reads, so
                # two processes never pick the same row. One receipt per call; (id, receipt) is the lease.
                receipt, until = uuid.uuid4().hex, now + lease
                rows = self._db.execute(
                    "UPDATE messages SET receipt=?1, visible_at=?2, receive_count=receive_count+1"
                    " WHERE id IN (SELECT id FROM messages WHERE queue=?3 AND visible_at<=?4"
                    " AND receive_count<?5 ORDER BY visible_at, seq LIMIT ?6)"
                    " RETURNING id, body, sent_at, receive_count, seq",
                    (receipt, until, self.name, now, self.max_receives, want),
                ).fetchall()
                self._busy = len(rows) == want
            malformed = []
            for message_id, raw, sent_at, count, _seq in sorted(rows, key=lambda r: r[4]):
                try:
                    body = decode_body(raw, self.required)
                    out.append(Delivery(message_id, receipt, body, count, sent_at, until))
                except BadMessage as e:
                    malformed.append((message_id, str(e)))
            exhausted = self._bury_exhausted(now) if len(rows) < want else 0  # eligible ones ran out
            if malformed:
                with self._tx() as db:
                    for message_id, reason in malformed:
                        self._bury(db, message_id, reason, now)
            if len(out) >= max_messages or not (malformed or exhausted):
                return out
        return out

    def live_job_ids(self) -> set[str]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM messages WHERE queue=?", (self.name,)).fetchall()
        return job_ids_of([r[0] for r in rows])

    def _bury_exhausted(self, now: float) -> int:
        """Dead-letter visible messages already received max_receives times (they are never leased)."""
        query = (
            "SELECT id, receive_count FROM messages WHERE queue=? AND visible_at<=? AND receive_count>=?"
            " LIMIT 100"
        )
        args = (self.name, now, self.max_receives)
        with self._lock:
            if not self._db.execute(query, args).fetchone():  # cheap look without the write lock
                return 0
        with self._tx() as db:
            found = db.execute(query, args).fetchall()
            for message_id, count in found:
                self._bury(db, message_id, exhausted_reason(count, self.max_receives), now)
        return len(found)

    def _bury(self, db: sqlite3.Connection, message_id: str, reason: str, now: float) -> None:
        db.execute(
            "INSERT OR REPLACE INTO dead_letters (id, queue, body, reason, receive_count, dead_at)"
            " SELECT id, queue, body, ?, receive_count, ? FROM messages WHERE id=?",
            (reason, now, message_id),
        )
        db.execute("DELETE FROM messages WHERE id=?", (message_id,))
        log.warning(
            "dead-lettered message", extra={"queue": self.name, "message_id": message_id, "reason": reason}
        )

    def _held(self, delivery: Delivery) -> tuple[str, str]:
        return (delivery.message_id, delivery.receipt)

    def extend(self, delivery: Delivery, lease: float) -> bool:
        return (
            self._write(
                "UPDATE messages SET visible_at=? WHERE id=? AND receipt=?",
                (self.clock.now() + lease, *self._held(delivery)),
            )
            == 1
        )

    def ack(self, delivery: Delivery) -> bool:
        return self._write("DELETE FROM messages WHERE id=? AND receipt=?", self._held(delivery)) == 1

    def release(self, delivery: Delivery, delay: float = 0) -> bool:
        ok = (
            self._write(
                "UPDATE messages SET visible_at=?, receipt=NULL WHERE id=? AND receipt=?",
                (self.clock.now() + max(0.0, delay), *self._held(delivery)),
            )
            == 1
        )
        if ok and delay <= 0:
            self._notify()
        return ok

    def dead_letter(self, delivery: Delivery, reason: str) -> bool:
        with self._tx() as db:
            row = db.execute(
                "SELECT 1 FROM messages WHERE id=? AND receipt=?", self._held(delivery)
            ).fetchone()
            if not row:
                return False
            self._bury(db, delivery.message_id, reason, self.clock.now())
            return True

    # -- operators ------------------------------------------------------------------------------

    def stats(self) -> QueueStats:
        now = self.clock.now()
        with self._lock:
            visible, in_flight, delayed, oldest = self._db.execute(
                "SELECT"
                " COALESCE(SUM(visible_at<=?1), 0),"
                " COALESCE(SUM(visible_at>?1 AND receipt IS NOT NULL), 0),"
                " COALESCE(SUM(visible_at>?1 AND receipt IS NULL), 0),"
                " MIN(CASE WHEN visible_at<=?1 THEN sent_at END)"
                " FROM messages WHERE queue=?2",
                (now, self.name),
            ).fetchone()
            (dead,) = self._db.execute(
                "SELECT COUNT(*) FROM dead_letters WHERE queue=?", (self.name,)
            ).fetchone()
        return QueueStats.from_counts(visible, in_flight, delayed, dead, oldest, now)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body, reason, receive_count, dead_at FROM dead_letters"
                " WHERE queue=? ORDER BY dead_at, id LIMIT ?",
                (self.name, limit),
            ).fetchall()
        return [DeadLetter.from_row(r) for r in rows]

    def redrive(self, message_ids: Sequence[str] | None = None) -> int:
        now = self.clock.now()
        with self._tx() as db:
            if message_ids is None:
                ids = [r[0] for r in db.execute("SELECT id FROM dead_letters WHERE queue=?", (self.name,))]
            else:
                ids = list(message_ids)
            moved = 0
            for message_id in ids:
                cur = db.execute(
                    "INSERT INTO messages (id, queue, body, sent_at, visible_at)"
                    " SELECT id, queue, body, ?, ? FROM dead_letters WHERE id=? AND queue=?",
                    (now, now, message_id, self.name),
                )
                if cur.rowcount:
                    db.execute("DELETE FROM dead_letters WHERE id=?", (message_id,))
                    moved += 1
        if moved:
            self._notify()
        return moved

    def purge(self) -> None:
        with self._tx() as db:
            for table in ("messages", "dead_letters", "dedup"):
                db.execute(f"DELETE FROM {table} WHERE queue=?", (self.name,))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"SqliteQueue({str(self.path)!r}, name={self.name!r})"
