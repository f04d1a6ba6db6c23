"""`SqlCatalog`: the Catalog port on SQLAlchemy, one code path for SQLite and PostgreSQL.

Concurrency model: every write runs in one short transaction (BEGIN IMMEDIATE on SQLite, rows
locked FOR UPDATE on PostgreSQL). The completion ledger does not rely on those locks alone: the
winning finish is a conditional UPDATE on the job's state whose rowcount decides the winner, in
the same transaction that records the attempt's outcome, so two processes can never both win.
Lock order is always job → attempt → media (→ worker) to keep PostgreSQL free of deadlocks.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Executable, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ebbtide.catalog import convert
from ebbtide.catalog.cost import life_cost
from ebbtide.catalog.engine import READ_ONLY
from ebbtide.catalog.hashing import TOKEN_PREFIX, hash_password, new_token, token_hash, verify_password
from ebbtide.catalog.models import (
    ApiTokenRow,
    AttemptRow,
    FleetDecisionRow,
    JobRow,
    MediaRow,
    UserRow,
    WorkerRow,
    new_id,
)
from ebbtide.catalog.records import (
    Attempt,
    FleetDecision,
    Job,
    Media,
    Rendition,
    User,
    WorkerRecord,
)
from ebbtide.catalog.states import (
    MEDIA_TRANSITIONS,
    TERMINAL_JOB_STATES,
    JobState,
    MediaState,
    WorkerState,
    check_job,
    check_media,
    check_worker,
)
from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.errors import EbbtideError, IllegalTransition, NotFound
from ebbtide.storage.base import validate_key, validate_prefix

log = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_WORKER_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_TERMINAL = [s.value for s in TERMINAL_JOB_STATES]
# what an attempt's row says for each outcome a worker reports
_ATTEMPT_OUTCOME = {
    JobState.SUCCEEDED: "succeeded",
    JobState.QUEUED: "failed",
    JobState.FAILED: "failed",
    JobState.DEAD: "dead",
}


@functools.cache
def _dummy_hash() -> str:
    """check_password costs the same for unknown names, so timing does not reveal which exist."""
    return hash_password("timing-equaliser")


def _check_id(value: str, what: str, pattern: re.Pattern[str] = _ID) -> str:
    if not pattern.match(value):
        raise EbbtideError(
            f"{what} {value!r} is not a valid id",
            hint=f"use letters, digits, '_' and '-' (pattern {pattern.pattern})",
        )
    return value


def _fraction(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise EbbtideError(f"{what} must be a finite number, got {value!r}", hint="report a value in 0..1")
    return min(1.0, max(0.0, float(value)))


def _not_found(kind: str, ident: str) -> NotFound:
    # identical for "missing" and "someone else's", so the message never confirms a row exists
    return NotFound(f"{kind} {ident} not found", hint=f"check the {kind} id; it may have been deleted")


def _exists(kind: str, ident: str) -> EbbtideError:
    return EbbtideError(f"{kind} id {ident} already exists", hint=f"omit {kind}_id to get a new one")


def _rowcount(s: Session, stmt: Executable) -> int:
    result = cast(CursorResult[Any], s.execute(stmt))
    return int(result.rowcount)


class SqlCatalog:
    def __init__(self, engine: Engine, clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.clock = clock
        self._writer = sessionmaker(engine, expire_on_commit=False)
        self._reader = sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._writer.begin() as s:
            yield s

    @contextmanager
    def _ro(self) -> Iterator[Session]:
        with self._reader() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()

    # users and tokens ---------------------------------------------------------------------------
    def create_user(self, name: str, password: str | None = None, is_admin: bool = False) -> User:
        if not _USER_NAME.match(name):
            raise EbbtideError(
                f"user name {name!r} is not allowed",
                hint="1-64 characters: letters, digits, '_', '.', '@', '-'; start with a letter or digit",
            )
        if password is not None and not password:
            raise EbbtideError("password must not be empty", hint="give a password or none at all")
        row = UserRow(
            id=new_id(),
            name=name,
            password_hash=hash_password(password) if password else None,
            is_admin=is_admin,
            created_at=self.clock.now(),
        )
        try:
            with self._tx() as s:
                if s.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
                    raise EbbtideError(f"user name {name!r} is taken", hint="pick another name")
                s.add(row)
        except IntegrityError:
            raise EbbtideError(f"user name {name!r} is taken", hint="pick another name") from None
        return convert.user(row)

    def get_user(self, user_id: str) -> User:
        with self._ro() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                raise _not_found("user", user_id)
            return convert.user(row)

    def find_user(self, name: str) -> User | None:
        with self._ro() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name))
            return convert.user(row) if row else None

    def list_users(self) -> list[User]:
        with self._ro() as s:
            rows = s.scalars(select(UserRow).order_by(UserRow.created_at, UserRow.name))
            return [convert.user(r) for r in rows]

    def check_password(self, name: str, password: str) -> User | None:
        with self._ro() as s:
            row = s.scalar(select(UserRow).where(UserRow.name == name))
        if row is None or not row.password_hash:
            verify_password(password, _dummy_hash())
            return None
        return convert.user(row) if verify_password(password, row.password_hash) else None

    def create_token(self, user_id: str, label: str = "") -> str:
        if len(label) > 200:
            raise EbbtideError("token label is longer than 200 characters", hint="shorten the label")
        token = new_token()
        with self._tx() as s:
            if s.get(UserRow, user_id) is None:
                raise _not_found("user", user_id)
            s.add(
                ApiTokenRow(
                    id=new_id(),
                    user_id=user_id,
                    token_sha256=token_hash(token),
                    label=label,
                    created_at=self.clock.now(),
                    revoked=False,
                )
            )
        log.info("api token created", extra={"user_id": user_id, "label": label})
        return token

    def user_for_token(self, token: str) -> User | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self._ro() as s:
            row = s.scalar(
                select(UserRow)
                .join(ApiTokenRow, ApiTokenRow.user_id == UserRow.id)
                .where(ApiTokenRow.token_sha256 == token_hash(token), ApiTokenRow.revoked.is_(False))
            )
            return convert.user(row) if row else None

    def revoke_token(self, token: str) -> bool:
        with self._tx() as s:
            n = _rowcount(
                s,
                update(ApiTokenRow)
                .where(ApiTokenRow.token_sha256 == token_hash(token), ApiTokenRow.revoked.is_(False))
                .values(revoked=True, revoked_at=self.clock.now())
                .execution_options(synchronize_session=False),
            )
        return bool(n)

    # media --------------------------------------------------------------------------------------
    def create_media(
        self,
        owner_id: str,
        title: str,
        source_key: str,
        size_bytes: int,
        duration: float | None = None,
        width: int | None = None,
        height: int | None = None,
        media_id: str | None = None,
    ) -> Media:
        title = self._title(title)
        validate_key(source_key)
        if size_bytes < 0:
            raise EbbtideError(f"size_bytes must be ≥ 0, got {size_bytes}", hint="pass the file's size")
        mid = _check_id(media_id, "media id") if media_id else new_id()
        now = self.clock.now()
        row = MediaRow(
            id=mid,
            owner_id=owner_id,
            title=title,
            state=MediaState.UPLOADED.value,
            source_key=source_key,
            size_bytes=size_bytes,
            created_at=now,
            updated_at=now,
            duration=duration,
            width=width,
            height=height,
            progress=0.0,
            renditions=[],
        )
        try:
            with self._tx() as s:
                if s.get(UserRow, owner_id) is None:
                    raise _not_found("user", owner_id)
                if s.get(MediaRow, mid) is not None:
                    raise _exists("media", mid)
                s.add(row)
        except IntegrityError:
            raise _exists("media", mid) from None
        return convert.media(row)

    @staticmethod
    def _title(title: str) -> str:
        title = title.strip()
        if not title or len(title) > 300:
            raise EbbtideError("a title must have 1-300 characters", hint="give the video a short title")
        return title

    def _media_row(self, s: Session, media_id: str, owner_id: str | None, lock: bool = False) -> MediaRow:
        stmt = select(MediaRow).where(MediaRow.id == media_id)
        if lock:
            stmt = stmt.with_for_update()
        row = s.scalar(stmt)
        if row is None or (owner_id is not None and row.owner_id != owner_id):
            raise _not_found("media", media_id)
        return row

    def get_media(self, media_id: str, owner_id: str | None = None) -> Media:
        with self._ro() as s:
            return convert.media(self._media_row(s, media_id, owner_id))

    def list_media(self, owner_id: str | None = None, limit: int = 200) -> list[Media]:
        stmt = select(MediaRow).order_by(MediaRow.created_at.desc(), MediaRow.id).limit(max(0, limit))
        if owner_id is not None:
            stmt = stmt.where(MediaRow.owner_id == owner_id)
        with self._ro() as s:
            return [convert.media(r) for r in s.scalars(stmt)]

    def rename_media(self, media_id: str, owner_id: str, title: str) -> Media:
        title = self._title(title)
        with self._tx() as s:
            row = self._media_row(s, media_id, owner_id, lock=True)
            row.title = title
            row.updated_at = self.clock.now()
            return convert.media(row)

    def delete_media(self, media_id: str, owner_id: str | None = None) -> Media:
        now = self.clock.now()
        with self._tx() as s:
            self._media_row(s, media_id, owner_id)  # scope check before touching anything
            jobs = s.scalars(
                select(JobRow)
                .where(JobRow.media_id == media_id, JobRow.state.not_in(_TERMINAL))
                .with_for_update()
            ).all()
            for j in jobs:
                check_job(JobState(j.state), JobState.FAILED)
                j.state, j.error, j.finished_at, j.updated_at = JobState.FAILED.value, "deleted", now, now
            row = self._media_row(s, media_id, owner_id, lock=True)
            record = convert.media(row)
            s.delete(row)
        log.info("media deleted", extra={"media_id": media_id, "jobs_failed": len(jobs)})
        return record

    def set_media_state(self, media_id: str, state: MediaState, error: str | None = None) -> Media:
        with self._tx() as s:
            row = self._media_row(s, media_id, None, lock=True)
            check_media(MediaState(row.state), state)
            row.state, row.error, row.updated_at = state.value, error, self.clock.now()
            return convert.media(row)

    def set_media_progress(self, media_id: str, progress: float) -> None:
        p = _fraction(progress, "progress")
        with self._tx() as s:
            n = _rowcount(
                s,
                update(MediaRow)
                .where(MediaRow.id == media_id)
                .values(progress=p, updated_at=self.clock.now())
                .execution_options(synchronize_session=False),
            )
        if not n:
            raise _not_found("media", media_id)

    def _move_media(self, row: MediaRow, new: MediaState, error: str | None = None) -> None:
        """A side effect of a job's change: applied when the state machine allows it, else logged.

        The job is the source of truth; a media in an unexpected state (e.g. already complete from
        an earlier job) must not make the ledger fail."""
        old = MediaState(row.state)
        if old == new and new != MediaState.TRANSCODING:
            return
        if new not in MEDIA_TRANSITIONS[old]:
            log.warning(
                "media state change skipped", extra={"media_id": row.id, "from": old.value, "to": new.value}
            )
            return
        row.state, row.updated_at = new.value, self.clock.now()
        if new == MediaState.FAILED:
            row.error = error
        elif new == MediaState.QUEUED:
            row.progress = 0.0

    def _locked_media(self, s: Session, media_id: str | None) -> MediaRow | None:
        if media_id is None:
            return None
        return s.scalar(select(MediaRow).where(MediaRow.id == media_id).with_for_update())

    def publish_media(
        self,
        media_id: str,
        job_id: str,
        attempt_id: str,
        prefix: str,
        master_key: str,
        renditions: Sequence[Rendition],
        thumbnail_key: str | None,
        storyboard_key: str | None,
        duration: float | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> bool:
        validate_prefix(prefix)
        for key in (master_key, thumbnail_key, storyboard_key):
            if key is not None:
                validate_key(key)
        with self._tx() as s:
            self._job_row(s, job_id, lock=True)  # lock order: job, then attempt, then media
            att = self._attempt_row(s, job_id, attempt_id)
            if not self._claim_win(s, att, result={"prefix": prefix}):
                log.info("publish lost the ledger", extra={"job_id": job_id, "attempt_id": attempt_id})
                return False
            row = self._locked_media(s, media_id)
            if row is None:  # raising rolls the win back too: nothing is half-published
                raise _not_found("media", media_id)
            old = MediaState(row.state)
            path = {
                MediaState.QUEUED: [MediaState.TRANSCODING, MediaState.TRANSCODED, MediaState.COMPLETE],
                MediaState.TRANSCODING: [MediaState.TRANSCODED, MediaState.COMPLETE],
                MediaState.TRANSCODED: [MediaState.COMPLETE],
            }.get(old, [MediaState.COMPLETE])
            for new in path:
                check_media(old, new)
                old = new
            row.state = MediaState.COMPLETE.value
            row.published_prefix, row.master_key = prefix, master_key
            row.renditions = [convert.rendition_to_json(r) for r in renditions]
            row.thumbnail_key, row.storyboard_key = thumbnail_key, storyboard_key
            row.duration = duration if duration is not None else row.duration
            row.width = width if width is not None else row.width
            row.height = height if height is not None else row.height
            row.job_id, row.progress, row.error, row.updated_at = job_id, 1.0, None, self.clock.now()
        log.info("media published", extra={"media_id": media_id, "job_id": job_id, "prefix": prefix})
        return True

    # jobs and the completion ledger -------------------------------------------------------------
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
        jid = _check_id(job_id, "job id") if job_id else new_id()
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
                    raise _exists("job", jid)
                if owner_id is not None and s.get(UserRow, owner_id) is None:
                    raise _not_found("user", owner_id)
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
            raise _exists("job", jid) from None
        return convert.job(row)

    def _job_row(self, s: Session, job_id: str, owner_id: str | None = None, lock: bool = False) -> JobRow:
        stmt = select(JobRow).where(JobRow.id == job_id)
        if lock:
            stmt = stmt.with_for_update()
        row = s.scalar(stmt)
        if row is None or (owner_id is not None and row.owner_id != owner_id):
            raise _not_found("job", job_id)
        return row

    def _attempt_row(self, s: Session, job_id: str, attempt_id: str) -> AttemptRow:
        row = s.scalar(select(AttemptRow).where(AttemptRow.id == attempt_id).with_for_update())
        if row is None or row.job_id != job_id:
            raise _not_found("attempt", attempt_id)
        return row

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
        _check_id(worker_id, "worker id", _WORKER_ID)
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
        p = _fraction(fraction, "progress fraction")
        now = self.clock.now()
        with self._tx() as s:
            media_id = s.scalar(select(JobRow.media_id).where(JobRow.id == job_id))
            n = _rowcount(
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
                _rowcount(
                    s,
                    update(MediaRow)
                    .where(MediaRow.id == media_id, MediaRow.state == MediaState.TRANSCODING.value)
                    .values(progress=p, updated_at=now)
                    .execution_options(synchronize_session=False),
                )
            elif not n and s.get(JobRow, job_id) is None:
                raise _not_found("job", job_id)

    def _claim_win(self, s: Session, att: AttemptRow, result: dict[str, Any] | None) -> bool:
        """The ledger's decision: a conditional UPDATE that only the first finisher can satisfy.

        A queued job also accepts the win: an attempt whose lease lapsed (and whose retry has
        already failed back to queued) still did the work."""
        now = self.clock.now()
        won = (
            _rowcount(
                s,
                update(JobRow)
                .where(JobRow.id == att.job_id, JobRow.state.not_in(_TERMINAL))
                .values(
                    state=JobState.SUCCEEDED.value,
                    finished_at=now,
                    updated_at=now,
                    progress=1.0,
                    eta=0.0,
                    error=None,
                    result=result or {},
                    worker_id=att.worker_id,
                    attempt_id=att.id,
                )
                .execution_options(synchronize_session=False),
            )
            == 1
        )
        att.finished_at, att.won = now, won
        att.outcome = "succeeded" if won else "duplicate"
        if won:
            _rowcount(
                s,
                update(WorkerRow)
                .where(WorkerRow.id == att.worker_id)
                .values(jobs_done=WorkerRow.jobs_done + 1)
                .execution_options(synchronize_session=False),
            )
        elif s.scalar(select(JobRow.id).where(JobRow.id == att.job_id)) is None:
            raise _not_found("job", att.job_id)
        log.info(
            "ledger finish",
            extra={"job_id": att.job_id, "attempt_id": att.id, "worker_id": att.worker_id, "won": won},
        )
        return won

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
        if outcome not in _ATTEMPT_OUTCOME:
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
                if att.outcome == _ATTEMPT_OUTCOME[outcome]:
                    return False
                raise IllegalTransition(
                    f"attempt {attempt_id} already finished as {att.outcome}",
                    hint="an attempt finishes once",
                )
            if outcome == JobState.SUCCEEDED:
                return self._claim_win(s, att, result)
            now = self.clock.now()
            att.finished_at, att.outcome, att.error = now, _ATTEMPT_OUTCOME[outcome], error
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
                _rowcount(
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
        stmt = (
            select(JobRow.work_seconds, AttemptRow.started_at, AttemptRow.finished_at)
            .join(JobRow, JobRow.id == AttemptRow.job_id)
            .where(
                AttemptRow.won.is_(True),
                JobRow.work_seconds.is_not(None),
                AttemptRow.finished_at > AttemptRow.started_at,
            )
            .order_by(AttemptRow.finished_at.desc())
            .limit(max(0, limit))
        )
        if pool is not None:
            stmt = stmt.join(WorkerRow, WorkerRow.id == AttemptRow.worker_id).where(WorkerRow.pool == pool)
        with self._ro() as s:
            rows = s.execute(stmt).all()
        return [float(w or 0.0) / (f - st) for w, st, f in rows if f is not None]

    # workers ------------------------------------------------------------------------------------
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
        _check_id(worker_id, "worker id", _WORKER_ID)
        state = WorkerState(state)
        p = _fraction(progress, "progress")
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
            n = _rowcount(
                s,
                update(WorkerRow)
                .where(WorkerRow.id == worker_id)
                .values(drain=drain)
                .execution_options(synchronize_session=False),
            )
        if not n:
            raise _not_found("worker", worker_id)

    def mark_worker_gone(self, worker_id: str) -> None:
        with self._tx() as s:
            row = s.scalar(select(WorkerRow).where(WorkerRow.id == worker_id).with_for_update())
            if row is None:
                raise _not_found("worker", worker_id)
            if row.state == WorkerState.GONE.value:
                return
            check_worker(WorkerState(row.state), WorkerState.GONE)
            row.state, row.stopped_at, row.job_id = WorkerState.GONE.value, self.clock.now(), None

    def register_worker(
        self, worker_id: str, pool: str, provider_id: str | None, price_per_hour: float
    ) -> WorkerRecord:
        _check_id(worker_id, "worker id", _WORKER_ID)
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

    # fleet decisions ----------------------------------------------------------------------------
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
