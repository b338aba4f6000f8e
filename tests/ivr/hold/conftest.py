"""Fixtures for agent tests: a real database with the schema and a flushed real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ivr.infra.db import Database


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.create_schema()
    yield database
    database.dispose()


@pytest.fixture
def r(redis_client):
    return redis_client
