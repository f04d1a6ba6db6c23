"""A point-in-time picture of queue and fleet for `ebbtide status` (and anything else that shows it)."""

from __future__ import annotations

from dataclasses import dataclass

from ebbtide.catalog.base import Catalog
from ebbtide.catalog.records import FleetDecision, WorkerRecord
from ebbtide.catalog.states import WorkerState
from ebbtide.config import PoolConfig
from ebbtide.queue.base import QueueStats
from ebbtide.services import Services


@dataclass(frozen=True)
class PoolLine:
    name: str
    provider: str
    desired: int | None  # last recorded decision; None before the first
    running: int
    busy: int
    minimum: int
    maximum: int
    reason: str = ""
    cause: str = ""
    error: str | None = None  # the pool's provider is failing (from its latest decision)


@dataclass(frozen=True)
class Snapshot:
    at: float
    queue: QueueStats
    pools: tuple[PoolLine, ...]
    workers: tuple[WorkerRecord, ...]


def latest_decisions(catalog: Catalog, limit: int = 200) -> dict[str, FleetDecision]:
    """Each pool's newest recorded decision (what `status`, the dashboard and /metrics show)."""
    last: dict[str, FleetDecision] = {}
    for d in catalog.recent_decisions(limit=limit):  # newest first
        last.setdefault(d.pool, d)
    return last


def take_snapshot(services: Services) -> Snapshot:
    catalog = services.catalog
    workers = tuple(w for w in catalog.list_workers() if w.state != WorkerState.GONE)
    last = latest_decisions(catalog)
    pools = tuple(_line(p, workers, last.get(p.name)) for p in services.settings.fleet.pools)
    return Snapshot(services.clock.now(), services.queue.stats(), pools, workers)


def _line(p: PoolConfig, workers: tuple[WorkerRecord, ...], last: FleetDecision | None) -> PoolLine:
    mine = [w for w in workers if w.pool == p.name and w.state != WorkerState.DRAINING and not w.drain]
    busy = sum(1 for w in mine if w.state == WorkerState.BUSY or w.job_id)
    if last is None:
        return PoolLine(p.name, p.provider, None, len(mine), busy, p.min, p.max)
    return PoolLine(p.name, p.provider, last.desired, len(mine), busy, p.min, p.max, last.reason, last.cause,
                    last.error)
