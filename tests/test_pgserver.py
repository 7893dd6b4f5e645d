"""Smoke test for the throwaway PostgreSQL helper in tests/pgserver.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from pgserver import PostgresServer, postgres_available, start_postgres
from sqlalchemy import text


def _require_postgres() -> None:
    """Skip locally when PostgreSQL is missing, but fail in CI (CI=true)."""
    reason = postgres_available()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[PostgresServer]:
    _require_postgres()
    server = start_postgres(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_server_runs_queries_and_stops(pg_server: PostgresServer) -> None:
    url = pg_server.create_database("pgserver_smoke")
    assert url.startswith("postgresql+psycopg://")
    assert url.endswith("/pgserver_smoke")

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("select 1")).scalar_one() == 1
            assert conn.execute(text("select current_database()")).scalar_one() == (
                "pgserver_smoke"
            )

        with engine.begin() as conn:
            conn.execute(text("create table jobs (id integer primary key, state text not null)"))
            conn.execute(text("insert into jobs values (1, 'queued'), (2, 'queued'), (3, 'done')"))

        claim = text(
            "select id from jobs where state = 'queued' order by id limit 1 for update skip locked"
        )
        # Two workers claim a job concurrently: the second one skips the row the
        # first one holds locked and gets the next queued job.
        with (
            engine.connect() as worker1,
            engine.connect() as worker2,
            engine.connect() as worker3,
            worker1.begin(),
            worker2.begin(),
            worker3.begin(),
        ):
            assert worker1.execute(claim).scalar_one() == 1
            assert worker2.execute(claim).scalar_one() == 2
            # Every queued job is locked by someone: nothing left to claim.
            assert worker3.execute(claim).scalar_one_or_none() is None
        # Once both transactions ended the locks are gone again.
        with engine.connect() as conn:
            assert conn.execute(claim).scalar_one() == 1
    finally:
        engine.dispose()

    datadir = pg_server.datadir
    assert datadir.exists()
    pg_server.stop()
    assert not datadir.exists()
    pg_server.stop()  # idempotent
