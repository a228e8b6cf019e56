"""update sets: retrieved entries keep their parsed fields and preview's receipts

Import parses each payload once and stores the record's fields as JSON (the form
``sys_record.fields`` takes), or the reason it could not be parsed together with
the payload itself. Preview stores authenticated receipts of the record signatures
it verified, so commit need not repeat the public-key work.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 23:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sys_remote_update_set", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipts", sa.Text(), nullable=True))
    with op.batch_alter_table("sys_remote_update_xml", schema=None) as batch_op:
        batch_op.alter_column("payload", existing_type=sa.Text(), nullable=True)
        batch_op.add_column(sa.Column("fields", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("problem", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sys_remote_update_xml", schema=None) as batch_op:
        batch_op.drop_column("problem")
        batch_op.drop_column("fields")
        batch_op.alter_column("payload", existing_type=sa.Text(), nullable=False)
    with op.batch_alter_table("sys_remote_update_set", schema=None) as batch_op:
        batch_op.drop_column("receipts")
