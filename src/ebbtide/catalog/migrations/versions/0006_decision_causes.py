"""fleet decisions as typed data: cause, controller notes, provider error

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fleet_decisions") as batch:
        batch.add_column(sa.Column("cause", sa.String(40), nullable=True))
        batch.add_column(sa.Column("notes", sa.Text(), nullable=True))
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fleet_decisions") as batch:
        batch.drop_column("error")
        batch.drop_column("notes")
        batch.drop_column("cause")
