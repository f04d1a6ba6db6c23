"""A point-in-time picture of queue and fleet for `ebbtide status` (and anything else that shows it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ebbtide.catalog.base import Catalog
from ebbtide.catalog.records import FleetDecision, WorkerRecord
from ebbtide.catalog.states import WorkerState
from ebbtide.config import PoolConfig
from ebbtide.errors import NotFound
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
    # job id -> media id of the jobs workers hold: people know videos by the id `submit` printed
    videos: dict[str, str] = field(default_factory=dict)


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
    videos = {}
    for w in workers:
        if w.job_id:
            try:
                media_id = catalog.get_job(w.job_id).media_id
            except NotFound:  # finished and deleted since the worker's last heartbeat
                continue
            if media_id:
                videos[w.job_id] = media_id
    return Snapshot(services.clock.now(), services.queue.stats(), pools, workers, videos)


def _line(p: PoolConfig, workers: tuple[WorkerRecord, ...], last: FleetDecision | None) -> PoolLine:
    mine = [w for w in workers if w.pool == p.name and w.state != WorkerState.DRAINING and not w.drain]
    busy = sum(1 for w in mine if w.state == WorkerState.BUSY or w.job_id)
    if last is None:
        return PoolLine(p.name, p.provider, None, len(mine), busy, p.min, p.max)
    return PoolLine(p.name, p.provider, last.desired, len(mine), busy, p.min, p.max, last.reason, last.cause,
                    last.error)
