"""callback actions: what a supervisor did to a callback request from the console

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ivr.infra.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database adopted from `create_all` may already have it.
    if sa.inspect(op.get_bind()).has_table("callback_actions"):
        return
    op.create_table(
        "callback_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("who", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=False),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["callback_requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_callback_actions_request_id", "callback_actions", ["request_id"])
    op.create_index("ix_callback_actions_at", "callback_actions", ["at"])


def downgrade() -> None:
    op.drop_index("ix_callback_actions_at", table_name="callback_actions")
    op.drop_index("ix_callback_actions_request_id", table_name="callback_actions")
    op.drop_table("callback_actions")
