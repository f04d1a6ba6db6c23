"""Frozen records the catalog hands out; they cross into worker, fleet and web."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ebbtide.catalog.states import JobState, MediaState, WorkerState


@dataclass(frozen=True)
class User:
    id: str
    name: str
    is_admin: bool
    created_at: float
    disabled: bool = False


@dataclass(frozen=True)
class ApiToken:
    """A token as listed: never its secret, which is shown once at creation."""

    id: str
    user_id: str
    label: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    def active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True)
class Rendition:
    name: str  # "1080p"
    width: int
    height: int
    bandwidth: int
    average_bandwidth: int
    playlist: str  # key relative to the media's published prefix


@dataclass(frozen=True)
class Media:
    id: str
    owner_id: str
    title: str
    state: MediaState
    source_key: str
    size_bytes: int
    created_at: float
    updated_at: float
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    job_id: str | None = None
    progress: float = 0.0  # of the current attempt, 0..1
    published_prefix: str | None = None  # where the live HLS set is; switched atomically
    master_key: str | None = None
    thumbnail_key: str | None = None
    storyboard_key: str | None = None
    renditions: tuple[Rendition, ...] = ()
    error: str | None = None
    playable_seconds: float = 0.0  # how much plays already: a prefix of chunks, or all once complete


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    state: JobState
    payload: dict[str, Any]
    created_at: float
    updated_at: float
    owner_id: str | None = None
    media_id: str | None = None
    attempts: int = 0
    worker_id: str | None = None
    progress: float = 0.0
    speed: float | None = None  # times realtime, of the current attempt
    eta: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    work_seconds: float | None = None  # media seconds, for the fleet's estimates
    attempt_id: str | None = None  # the attempt that owns the job now (the ledger's view)


@dataclass(frozen=True)
class Attempt:
    id: str
    job_id: str
    number: int  # the queue's receive count
    worker_id: str
    started_at: float
    finished_at: float | None = None
    outcome: str | None = None  # succeeded | failed | dead | lost | duplicate
    error: str | None = None
    won: bool = False  # this attempt's finish is the one the ledger kept


@dataclass(frozen=True)
class WorkerRecord:
    id: str
    pool: str
    state: WorkerState
    started_at: float
    last_seen: float
    host: str = ""
    pid: int | None = None
    provider_id: str | None = None  # instance id, task arn, pid
    job_id: str | None = None
    progress: float = 0.0
    drain: bool = False
    price_per_hour: float = 0.0
    stopped_at: float | None = None
    jobs_done: int = 0


@dataclass(frozen=True)
class FleetDecision:
    id: int
    at: float
    pool: str
    policy: str
    desired: int
    running: int
    busy: int
    launched: int
    retired: int
    reason: str  # rendered for people by the fleet (fleet/causes.py)
    cause: str = ""  # fleet.causes.Cause value
    notes: tuple[str, ...] = ()  # fleet.causes.Note values the controller applied
    error: str | None = None  # the pool's provider error, while it is failing
