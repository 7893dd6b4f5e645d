"""What every route needs, built once by ``create_app`` and handed to routes as a dependency."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..config import Settings
from ..ratelimit import RateLimiter
from ..sender import SenderFactory
from ..tokens import Tokens
from .clientip import ClientIPResolver
from .pages import Pages


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class WebContext:
    settings: Settings
    engine: Engine
    tokens: Tokens
    pages: Pages
    sender_factory: SenderFactory
    signup_limiter: RateLimiter
    client_ips: ClientIPResolver
    site_origin: str  # the blog's origin: the only one allowed to post JSON cross-origin
    dev_mailbox: Path | None

    def client_ip(self, request: Request) -> str:
        peer = request.client.host if request.client else None
        return self.client_ips.resolve(peer, request.headers.getlist("x-forwarded-for"))

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session whose transactions take SQLite's write lock up front (BEGIN IMMEDIATE).

        The use cases read, then write: under a deferred BEGIN two processes doing that
        at once can fail with "database is locked" instead of waiting their turn.
        PostgreSQL ignores the option.
        """
        connection = self.engine.connect().execution_options(immediate=True)
        with connection, Session(bind=connection) as session:
            yield session


def get_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.web
    return context


Ctx = Annotated[WebContext, Depends(get_context)]
