"""initial catalog: users, tokens, media, jobs, attempts ledger, workers, fleet decisions

Revision ID: 0001
Revises:
Create Date: 2024-06-01

Hand-written; must match catalog/models.py (tests/catalog compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = 64
WORKER_ID = 128


def _t() -> sa.Double:
    return sa.Double()


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", _t(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("user_id", sa.String(ID), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("created_at", _t(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("revoked_at", _t(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_api_tokens_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_sha256", name="uq_api_tokens_token_sha256"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])

    op.create_table(
        "media",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("owner_id", sa.String(ID), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("source_key", sa.String(1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _t(), nullable=False),
        sa.Column("updated_at", _t(), nullable=False),
        sa.Column("duration", _t(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.String(ID), nullable=True),
        sa.Column("progress", _t(), nullable=False),
        sa.Column("published_prefix", sa.String(1024), nullable=True),
        sa.Column("master_key", sa.String(1024), nullable=True),
        sa.Column("thumbnail_key", sa.String(1024), nullable=True),
        sa.Column("storyboard_key", sa.String(1024), nullable=True),
        sa.Column("renditions", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_media_owner_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_media"),
    )
    op.create_index("ix_media_owner_id", "media", ["owner_id"])
    op.create_index("ix_media_state", "media", ["state"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("kind", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", _t(), nullable=False),
        sa.Column("updated_at", _t(), nullable=False),
        sa.Column("owner_id", sa.String(ID), nullable=True),
        sa.Column("media_id", sa.String(ID), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.String(ID), nullable=True),
        sa.Column("worker_id", sa.String(WORKER_ID), nullable=True),
        sa.Column("progress", _t(), nullable=False),
        sa.Column("speed", _t(), nullable=True),
        sa.Column("eta", _t(), nullable=True),
        sa.Column("started_at", _t(), nullable=True),
        sa.Column("finished_at", _t(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("work_seconds", _t(), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_jobs_owner_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_owner_id", "jobs", ["owner_id"])
    op.create_index("ix_jobs_media_id", "jobs", ["media_id"])
    op.create_index("ix_jobs_state_created", "jobs", ["state", "created_at"])

    op.create_table(
        "attempts",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("job_id", sa.String(ID), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(WORKER_ID), nullable=False),
        sa.Column("started_at", _t(), nullable=False),
        sa.Column("finished_at", _t(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("won", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_attempts_job_id_jobs"),
        sa.PrimaryKeyConstraint("id", name="pk_attempts"),
    )
    op.create_index("ix_attempts_job_id", "attempts", ["job_id"])
    op.create_index("ix_attempts_worker_id", "attempts", ["worker_id"])

    op.create_table(
        "workers",
        sa.Column("id", sa.String(WORKER_ID), nullable=False),
        sa.Column("pool", sa.String(100), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", _t(), nullable=False),
        sa.Column("last_seen", _t(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("provider_id", sa.String(255), nullable=True),
        sa.Column("job_id", sa.String(ID), nullable=True),
        sa.Column("progress", _t(), nullable=False),
        sa.Column("drain", sa.Boolean(), nullable=False),
        sa.Column("price_per_hour", _t(), nullable=False),
        sa.Column("stopped_at", _t(), nullable=True),
        sa.Column("jobs_done", sa.Integer(), nullable=False),
        sa.Column("prior_cost", _t(), nullable=False),
        sa.Column("prior_stopped_at", _t(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_workers"),
    )
    op.create_index("ix_workers_pool", "workers", ["pool"])

    op.create_table(
        "fleet_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", _t(), nullable=False),
        sa.Column("pool", sa.String(100), nullable=False),
        sa.Column("policy", sa.String(100), nullable=False),
        sa.Column("desired", sa.Integer(), nullable=False),
        sa.Column("running", sa.Integer(), nullable=False),
        sa.Column("busy", sa.Integer(), nullable=False),
        sa.Column("launched", sa.Integer(), nullable=False),
        sa.Column("retired", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fleet_decisions"),
    )
    op.create_index("ix_fleet_decisions_at", "fleet_decisions", ["at"])


def downgrade() -> None:
    op.drop_table("fleet_decisions")
    op.drop_table("workers")
    op.drop_table("attempts")
    op.drop_table("jobs")
    op.drop_table("media")
    op.drop_table("api_tokens")
    op.drop_table("users")
