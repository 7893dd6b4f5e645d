"""Fixtures the reader tests share (a plugin of tests/conftest.py: a conftest.py in
tests/readers would shadow the top-level one, which tests import as ``conftest``):
``cli_env``, the CLI configured from the test's settings as a user's environment would be,
and ``status_of``, a reader's status looked up by address."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from clihelp import settings_env
from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.readers import subscribers


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    settings_env(monkeypatch, settings)


@pytest.fixture
def status_of(engine: Engine) -> Callable[[str], str]:
    def status(email: str) -> str:
        with Session(engine) as session:
            return subscribers.find(session, email=email).status

    return status
