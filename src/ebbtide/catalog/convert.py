"""Rows → the frozen records that leave the catalog (no session or lazy loading escapes)."""

from __future__ import annotations

from typing import Any

from ebbtide.catalog.models import (
    ApiTokenRow,
    AttemptRow,
    FleetDecisionRow,
    JobRow,
    MediaRow,
    UserRow,
    WorkerRow,
)
from ebbtide.catalog.records import (
    ApiToken,
    Attempt,
    FleetDecision,
    Job,
    Media,
    Rendition,
    User,
    WorkerRecord,
)
from ebbtide.catalog.states import JobState, MediaState, WorkerState


def user(r: UserRow) -> User:
    return User(
        id=r.id, name=r.name, is_admin=bool(r.is_admin), created_at=r.created_at, disabled=bool(r.disabled)
    )


def api_token(r: ApiTokenRow) -> ApiToken:
    return ApiToken(
        id=r.id,
        user_id=r.user_id,
        label=r.label,
        created_at=r.created_at,
        expires_at=r.expires_at,
        revoked_at=r.revoked_at if r.revoked else None,
    )


def rendition_to_json(r: Rendition) -> dict[str, Any]:
    return {
        "name": r.name,
        "width": r.width,
        "height": r.height,
        "bandwidth": r.bandwidth,
        "average_bandwidth": r.average_bandwidth,
        "playlist": r.playlist,
    }


def media(r: MediaRow) -> Media:
    return Media(
        id=r.id,
        owner_id=r.owner_id,
        title=r.title,
        state=MediaState(r.state),
        source_key=r.source_key,
        size_bytes=r.size_bytes,
        created_at=r.created_at,
        updated_at=r.updated_at,
        duration=r.duration,
        width=r.width,
        height=r.height,
        job_id=r.job_id,
        progress=r.progress,
        published_prefix=r.published_prefix,
        master_key=r.master_key,
        thumbnail_key=r.thumbnail_key,
        storyboard_key=r.storyboard_key,
        renditions=tuple(Rendition(**d) for d in (r.renditions or [])),
        error=r.error,
        playable_seconds=float(r.playable_seconds or 0.0),
    )


def job(r: JobRow) -> Job:
    return Job(
        id=r.id,
        kind=r.kind,
        state=JobState(r.state),
        payload=dict(r.payload or {}),
        created_at=r.created_at,
        updated_at=r.updated_at,
        owner_id=r.owner_id,
        media_id=r.media_id,
        attempts=r.attempts,
        worker_id=r.worker_id,
        progress=r.progress,
        speed=r.speed,
        eta=r.eta,
        started_at=r.started_at,
        finished_at=r.finished_at,
        error=r.error,
        result=dict(r.result or {}),
        work_seconds=r.work_seconds,
        attempt_id=r.attempt_id,
    )


def attempt(r: AttemptRow) -> Attempt:
    return Attempt(
        id=r.id,
        job_id=r.job_id,
        number=r.number,
        worker_id=r.worker_id,
        started_at=r.started_at,
        finished_at=r.finished_at,
        outcome=r.outcome,
        error=r.error,
        won=bool(r.won),
    )


def worker(r: WorkerRow) -> WorkerRecord:
    return WorkerRecord(
        id=r.id,
        pool=r.pool,
        state=WorkerState(r.state),
        started_at=r.started_at,
        last_seen=r.last_seen,
        host=r.host,
        pid=r.pid,
        provider_id=r.provider_id,
        job_id=r.job_id,
        progress=r.progress,
        drain=bool(r.drain),
        price_per_hour=r.price_per_hour,
        stopped_at=r.stopped_at,
        jobs_done=r.jobs_done,
    )


def decision(r: FleetDecisionRow) -> FleetDecision:
    return FleetDecision(
        id=r.id,
        at=r.at,
        pool=r.pool,
        policy=r.policy,
        desired=r.desired,
        running=r.running,
        busy=r.busy,
        launched=r.launched,
        retired=r.retired,
        reason=r.reason,
        cause=r.cause or "",
        notes=tuple(n for n in (r.notes or "").split(",") if n),
        error=r.error,
    )
