"""languages: a callback request's language, and the languages an agent speaks

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 19:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    # A database adopted from `create_all` may already have them.
    if "language" not in {c["name"] for c in inspector.get_columns("callback_requests")}:
        with op.batch_alter_table("callback_requests", schema=None) as batch_op:
            batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=False,
                                          server_default="en"))
    if "languages" not in {c["name"] for c in inspector.get_columns("agents")}:
        with op.batch_alter_table("agents", schema=None) as batch_op:
            batch_op.add_column(sa.Column("languages", sa.JSON(), nullable=False,
                                          server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("languages")
    with op.batch_alter_table("callback_requests", schema=None) as batch_op:
        batch_op.drop_column("language")
