"""ECC queue: when a message was claimed, and whether its claim ran out

A message claimed by a MID that stops never gets a result. The claim time lets the
instance mark such a message ``error`` after ``trustcircle.ecc.result_timeout``
seconds (never ready again: a command that may have run is not run twice); the
flag lets a late result of that MID still replace the error. Messages claimed
before this revision count as claimed when they were created.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 05:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ecc_queue", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("claimed_on", sa.String(length=20), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("claim_expired", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index("ix_ecc_queue_claims", ["queue", "state", "claimed_on"], unique=False)
    op.execute("UPDATE ecc_queue SET claimed_on = created_on WHERE state = 'processing'")


def downgrade() -> None:
    with op.batch_alter_table("ecc_queue", schema=None) as batch_op:
        batch_op.drop_index("ix_ecc_queue_claims")
        batch_op.drop_column("claim_expired")
        batch_op.drop_column("claimed_on")
