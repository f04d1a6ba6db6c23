"""Worker heartbeats and lives, fleet decisions and what the fleet has cost."""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ebbtide.catalog import convert
from ebbtide.catalog.cost import life_cost
from ebbtide.catalog.models import (
    AttemptRow,
    FleetDecisionRow,
    JobRow,
    WorkerRow,
)
from ebbtide.catalog.records import (
    FleetDecision,
    WorkerRecord,
)
from ebbtide.catalog.sql_core import (
    WORKER_ID_PATTERN,
    SqlCore,
    check_id,
    clamp_fraction,
    not_found,
    rowcount,
)
from ebbtide.catalog.states import (
    JobState,
    MediaState,
    WorkerState,
    check_worker,
)

log = logging.getLogger(__name__)


class WorkersPart(SqlCore):
    def heartbeat(
        self,
        worker_id: str,
        pool: str,
        state: WorkerState,
        job_id: str | None = None,
        progress: float = 0.0,
        host: str = "",
        pid: int | None = None,
        provider_id: str | None = None,
        price_per_hour: float = 0.0,
    ) -> WorkerRecord:
        check_id(worker_id, "worker id", WORKER_ID_PATTERN)
        state = WorkerState(state)
        p = clamp_fraction(progress, "progress")
        for tries_left in (1, 0):  # two first heartbeats of one id may race on the INSERT
            try:
                with self._tx() as s:
                    row = s.scalar(select(WorkerRow).where(WorkerRow.id == worker_id).with_for_update())
                    now = self.clock.now()
                    if row is None:
                        row = self._new_worker(worker_id, pool, state, provider_id, price_per_hour, now)
                        s.add(row)
                    elif row.state == WorkerState.GONE.value and state != WorkerState.GONE:
                        self._new_life(row, state, now)
                    elif not (row.state == WorkerState.GONE.value and state == WorkerState.GONE):
                        check_worker(WorkerState(row.state), state)
                        row.state = state.value
                    row.pool, row.last_seen = pool, now
                    row.job_id, row.progress = job_id, p
                    row.host = host or row.host
                    row.pid = pid if pid is not None else row.pid
                    row.provider_id = provider_id or row.provider_id
                    row.price_per_hour = price_per_hour or row.price_per_hour
                    if state == WorkerState.GONE:
                        row.job_id, row.stopped_at = None, row.stopped_at or now
                    return convert.worker(row)
            except IntegrityError:
                if not tries_left:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _new_worker(
        worker_id: str, pool: str, state: WorkerState, provider_id: str | None, price: float, now: float
    ) -> WorkerRow:
        return WorkerRow(
            id=worker_id,
            pool=pool,
            state=state.value,
            started_at=now,
            last_seen=now,
            host="",
            provider_id=provider_id,
            progress=0.0,
            drain=False,
            price_per_hour=price,
            jobs_done=0,
            prior_cost=0.0,
            stopped_at=now if state == WorkerState.GONE else None,
        )

    def _new_life(self, row: WorkerRow, state: WorkerState, now: float) -> None:
        """A gone worker id reporting again is a new process: bill the old life, start afresh."""
        row.prior_cost += life_cost(row.started_at, row.stopped_at, now, row.price_per_hour)
        row.prior_stopped_at = row.stopped_at
        row.state, row.started_at, row.stopped_at, row.drain = state.value, now, None, False
        log.info("worker re-registered", extra={"worker_id": row.id, "pool": row.pool})

    def get_worker(self, worker_id: str) -> WorkerRecord | None:
        with self._ro() as s:
            row = s.get(WorkerRow, worker_id)
            return convert.worker(row) if row else None

    def list_workers(self, pool: str | None = None, include_gone: bool = False) -> list[WorkerRecord]:
        stmt = select(WorkerRow).order_by(WorkerRow.started_at, WorkerRow.id)
        if pool is not None:
            stmt = stmt.where(WorkerRow.pool == pool)
        if not include_gone:
            stmt = stmt.where(WorkerRow.state != WorkerState.GONE.value)
        with self._ro() as s:
            return [convert.worker(r) for r in s.scalars(stmt)]

    def set_drain(self, worker_id: str, drain: bool = True) -> None:
        with self._tx() as s:
            n = rowcount(
                s,
                update(WorkerRow)
                .where(WorkerRow.id == worker_id)
                .values(drain=drain)
                .execution_options(synchronize_session=False),
            )
        if not n:
            raise not_found("worker", worker_id)

    def mark_worker_gone(self, worker_id: str) -> None:
        with self._tx() as s:
            self._gone(s, worker_id, self.clock.now())

    def _gone(self, s: Session, worker_id: str, now: float, silent_since: float | None = None) -> bool:
        """Worker → gone, closing its unfinished attempts as lost first (job → queued when that
        attempt still owned it, so the job is picked up again). With `silent_since`, only if the
        worker has still not been seen since then. Lock order: job, attempt, media, then worker."""
        open_attempts = s.scalars(
            select(AttemptRow).where(AttemptRow.worker_id == worker_id, AttemptRow.outcome.is_(None))
        ).all()
        row = s.get(WorkerRow, worker_id)
        if row is None:
            raise not_found("worker", worker_id)
        heard = row.state == WorkerState.GONE.value or row.last_seen >= (silent_since or 0.0)
        if silent_since is not None and heard:
            return False
        for att in open_attempts:
            job = s.scalar(select(JobRow).where(JobRow.id == att.job_id).with_for_update())
            s.refresh(att, with_for_update=True)
            if att.outcome is not None:
                continue
            att.outcome, att.finished_at = "lost", now
            att.error = f"worker {worker_id} stopped without finishing the attempt"
            if job is not None and job.attempt_id == att.id and job.state == JobState.RUNNING.value:
                job.state, job.error, job.updated_at = JobState.QUEUED.value, att.error, now
                job.progress, job.speed, job.eta = 0.0, None, None
                media = self._locked_media(s, job.media_id)
                if media is not None:
                    self._move_media(media, MediaState.QUEUED)
            log.warning("attempt lost", extra={"job_id": att.job_id, "attempt_id": att.id})
        row = s.scalar(select(WorkerRow).where(WorkerRow.id == worker_id).with_for_update())
        assert row is not None
        if row.state == WorkerState.GONE.value:
            return False
        check_worker(WorkerState(row.state), WorkerState.GONE)
        row.state, row.stopped_at, row.job_id = WorkerState.GONE.value, now, None
        return True

    def reap_silent_workers(self, older_than: float) -> list[str]:
        now = self.clock.now()
        cutoff = now - older_than
        with self._ro() as s:
            silent = list(
                s.scalars(
                    select(WorkerRow.id).where(
                        WorkerRow.state != WorkerState.GONE.value, WorkerRow.last_seen < cutoff
                    )
                )
            )
        reaped = []
        for wid in silent:
            with self._tx() as s:
                if self._gone(s, wid, now, silent_since=cutoff):
                    reaped.append(wid)
                    log.warning("worker silent; marked gone", extra={"worker_id": wid, "after": older_than})
        return reaped

    def register_worker(
        self, worker_id: str, pool: str, provider_id: str | None, price_per_hour: float
    ) -> WorkerRecord:
        check_id(worker_id, "worker id", WORKER_ID_PATTERN)
        with self._tx() as s:
            row = s.scalar(select(WorkerRow).where(WorkerRow.id == worker_id).with_for_update())
            now = self.clock.now()
            if row is None:
                row = self._new_worker(worker_id, pool, WorkerState.BOOTING, provider_id, price_per_hour, now)
                s.add(row)
            else:
                if row.state == WorkerState.GONE.value:
                    self._new_life(row, WorkerState.BOOTING, now)
                    row.last_seen = now
                row.pool = pool
                row.provider_id = provider_id or row.provider_id
                row.price_per_hour = price_per_hour
            return convert.worker(row)

    def record_decision(
        self,
        pool: str,
        policy: str,
        desired: int,
        running: int,
        busy: int,
        launched: int,
        retired: int,
        reason: str,
        at: float | None = None,
        cause: str = "",
        notes: tuple[str, ...] = (),
        error: str | None = None,
    ) -> FleetDecision:
        row = FleetDecisionRow(
            at=self.clock.now() if at is None else at,
            pool=pool,
            policy=policy,
            desired=desired,
            running=running,
            busy=busy,
            launched=launched,
            retired=retired,
            reason=reason,
            cause=cause or None,
            notes=",".join(notes) or None,
            error=error,
        )
        with self._tx() as s:
            s.add(row)
            s.flush()
            return convert.decision(row)

    def recent_decisions(self, limit: int = 50) -> list[FleetDecision]:
        stmt = (
            select(FleetDecisionRow)
            .order_by(FleetDecisionRow.at.desc(), FleetDecisionRow.id.desc())
            .limit(max(0, limit))
        )
        with self._ro() as s:
            return [convert.decision(r) for r in s.scalars(stmt)]

    def cost_so_far(self, since: float | None = None) -> dict[str, float]:
        """Earlier lives of a re-registered worker count in full when they ended after `since`."""
        now = self.clock.now()
        costs: dict[str, float] = {}
        with self._ro() as s:
            for w in s.scalars(select(WorkerRow)):
                if since is not None and w.stopped_at is not None and w.stopped_at < since:
                    dollars = 0.0
                else:
                    dollars = life_cost(w.started_at, w.stopped_at, now, w.price_per_hour, since)
                if since is None or (w.prior_stopped_at is not None and w.prior_stopped_at >= since):
                    dollars += w.prior_cost
                costs[w.pool] = costs.get(w.pool, 0.0) + dollars
        return costs
