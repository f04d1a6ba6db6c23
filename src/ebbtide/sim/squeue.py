"""The simulator's queue: an in-memory implementation of the real `Queue` port, on any `Clock`.

It implements `queue.base.Queue` (and `JobIndex`) with SQS's semantics, the same ones the
production backends have: a receive leases messages for `lease` seconds and bumps their receive
count; a lease that runs out makes the message visible again (checked lazily against the clock,
as the SQL backends do); a message received `max_receives` times is dead-lettered instead of
leased; bodies are checked on receive (`decode_body`) and malformed ones are dead-lettered; a
stale receipt cannot ack, extend, release or dead-letter. The queue conformance suite
(tests/queue/test_conformance.py, backend "sim") runs on it with the system clock, so the
simulator cannot drift from production; the engine drives it on a `VirtualClock`.

A long poll waits on a condition variable on the system clock; on a virtual clock nothing else
can send while the engine waits, so a receive with nothing to lease returns at once.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ebbtide.clock import SYSTEM_CLOCK, Clock, VirtualClock
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
from ebbtide.queue.sqlite import exhausted_reason

POLL_MAX = 0.5  # s between looks during a long poll (expired leases and delays need a look)
DEDUP_WINDOW = 300.0  # SQS FIFO's deduplication interval


@dataclass
class _Message:
    id: str
    raw: str
    sent_at: float
    visible_at: float
    seq: int
    receive_count: int = 0
    receipt: str | None = None  # the current lease; None when not leased since the last release


class SimQueue:
    """`Queue` + `JobIndex` in memory. Thread-safe (the conformance suite runs consumers in threads)."""

    def __init__(self, max_receives: int = 5, clock: Clock = SYSTEM_CLOCK, name: str = "sim",
                 required: Sequence[str] = REQUIRED_FIELDS) -> None:  # fmt: skip
        self.max_receives = max_receives
        self.clock = clock
        self.name = name
        self.required = tuple(required)
        self.receives = 0  # receive calls that leased or buried something (the engine reports it)
        self._messages: dict[str, _Message] = {}
        self._dead: dict[str, DeadLetter] = {}
        self._dedup: dict[str, tuple[str, float]] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._virtual = isinstance(clock, VirtualClock)

    # -- producer ---------------------------------------------------------------------------------
    def send(self, body: Mapping[str, Any] | str, delay: float = 0, dedup_id: str | None = None) -> str:
        raw = encode_body(body)
        now = self.clock.now()
        with self._cond:
            if dedup_id is not None:
                hit = self._dedup.get(dedup_id)
                if hit is not None and hit[1] > now - DEDUP_WINDOW:
                    return hit[0]
            mid = uuid.uuid4().hex
            self._messages[mid] = _Message(mid, raw, now, now + max(0.0, delay), next(self._seq))
            if dedup_id is not None:
                self._dedup[dedup_id] = (mid, now)
            self._cond.notify_all()
        return mid

    # -- consumer ---------------------------------------------------------------------------------
    def receive(self, wait: float = 0, lease: float = 120, max_messages: int = 1) -> list[Delivery]:
        if self._virtual:
            wait = 0.0  # nobody else runs while the engine waits
        return long_poll(lambda: self._lease(lease, max_messages), self._pause, wait, self.clock, POLL_MAX)

    def _pause(self, seconds: float) -> None:
        with self._cond:
            self._cond.wait(seconds)

    def _lease(self, lease: float, max_messages: int) -> list[Delivery]:
        now = self.clock.now()
        out: list[Delivery] = []
        with self._cond:
            ready = sorted((m for m in self._messages.values() if m.visible_at <= now),
                           key=lambda m: (m.visible_at, m.seq))  # fmt: skip
            if ready:
                self.receives += 1
            receipt = uuid.uuid4().hex  # one receipt per call; (id, receipt) is the lease
            for m in ready:
                if len(out) >= max_messages:
                    break
                if m.receive_count >= self.max_receives:
                    self._bury(m, exhausted_reason(m.receive_count, self.max_receives), now)
                    continue
                m.receive_count += 1
                try:
                    body = decode_body(m.raw, self.required)
                except BadMessage as e:
                    self._bury(m, str(e), now)
                    continue
                m.receipt, m.visible_at = receipt, now + lease
                out.append(Delivery(m.id, receipt, body, m.receive_count, m.sent_at, m.visible_at))
        return out

    def _bury(self, m: _Message, reason: str, now: float) -> None:
        self._messages.pop(m.id, None)
        self._dead[m.id] = DeadLetter(m.id, m.raw, reason, m.receive_count, now)

    def _held(self, d: Delivery) -> _Message | None:
        """The message while `d` is its current, unexpired lease."""
        m = self._messages.get(d.message_id)
        if m is None or m.receipt != d.receipt or m.visible_at <= self.clock.now():
            return None
        return m

    def extend(self, delivery: Delivery, lease: float) -> bool:
        with self._cond:
            m = self._held(delivery)
            if m is None:
                return False
            m.visible_at = self.clock.now() + lease
            return True

    def ack(self, delivery: Delivery) -> bool:
        with self._cond:
            m = self._held(delivery)
            if m is None:
                return False
            del self._messages[m.id]
            return True

    def release(self, delivery: Delivery, delay: float = 0) -> bool:
        with self._cond:
            m = self._held(delivery)
            if m is None:
                return False
            m.receipt, m.visible_at = None, self.clock.now() + max(0.0, delay)
            self._cond.notify_all()
            return True

    def dead_letter(self, delivery: Delivery, reason: str) -> bool:
        with self._cond:
            m = self._held(delivery)
            if m is None:
                return False
            self._bury(m, reason, self.clock.now())
            return True

    # -- inspection -------------------------------------------------------------------------------
    def stats(self) -> QueueStats:
        now = self.clock.now()
        visible = in_flight = delayed = 0
        oldest: float | None = None
        with self._cond:
            for m in self._messages.values():
                if m.visible_at <= now:
                    visible += 1
                    oldest = m.sent_at if oldest is None else min(oldest, m.sent_at)
                elif m.receipt is not None:
                    in_flight += 1
                else:
                    delayed += 1
            dead = len(self._dead)
        age = None if oldest is None else max(0.0, now - oldest)
        return QueueStats(visible, in_flight, delayed, dead, age)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self._cond:
            return sorted(self._dead.values(), key=lambda d: (d.dead_at, d.message_id))[:limit]

    def redrive(self, message_ids: Sequence[str] | None = None) -> int:
        now = self.clock.now()
        with self._cond:
            ids = list(self._dead) if message_ids is None else list(message_ids)
            moved = 0
            for mid in ids:
                d = self._dead.pop(mid, None)
                if d is None:
                    continue
                self._messages[mid] = _Message(mid, d.body, now, now, next(self._seq))
                moved += 1
            if moved:
                self._cond.notify_all()
        return moved

    def purge(self) -> None:
        with self._cond:
            self._messages.clear()
            self._dead.clear()

    def close(self) -> None:
        return None

    def live_job_ids(self) -> set[str]:
        with self._cond:
            return job_ids_of([m.raw for m in self._messages.values()])

    # -- what only the simulator asks (read-only views over the same state) -----------------------
    def visible_job_ids(self) -> list[str]:
        """Job ids of the visible messages, in the order a receive would lease them."""
        now = self.clock.now()
        with self._cond:
            ready = sorted((m for m in self._messages.values() if m.visible_at <= now),
                           key=lambda m: (m.visible_at, m.seq))  # fmt: skip
        return job_ids_of_ordered(ready)

    def next_change(self) -> float | None:
        """The earliest time a lease runs out or a delay ends (the engine schedules a look then)."""
        now = self.clock.now()
        with self._cond:
            later = [m.visible_at for m in self._messages.values() if m.visible_at > now]
        return min(later, default=None)

    def __repr__(self) -> str:
        return f"SimQueue(name={self.name!r}, max_receives={self.max_receives})"


def job_ids_of_ordered(messages: Sequence[_Message]) -> list[str]:
    out = []
    for m in messages:
        try:
            out.append(str(decode_body(m.raw)["job_id"]))
        except BadMessage:
            continue
    return out
