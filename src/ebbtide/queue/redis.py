"""Redis as the job queue: sorted sets hold visibility deadlines, Lua scripts make leasing atomic.

Keys, all under `ebbtide:<name>:`:
- `msg:<id>`  hash — body, sent_at, receive_count, receipt (of the current lease), reason, dead_at
- `pending`   zset — messages nobody holds, scored by when they become visible (later = delayed)
- `leased`    zset — held messages, scored by lease end; an expired score is visible again
- `dead`      zset — dead letters, scored by when they died
- `dedup:<d>` string — first message id for a dedup id, expiring after 5 minutes
- `wake`      list — a token per send, so long pollers BLPOP instead of spinning

Each lease has its own receipt: a stale ack/extend/release returns False and changes nothing.
Times come from the injected Clock, so hosts sharing a queue need synchronised clocks (NTP).
`stats().oldest_age` reads the first visible message of each set, which is the oldest unless
messages were released with different delays.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlparse

import redis as redis_lib
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

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
from ebbtide.queue.sqlite import DEDUP_WINDOW, POLL_MAX

# the driver's "server gone" errors (BusyLoadingError, while Redis reloads its AOF, is one)
_DRIVER_DOWN = (redis_lib.ConnectionError, redis_lib.TimeoutError)
# redis-py retries a failed command 10 times by itself (jittered, up to 1 s apart): a blink is worth
# two quick retries, a server that is down should reach the outage backoff (outage.py) at once
_DRIVER_RETRY = Retry(ExponentialBackoff(cap=0.2, base=0.05), 2)
_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(fn: _F) -> _F:
    """A public call: connection errors become BackendUnavailable; redis-py reconnects next call."""

    @functools.wraps(fn)
    def wrapper(self: RedisQueue, *args: Any, **kwargs: Any) -> Any:
        with self.outage.guard(_DRIVER_DOWN):
            return fn(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


WAKE_TOKENS = 64  # the wake list never grows past this

# KEYS: pending, leased, dead. ARGV: now, lease_until, n, max_receives, prefix, receipt_1..receipt_n
_LEASE = """
local now, until_, n, maxr, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
    tonumber(ARGV[4]), ARGV[5]
local out, taken = {}, 0
while taken < n do
  local a = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
  local b = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
  local id, from
  if a[1] and (not b[1] or tonumber(a[2]) <= tonumber(b[2])) then id, from = a[1], KEYS[1]
  elseif b[1] then id, from = b[1], KEYS[2]
  else break end
  redis.call('ZREM', from, id)
  local key = prefix .. 'msg:' .. id
  local f = redis.call('HMGET', key, 'body', 'sent_at', 'receive_count')
  if f[1] then
    local count = tonumber(f[3] or '0')
    if count >= maxr then
      redis.call('HSET', key, 'reason', 'received ' .. count .. ' times (max_receives=' .. maxr .. ')',
                 'dead_at', ARGV[1])
      redis.call('HDEL', key, 'receipt')
      redis.call('ZADD', KEYS[3], now, id)
    else
      taken = taken + 1
      local receipt = ARGV[5 + taken]
      redis.call('HSET', key, 'receipt', receipt, 'receive_count', count + 1)
      redis.call('ZADD', KEYS[2], until_, id)
      table.insert(out, {id, receipt, f[1], count + 1, f[2]})
    end
  end
end
return out
"""

# KEYS: msg key, leased. ARGV: id, receipt. Returns 1 if this receipt holds the message.
_HOLDS = """
if redis.call('HGET', KEYS[1], 'receipt') ~= ARGV[2] or not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  return 0
end
"""

_ACK = (
    _HOLDS
    + """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
"""
)

_EXTEND = (
    _HOLDS
    + """
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""
)

# KEYS: msg, leased, pending. ARGV: id, receipt, visible_at
_RELEASE = (
    _HOLDS
    + """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], 'receipt')
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
"""
)

# KEYS: msg, leased, dead. ARGV: id, receipt, now, reason
_BURY = (
    _HOLDS
    + """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], 'receipt')
redis.call('HSET', KEYS[1], 'reason', ARGV[4], 'dead_at', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
"""
)

# KEYS: msg, dead, pending. ARGV: id, now
_REDRIVE = """
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], 'reason', 'dead_at', 'receipt')
redis.call('HSET', KEYS[1], 'receive_count', 0, 'sent_at', ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
"""


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisQueue:
    def __init__(
        self, url: str, name: str = "jobs", max_receives: int = 5, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.name = name
        self.max_receives = max_receives
        self.clock = clock
        self.r = redis_lib.Redis.from_url(
            url, socket_connect_timeout=5, health_check_interval=30, retry=_DRIVER_RETRY
        )
        where = urlparse(url)
        self.outage = Outage(
            "queue", f"redis {where.hostname}:{where.port or 6379}",
            hint="check queue.url and that Redis is running",
        )
        try:
            self.r.ping()
        except redis_lib.RedisError as e:
            raise BackendUnavailable(
                f"cannot reach the Redis queue at {where.hostname}:{where.port or 6379}: {e}",
                hint="check queue.url and that Redis is running", part="queue",
            ) from None
        self.prefix = f"ebbtide:{name}:"
        self.k_pending, self.k_leased = self.prefix + "pending", self.prefix + "leased"
        self.k_dead, self.k_wake = self.prefix + "dead", self.prefix + "wake"
        self._lease = self.r.register_script(_LEASE)
        self._ack = self.r.register_script(_ACK)
        self._extend = self.r.register_script(_EXTEND)
        self._release = self.r.register_script(_RELEASE)
        self._bury = self.r.register_script(_BURY)
        self._redrive = self.r.register_script(_REDRIVE)

    def _msg(self, message_id: str) -> str:
        return f"{self.prefix}msg:{message_id}"

    # -- producer -------------------------------------------------------------------------------

    @_guarded
    def send(self, body: Mapping[str, Any] | str, delay: float = 0, dedup_id: str | None = None) -> str:
        message_id = uuid.uuid4().hex
        if dedup_id is not None:
            key = f"{self.prefix}dedup:{dedup_id}"
            if not self.r.set(key, message_id, nx=True, ex=int(DEDUP_WINDOW)):
                first = self.r.get(key)
                if first is not None:
                    return _s(first)
                self.r.set(key, message_id, ex=int(DEDUP_WINDOW))  # expired in between
        now = self.clock.now()
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(
            self._msg(message_id),
            mapping={"body": encode_body(body), "sent_at": repr(now), "receive_count": 0},
        )
        pipe.zadd(self.k_pending, {message_id: now + max(0.0, delay)})
        pipe.lpush(self.k_wake, "1")
        pipe.ltrim(self.k_wake, 0, WAKE_TOKENS - 1)
        pipe.execute()
        return message_id

    # -- consumer -------------------------------------------------------------------------------

    @_guarded
    def receive(self, wait: float = 0, lease: float = 120, max_messages: int = 1) -> list[Delivery]:
        # sends wake us through the wake list; polling only finds expiries, so back off further
        return long_poll(lambda: self._take(lease, max_messages), self._pause, wait, self.clock, POLL_MAX * 4)

    def _pause(self, seconds: float) -> None:
        self.r.blpop([self.k_wake], timeout=max(0.01, seconds))

    def _take(self, lease: float, max_messages: int) -> list[Delivery]:
        while True:
            now = self.clock.now()
            receipts = [uuid.uuid4().hex for _ in range(max_messages)]
            rows = self._lease(
                keys=[self.k_pending, self.k_leased, self.k_dead],
                args=[repr(now), repr(now + lease), max_messages, self.max_receives, self.prefix, *receipts],
            )
            if not rows:
                return []
            out: list[Delivery] = []
            for mid, receipt, raw, count, sent_at in rows:
                d = Delivery(_s(mid), _s(receipt), {}, int(count), float(_s(sent_at)), now + lease)
                try:
                    body = decode_body(raw if isinstance(raw, bytes) else str(raw))
                except BadMessage as e:
                    self.dead_letter(d, str(e))
                    continue
                out.append(
                    Delivery(d.message_id, d.receipt, body, d.receive_count, d.sent_at, d.leased_until)
                )
            if out:
                return out  # else every one was malformed: look again behind them

    def _held(self, delivery: Delivery) -> tuple[list[str], list[str]]:
        return [self._msg(delivery.message_id), self.k_leased], [delivery.message_id, delivery.receipt]

    @_guarded
    def extend(self, delivery: Delivery, lease: float) -> bool:
        keys, args = self._held(delivery)
        return bool(self._extend(keys=keys, args=[*args, repr(self.clock.now() + lease)]))

    @_guarded
    def ack(self, delivery: Delivery) -> bool:
        keys, args = self._held(delivery)
        return bool(self._ack(keys=keys, args=args))

    @_guarded
    def release(self, delivery: Delivery, delay: float = 0) -> bool:
        keys, args = self._held(delivery)
        visible_at = self.clock.now() + max(0.0, delay)
        ok = bool(self._release(keys=[*keys, self.k_pending], args=[*args, repr(visible_at)]))
        if ok and delay <= 0:
            self.r.lpush(self.k_wake, "1")
        return ok

    @_guarded
    def dead_letter(self, delivery: Delivery, reason: str) -> bool:
        keys, args = self._held(delivery)
        return bool(self._bury(keys=[*keys, self.k_dead], args=[*args, repr(self.clock.now()), reason]))

    # -- operators ------------------------------------------------------------------------------

    @_guarded
    def stats(self) -> QueueStats:
        now = self.clock.now()
        pipe = self.r.pipeline(transaction=True)
        pipe.zcount(self.k_pending, "-inf", now)
        pipe.zcount(self.k_pending, f"({now}", "+inf")
        pipe.zcount(self.k_leased, "-inf", now)
        pipe.zcount(self.k_leased, f"({now}", "+inf")
        pipe.zcard(self.k_dead)
        pipe.zrangebyscore(self.k_pending, "-inf", now, start=0, num=1)
        pipe.zrangebyscore(self.k_leased, "-inf", now, start=0, num=1)
        ready, delayed, expired, in_flight, dead, first_a, first_b = pipe.execute()
        sent = [self.r.hget(self._msg(_s(m)), "sent_at") for m in (*first_a, *first_b)]
        times = [float(_s(t)) for t in sent if t is not None]
        return QueueStats(
            visible=int(ready) + int(expired),
            in_flight=int(in_flight),
            delayed=int(delayed),
            dead=int(dead),
            oldest_age=max(0.0, now - min(times)) if times else None,
        )

    @_guarded
    def live_job_ids(self) -> set[str]:
        ids = {_s(m) for key in (self.k_pending, self.k_leased) for m in self.r.zrange(key, 0, -1)}
        pipe = self.r.pipeline(transaction=False)
        for mid in ids:
            pipe.hget(self._msg(mid), "body")
        return job_ids_of([_s(b) for b in pipe.execute() if b is not None])

    @_guarded
    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        out = []
        for mid in self.r.zrange(self.k_dead, 0, limit - 1):
            message_id = _s(mid)
            f = self.r.hmget(self._msg(message_id), ["body", "reason", "receive_count", "dead_at"])
            if f[0] is None:
                continue
            out.append(
                DeadLetter(message_id, _s(f[0]), _s(f[1] or b""), int(_s(f[2] or 0)), float(_s(f[3] or 0)))
            )
        return out

    @_guarded
    def redrive(self, message_ids: Sequence[str] | None = None) -> int:
        ids = [_s(m) for m in self.r.zrange(self.k_dead, 0, -1)] if message_ids is None else message_ids
        now = repr(self.clock.now())
        moved = sum(
            int(self._redrive(keys=[self._msg(m), self.k_dead, self.k_pending], args=[m, now])) for m in ids
        )
        if moved:
            self.r.lpush(self.k_wake, "1")
        return moved

    @_guarded
    def purge(self) -> None:
        keys = list(self.r.scan_iter(match=self.prefix.replace("*", r"\*") + "*", count=500))
        for i in range(0, len(keys), 500):
            self.r.delete(*keys[i : i + 500])

    def close(self) -> None:
        self.r.close()

    def __repr__(self) -> str:
        return f"RedisQueue({self.prefix!r})"
