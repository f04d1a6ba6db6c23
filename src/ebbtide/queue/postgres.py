"""PostgreSQL as the job queue: `SELECT … FOR UPDATE SKIP LOCKED` to lease, LISTEN/NOTIFY to wake.

Tables (created if missing, shared by every queue name in the database): `ebbtide_queue_messages`,
`ebbtide_queue_dead`, `ebbtide_queue_dedup`. Consumers never block one another: each takes the
rows nobody else has locked. Each lease has its own receipt, so a stale ack/extend/release
returns False and changes nothing. Times come from the injected Clock (hosts need NTP).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlparse

import psycopg

from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.errors import BackendUnavailable
from ebbtide.outage import Outage
from ebbtide.queue.base import (
    BadMessage,
    DeadLetter,
    Delivery,
    QueueStats,
    decode_body,
    encode_body,
    job_ids_of,
)
from ebbtide.queue.polling import long_poll
from ebbtide.queue.sqlite import DEDUP_WINDOW, exhausted_reason

CONNECT_TIMEOUT = 5
# the driver's "server gone / connection closed" errors (AdminShutdown and friends subclass these)
_DRIVER_DOWN = (psycopg.OperationalError, psycopg.InterfaceError)
POLL_MAX_PG = 0.25  # sends NOTIFY; polling only finds expired leases and delays that ran out

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS ebbtide_queue_messages (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        queue TEXT NOT NULL,
        body TEXT NOT NULL,
        sent_at DOUBLE PRECISION NOT NULL,
        visible_at DOUBLE PRECISION NOT NULL,
        receipt TEXT,
        receive_count INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS ebbtide_queue_ready ON ebbtide_queue_messages (queue, visible_at)",
    """CREATE TABLE IF NOT EXISTS ebbtide_queue_dead (
        id TEXT PRIMARY KEY,
        queue TEXT NOT NULL,
        body TEXT NOT NULL,
        reason TEXT NOT NULL,
        receive_count INTEGER NOT NULL,
        dead_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ebbtide_queue_dedup (
        queue TEXT NOT NULL,
        dedup_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (queue, dedup_id))""",
]


class PostgresQueue:
    def __init__(
        self, url: str, name: str = "jobs", max_receives: int = 5, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.name = name
        self.max_receives = max_receives
        self.clock = clock
        self.channel = "ebbtide_q_" + hashlib.sha1(name.encode()).hexdigest()[:16]
        self._lock = threading.RLock()
        where = urlparse(self.url)  # the URL may hold a password: name only host and database
        self.outage = Outage(
            "queue", f"postgresql {where.hostname}:{where.port or 5432}{where.path}",
            hint="check queue.url and that PostgreSQL is running",
        )
        self._db: psycopg.Connection[Any] | None = None
        self._listener: psycopg.Connection[Any] | None = None
        try:
            with self._tx() as db:
                db.execute("SELECT pg_advisory_xact_lock(727274)")  # concurrent first opens: one creates
                for statement in _SCHEMA:
                    db.execute(statement)
        except BackendUnavailable as e:
            raise BackendUnavailable(
                f"cannot reach the PostgreSQL queue at {self.outage.name[len('postgresql '):]}:"
                f" {self.outage.last_error}", e.hint, "queue",
            ) from None

    # -- connections: opened lazily, dropped on a driver connection error, reopened with backoff ---

    def _connect(self) -> psycopg.Connection[Any]:
        if not self.outage.may_try():
            raise self.outage.unavailable()
        return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn the driver's connection errors into BackendUnavailable and drop both connections,
        so the next call reconnects (the listener too: its LISTEN died with the server)."""
        try:
            yield
        except _DRIVER_DOWN as e:
            self._drop()
            raise self.outage.failed(e) from e
        self.outage.ok()

    def _drop(self) -> None:
        for conn in (self._db, self._listener):
            if conn is not None:
                with suppress(Exception):
                    conn.close()
        self._db = self._listener = None

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock, self._guard():
            if self._db is None or self._db.closed:
                self._db = self._connect()
            with self._db.transaction():
                yield self._db

    def _notify(self, db: psycopg.Connection[Any]) -> None:
        db.execute("SELECT pg_notify(%s, '')", (self.channel,))

    # -- producer -------------------------------------------------------------------------------

    def send(self, body: Mapping[str, Any] | str, delay: float = 0, dedup_id: str | None = None) -> str:
        now = self.clock.now()
        message_id = uuid.uuid4().hex
        with self._tx() as db:
            if dedup_id is not None:
                db.execute(
                    "DELETE FROM ebbtide_queue_dedup WHERE queue=%s AND created_at<=%s",
                    (self.name, now - DEDUP_WINDOW),
                )
                row = db.execute(
                    "INSERT INTO ebbtide_queue_dedup (queue, dedup_id, message_id, created_at)"
                    " VALUES (%s,%s,%s,%s) ON CONFLICT (queue, dedup_id)"
                    " DO UPDATE SET queue=EXCLUDED.queue RETURNING message_id",
                    (self.name, dedup_id, message_id, now),
                ).fetchone()
                if row and row[0] != message_id:
                    return str(row[0])
            db.execute(
                "INSERT INTO ebbtide_queue_messages (id, queue, body, sent_at, visible_at)"
                " VALUES (%s,%s,%s,%s,%s)",
                (message_id, self.name, encode_body(body), now, now + max(0.0, delay)),
            )
            self._notify(db)
        return message_id

    # -- consumer -------------------------------------------------------------------------------

    def receive(self, wait: float = 0, lease: float = 120, max_messages: int = 1) -> list[Delivery]:
        if wait > 0:
            self._listen()  # before the first look, so a send right after it is not missed
        return long_poll(lambda: self._take(lease, max_messages), self._wait, wait, self.clock, POLL_MAX_PG)

    def _listen(self) -> psycopg.Connection[Any]:
        with self._guard():
            if self._listener is None or self._listener.closed:
                listener = self._connect()
                listener.execute(f'LISTEN "{self.channel}"')
                self._listener = listener
            return self._listener

    def _wait(self, seconds: float) -> None:
        listener = self._listen()
        with self._guard():
            for _ in listener.notifies(timeout=seconds, stop_after=1):
                pass

    def _take(self, lease: float, max_messages: int) -> list[Delivery]:
        out: list[Delivery] = []
        with self._tx() as db:
            buried = True
            while len(out) < max_messages and buried:
                buried = False
                now = self.clock.now()
                rows = db.execute(
                    "SELECT id, body, sent_at, receive_count FROM ebbtide_queue_messages"
                    " WHERE queue=%s AND visible_at<=%s ORDER BY visible_at, seq LIMIT %s"
                    " FOR UPDATE SKIP LOCKED",
                    (self.name, now, max_messages - len(out)),
                ).fetchall()
                for message_id, raw, sent_at, count in rows:
                    if count >= self.max_receives:
                        self._bury(db, message_id, exhausted_reason(count, self.max_receives), now)
                        buried = True
                        continue
                    try:
                        body = decode_body(raw)
                    except BadMessage as e:
                        self._bury(db, message_id, str(e), now)
                        buried = True
                        continue
                    receipt, until = uuid.uuid4().hex, now + lease
                    db.execute(
                        "UPDATE ebbtide_queue_messages SET receipt=%s, visible_at=%s,"
                        " receive_count=receive_count+1 WHERE id=%s",
                        (receipt, until, message_id),
                    )
                    out.append(Delivery(message_id, receipt, body, count + 1, float(sent_at), until))
        return out

    def _bury(self, db: psycopg.Connection[Any], message_id: str, reason: str, now: float) -> None:
        db.execute(
            "INSERT INTO ebbtide_queue_dead (id, queue, body, reason, receive_count, dead_at)"
            " SELECT id, queue, body, %s, receive_count, %s FROM ebbtide_queue_messages WHERE id=%s"
            " ON CONFLICT (id) DO UPDATE SET reason=EXCLUDED.reason, dead_at=EXCLUDED.dead_at",
            (reason, now, message_id),
        )
        db.execute("DELETE FROM ebbtide_queue_messages WHERE id=%s", (message_id,))

    def _change(self, sql: str, params: tuple[Any, ...]) -> bool:
        with self._tx() as db:
            return db.execute(sql, params).rowcount == 1

    def extend(self, delivery: Delivery, lease: float) -> bool:
        return self._change(
            "UPDATE ebbtide_queue_messages SET visible_at=%s WHERE id=%s AND receipt=%s",
            (self.clock.now() + lease, delivery.message_id, delivery.receipt),
        )

    def ack(self, delivery: Delivery) -> bool:
        return self._change(
            "DELETE FROM ebbtide_queue_messages WHERE id=%s AND receipt=%s",
            (delivery.message_id, delivery.receipt),
        )

    def release(self, delivery: Delivery, delay: float = 0) -> bool:
        with self._tx() as db:
            ok = (
                db.execute(
                    "UPDATE ebbtide_queue_messages SET visible_at=%s, receipt=NULL"
                    " WHERE id=%s AND receipt=%s",
                    (self.clock.now() + max(0.0, delay), delivery.message_id, delivery.receipt),
                ).rowcount
                == 1
            )
            if ok and delay <= 0:
                self._notify(db)
        return ok

    def dead_letter(self, delivery: Delivery, reason: str) -> bool:
        with self._tx() as db:
            row = db.execute(
                "SELECT 1 FROM ebbtide_queue_messages WHERE id=%s AND receipt=%s FOR UPDATE",
                (delivery.message_id, delivery.receipt),
            ).fetchone()
            if not row:
                return False
            self._bury(db, delivery.message_id, reason, self.clock.now())
            return True

    # -- operators ------------------------------------------------------------------------------

    def stats(self) -> QueueStats:
        now = self.clock.now()
        with self._tx() as db:
            row = db.execute(
                "SELECT"
                " COUNT(*) FILTER (WHERE visible_at<=%(now)s),"
                " COUNT(*) FILTER (WHERE visible_at>%(now)s AND receipt IS NOT NULL),"
                " COUNT(*) FILTER (WHERE visible_at>%(now)s AND receipt IS NULL),"
                " MIN(sent_at) FILTER (WHERE visible_at<=%(now)s),"
                " (SELECT COUNT(*) FROM ebbtide_queue_dead WHERE queue=%(q)s)"
                " FROM ebbtide_queue_messages WHERE queue=%(q)s",
                {"now": now, "q": self.name},
            ).fetchone()
        assert row is not None
        visible, in_flight, delayed, oldest, dead = row
        return QueueStats.from_counts(visible, in_flight, delayed, dead, oldest, now)

    def live_job_ids(self) -> set[str]:
        with self._tx() as db:
            sql = "SELECT body FROM ebbtide_queue_messages WHERE queue=%s"
            rows = db.execute(sql, (self.name,)).fetchall()
        return job_ids_of([r[0] for r in rows])

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, body, reason, receive_count, dead_at FROM ebbtide_queue_dead"
                " WHERE queue=%s ORDER BY dead_at, id LIMIT %s",
                (self.name, limit),
            ).fetchall()
        return [DeadLetter.from_row(r) for r in rows]

    def redrive(self, message_ids: Sequence[str] | None = None) -> int:
        now = self.clock.now()
        with self._tx() as db:
            cond, params = ("", ()) if message_ids is None else (" AND id = ANY(%s)", (list(message_ids),))
            moved = db.execute(
                "WITH d AS (DELETE FROM ebbtide_queue_dead WHERE queue=%s"
                + cond
                + " RETURNING id, queue, body)"
                " INSERT INTO ebbtide_queue_messages (id, queue, body, sent_at, visible_at)"
                " SELECT id, queue, body, %s, %s FROM d",
                (self.name, *params, now, now),
            ).rowcount
            if moved:
                self._notify(db)
        return int(moved)

    def purge(self) -> None:
        with self._tx() as db:
            for table in ("ebbtide_queue_messages", "ebbtide_queue_dead", "ebbtide_queue_dedup"):
                db.execute(f"DELETE FROM {table} WHERE queue=%s", (self.name,))

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __repr__(self) -> str:
        return f"PostgresQueue(name={self.name!r})"
