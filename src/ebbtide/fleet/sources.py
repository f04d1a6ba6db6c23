"""The controller's ports backed by the real queue and catalog."""

from __future__ import annotations

import logging
import statistics
from dataclasses import replace

from ebbtide.catalog.base import Catalog
from ebbtide.catalog.records import WorkerRecord
from ebbtide.catalog.states import JobState, WorkerState
from ebbtide.clock import Clock
from ebbtide.errors import BackendUnavailable
from ebbtide.fleet.causes import DecisionRecord, render
from ebbtide.fleet.model import ARRIVAL_WINDOW, QueueView, WaitingJob, WorkerView
from ebbtide.fleet.policies.deadline import MAX_PLAN_JOBS
from ebbtide.queue.base import DepthSource, Queue
from ebbtide.reconcile import reap_silent, reconcile_dead_letters, resend_stranded

log = logging.getLogger(__name__)

RECONCILE_EVERY = 60.0  # seconds between sweeps of dead letters the catalog has not seen
RESEND_EVERY = 5.0  # seconds between sweeps for queued jobs without a message, and silent workers


class CatalogQueueSource:
    """Queue depth from the queue; media seconds and arrivals from the catalog's job rows."""

    def __init__(
        self, queue: Queue, catalog: Catalog, clock: Clock, window: float = ARRIVAL_WINDOW,
        resend_after: float = 20.0, silent_timeout: float = 300.0,
    ) -> None:
        self.queue, self.catalog, self.clock, self.window = queue, catalog, clock, window
        self.resend_after, self.silent_timeout = resend_after, silent_timeout
        self._reconciled_at: float | None = None
        self._resent_at: float | None = None

    def _sweep(self, now: float) -> None:
        if self._resent_at is None or now - self._resent_at >= RESEND_EVERY:
            self._resent_at = now
            try:
                reap_silent(self.catalog, self.silent_timeout)  # their jobs go back to queued
                resend_stranded(self.queue, self.catalog, self.resend_after, now)
            except BackendUnavailable:
                self._resent_at = None  # again at the next tick: right after the server returns
                # (logged once by the backend; the observation below reports it)
            except Exception:
                log.exception("re-send reconcile failed")
        if self._reconciled_at is None or now - self._reconciled_at >= RECONCILE_EVERY:
            # a job the queue dead-lettered on its own would otherwise count as running forever
            self._reconciled_at = now
            try:
                reconcile_dead_letters(self.queue, self.catalog)
            except BackendUnavailable:
                self._reconciled_at = None  # again as soon as it is back
            except Exception:
                log.exception("dead-letter reconcile failed")

    def observe_queue(self) -> QueueView:
        now = self.clock.now()
        self._sweep(now)
        stats = self.queue.stats()
        queued = self.catalog.list_jobs(state=JobState.QUEUED)
        # jobs queued in the catalog that the queue does not show (a message lost, or not re-sent
        # yet) are waiting all the same: the fleet must not sit at zero while they wait
        visible = max(stats.visible, len(queued) - stats.delayed - stats.in_flight)
        if visible != stats.visible:
            stats = replace(stats, visible=visible)
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
            # uploads, not jobs: a chunked upload's parts are one arrival (as in the simulator)
            arrival_rate=len({j.media_id or j.id for j in recent}) / self.window,
            waiting_uploads=len({j.media_id or j.id for j in queued}),
            waiting_jobs=tuple(
                WaitingJob(j.work_seconds, j.media_id or j.id, max(0.0, now - j.created_at))
                for j in sorted(queued, key=lambda j: j.created_at)[:MAX_PLAN_JOBS]
            ),
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

    def observed(self, worker_id: str, pool: str, state: WorkerState, provider_id: str | None) -> None:
        """A foreign worker seen through its pool's probe: its heartbeat, written for it."""
        self.catalog.heartbeat(worker_id, pool, state, provider_id=provider_id)

    def record(self, rec: DecisionRecord) -> None:
        """The typed record is kept as columns; the sentence is rendered here, at the edge."""
        err = f"{rec.error.op}: {rec.error.message}" if rec.error else None
        self.catalog.record_decision(
            rec.pool, rec.policy, rec.desired, rec.running, rec.busy, rec.launched, rec.retired,
            render(rec), at=rec.at, cause=str(rec.cause), notes=tuple(str(n) for n, _ in rec.notes),
            error=err,
        )


class DepthQueueSource:
    """Queue depth from a depth source the fleet does not consume (a BullMQ or foreign SQS queue).

    Nothing is known of each job's media length there, so every job counts as unknown work
    (the policy assumes `default_job_seconds`), and arrivals are the growth of the backlog seen
    between observations.
    """

    def __init__(self, source: DepthSource, clock: Clock, window: float = ARRIVAL_WINDOW) -> None:
        self.source, self.clock, self.window = source, clock, window
        self._seen: list[tuple[float, int]] = []

    def observe_queue(self) -> QueueView:
        stats = self.source.stats()
        now = self.clock.now()
        total = stats.visible + stats.delayed + stats.in_flight
        self._seen = [(t, n) for t, n in self._seen if t >= now - self.window] + [(now, total)]
        grown = sum(max(0, b[1] - a[1]) for a, b in zip(self._seen, self._seen[1:], strict=False))
        return QueueView.from_stats(
            stats,
            waiting_work_seconds=0.0,
            running_work_seconds=0.0,
            waiting_unknown=stats.visible + stats.delayed,
            running_unknown=stats.in_flight,
            arrival_rate=grown / self.window,
        )
