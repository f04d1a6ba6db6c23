"""BullMQ depth against the real Redis.

The Node.js producer is not run here (bullmq is an npm package the project does not install);
its key layout is written by hand exactly as BullMQ's Lua scripts write it — the Redis is real.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from ebbtide.clock import VirtualClock
from ebbtide.queue.base import DepthSource
from ebbtide.queue.bullmq import BullMQDepth


@pytest.fixture()
def bull(redis_url: str) -> Iterator[tuple[redis.Redis, str]]:
    r = redis.Redis.from_url(redis_url)
    name = f"video{uuid.uuid4().hex[:8]}"
    yield r, name
    for key in r.scan_iter(match=f"bull:{name}:*"):
        r.delete(key)
    r.close()


def _add(r: redis.Redis, name: str, job_id: str, ts_ms: int) -> None:
    r.hset(f"bull:{name}:{job_id}", mapping={"name": "clip", "data": "{}", "timestamp": ts_ms})
    r.lpush(f"bull:{name}:wait", job_id)  # BullMQ: LPUSH for FIFO jobs, workers RPOPLPUSH


def test_depth_counts_wait_plus_prioritized(bull: tuple[redis.Redis, str], redis_url: str) -> None:
    r, name = bull
    clock = VirtualClock(start=1_700_000_100.0)
    _add(r, name, "1", 1_700_000_000_000)  # oldest: 100 s before the clock
    _add(r, name, "2", 1_700_000_050_000)
    r.zadd(f"bull:{name}:prioritized", {"3": 1, "4": 2})
    r.lpush(f"bull:{name}:active", "5")
    r.zadd(f"bull:{name}:delayed", {"6": 1_700_000_200_000})
    r.zadd(f"bull:{name}:failed", {"7": 1})
    src = BullMQDepth(redis_url, name, clock=clock)
    assert isinstance(src, DepthSource)
    c = src.counts()
    assert (c.wait, c.prioritized, c.waiting, c.active, c.delayed, c.failed) == (2, 2, 4, 1, 1, 1)
    assert c.oldest_age == pytest.approx(100.0)
    s = src.stats()
    assert (s.visible, s.in_flight, s.delayed, s.dead) == (4, 1, 1, 1)
    # a worker takes the oldest job: it moves from wait to active
    r.lmove(f"bull:{name}:wait", f"bull:{name}:active", "RIGHT", "LEFT")
    s = src.stats()
    assert (s.visible, s.in_flight) == (3, 2)
    assert s.oldest_age == pytest.approx(50.0)
    # nothing was written by the depth source
    assert r.llen(f"bull:{name}:wait") == 1
    src.close()


def test_empty_queue_and_bad_name(redis_url: str) -> None:
    src = BullMQDepth(redis_url, f"none{uuid.uuid4().hex[:8]}")
    s = src.stats()
    assert (s.visible, s.in_flight, s.delayed, s.dead, s.oldest_age) == (0, 0, 0, 0, None)
    src.close()
    from ebbtide.errors import ConfigError

    with pytest.raises(ConfigError, match="not valid"):
        BullMQDepth(redis_url, "a:b")
