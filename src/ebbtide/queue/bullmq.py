"""Read-only depth of a Node.js BullMQ queue, so the fleet can scale workers it does not run.

BullMQ keeps, under `<prefix>:<queue>:` (prefix `bull` by default): `wait` (list, new jobs pushed
on the left, workers take from the right), `prioritized` (zset), `active` (list), `delayed`
(zset), `failed` (zset), `paused` (list, older BullMQ versions put jobs there while paused) and
one hash per job (`<prefix>:<queue>:<id>`, field `timestamp` in ms). Waiting work is
`LLEN wait + ZCARD prioritized`, as BullMQ's own getWaitingCount counts it. Nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis as redis_lib

from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.errors import ConfigError
from ebbtide.queue.base import QueueStats


@dataclass(frozen=True)
class BullMQCounts:
    wait: int
    prioritized: int
    active: int
    delayed: int
    failed: int
    paused: int
    oldest_age: float | None

    @property
    def waiting(self) -> int:
        return self.wait + self.prioritized


class BullMQDepth:
    """A DepthSource over one BullMQ queue; `stats()` maps waiting→visible, active→in_flight, failed→dead."""

    def __init__(self, url: str, queue: str, prefix: str = "bull", clock: Clock = SYSTEM_CLOCK) -> None:
        if not queue or ":" in queue:
            raise ConfigError(
                f"BullMQ queue name {queue!r} is not valid", hint="give the name passed to new Queue()"
            )
        self.r = redis_lib.Redis.from_url(url, socket_connect_timeout=5)
        self.base = f"{prefix}:{queue}:"
        self.clock = clock

    def counts(self) -> BullMQCounts:
        k = self.base
        pipe = self.r.pipeline(transaction=True)
        pipe.llen(k + "wait")
        pipe.zcard(k + "prioritized")
        pipe.llen(k + "active")
        pipe.zcard(k + "delayed")
        pipe.zcard(k + "failed")
        pipe.llen(k + "paused")
        pipe.lindex(k + "wait", -1)  # the oldest plain waiting job
        wait, prioritized, active, delayed, failed, paused, oldest_id = pipe.execute()
        oldest_age = None
        if oldest_id is not None:
            oid = oldest_id.decode() if isinstance(oldest_id, bytes) else str(oldest_id)
            ts = self.r.hget(k + oid, "timestamp")
            if ts is not None:
                oldest_age = max(0.0, self.clock.now() - int(ts) / 1000)
        return BullMQCounts(
            int(wait), int(prioritized), int(active), int(delayed), int(failed), int(paused), oldest_age
        )

    def stats(self) -> QueueStats:
        c = self.counts()
        return QueueStats(
            visible=c.waiting, in_flight=c.active, delayed=c.delayed, dead=c.failed, oldest_age=c.oldest_age
        )

    def close(self) -> None:
        self.r.close()
