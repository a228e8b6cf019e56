"""web UI sessions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_session",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_on", sa.String(length=20), nullable=False),
        sa.Column("last_seen", sa.String(length=20), nullable=False),
        sa.Column("expires_at", sa.String(length=20), nullable=False),
        sa.Column("flash", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["sys_user.sys_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_session_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_web_session_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_session_expires_at"))
        batch_op.drop_index(batch_op.f("ix_web_session_user_id"))
    op.drop_table("web_session")
