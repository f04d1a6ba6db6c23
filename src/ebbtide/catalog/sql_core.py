"""Shared plumbing of SqlCatalog: sessions, id checks, and the row helpers several parts use.

Concurrency model: every write runs in one short transaction (BEGIN IMMEDIATE on SQLite, rows
locked FOR UPDATE on PostgreSQL). The completion ledger does not rely on those locks alone: the
winning finish is a conditional UPDATE on the job's state whose rowcount decides the winner, in
the same transaction that records the attempt's outcome, so two processes can never both win.
Lock order is always job → attempt → media (→ worker) to keep PostgreSQL free of deadlocks.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Executable, select, update
from sqlalchemy.exc import InterfaceError as SaInterfaceError
from sqlalchemy.exc import OperationalError as SaOperationalError
from sqlalchemy.orm import Session, sessionmaker

from ebbtide.catalog.engine import READ_ONLY
from ebbtide.catalog.hashing import hash_password
from ebbtide.catalog.models import (
    AttemptRow,
    JobRow,
    MediaRow,
    WorkerRow,
)
from ebbtide.catalog.states import (
    MEDIA_TRANSITIONS,
    TERMINAL_JOB_STATES,
    JobState,
    MediaState,
)
from ebbtide.clock import SYSTEM_CLOCK, Clock
from ebbtide.errors import EbbtideError, NotFound
from ebbtide.outage import Outage

log = logging.getLogger(__name__)

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
WORKER_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
USER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
TERMINAL = [s.value for s in TERMINAL_JOB_STATES]
# a PostgreSQL server that went away (the pool pre-pings and reconnects on the next checkout).
# SQLite's OperationalErrors are about the file (locks, schema), not a server: not mapped.
_SERVER_DOWN = (SaOperationalError, SaInterfaceError)
# what an attempt's row says for each outcome a worker reports
ATTEMPT_OUTCOME = {
    JobState.SUCCEEDED: "succeeded",
    JobState.QUEUED: "failed",
    JobState.FAILED: "failed",
    JobState.DEAD: "dead",
}


@functools.cache
def dummy_hash() -> str:
    """check_password costs the same for unknown names, so timing does not reveal which exist."""
    return hash_password("timing-equaliser")


def check_id(value: str, what: str, pattern: re.Pattern[str] = ID_PATTERN) -> str:
    if not pattern.match(value):
        raise EbbtideError(
            f"{what} {value!r} is not a valid id",
            hint=f"use letters, digits, '_' and '-' (pattern {pattern.pattern})",
        )
    return value


def clamp_fraction(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise EbbtideError(f"{what} must be a finite number, got {value!r}", hint="report a value in 0..1")
    return min(1.0, max(0.0, float(value)))


def not_found(kind: str, ident: str) -> NotFound:
    # identical for "missing" and "someone else's", so the message never confirms a row exists
    return NotFound(f"{kind} {ident} not found", hint=f"check the {kind} id; it may have been deleted")


def exists_error(kind: str, ident: str) -> EbbtideError:
    return EbbtideError(f"{kind} id {ident} already exists", hint=f"omit {kind}_id to get a new one")


def rowcount(s: Session, stmt: Executable) -> int:
    result = cast(CursorResult[Any], s.execute(stmt))
    return int(result.rowcount)


class SqlCore:
    def __init__(self, engine: Engine, clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.clock = clock
        self._writer = sessionmaker(engine, expire_on_commit=False)
        self._reader = sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)
        url = engine.url
        self._server_down: tuple[type[BaseException], ...] = (
            () if engine.dialect.name == "sqlite" else _SERVER_DOWN
        )
        self.outage = Outage(
            "catalog", f"{engine.dialect.name} {url.host or ''}:{url.port or ''}/{url.database or ''}",
            hint="check catalog.url and that the database server is running",
        )

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self.outage.guard(self._server_down), self._writer.begin() as s:
            yield s

    @contextmanager
    def _ro(self) -> Iterator[Session]:
        with self.outage.guard(self._server_down), self._reader() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()

    def _media_row(self, s: Session, media_id: str, owner_id: str | None, lock: bool = False) -> MediaRow:
        stmt = select(MediaRow).where(MediaRow.id == media_id)
        if lock:
            stmt = stmt.with_for_update()
        row = s.scalar(stmt)
        if row is None or (owner_id is not None and row.owner_id != owner_id):
            raise not_found("media", media_id)
        return row

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

    def _job_row(self, s: Session, job_id: str, owner_id: str | None = None, lock: bool = False) -> JobRow:
        stmt = select(JobRow).where(JobRow.id == job_id)
        if lock:
            stmt = stmt.with_for_update()
        row = s.scalar(stmt)
        if row is None or (owner_id is not None and row.owner_id != owner_id):
            raise not_found("job", job_id)
        return row

    def _attempt_row(self, s: Session, job_id: str, attempt_id: str) -> AttemptRow:
        row = s.scalar(select(AttemptRow).where(AttemptRow.id == attempt_id).with_for_update())
        if row is None or row.job_id != job_id:
            raise not_found("attempt", attempt_id)
        return row

    def _claim_win(self, s: Session, att: AttemptRow, result: dict[str, Any] | None) -> bool:
        """The ledger's decision: a conditional UPDATE that only the first finisher can satisfy.

        A queued job also accepts the win: an attempt whose lease lapsed (and whose retry has
        already failed back to queued) still did the work."""
        now = self.clock.now()
        won = (
            rowcount(
                s,
                update(JobRow)
                .where(JobRow.id == att.job_id, JobRow.state.not_in(TERMINAL))
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
            rowcount(
                s,
                update(WorkerRow)
                .where(WorkerRow.id == att.worker_id)
                .values(jobs_done=WorkerRow.jobs_done + 1)
                .execution_options(synchronize_session=False),
            )
        elif s.scalar(select(JobRow.id).where(JobRow.id == att.job_id)) is None:
            raise not_found("job", att.job_id)
        log.info(
            "ledger finish",
            extra={"job_id": att.job_id, "attempt_id": att.id, "worker_id": att.worker_id, "won": won},
        )
        return won
