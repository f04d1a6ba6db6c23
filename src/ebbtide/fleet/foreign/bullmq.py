"""Busy-ness of foreign BullMQ workers, read from the queue's Redis (never written).

How a worker is matched with its instance: the worker is started with BullMQ's `name` option set
to its EC2 instance id (`new Worker(queue, fn, { name: instanceId })`, the id read from IMDS at
start), or to `<instance id>:<anything>` when one instance runs several workers (pm2 cluster:
`i-0abc…:0`, `i-0abc…:1`). BullMQ 5 and 6 then:

- name the worker's blocking Redis connection `<prefix>:<base64(queue)>:w:<name>` (CLIENT SETNAME;
  what `Queue.getWorkers()` lists): a connection so named means the worker is **connected**;
- write `pb` (processedBy) = `<name>` into the job's hash when the worker moves it to `active`, and
  hold `<prefix>:<queue>:<job id>:lock` (the worker's token, renewed every lockDuration/2) while it
  works: an active job with `pb` and a live lock means its instance is **busy**.

When an active job has no `pb` (a worker started without `name`, or a BullMQ older than
`processedBy`), who holds it cannot be known: instances holding no attributable lock are then
`busy=None` and the controller counts them busy while anything is active. Redis must allow
CLIENT LIST (ElastiCache and self-hosted do; GCP Memorystore has no CLIENT SETNAME).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence

import redis as redis_lib

from ebbtide.config.sections import PoolConfig
from ebbtide.fleet.foreign.base import BusyEvidence, ForeignView, ProbeResult
from ebbtide.fleet.providers.base import Instance
from ebbtide.queue.bullmq import DEFAULT_PREFIX, parse_bullmq_url


def instance_of(worker_name: str) -> str:
    """The instance a BullMQ worker name stands for: `i-0abc` and `i-0abc:2` → `i-0abc`."""
    return worker_name.split(":", 1)[0]


def worker_names(connection_names: Iterable[str], prefix: str, queue: str) -> list[str]:
    """This queue's named workers among Redis connection names (CLIENT LIST `name=`), pure."""
    b64 = base64.b64encode(queue.encode()).decode()
    marker = f"{prefix}:{b64}:w:"
    return [n[len(marker):] for n in connection_names if n.startswith(marker) and len(n) > len(marker)]


def views_from(
    instances: Sequence[Instance], connected: Sequence[str], held: Sequence[tuple[str, str | None, bool]],
) -> ProbeResult:
    """Pure: `connected` worker names; `held` = (job id, processedBy or None, lock alive) per active job."""
    online = {instance_of(n) for n in connected}
    locks: dict[str, list[str]] = {}
    unattributed = 0
    for job_id, pb, alive in held:
        if pb is None:
            unattributed += 1
        elif alive:
            locks.setdefault(instance_of(pb), []).append(job_id)
    views: dict[str, ForeignView] = {}
    for inst in instances:
        jobs = tuple(locks.get(inst.id, ()))
        up = inst.id in online
        if jobs:
            views[inst.id] = ForeignView(inst.id, up, True, BusyEvidence.LOCK_HELD, jobs)
        elif unattributed:
            views[inst.id] = ForeignView(inst.id, up, None, BusyEvidence.IN_FLIGHT_AGGREGATE)
        elif up:
            views[inst.id] = ForeignView(inst.id, True, False, BusyEvidence.NO_LOCK)
        else:
            views[inst.id] = ForeignView(inst.id, False, None, BusyEvidence.UNKNOWN)
    return ProbeResult(views, len(held))


class BullMQProbe:
    """A `BusyProbe` over one BullMQ queue: CLIENT LIST, LRANGE active, the jobs' `pb` and locks."""

    def __init__(self, redis_url: str, queue: str, prefix: str = DEFAULT_PREFIX) -> None:
        self.r = redis_lib.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=10)
        self.queue, self.prefix = queue, prefix
        self.base = f"{prefix}:{queue}:"

    @classmethod
    def from_url(cls, url: str, pool: PoolConfig | None = None) -> BullMQProbe:
        u = parse_bullmq_url(url)
        return cls(u.redis_url, u.queue, u.prefix)

    def connected(self) -> list[str]:
        names = [str(c.get("name") or "") for c in self.r.client_list()]
        return worker_names(names, self.prefix, self.queue)

    def active(self) -> list[tuple[str, str | None, bool]]:
        raw: list[bytes] = self.r.lrange(self.base + "active", 0, -1)  # type: ignore[assignment]
        ids = [i.decode(errors="replace") for i in raw]
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(self.base + job_id, "pb")
            pipe.exists(self.base + job_id + ":lock")
        got = pipe.execute()
        out: list[tuple[str, str | None, bool]] = []
        for n, job_id in enumerate(ids):
            pb, alive = got[2 * n], got[2 * n + 1]
            out.append((job_id, pb.decode(errors="replace") if pb else None, bool(alive)))
        return out

    def probe(self, instances: Sequence[Instance]) -> ProbeResult:
        held = self.active()  # locks before connections: a job finishing in between reads as busy
        return views_from(instances, self.connected(), held)

    def close(self) -> None:
        self.r.close()
