"""Read-only depth of a Node.js BullMQ queue, so the fleet can scale workers it does not run.

BullMQ keeps, under `<prefix>:<queue>:` (prefix `bull` by default): `wait` (list), `prioritized`,
`delayed`, `failed`, `completed`, `waiting-children` (zsets), `active` (list), `meta` (hash: the
`version` that wrote the queue, `paused` while paused) and one hash per job (field `timestamp`, ms).

What "waiting" means differs by major version, and this module reproduces each exactly (checked
against the real BullMQ 5.x and 6.x from npm in tests/queue/test_bullmq.py):

- BullMQ ≤ 5: `pause()` renames `wait` to `paused`; `getWaitingCount()` = LLEN wait + LLEN paused,
  and `getJobCounts()` has a `paused` entry.
- BullMQ ≥ 6: jobs stay in `wait` and `meta.paused` is set; `getWaitingCount()` = LLEN wait, and
  `getJobCounts()` has no `paused` entry.

Both count a legacy marker (`0:…` at the tail of the list) out, and neither counts prioritized jobs
as waiting. For scaling, `stats().visible` is what a worker could take now: waiting + prioritized,
and 0 while the queue is paused (workers would only sit idle). Nothing is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import redis as redis_lib

from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.errors import ConfigError
from ebbtide.queue.base import QueueStats

DEFAULT_PREFIX = "bull"
_VERSION = re.compile(r"^bullmq:(\d+)\.")
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")


@dataclass(frozen=True)
class BullMQUrl:
    """`bullmq://[:password@]host[:port]/db/queue[?prefix=bull&tls=1]`."""

    redis_url: str
    queue: str
    prefix: str = DEFAULT_PREFIX


def parse_bullmq_url(url: str) -> BullMQUrl:
    parts = urlsplit(url)
    segs = [s for s in parts.path.split("/") if s]
    hint = "bullmq://host:6379/0/videoProcessingQueue (db, then the name given to new Queue())"
    if parts.scheme != "bullmq" or not parts.hostname or len(segs) != 2 or not segs[0].isdigit():
        raise ConfigError(f"{url!r} is not a BullMQ depth source URL", hint=hint)
    queue = unquote(segs[1])
    if not _NAME.match(queue):
        raise ConfigError(f"BullMQ queue name {queue!r} is not valid", hint=hint)
    q = parse_qs(parts.query)
    prefix = q.get("prefix", [DEFAULT_PREFIX])[0]
    scheme = "rediss" if q.get("tls", ["0"])[0] in ("1", "true") else "redis"
    auth = f":{parts.password}@" if parts.password else ""
    port = parts.port or 6379
    return BullMQUrl(f"{scheme}://{auth}{parts.hostname}:{port}/{segs[0]}", queue, prefix)


@dataclass(frozen=True)
class BullMQCounts:
    version: str | None  # as BullMQ wrote it in meta, e.g. "bullmq:6.7.0"
    wait: int  # the `wait` list, marker excluded
    paused_list: int  # the legacy `paused` list (BullMQ ≤ 5 moves waiting jobs here while paused)
    prioritized: int
    active: int
    delayed: int
    failed: int
    completed: int
    waiting_children: int
    is_paused: bool
    oldest_age: float | None

    @property
    def major(self) -> int:
        m = _VERSION.match(self.version or "")
        return int(m.group(1)) if m else 6  # unknown: read as the current layout

    @property
    def waiting(self) -> int:
        """Exactly what this version's `Queue.getWaitingCount()` returns."""
        return self.wait + (self.paused_list if self.major <= 5 else 0)

    def job_counts(self) -> dict[str, int]:
        """Exactly what this version's `Queue.getJobCounts()` returns (no arguments)."""
        out = {
            "active": self.active,
            "completed": self.completed,
            "delayed": self.delayed,
            "failed": self.failed,
            "prioritized": self.prioritized,
            "waiting": self.wait,
            "waiting-children": self.waiting_children,
        }
        if self.major <= 5:
            out["paused"] = self.paused_list
        return out

    @property
    def runnable(self) -> int:
        """Jobs a worker could take now: none while paused."""
        return 0 if self.is_paused else self.wait + self.prioritized


class BullMQDepth:
    """A DepthSource over one BullMQ queue; `stats()` maps runnable→visible, active→in_flight,
    delayed→delayed, failed→dead."""

    def __init__(
        self, url: str, queue: str, prefix: str = DEFAULT_PREFIX, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        if not queue or ":" in queue:
            raise ConfigError(
                f"BullMQ queue name {queue!r} is not valid", hint="give the name passed to new Queue()"
            )
        self.r = redis_lib.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
        self.base = f"{prefix}:{queue}:"
        self.queue = queue
        self.clock = clock

    @classmethod
    def from_url(cls, url: str, clock: Clock = SYSTEM_CLOCK) -> BullMQDepth:
        u = parse_bullmq_url(url)
        return cls(u.redis_url, u.queue, u.prefix, clock)

    def _list_len(self, values: tuple[int, bytes | None]) -> int:
        length, tail = values
        # a legacy "0:<ts>" marker at the tail is not a job (BullMQ's getCounts drops it too)
        return max(0, int(length) - 1) if tail is not None and tail.startswith(b"0:") else int(length)

    def counts(self) -> BullMQCounts:
        k = self.base
        pipe = self.r.pipeline(transaction=True)
        pipe.hget(k + "meta", "version")
        pipe.hexists(k + "meta", "paused")
        pipe.llen(k + "wait")
        pipe.lindex(k + "wait", -1)
        pipe.llen(k + "paused")
        pipe.lindex(k + "paused", -1)
        pipe.zcard(k + "prioritized")
        pipe.llen(k + "active")
        pipe.zcard(k + "delayed")
        pipe.zcard(k + "failed")
        pipe.zcard(k + "completed")
        pipe.zcard(k + "waiting-children")
        got = pipe.execute()
        version, paused_flag, wlen, wtail, plen, ptail = got[:6]
        prio, active, delayed, failed, completed, children = got[6:]
        wait = self._list_len((wlen, wtail))
        paused_list = self._list_len((plen, ptail))
        oldest_age = None
        oldest_id = wtail if wait else (ptail if paused_list else None)
        if oldest_id is not None and not oldest_id.startswith(b"0:"):
            ts = self.r.hget(k + oldest_id.decode(errors="replace"), "timestamp")
            if ts is not None:
                oldest_age = max(0.0, self.clock.now() - int(ts) / 1000)
        return BullMQCounts(
            version=version.decode() if version else None,
            wait=wait,
            paused_list=paused_list,
            prioritized=int(prio),
            active=int(active),
            delayed=int(delayed),
            failed=int(failed),
            completed=int(completed),
            waiting_children=int(children),
            is_paused=bool(paused_flag),
            oldest_age=oldest_age,
        )

    def stats(self) -> QueueStats:
        c = self.counts()
        return QueueStats(
            visible=c.runnable, in_flight=c.active, delayed=c.delayed, dead=c.failed, oldest_age=c.oldest_age
        )

    def close(self) -> None:
        self.r.close()
