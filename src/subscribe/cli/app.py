"""The Typer app and what every command shares: settings, engines, error handling.

Every error a user can cause is a ``SubscribeError``; the app's group prints it as one line
on stderr and exits 1. Anything else is a bug and keeps its traceback.

This module, like every ``cli`` module, imports only Typer and the standard library at the
top: `subscribe --help` must not pay for SQLAlchemy, pydantic or the SMTP stack. The use
cases are imported inside the commands (and the helpers below) that run them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core

from subscribe.errors import SubscribeError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from subscribe.config import Settings
    from subscribe.sending.sender import SenderFactory

# Exit code of a run that stopped before its work was done (interrupted, relay down for
# good): EX_TEMPFAIL, which cron wrappers and scripts read as "try again later".
EXIT_TEMPFAIL = 75


class _Group(typer.core.TyperGroup):
    """Turns a ``SubscribeError`` into one line on stderr and exit code 1, for every command."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except SubscribeError as exc:
            warn(f"error: {exc}")
            ctx.exit(1)
        finally:
            while _open_engines:
                _open_engines.pop().dispose()


class _Command(typer.core.TyperCommand):
    """Usage lines name a required argument as its help does (``EMAIL``), without the
    braces Typer puts around it (``{EMAIL}``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


class _Typer(typer.Typer):
    """Every command of ours is a ``_Command``."""

    def command(self, *args: Any, cls: Any = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or _Command, **kwargs)


app = _Typer(
    cls=_Group,
    help="Email newsletter subscriptions for a blog: double opt-in, one email per new post.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
db_app = _Typer(cls=_Group, help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
bounces_app = _Typer(cls=_Group, help="Bounce handling.", no_args_is_help=True)
app.add_typer(bounces_app, name="bounces")


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"subscribe {version('subscribe')}")
        except PackageNotFoundError:  # run from a bare checkout, not installed
            typer.echo("subscribe (not installed)")
        raise typer.Exit()


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Email newsletter subscriptions for a blog: double opt-in, one email per new post."""


def warn(text: str) -> None:
    """One line on stderr, as it is (no markup, no wrapping)."""
    typer.echo(text, err=True)


def now() -> datetime:
    return datetime.now(UTC)


def _settings() -> Settings:
    from subscribe.config import load_settings

    return load_settings()


def _mail_settings() -> Settings:
    """Settings for a command that makes email: a DKIM key that cannot be used is a
    one-line error here, before anything is stored or sent."""
    from subscribe.mail.dkim_keys import dkim_signer

    settings = _settings()
    dkim_signer(settings)
    return settings


# Engines opened by the running command; disposed when it ends, so pooled connections close
# with the command and not whenever the garbage collector runs.
_open_engines: list[Engine] = []


def _engine(settings: Settings, *, auto_upgrade: bool = True) -> Engine:
    from subscribe.db import store

    if auto_upgrade:
        engine = store.open_store(settings.database_url)
    else:
        engine = store.make_engine(settings.database_url)
    _open_engines.append(engine)
    return engine


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    from subscribe.db import store

    with store.write_session(_engine(settings)) as session:
        yield session


def _sender_factory(settings: Settings) -> SenderFactory:
    from subscribe.sending.sender import smtp_sender_factory

    return smtp_sender_factory(settings)


def _deliver_messages(settings: Settings, engine: Engine) -> str:
    """Send the transactional emails that are due (the one this command queued among them);
    '' when they went, else why they stay queued for `serve`, `worker` or `resume`."""
    import asyncio

    from subscribe.errors import DeliveryError
    from subscribe.readers.tokens import tokens_for
    from subscribe.sending.transactional import deliver_due_messages

    try:
        report = asyncio.run(
            deliver_due_messages(
                engine,
                settings,
                sender_factory=_sender_factory(settings),
                tokens=tokens_for(settings),
            )
        )
    except DeliveryError as exc:
        return str(exc)
    if report.messages.get("deferred") or report.messages.get("ambiguous"):
        return "the relay asked us to try again later"
    if report.messages.get("failed"):
        return "the relay refused it"
    return ""
