"""Fleet API (`/api/fleet/…`, admins only): queue, pools, workers, decisions with reasons, cost."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from ebbtide.catalog.records import FleetDecision, WorkerRecord
from ebbtide.catalog.states import WorkerState
from ebbtide.errors import NotFound
from ebbtide.services import Services
from ebbtide.web.auth import AdminUser, ServicesDep

router = APIRouter(prefix="/api/fleet", tags=["fleet"])


class QueueOut(BaseModel):
    visible: int
    in_flight: int
    delayed: int
    dead: int
    backlog: int
    oldest_age: float | None


class PoolOut(BaseModel):
    name: str
    provider: str
    min: int
    max: int
    price_per_hour: float
    spot: bool
    desired: int | None
    running: int
    busy: int
    idle: int
    booting: int
    last_reason: str | None
    last_decision_at: float | None
    last_cause: str | None = None
    provider_error: str | None = None  # set while the pool's provider is failing


class WorkerOut(BaseModel):
    id: str
    pool: str
    state: str
    host: str
    pid: int | None
    job_id: str | None
    job_kind: str | None
    media_id: str | None
    progress: float
    speed: float | None
    started_at: float
    last_seen: float
    jobs_done: int
    drain: bool


class DecisionOut(BaseModel):
    id: int
    at: float
    pool: str
    policy: str
    desired: int
    running: int
    busy: int
    launched: int
    retired: int
    reason: str
    cause: str = ""
    notes: list[str] = []
    error: str | None = None


class CostOut(BaseModel):
    pools: dict[str, float]
    total: float


class SampleOut(BaseModel):
    at: float
    visible: int
    in_flight: int
    dead: int
    delayed: int = 0  # waiting to be retried
    workers: int
    busy: int


class HistoryOut(BaseModel):
    samples: list[SampleOut]
    decisions: list[DecisionOut]


def queue_out(services: Services) -> QueueOut:
    s = services.queue.stats()
    return QueueOut(backlog=s.backlog, **dataclasses.asdict(s))


def pools_out(
    services: Services, decisions: list[FleetDecision], workers: list[WorkerRecord]
) -> list[PoolOut]:
    """desired from the latest decision per pool; running/busy from live worker heartbeats."""
    latest: dict[str, FleetDecision] = {}
    for dec in sorted(decisions, key=lambda x: (x.at, x.id)):
        latest[dec.pool] = dec
    names = [p.name for p in services.settings.fleet.pools]
    names += sorted({w.pool for w in workers} - set(names))
    cfg = {p.name: p for p in services.settings.fleet.pools}
    out = []
    for name in names:
        live = [w for w in workers if w.pool == name and w.state != WorkerState.GONE]
        d: FleetDecision | None = latest.get(name)
        p = cfg.get(name)
        out.append(
            PoolOut(
                name=name,
                provider=p.provider if p else "external",
                min=p.min if p else 0,
                max=p.max if p else 0,
                price_per_hour=p.price_per_hour if p else 0.0,
                spot=p.spot if p else False,
                desired=d.desired if d else None,
                running=len(live),
                busy=sum(w.state == WorkerState.BUSY for w in live),
                idle=sum(w.state == WorkerState.IDLE for w in live),
                booting=sum(w.state == WorkerState.BOOTING for w in live),
                last_reason=d.reason if d else None,
                last_decision_at=d.at if d else None,
                last_cause=d.cause or None if d else None,
                provider_error=d.error if d else None,
            )
        )
    return out


def worker_out(services: Services, w: WorkerRecord) -> WorkerOut:
    kind = media_id = None
    speed = None
    progress = w.progress
    if w.job_id:
        try:
            job = services.catalog.get_job(w.job_id)
            kind, media_id, speed = job.kind, job.media_id, job.speed
            progress = job.progress if job.state == "running" else progress
        except NotFound:
            pass
    return WorkerOut(
        id=w.id,
        pool=w.pool,
        state=str(w.state),
        host=w.host,
        pid=w.pid,
        job_id=w.job_id,
        job_kind=kind,
        media_id=media_id,
        progress=progress,
        speed=speed,
        started_at=w.started_at,
        last_seen=w.last_seen,
        jobs_done=w.jobs_done,
        drain=w.drain,
    )


def decision_out(d: FleetDecision) -> DecisionOut:
    return DecisionOut.model_validate({**dataclasses.asdict(d), "notes": list(d.notes)})


@router.get("/queue", response_model=QueueOut)
def queue(_: AdminUser, services: ServicesDep) -> QueueOut:
    return queue_out(services)


@router.get("/pools", response_model=list[PoolOut])
def pools(_: AdminUser, services: ServicesDep) -> list[PoolOut]:
    return pools_out(services, services.catalog.recent_decisions(200), services.catalog.list_workers())


@router.get("/workers", response_model=list[WorkerOut])
def workers(
    _: AdminUser, services: ServicesDep, include_gone: Annotated[bool, Query()] = False
) -> list[WorkerOut]:
    recs = services.catalog.list_workers(include_gone=include_gone)
    return [worker_out(services, w) for w in sorted(recs, key=lambda w: (w.pool, w.started_at))]


@router.get("/decisions", response_model=list[DecisionOut])
def decisions(
    _: AdminUser, services: ServicesDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[DecisionOut]:
    return [decision_out(d) for d in services.catalog.recent_decisions(limit)]


@router.get("/cost", response_model=CostOut)
def cost(
    _: AdminUser, services: ServicesDep, since: Annotated[float | None, Query(ge=0, le=1e11)] = None
) -> CostOut:
    pools = services.catalog.cost_so_far(since)
    return CostOut(pools=pools, total=sum(pools.values()))


@router.get("/history", response_model=HistoryOut)
def history(request: Request, _: AdminUser, services: ServicesDep) -> HistoryOut:
    """Queue depth and workers over time (sampled here) plus the decisions behind the changes."""
    points: list[dict[str, Any]] = request.app.state.history.points()
    return HistoryOut(
        samples=[SampleOut(**p) for p in points],
        decisions=[decision_out(d) for d in services.catalog.recent_decisions(200)],
    )
