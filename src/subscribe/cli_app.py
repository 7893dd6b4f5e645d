"""The Typer app and what every command shares: settings, engines, error handling.

Every error a user can cause is a ``SubscribeError``; the app's group prints it as one line
on stderr and exits 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import typer
import typer.core
from rich.console import Console
from sqlalchemy.engine import Engine
from sqlmodel import Session

from . import mailer, store, subscribers
from .config import Settings, load_settings
from .errors import SubscribeError
from .sender import SenderFactory, smtp_sender_factory
from .tokens import tokens_for

err = Console(stderr=True)


class _Group(typer.core.TyperGroup):
    """Turns a ``SubscribeError`` into one line on stderr and exit code 1, for every command."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SubscribeError as exc:
            err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            ctx.exit(1)
        finally:
            while _open_engines:
                _open_engines.pop().dispose()


app = typer.Typer(
    cls=_Group,
    help="Email newsletter subscriptions for a blog: double opt-in, one email per new post.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(cls=_Group, help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
bounces_app = typer.Typer(cls=_Group, help="Bounce handling.", no_args_is_help=True)
app.add_typer(bounces_app, name="bounces")


def now() -> datetime:
    return datetime.now(UTC)


def _settings() -> Settings:
    return load_settings()


# Engines opened by the running command; disposed when it ends, so pooled connections close
# with the command and not whenever the garbage collector runs.
_open_engines: list[Engine] = []


def _engine(settings: Settings, *, auto_upgrade: bool = True) -> Engine:
    if auto_upgrade:
        engine = store.open_store(settings.database_url)
    else:
        engine = store.make_engine(settings.database_url)
    _open_engines.append(engine)
    return engine


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    with store.write_session(_engine(settings)) as session:
        yield session


def _sender_factory(settings: Settings) -> SenderFactory:
    return smtp_sender_factory(settings)


def _send_confirmation(settings: Settings, subscriber: subscribers.Subscriber) -> None:
    tokens = tokens_for(settings)
    asyncio.run(mailer.send_confirmation(settings, _sender_factory(settings), tokens, subscriber))
