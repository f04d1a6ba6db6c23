"""accounts: disabled users, OIDC (issuer, sub) identity, token expiry, server-side sessions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Hand-written; must match catalog/models.py (tests/catalog compares them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = 64


def upgrade() -> None:
    with op.batch_alter_table("users") as b:
        b.add_column(sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("oidc_issuer", sa.String(500), nullable=True))
        b.add_column(sa.Column("oidc_subject", sa.String(255), nullable=True))
        b.create_unique_constraint("uq_users_oidc_identity", ["oidc_issuer", "oidc_subject"])
    with op.batch_alter_table("users") as b:
        b.alter_column("disabled", server_default=None)
    with op.batch_alter_table("api_tokens") as b:
        b.add_column(sa.Column("expires_at", sa.Double(), nullable=True))
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(ID), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_sessions_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_sessions_user_id", table_name="sessions")
    op.drop_table("sessions")
    with op.batch_alter_table("api_tokens") as b:
        b.drop_column("expires_at")
    with op.batch_alter_table("users") as b:
        b.drop_constraint("uq_users_oidc_identity", type_="unique")
        b.drop_column("oidc_subject")
        b.drop_column("oidc_issuer")
        b.drop_column("disabled")
