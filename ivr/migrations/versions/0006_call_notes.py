"""call notes: the wrap-up notes agents write about their calls in the console

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ivr.infra.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database adopted from `create_all` may already have it.
    if sa.inspect(op.get_bind()).has_table("call_notes"):
        return
    op.create_table(
        "call_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_call_notes_call_sid_at", "call_notes", ["call_sid", "at"])
    op.create_index("ix_call_notes_agent_id", "call_notes", ["agent_id"])


def downgrade() -> None:
    op.drop_index("ix_call_notes_agent_id", table_name="call_notes")
    op.drop_index("ix_call_notes_call_sid_at", table_name="call_notes")
    op.drop_table("call_notes")
