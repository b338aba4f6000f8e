"""Alembic environment: the project's models are the target; the connection comes from
`ivr.infra.db.Database.create_schema` (or from sqlalchemy.url when alembic runs from a shell)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from ivr.infra.db import Base, import_all_models

import_all_models()
target_metadata = Base.metadata
config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    with create_engine(url).begin() as conn:
        _migrate(conn)


def _migrate(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
