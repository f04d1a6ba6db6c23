"""Jobs and the completion ledger: attempts start, report progress and finish once."""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ebbtide.catalog import convert
from ebbtide.catalog.models import (
    AttemptRow,
    JobRow,
    MediaRow,
    UserRow,
    WorkerRow,
    new_id,
)
from ebbtide.catalog.records import (
    Attempt,
    Job,
)
from ebbtide.catalog.sql_core import (
    ATTEMPT_OUTCOME,
    WORKER_ID_PATTERN,
    SqlCore,
    check_id,
    clamp_fraction,
    exists_error,
    not_found,
    rowcount,
)
from ebbtide.catalog.states import (
    TERMINAL_JOB_STATES,
    JobState,
    MediaState,
    check_job,
    check_media,
)
from ebbtide.errors import EbbtideError, IllegalTransition

log = logging.getLogger(__name__)


# job kinds whose work_seconds is no measure of encoding speed (worker/messages.py names them)
NOT_SPEED_SAMPLES = ("transcode-audio", "stitch")

class JobsPart(SqlCore):
    def create_job(
        self,
        kind: str,
        payload: dict[str, Any],
        owner_id: str | None = None,
        media_id: str | None = None,
        work_seconds: float | None = None,
        job_id: str | None = None,
    ) -> Job:
        if not kind or len(kind) > 200:
            raise EbbtideError("job kind must have 1-200 characters", hint="e.g. 'transcode' or 'command'")
        if not isinstance(payload, dict):
            raise EbbtideError("job payload must be a JSON object (a dict)", hint="wrap values in a dict")
        try:
            payload = json.loads(json.dumps(payload))
        except (TypeError, ValueError) as e:
            raise EbbtideError(f"job payload is not JSON: {e}", hint="use str, numbers, lists") from None
        jid = check_id(job_id, "job id") if job_id else new_id()
        now = self.clock.now()
        row = JobRow(
            id=jid,
            kind=kind,
            state=JobState.QUEUED.value,
            payload=payload,
            created_at=now,
            updated_at=now,
            owner_id=owner_id,
            media_id=media_id,
            attempts=0,
            progress=0.0,
            result={},
            work_seconds=work_seconds,
        )
        try:
            with self._tx() as s:
                if s.get(JobRow, jid) is not None:
                    raise exists_error("job", jid)
                if owner_id is not None and s.get(UserRow, owner_id) is None:
                    raise not_found("user", owner_id)
                s.add(row)
                if media_id is not None:
                    media = self._media_row(s, media_id, owner_id, lock=True)
                    # uploaded (or failed, resubmitted) media waits on this job; a media already in
                    # flight (more jobs for one media, e.g. chunks) keeps its state
                    if MediaState(media.state) in (MediaState.UPLOADED, MediaState.FAILED):
                        check_media(MediaState(media.state), MediaState.QUEUED)
                        media.state, media.job_id, media.error = MediaState.QUEUED.value, jid, None
                        media.progress, media.updated_at = 0.0, now
        except IntegrityError:
            raise exists_error("job", jid) from None
        return convert.job(row)

    def get_job(self, job_id: str, owner_id: str | None = None) -> Job:
        with self._ro() as s:
            return convert.job(self._job_row(s, job_id, owner_id))

    def list_jobs(
        self, state: JobState | None = None, media_id: str | None = None, limit: int = 500
    ) -> list[Job]:
        stmt = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id).limit(max(0, limit))
        if state is not None:
            stmt = stmt.where(JobRow.state == JobState(state).value)
        if media_id is not None:
            stmt = stmt.where(JobRow.media_id == media_id)
        with self._ro() as s:
            return [convert.job(r) for r in s.scalars(stmt)]

    def start_attempt(self, job_id: str, worker_id: str, receive_count: int) -> Attempt | None:
        check_id(worker_id, "worker id", WORKER_ID_PATTERN)
        now = self.clock.now()
        with self._tx() as s:
            job = self._job_row(s, job_id, lock=True)
            if JobState(job.state) in TERMINAL_JOB_STATES:
                log.info("attempt skipped: job already ended", extra={"job_id": job_id, "state": job.state})
                return None
            check_job(JobState(job.state), JobState.RUNNING)
            att = AttemptRow(
                id=new_id(),
                job_id=job_id,
                number=receive_count,
                worker_id=worker_id,
                started_at=now,
                won=False,
            )
            s.add(att)
            job.state, job.attempts, job.attempt_id, job.worker_id = (
                JobState.RUNNING.value,
                job.attempts + 1,
                att.id,
                worker_id,
            )
            job.progress, job.speed, job.eta, job.started_at, job.updated_at = 0.0, None, None, now, now
            media = self._locked_media(s, job.media_id)
            if media is not None:
                self._move_media(media, MediaState.TRANSCODING)
                if media.state == MediaState.TRANSCODING.value:
                    media.progress = 0.0
            return convert.attempt(att)

    def report_progress(
        self,
        job_id: str,
        attempt_id: str,
        fraction: float,
        speed: float | None = None,
        eta: float | None = None,
    ) -> None:
        p = clamp_fraction(fraction, "progress fraction")
        now = self.clock.now()
        with self._tx() as s:
            media_id = s.scalar(select(JobRow.media_id).where(JobRow.id == job_id))
            n = rowcount(
                s,
                update(JobRow)
                .where(
                    JobRow.id == job_id,
                    JobRow.attempt_id == attempt_id,
                    JobRow.state == JobState.RUNNING.value,
                )
                .values(progress=p, speed=speed, eta=eta, updated_at=now)
                .execution_options(synchronize_session=False),
            )
            if n and media_id is not None:  # a stale attempt's progress is ignored
                rowcount(
                    s,
                    update(MediaRow)
                    .where(MediaRow.id == media_id, MediaRow.state == MediaState.TRANSCODING.value)
                    .values(progress=p, updated_at=now)
                    .execution_options(synchronize_session=False),
                )
            elif not n and s.get(JobRow, job_id) is None:
                raise not_found("job", job_id)

    def finish_attempt(
        self,
        job_id: str,
        attempt_id: str,
        outcome: JobState,
        error: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> bool:
        """SUCCEEDED → True if this finish won the ledger. Other outcomes → True if the job changed
        (False when a newer attempt owns the job or it already ended: only the attempt is recorded)."""
        outcome = JobState(outcome)
        if outcome not in ATTEMPT_OUTCOME:
            raise IllegalTransition(
                f"an attempt cannot finish as {outcome}", hint="use succeeded, queued (retry), failed or dead"
            )
        if result is not None:
            try:
                result = json.loads(json.dumps(result))
            except (TypeError, ValueError) as e:
                raise EbbtideError(f"job result is not JSON: {e}", hint="use str, numbers, lists") from None
        with self._tx() as s:
            job = self._job_row(s, job_id, lock=True)  # lock order: job, then attempt, then media
            att = self._attempt_row(s, job_id, attempt_id)
            if att.outcome not in (None, "lost"):  # this attempt already finished: idempotent repeat
                if outcome == JobState.SUCCEEDED and att.outcome in ("succeeded", "duplicate"):
                    return bool(att.won)
                if att.outcome == ATTEMPT_OUTCOME[outcome]:
                    return False
                raise IllegalTransition(
                    f"attempt {attempt_id} already finished as {att.outcome}",
                    hint="an attempt finishes once",
                )
            if outcome == JobState.SUCCEEDED:
                return self._claim_win(s, att, result)
            now = self.clock.now()
            att.finished_at, att.outcome, att.error = now, ATTEMPT_OUTCOME[outcome], error
            if JobState(job.state) in TERMINAL_JOB_STATES or job.attempt_id != att.id:
                return False
            check_job(JobState(job.state), outcome)
            job.state, job.error, job.updated_at = outcome.value, error, now
            if outcome in TERMINAL_JOB_STATES:
                job.finished_at = now
            if result is not None:
                job.result = result
            media = self._locked_media(s, job.media_id)
            if media is not None:
                target = MediaState.QUEUED if outcome == JobState.QUEUED else MediaState.FAILED
                self._move_media(media, target, error)
        log.info(
            "attempt finished",
            extra={"job_id": job_id, "attempt_id": attempt_id, "outcome": outcome.value},
        )
        return True

    def mark_dead(self, job_id: str, error: str) -> None:
        now = self.clock.now()
        with self._tx() as s:
            job = self._job_row(s, job_id, lock=True)
            if JobState(job.state) in TERMINAL_JOB_STATES:
                log.info("mark_dead ignored: job already ended", extra={"job_id": job_id, "state": job.state})
                return
            check_job(JobState(job.state), JobState.DEAD)
            job.state, job.error, job.finished_at, job.updated_at = JobState.DEAD.value, error, now, now
            if job.attempt_id is not None:  # its worker vanished without finishing
                rowcount(
                    s,
                    update(AttemptRow)
                    .where(AttemptRow.id == job.attempt_id, AttemptRow.outcome.is_(None))
                    .values(outcome="lost", finished_at=now, error=error)
                    .execution_options(synchronize_session=False),
                )
            media = self._locked_media(s, job.media_id)
            if media is not None:
                self._move_media(media, MediaState.FAILED, error)
        log.warning("job dead", extra={"job_id": job_id})

    def requeue(self, job_id: str) -> Job:
        now = self.clock.now()
        with self._tx() as s:
            job = self._job_row(s, job_id, lock=True)
            check_job(JobState(job.state), JobState.QUEUED)
            media = self._locked_media(s, job.media_id)
            if job.media_id is not None and media is None:
                raise EbbtideError(
                    f"job {job_id} cannot be retried: its media was deleted", hint="upload the video again"
                )
            job.state, job.error, job.finished_at, job.attempt_id = JobState.QUEUED.value, None, None, None
            job.progress, job.speed, job.eta, job.updated_at = 0.0, None, None, now
            if media is not None and media.state == MediaState.FAILED.value:
                self._move_media(media, MediaState.QUEUED)
                media.error, media.job_id = None, job_id
            return convert.job(job)

    def attempts(self, job_id: str) -> list[Attempt]:
        with self._ro() as s:
            rows = s.scalars(
                select(AttemptRow)
                .where(AttemptRow.job_id == job_id)
                .order_by(AttemptRow.started_at, AttemptRow.number, AttemptRow.id)
            )
            return [convert.attempt(r) for r in rows]

    def job_counts(self) -> dict[JobState, int]:
        counts = dict.fromkeys(JobState, 0)
        with self._ro() as s:
            for state, n in s.execute(select(JobRow.state, func.count()).group_by(JobRow.state)):
                counts[JobState(state)] = int(n)
        return counts

    def recent_speeds(self, pool: str | None = None, limit: int = 20) -> list[float]:
        """Media seconds per wall second of the latest winning attempts that encoded their work.

        Not samples: a chunked source's audio part and stitch (their `work_seconds` is a token
        1.0, so they would read as 1/50x) and a `transcode` that only split its source (its work is
        the whole duration, done by its parts: it would read as 100x)."""
        stmt = (
            select(JobRow.work_seconds, AttemptRow.started_at, AttemptRow.finished_at, JobRow.result)
            .join(JobRow, JobRow.id == AttemptRow.job_id)
            .where(
                AttemptRow.won.is_(True),
                JobRow.work_seconds.is_not(None),
                AttemptRow.finished_at > AttemptRow.started_at,
                JobRow.kind.not_in(NOT_SPEED_SAMPLES),
            )
            .order_by(AttemptRow.finished_at.desc())
            .limit(max(0, 2 * limit))
        )
        if pool is not None:
            stmt = stmt.join(WorkerRow, WorkerRow.id == AttemptRow.worker_id).where(WorkerRow.pool == pool)
        with self._ro() as s:
            rows = s.execute(stmt).all()
        out = [float(w or 0.0) / (f - st) for w, st, f, res in rows
               if f is not None and not (isinstance(res, dict) and "split" in res)]  # fmt: skip
        return out[: max(0, limit)]
