"""The `Catalog` port: what worker, fleet and web may ask of the catalog.

One implementation (SQLAlchemy, catalog/sql.py) serves SQLite and PostgreSQL. Owner-scoped reads
take `owner_id` and raise NotFound for another user's rows, so callers cannot leak them by mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ebbtide.catalog.hashing import PASSWORD_MIN_LENGTH
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


class Catalog(Protocol):
    # users, tokens and login sessions ----------------------------------------------------------
    def create_user(
        self, name: str, password: str | None = None, is_admin: bool = False,
        min_password_length: int = PASSWORD_MIN_LENGTH,
    ) -> User:
        """WeakPassword when the password breaks the policy (length, control characters)."""
        ...
    def get_user(self, user_id: str) -> User: ...
    def find_user(self, name: str) -> User | None: ...
    def list_users(self) -> list[User]: ...
    def check_password(self, name: str, password: str) -> User | None:
        """None for a wrong password, an unknown name or a disabled user (same cost for all)."""
        ...
    def set_password(
        self, user_id: str, password: str, min_password_length: int = PASSWORD_MIN_LENGTH
    ) -> None:
        """Also ends every login session of the user."""
        ...
    def set_disabled(self, user_id: str, disabled: bool = True) -> None:
        """Disabling ends the user's sessions; their tokens stop working while disabled."""
        ...
    def oidc_user(self, issuer: str, subject: str, name_hint: str) -> User:
        """The user keyed on (issuer, sub), created on first sight."""
        ...
    def create_token(self, user_id: str, label: str = "", expires_at: float | None = None) -> str:
        """Returns the plaintext token once; only its hash is stored."""
        ...
    def user_for_token(self, token: str) -> User | None:
        """None when unknown, revoked, expired, or the user is disabled."""
        ...
    def list_tokens(self, user_id: str) -> list[ApiToken]: ...
    def revoke_token(self, token: str) -> bool: ...
    def revoke_token_id(self, token_id: str) -> ApiToken: ...
    def create_session(self, user_id: str, ttl: float) -> str:
        """A login session; returns the cookie value once, only its hash is stored."""
        ...
    def user_for_session(self, secret: str) -> User | None: ...
    def end_session(self, secret: str) -> bool: ...
    def end_sessions(self, user_id: str) -> int: ...

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
    ) -> Media: ...
    def get_media(self, media_id: str, owner_id: str | None = None) -> Media:
        """NotFound if missing, or if owner_id is given and the media is someone else's."""
        ...

    def list_media(self, owner_id: str | None = None, limit: int = 200) -> list[Media]: ...
    def usage(self, owner_id: str) -> tuple[int, int]:
        """(bytes, videos) of the owner's media, for upload quotas."""
        ...
    def rename_media(self, media_id: str, owner_id: str, title: str) -> Media: ...
    def delete_media(self, media_id: str, owner_id: str | None = None) -> Media:
        """Removes the row and marks its non-terminal jobs failed ("deleted"); returns what was deleted."""
        ...

    def set_media_state(self, media_id: str, state: MediaState, error: str | None = None) -> Media: ...
    def set_media_progress(self, media_id: str, progress: float) -> None: ...
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
        """Atomically point the media at `prefix` and finish the job, if this attempt wins the ledger.

        Returns False (and changes nothing but the attempt's outcome) when another attempt already
        finished the job: the caller then deletes its own prefix.
        """
        ...

    def set_playable(
        self, media_id: str, prefix: str, master_key: str, seconds: float, renditions: Sequence[Rendition]
    ) -> bool:
        """A chunked media that is still transcoding plays its first `seconds` (only ever grows)."""
        ...

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
        """A queued job; with media_id the media moves uploaded → queued in the same transaction."""
        ...

    def get_job(self, job_id: str, owner_id: str | None = None) -> Job: ...
    def list_jobs(
        self, state: JobState | None = None, media_id: str | None = None, limit: int = 500
    ) -> list[Job]: ...
    def start_attempt(self, job_id: str, worker_id: str, receive_count: int) -> Attempt | None:
        """Job → running (media → transcoding). None when the job is already terminal: ack and skip."""
        ...

    def report_progress(
        self,
        job_id: str,
        attempt_id: str,
        fraction: float,
        speed: float | None = None,
        eta: float | None = None,
    ) -> None: ...
    def finish_attempt(
        self,
        job_id: str,
        attempt_id: str,
        outcome: JobState,
        error: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> bool:
        """Record an attempt's end. SUCCEEDED: the first finish wins (True), later ones are recorded as
        duplicates and ignored (False). QUEUED: the attempt failed and will be retried. DEAD/FAILED:
        terminal, media → failed with `error`."""
        ...

    def mark_dead(self, job_id: str, error: str) -> None:
        """Dead-lettered without a running attempt to finish (e.g. receive count exceeded)."""
        ...

    def requeue(self, job_id: str) -> Job:
        """Redrive: a dead or failed job goes back to queued (media too)."""
        ...

    def attempts(self, job_id: str) -> list[Attempt]: ...
    def job_counts(self) -> dict[JobState, int]: ...
    def recent_speeds(self, pool: str | None = None, limit: int = 20) -> list[float]:
        """Measured media-seconds per wall-second of recent successful attempts (for the fleet)."""
        ...

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
        """Upsert the worker and its last_seen; returns the record (read `.drain` from it)."""
        ...

    def get_worker(self, worker_id: str) -> WorkerRecord | None: ...
    def list_workers(self, pool: str | None = None, include_gone: bool = False) -> list[WorkerRecord]: ...
    def set_drain(self, worker_id: str, drain: bool = True) -> None: ...
    def mark_worker_gone(self, worker_id: str) -> None:
        """Worker → gone; its unfinished attempts are closed as lost and their jobs queued again."""
        ...
    def reap_silent_workers(self, older_than: float) -> list[str]:
        """Mark gone (as above) every worker not heard from for `older_than` s; returns their ids."""
        ...
    def register_worker(
        self, worker_id: str, pool: str, provider_id: str | None, price_per_hour: float
    ) -> WorkerRecord:
        """A launched worker, state booting, before it first reports (the fleet's bookkeeping)."""
        ...

    # fleet decisions ----------------------------------------------------------------------------
    def record_decision(
        self, pool: str, policy: str, desired: int, running: int, busy: int,
        launched: int, retired: int, reason: str, at: float | None = None,
        cause: str = "", notes: tuple[str, ...] = (), error: str | None = None,
    ) -> FleetDecision: ...
    def recent_decisions(self, limit: int = 50) -> list[FleetDecision]: ...
    def cost_so_far(self, since: float | None = None) -> dict[str, float]:
        """Dollars per pool from workers' lifetimes and price_per_hour (per-second, 60 s minimum)."""
        ...

    def close(self) -> None: ...
