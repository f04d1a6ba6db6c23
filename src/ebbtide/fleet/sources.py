"""The controller's ports backed by the real queue and catalog."""

from __future__ import annotations

import logging
import statistics

from ebbtide.catalog.base import Catalog
from ebbtide.catalog.records import WorkerRecord
from ebbtide.catalog.states import JobState
from ebbtide.clock import Clock
from ebbtide.fleet.causes import DecisionRecord, render
from ebbtide.fleet.model import ARRIVAL_WINDOW, QueueView, WorkerView
from ebbtide.queue.base import Queue
from ebbtide.reconcile import reconcile_dead_letters

log = logging.getLogger(__name__)

RECONCILE_EVERY = 60.0  # seconds between sweeps of dead letters the catalog has not seen


class CatalogQueueSource:
    """Queue depth from the queue; media seconds and arrivals from the catalog's job rows."""

    def __init__(self, queue: Queue, catalog: Catalog, clock: Clock, window: float = ARRIVAL_WINDOW) -> None:
        self.queue, self.catalog, self.clock, self.window = queue, catalog, clock, window
        self._reconciled_at: float | None = None

    def observe_queue(self) -> QueueView:
        now = self.clock.now()
        if self._reconciled_at is None or now - self._reconciled_at >= RECONCILE_EVERY:
            # a job the queue dead-lettered on its own would otherwise count as running forever
            self._reconciled_at = now
            try:
                reconcile_dead_letters(self.queue, self.catalog)
            except Exception:
                log.exception("dead-letter reconcile failed")
        stats = self.queue.stats()
        queued = self.catalog.list_jobs(state=JobState.QUEUED)
        running = self.catalog.list_jobs(state=JobState.RUNNING)
        known_q = [j.work_seconds for j in queued if j.work_seconds]
        known_r = [j.work_seconds * (1 - j.progress) for j in running if j.work_seconds]
        recent = [j for j in (*queued, *running) if j.created_at >= now - self.window]
        done = self.catalog.list_jobs(state=JobState.SUCCEEDED, limit=200)
        recent += [j for j in done if j.created_at >= now - self.window]
        return QueueView.from_stats(
            stats,
            waiting_work_seconds=float(sum(known_q)),
            running_work_seconds=float(sum(known_r)),
            waiting_unknown=max(0, stats.visible + stats.delayed - len(known_q)),
            running_unknown=max(0, stats.in_flight - len(known_r)),
            arrival_rate=len(recent) / self.window,
        )


def worker_view(rec: WorkerRecord, job_seconds: float | None = None) -> WorkerView:
    return WorkerView(
        id=rec.id, pool=rec.pool, state=rec.state, started_at=rec.started_at, last_seen=rec.last_seen,
        job_id=rec.job_id, progress=rec.progress, job_work_seconds=job_seconds, drain=rec.drain,
        provider_id=rec.provider_id, pid=rec.pid,
    )


class CatalogFleetState:
    """Workers, measured speeds and decision records, all in the catalog."""

    def __init__(self, catalog: Catalog, pools: tuple[str, ...] = ()) -> None:
        self.catalog = catalog
        self.pools = pools

    def workers(self) -> list[WorkerView]:
        running = {j.id: j.work_seconds for j in self.catalog.list_jobs(state=JobState.RUNNING)}
        return [worker_view(r, running.get(r.job_id) if r.job_id else None)
                for r in self.catalog.list_workers()]

    def speeds(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pool in self.pools:
            s = [v for v in self.catalog.recent_speeds(pool) if v > 0]
            if s:
                out[pool] = statistics.median(s)
        return out

    def register(self, worker_id: str, pool: str, provider_id: str | None, price_per_hour: float) -> None:
        self.catalog.register_worker(worker_id, pool, provider_id, price_per_hour)

    def set_drain(self, worker_id: str, drain: bool = True) -> None:
        self.catalog.set_drain(worker_id, drain)

    def mark_gone(self, worker_id: str) -> None:
        self.catalog.mark_worker_gone(worker_id)

    def record(self, rec: DecisionRecord) -> None:
        """The typed record is kept as columns; the sentence is rendered here, at the edge."""
        err = f"{rec.error.op}: {rec.error.message}" if rec.error else None
        self.catalog.record_decision(
            rec.pool, rec.policy, rec.desired, rec.running, rec.busy, rec.launched, rec.retired,
            render(rec), at=rec.at, cause=str(rec.cause), notes=tuple(str(n) for n, _ in rec.notes),
            error=err,
        )
