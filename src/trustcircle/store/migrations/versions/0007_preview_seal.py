"""update sets: preview seals what it found for commit

Preview stores its result with the digest of every input it read, the time it ran
and the first time a verdict may change, authenticated with a key derived from the
master key. Commit takes that result while all of it still holds.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 02:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sys_remote_update_set", schema=None) as batch_op:
        batch_op.add_column(sa.Column("preview_seal", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sys_remote_update_set", schema=None) as batch_op:
        batch_op.drop_column("preview_seal")
