"""The jobs tests' PostgreSQL: one throwaway server per test process, a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.jobs.pgserver import PostgresServer, postgres_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A new empty database on the session's server."""
    return postgres.new_database()
