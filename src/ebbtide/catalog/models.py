"""SQLAlchemy tables of the catalog.

The schema itself is owned by the hand-written Alembic migrations in `migrations/versions/`;
these models must match them (tests/catalog compares the two on every backend).
Ids are uuid4 hex strings, times are float epoch seconds from the injected Clock.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = 64  # uuid4 hex by default; callers may bring their own short ids
WORKER_ID = 128  # host names and instance ids make longer worker ids


def new_id() -> str:
    return uuid.uuid4().hex


# fixed constraint names, so the migrations name things the same on SQLite and PostgreSQL
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Double)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # OIDC identity: (issuer, sub) is the key, never the editable username claim
    oidc_issuer: Mapped[str | None] = mapped_column(String(500))
    oidc_subject: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject", name="uq_users_oidc_identity"),)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID), ForeignKey("users.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[float] = mapped_column(Double)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_at: Mapped[float | None] = mapped_column(Double)
    expires_at: Mapped[float | None] = mapped_column(Double)


class SessionRow(Base):
    """A browser login; the cookie holds the secret, the row its sha256. Deleting the row logs out."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie value
    user_id: Mapped[str] = mapped_column(String(ID), ForeignKey("users.id"), index=True)
    created_at: Mapped[float] = mapped_column(Double)
    expires_at: Mapped[float] = mapped_column(Double)


class MediaRow(Base):
    __tablename__ = "media"

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(ID), ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(16), index=True)
    source_key: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)
    duration: Mapped[float | None] = mapped_column(Double)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(String(ID))
    progress: Mapped[float] = mapped_column(Double, default=0.0)
    published_prefix: Mapped[str | None] = mapped_column(String(1024))
    master_key: Mapped[str | None] = mapped_column(String(1024))
    thumbnail_key: Mapped[str | None] = mapped_column(String(1024))
    storyboard_key: Mapped[str | None] = mapped_column(String(1024))
    renditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    playable_seconds: Mapped[float | None] = mapped_column(Double)  # a growing prefix (chunked media)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_created", "state", "created_at"),)

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    kind: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)
    owner_id: Mapped[str | None] = mapped_column(String(ID), ForeignKey("users.id"), index=True)
    # no foreign key: a job outlives its deleted media (marked failed "deleted")
    media_id: Mapped[str | None] = mapped_column(String(ID), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempt_id: Mapped[str | None] = mapped_column(String(ID))  # the current attempt
    worker_id: Mapped[str | None] = mapped_column(String(WORKER_ID))
    progress: Mapped[float] = mapped_column(Double, default=0.0)
    speed: Mapped[float | None] = mapped_column(Double)
    eta: Mapped[float | None] = mapped_column(Double)
    started_at: Mapped[float | None] = mapped_column(Double)
    finished_at: Mapped[float | None] = mapped_column(Double)
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    work_seconds: Mapped[float | None] = mapped_column(Double)


class AttemptRow(Base):
    """The completion ledger: one row per attempt; `won` marks the finish the ledger kept."""

    __tablename__ = "attempts"

    id: Mapped[str] = mapped_column(String(ID), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(ID), ForeignKey("jobs.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    worker_id: Mapped[str] = mapped_column(String(WORKER_ID), index=True)
    started_at: Mapped[float] = mapped_column(Double)
    finished_at: Mapped[float | None] = mapped_column(Double)
    outcome: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    won: Mapped[bool] = mapped_column(Boolean, default=False)


class WorkerRow(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(WORKER_ID), primary_key=True)
    pool: Mapped[str] = mapped_column(String(100), index=True)
    state: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[float] = mapped_column(Double)
    last_seen: Mapped[float] = mapped_column(Double)
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int | None] = mapped_column(Integer)
    provider_id: Mapped[str | None] = mapped_column(String(255))
    job_id: Mapped[str | None] = mapped_column(String(ID))
    progress: Mapped[float] = mapped_column(Double, default=0.0)
    drain: Mapped[bool] = mapped_column(Boolean, default=False)
    price_per_hour: Mapped[float] = mapped_column(Double, default=0.0)
    stopped_at: Mapped[float | None] = mapped_column(Double)
    jobs_done: Mapped[int] = mapped_column(Integer, default=0)
    # dollars billed for earlier lives of the same worker id (a gone worker that came back)
    prior_cost: Mapped[float] = mapped_column(Double, default=0.0)
    prior_stopped_at: Mapped[float | None] = mapped_column(Double)


class FleetDecisionRow(Base):
    __tablename__ = "fleet_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Double, index=True)
    pool: Mapped[str] = mapped_column(String(100))
    policy: Mapped[str] = mapped_column(String(100))
    desired: Mapped[int] = mapped_column(Integer)
    running: Mapped[int] = mapped_column(Integer)
    busy: Mapped[int] = mapped_column(Integer)
    launched: Mapped[int] = mapped_column(Integer)
    retired: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    cause: Mapped[str | None] = mapped_column(String(40), nullable=True)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class EventRow(Base):
    """The webhook outbox: one row per state change, written in the change's own transaction."""

    __tablename__ = "event_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(ID), unique=True)
    media_id: Mapped[str | None] = mapped_column(String(ID), index=True)
    job_id: Mapped[str | None] = mapped_column(String(ID))
    type: Mapped[str] = mapped_column(String(40))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Double)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[float] = mapped_column(Double)
    delivered_at: Mapped[float | None] = mapped_column(Double, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
