"""webhook outbox: state-change events written with the change, delivered in order per media

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Hand-written; must match catalog/models.py (EventRow).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = 64


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(ID), nullable=False),
        sa.Column("media_id", sa.String(ID), nullable=True),
        sa.Column("job_id", sa.String(ID), nullable=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.Double(), nullable=False),
        sa.Column("delivered_at", sa.Double(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_event_outbox"),
        sa.UniqueConstraint("event_id", name="uq_event_outbox_event_id"),
    )
    op.create_index("ix_event_outbox_media_id", "event_outbox", ["media_id"])
    op.create_index("ix_event_outbox_delivered_at", "event_outbox", ["delivered_at"])


def downgrade() -> None:
    op.drop_table("event_outbox")
