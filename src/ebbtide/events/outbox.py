"""Writing the outbox: every media and job state change adds an event row in the same transaction.

The hook sits on the catalog's writer sessions (`before_flush`), so no code path that changes a
state can forget to tell; a rollback takes the event with it. Event types are `job.<state>`,
`media.<state>`, `media.deleted` and (throttled, from the worker's heartbeat) `media.progress`.
A publish that jumps a media straight to `complete` also emits the `transcoded` step it implies,
so a receiver sees the same lifecycle whatever path the catalog took.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from ebbtide.catalog.models import AttemptRow, EventRow, JobRow, MediaRow
from ebbtide.catalog.sql import SqlCatalog
from ebbtide.catalog.states import JobState, MediaState

_installed: set[int] = set()
_lock = threading.Lock()


def media_steps(old: str | None, new: str) -> list[str]:
    """The states a receiver should see for a media moving old → new (pure)."""
    if new == MediaState.COMPLETE.value and old != MediaState.TRANSCODED.value:
        return [MediaState.TRANSCODED.value, new]
    return [new]


def _intake(session: Session, job_id: str | None) -> dict[str, Any] | None:
    if not job_id:
        return None
    with session.no_autoflush:
        job = session.get(JobRow, job_id)
    intake = (job.payload or {}).get("intake") if job is not None else None
    return intake if isinstance(intake, dict) else None


def _row(kind: str, state: str, at: float, media_id: str | None, job_id: str | None,
         intake: dict[str, Any] | None, extra: dict[str, Any]) -> EventRow:  # fmt: skip
    eid = uuid.uuid4().hex
    body = {"id": eid, "type": f"{kind}.{state}", "at": at, "state": state,
            "media_id": media_id, "job_id": job_id, "intake": intake, **extra}  # fmt: skip
    return EventRow(event_id=eid, media_id=media_id, job_id=job_id, type=body["type"], body=body,
                    created_at=at, attempts=0, next_at=at)  # fmt: skip


def _history(obj: Any) -> tuple[str | None, str] | None:
    h = inspect(obj).attrs.state.history
    if not h.added:
        return None
    old = h.deleted[0] if h.deleted else None
    new = h.added[0]
    return (old, new) if old != new else None


def _won(obj: AttemptRow) -> bool:
    h = inspect(obj).attrs.won.history
    return bool(h.added and h.added[0] and not (h.deleted and h.deleted[0]))


def changes(session: Session, now: float) -> list[EventRow]:
    """Event rows for what this flush changes: jobs first, then media (the order a reader expects).

    The ledger's win is a conditional UPDATE the session does not track; the winning attempt's
    `won` flag, set in the same transaction, stands for the job's move to succeeded."""
    jobs: list[EventRow] = []
    media: list[EventRow] = []
    touched = list(session.new) + list(session.dirty)
    for obj in touched:
        if isinstance(obj, JobRow):
            moved = _history(obj)
            if moved:
                intake = _intake(session, obj.id) or (obj.payload or {}).get("intake")
                extra = {"error": obj.error, "kind": obj.kind}
                jobs.append(_row("job", moved[1], now, obj.media_id, obj.id, intake, extra))
        elif isinstance(obj, AttemptRow) and _won(obj):
            with session.no_autoflush:
                job = session.get(JobRow, obj.job_id)
            if job is not None:
                extra = {"error": None, "kind": job.kind}
                jobs.append(_row("job", JobState.SUCCEEDED.value, now, job.media_id, job.id,
                                 _intake(session, job.id), extra))  # fmt: skip
        elif isinstance(obj, MediaRow):
            moved = _history(obj)
            if moved:
                extra = {"error": obj.error, "owner_id": obj.owner_id, "master_key": obj.master_key}
                intake = _intake(session, obj.job_id)
                for state in media_steps(*moved):
                    media.append(_row("media", state, now, obj.id, obj.job_id, intake, extra))
    for obj in session.deleted:
        if isinstance(obj, MediaRow):
            media.append(_row("media", "deleted", now, obj.id, obj.job_id, _intake(session, obj.job_id),
                              {"owner_id": obj.owner_id}))  # fmt: skip
    return jobs + media


def install(catalog: SqlCatalog) -> None:
    """Start writing events for every state change made through this catalog object."""
    with _lock:
        if id(catalog) in _installed:
            return
        _installed.add(id(catalog))
    clock = catalog.clock

    def before_flush(session: Session, _ctx: Any, _instances: Any) -> None:
        if any(isinstance(o, EventRow) for o in session.new):
            return  # this flush is adding events already (ours, or the progress writer's)
        for row in changes(session, clock.now()):
            session.add(row)

    event.listen(catalog._writer, "before_flush", before_flush)


def record_progress(catalog: SqlCatalog, media_id: str, job_id: str | None, fraction: float) -> None:
    """A `media.progress` event; the caller throttles (see `Progress`)."""
    now = catalog.clock.now()
    with catalog._writer.begin() as s:
        s.add(_row("media", "progress", now, media_id, job_id, _intake(s, job_id),
                   {"progress": round(fraction, 4)}))  # fmt: skip


class ProgressThrottle:
    """At most one progress event per media per `every` seconds (pure, given the times)."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._last: dict[str, float] = {}

    def due(self, media_id: str, now: float) -> bool:
        last = self._last.get(media_id)
        if last is not None and now - last < self.every:
            return False
        self._last[media_id] = now
        return True
