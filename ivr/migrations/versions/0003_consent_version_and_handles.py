"""consent versions, and handles for repeated asks

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ivr.infra.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    # A database adopted from `create_all` may already have them.
    present = {c["name"] for c in inspector.get_columns("callback_requests")}
    if "consent_version" not in present:
        with op.batch_alter_table("callback_requests", schema=None) as batch_op:
            batch_op.add_column(sa.Column("consent_version", sa.String(length=32),
                                          nullable=True))
    if not inspector.has_table("callback_handles"):
        op.create_table(
            "callback_handles",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("public_id", sa.String(length=32), nullable=False),
            sa.Column("request_id", sa.Integer(), nullable=False),
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("client_address", sa.String(length=64), nullable=True),
            sa.Column("consent_at", UTCDateTime(timezone=True), nullable=True),
            sa.Column("consent_version", sa.String(length=32), nullable=True),
            sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(["request_id"], ["callback_requests.id"],
                                    ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("public_id"),
        )
        op.create_index("ix_callback_handles_request_id", "callback_handles", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_callback_handles_request_id", table_name="callback_handles")
    op.drop_table("callback_handles")
    with op.batch_alter_table("callback_requests", schema=None) as batch_op:
        batch_op.drop_column("consent_version")
