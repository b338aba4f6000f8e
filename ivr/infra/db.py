"""SQL database: declarative base, engine set-up and sessions.

Schema story: every table is declared with SQLAlchemy 2.0 typed models on `Base`; Alembic
migrations in `ivr/migrations/versions` build that schema, and `Database.create_schema()` brings
a database to the newest revision at start-up. A change to a model comes with a new revision:
`alembic -c ivr/migrations/alembic.ini revision --autogenerate -m "..."` (a test fails while the
migrations and the models disagree).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# The revision a database made by `metadata.create_all` (before Alembic) is adopted at.
ADOPTED_REVISION = "0001"


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base shared by every package's models."""


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


class Database:
    """One engine and session factory for a database URL."""

    def __init__(self, url: str, *, connect_timeout: float = 2.0) -> None:
        self.url = url
        kwargs: dict = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 15, "check_same_thread": False}
        elif url.startswith("postgresql"):
            kwargs["connect_args"] = {"connect_timeout": max(1, int(connect_timeout))}
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_schema(self) -> None:
        """Bring the database to the newest migration (idempotent; safe to run at every start)."""
        import_all_models()
        with self._migration_lock(), self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Web processes start together: one migrates, the others wait, then find it done.
                conn.execute(text("SELECT pg_advisory_xact_lock(7262013)"))
            cfg = alembic_config(self.url)
            cfg.attributes["connection"] = conn
            inspector = inspect(conn)
            if not inspector.has_table("alembic_version") and inspector.has_table("calls"):
                # Tables made by metadata.create_all before the migrations existed: they are
                # the first revision's schema; the later revisions then bring them up to date.
                command.stamp(cfg, ADOPTED_REVISION)
            command.upgrade(cfg, "head")

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Serialise migrations of one SQLite file across processes (gunicorn workers start
        together; SQLite's DDL would otherwise race: 'table ... already exists')."""
        path = self.engine.url.database if self.engine.url.get_backend_name() == "sqlite" else None
        if not path or path == ":memory:":
            yield
            return
        with open(f"{path}.migrate-lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets the web process read while the worker writes; busy_timeout rides out short locks.
    # synchronous=NORMAL with WAL: a commit survives the process being killed (what the fault
    # tests do); only an OS crash or power cut can lose the last commits. Production runs on
    # PostgreSQL; this is the laptop default.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=15000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def alembic_config(url: str):
    """An Alembic configuration for this project's migrations and `url`."""
    cfg = Config()
    cfg.set_main_option("script_location", "ivr:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def import_all_models() -> None:
    """Import every models module so their tables are registered on `Base`."""
    for name in ("ivr.infra.models", "ivr.infra.agents.models", "ivr.infra.queue_models",
                 "ivr.infra.notes_models", "callback.models"):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
