"""callback requests remember failed jobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database adopted at 0001 from `create_all` may already have the columns.
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("callback_requests")}
    with op.batch_alter_table("callback_requests", schema=None) as batch_op:
        if "job_failures" not in present:
            batch_op.add_column(sa.Column("job_failures", sa.Integer(), server_default="0",
                                          nullable=False))
        if "last_error" not in present:
            batch_op.add_column(sa.Column("last_error", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callback_requests", schema=None) as batch_op:
        batch_op.drop_column("last_error")
        batch_op.drop_column("job_failures")
