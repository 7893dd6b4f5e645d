"""Shared fixtures: a real SMTP server, a real database (SQLite file, and PostgreSQL), settings.

Tests that take ``settings`` run once per database backend: ``sqlite`` on a file in
``tmp_path`` and ``postgresql`` on a throwaway server started for the session (see
``pgserver.py``). Where PostgreSQL cannot be started the postgresql variants skip, except
in CI (``CI=true``), where they fail: a missing service must never pass silently.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from mailserver import RecordingHandler, SMTPServer
from pgserver import PostgresServer, postgres_available, start_postgres
from sqlalchemy.engine import Engine
from webserver import asgi_client, open_app

from subscribe.config import Settings, load_settings
from subscribe.db import store
from subscribe.readers.tokens import Tokens, tokens_for

# Fixtures kept in modules of their own (see each module's docstring).
pytest_plugins = ["readerenv"]

IN_CI = os.environ.get("CI", "").lower() == "true"
_database_numbers = itertools.count(1)


def require_service(reason: str | None) -> None:
    """Skip for a missing service locally; fail in CI, where everything must run."""
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SUBSCRIBE_* from the developer's shell, and no .env from the working directory."""
    for name in list(os.environ):
        if name.startswith("SUBSCRIBE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    require_service(postgres_available())
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'subscribe.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"test_{os.getpid()}_{next(_database_numbers)}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'subscribe.db'}"


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer(RecordingHandler()).start()
    yield server
    server.stop()


def make_settings(
    database_url: str, smtp: SMTPServer | None = None, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "secret_key": secrets.token_urlsafe(16),
        "base_url": "http://testserver",
        "site_name": "Test Blog",
        "site_url": "https://blog.example",
        "mail_from": "Test Blog <news@blog.example>",
        "smtp_security": "none",
        "smtp_host": smtp.host if smtp else "127.0.0.1",
        "smtp_port": smtp.port if smtp else 9,
        "smtp_connections": 2,
        "retry_delay": 0,
        "relay_down_timeout": 3,
        "smtp_timeout": 5,
    }
    values.update(overrides)
    return load_settings(**values)


async def send_queued_emails(engine: Engine, settings: Settings) -> None:
    """Send the confirmations and welcomes on the ledger, as `serve` or `add` would."""
    from subscribe.sending.sender import smtp_sender_factory
    from subscribe.sending.transactional import deliver_due_messages

    factory = smtp_sender_factory(settings)
    await deliver_due_messages(
        engine, settings, sender_factory=factory, tokens=tokens_for(settings)
    )


@pytest.fixture
def settings(database_url: str, smtp_server: SMTPServer) -> Settings:
    return make_settings(database_url, smtp_server)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = store.open_store(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def tokens(settings: Settings) -> Tokens:
    return tokens_for(settings)


# -- the web app, over the ASGI transport --------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    with open_app(settings) as app:
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client
