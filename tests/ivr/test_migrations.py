"""The migrations build exactly the schema the models declare, and start-up applies them."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from ivr.infra.db import ADOPTED_REVISION, Base, Database, alembic_config, import_all_models
from ivr.infra.services import services_of


def head_revision() -> str:
    """The newest revision in ivr/migrations/versions (what start-up must reach)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_migrations_match_the_models(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'migrated.sqlite3'}")
    db.create_schema()
    import_all_models()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    db.dispose()
    assert diff == [], "models changed without a migration: " + repr(diff)
    assert version == head_revision()


def test_create_schema_is_idempotent_and_adopts_tables_made_without_alembic(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'adopted.sqlite3'}")
    import_all_models()
    Base.metadata.create_all(db.engine)  # an install from before the migrations
    db.create_schema()
    db.create_schema()
    with db.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        tables = set(inspect(conn).get_table_names())
    db.dispose()
    assert version == head_revision()
    assert {"calls", "call_events", "agents", "callback_requests"} <= tables


def test_app_start_migrates_the_configured_database(app):
    """On SQLite, and on PostgreSQL when DATABASE_URL is set: same schema as the models."""
    db = services_of(app).db
    with db.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        assert version == head_revision()
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], repr(diff)


def _migrate(url: str, barrier) -> None:
    db = Database(url)
    import_all_models()
    barrier.wait(30)  # everyone imported and connected: start at the same moment
    db.create_schema()


def test_processes_starting_together_migrate_a_fresh_sqlite_file_once(tmp_path):
    """gunicorn boots its workers at the same moment; each runs create_schema."""
    import multiprocessing

    url = f"sqlite:///{tmp_path / 'together.sqlite3'}"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(6)
    procs = [ctx.Process(target=_migrate, args=(url, barrier)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 6
    db = Database(url)
    with db.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    db.dispose()
    assert version == head_revision()


def test_an_install_from_before_the_migrations_gets_the_later_columns(tmp_path):
    """Tables of the first schema, made without Alembic: adopted at 0001, then upgraded (not
    stamped at head, which would skip the later revisions' columns)."""
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    db = Database(url)
    with db.engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, ADOPTED_REVISION)  # exactly the first schema
        conn.execute(text("DROP TABLE alembic_version"))  # as create_all left it
    db.create_schema()
    with db.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("callback_requests")}
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    db.dispose()
    assert {"job_failures", "last_error"} <= columns
    assert version == head_revision()
