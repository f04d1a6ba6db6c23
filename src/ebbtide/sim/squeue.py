"""An in-memory queue with SQS's lease semantics, driven by the simulation's clock.

Only what changes outcomes is modelled: a receive leases a message for `lease` seconds and bumps
its receive count; an unacked lease lapses and the message is visible again (the engine schedules
the lapse); a receive beyond `max_receives` moves the message to the dead letters instead; an ack
or extend with a lapsed receipt fails, like SQS's "receipt handle has expired".
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ebbtide.queue.base import QueueStats


@dataclass
class SimMessage:
    job_id: str
    sent_at: float
    receive_count: int = 0
    receipt: int = 0  # bumps on every receive; a lease is (job_id, receipt)
    leased_until: float | None = None
    done: bool = False
    dead: bool = False


class SimQueue:
    def __init__(self, max_receives: int) -> None:
        self.max_receives = max_receives
        self._visible: OrderedDict[str, SimMessage] = OrderedDict()  # FIFO-ish, like a standard queue
        self._leased: dict[str, SimMessage] = {}
        self.dead: list[SimMessage] = []
        self.receives = 0

    def send(self, job_id: str, now: float) -> None:
        self._visible[job_id] = SimMessage(job_id, now)

    @property
    def visible(self) -> int:
        return len(self._visible)

    @property
    def in_flight(self) -> int:
        return len(self._leased)

    def visible_ids(self) -> list[str]:
        return list(self._visible)

    def leased_ids(self) -> list[str]:
        return list(self._leased)

    def receive(self, now: float, lease: float) -> SimMessage | None:
        """Lease the oldest visible message; messages past `max_receives` go to the dead letters."""
        while self._visible:
            _, msg = self._visible.popitem(last=False)
            self.receives += 1
            if msg.receive_count >= self.max_receives:
                msg.dead = True
                self.dead.append(msg)
                continue
            msg.receive_count += 1
            msg.receipt += 1
            msg.leased_until = now + lease
            self._leased[msg.job_id] = msg
            return msg
        return None

    def holds(self, job_id: str, receipt: int) -> bool:
        msg = self._leased.get(job_id)
        return msg is not None and msg.receipt == receipt

    def leased_until(self, job_id: str) -> float:
        msg = self._leased[job_id]
        return msg.leased_until if msg.leased_until is not None else 0.0

    def extend(self, job_id: str, receipt: int, now: float, lease: float) -> bool:
        if not self.holds(job_id, receipt):
            return False
        self._leased[job_id].leased_until = now + lease
        return True

    def ack(self, job_id: str, receipt: int) -> bool:
        if not self.holds(job_id, receipt):
            return False
        msg = self._leased.pop(job_id)
        msg.done = True
        return True

    def release(self, job_id: str, receipt: int) -> bool:
        if not self.holds(job_id, receipt):
            return False
        msg = self._leased.pop(job_id)
        msg.leased_until = None
        self._visible[job_id] = msg
        return True

    def lapse(self, job_id: str, receipt: int, now: float) -> bool:
        """The lease ran out: visible again (True), unless acked or re-leased meanwhile."""
        msg = self._leased.get(job_id)
        if msg is None or msg.receipt != receipt or msg.leased_until is None or msg.leased_until > now + 1e-9:
            return False
        return self.release(job_id, receipt)

    def stats(self, now: float) -> QueueStats:
        oldest = min((m.sent_at for m in self._visible.values()), default=None)
        return QueueStats(
            visible=self.visible,
            in_flight=self.in_flight,
            delayed=0,
            dead=len(self.dead),
            oldest_age=None if oldest is None else max(0.0, now - oldest),
        )
