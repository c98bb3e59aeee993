"""Fixtures for the cluster tests: a real nats-server per test, one real PostgreSQL per
session (a fresh database per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.servers import NatsServer, PostgresServer


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer()
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_dsn(postgres_server: PostgresServer) -> str:
    return postgres_server.database()
