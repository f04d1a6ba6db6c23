"""media.playable_seconds: how much of a chunked video already plays while the rest encodes

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("media") as b:
        b.add_column(sa.Column("playable_seconds", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("media") as b:
        b.drop_column("playable_seconds")
