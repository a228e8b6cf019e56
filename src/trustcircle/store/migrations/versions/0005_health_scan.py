"""health: the last guardrail scan

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "health_scan_run",
        sa.Column("sys_id", sa.String(length=32), nullable=False),
        sa.Column("instance", sa.String(length=100), nullable=False),
        sa.Column("started_at", sa.String(length=20), nullable=False),
        sa.Column("finished_at", sa.String(length=20), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("scanned_by", sa.String(length=100), nullable=False),
        sa.Column("totals", sa.Text(), nullable=False),
        sa.Column("signature_states", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sys_id"),
    )
    op.create_table(
        "health_scan_result",
        sa.Column("table_name", sa.String(length=100), nullable=False),
        sa.Column("sys_id", sa.String(length=32), nullable=False),
        sa.Column("run", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("application", sa.String(length=100), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=32), nullable=False),
        sa.Column("certificate", sa.String(length=64), nullable=False),
        sa.Column("last_scanned", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("table_name", "sys_id"),
    )
    with op.batch_alter_table("health_scan_result", schema=None) as batch_op:
        batch_op.create_index("ix_health_scan_result_verdict", ["verdict"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("health_scan_result", schema=None) as batch_op:
        batch_op.drop_index("ix_health_scan_result_verdict")
    op.drop_table("health_scan_result")
    op.drop_table("health_scan_run")
