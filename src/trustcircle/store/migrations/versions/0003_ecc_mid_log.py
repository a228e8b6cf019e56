"""ECC queue, MID servers, Code Signing log

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ecc_queue",
        sa.Column("sys_id", sa.String(length=32), nullable=False),
        sa.Column("agent", sa.String(length=120), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("queue", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("response_to", sa.String(length=32), nullable=False),
        sa.Column("error_string", sa.Text(), nullable=False),
        sa.Column("created_on", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("processed_on", sa.String(length=20), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=False),
        sa.Column("notarization_payload", sa.Text(), nullable=True),
        sa.Column("notarization_algorithm", sa.String(length=40), nullable=True),
        sa.Column("notarization_certificate", sa.String(length=64), nullable=True),
        sa.Column("notarization_signature", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("sys_id"),
    )
    with op.batch_alter_table("ecc_queue", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ecc_queue_poll", ["agent", "queue", "state", "created_on"], unique=False
        )
        batch_op.create_index("ix_ecc_queue_response_to", ["response_to"], unique=False)

    op.create_table(
        "mid_server",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("validated", sa.Boolean(), nullable=False),
        sa.Column("last_check_in", sa.String(length=20), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("firewall_mode", sa.String(length=20), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("stats", sa.Text(), nullable=False),
        sa.Column("registered_by", sa.String(length=100), nullable=False),
        sa.Column("registered_on", sa.String(length=20), nullable=False),
        sa.Column("validated_by", sa.String(length=100), nullable=False),
        sa.Column("validated_on", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    op.create_table(
        "codesigning_log",
        sa.Column("sys_id", sa.String(length=32), nullable=False),
        sa.Column("created_on", sa.String(length=20), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("event", sa.String(length=60), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("ecc", sa.String(length=32), nullable=False),
        sa.Column("agent", sa.String(length=120), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("reported_at", sa.String(length=20), nullable=False),
        sa.Column("reported_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("sys_id"),
    )
    with op.batch_alter_table("codesigning_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_codesigning_log_created_on"), ["created_on"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_codesigning_log_event"), ["event"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("codesigning_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_codesigning_log_event"))
        batch_op.drop_index(batch_op.f("ix_codesigning_log_created_on"))
    op.drop_table("codesigning_log")
    op.drop_table("mid_server")
    with op.batch_alter_table("ecc_queue", schema=None) as batch_op:
        batch_op.drop_index("ix_ecc_queue_response_to")
        batch_op.drop_index("ix_ecc_queue_poll")
    op.drop_table("ecc_queue")
