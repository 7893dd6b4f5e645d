"""The `subscribe` command: a thin Typer adapter over the use cases.

The app and its shared helpers are in ``cli_app``; the sending commands in ``cli_posts``.
"""

from __future__ import annotations

import mailbox
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from . import ledger, store, subscribers
from .cli_app import (
    _engine,
    _send_confirmation,
    _session,
    _settings,
    app,
    bounces_app,
    db_app,
    err,
    now,
)
from .errors import SubscribeError
from .models import SubscriberStatus
from .tokens import tokens_for

__all__ = ["app", "main"]


# -- subscribers ------------------------------------------------------------------------------


@app.command()
def add(
    email: str,
    name: Annotated[str, typer.Option(help="The reader's name, used in greetings.")] = "",
    confirmed: Annotated[
        bool, typer.Option("--confirmed", help="Skip double opt-in (you hold their consent).")
    ] = False,
) -> None:
    """Add a subscriber; without --confirmed they get a confirmation email first.

    Example: subscribe add reader@example.org --name "Ada Reader"
    """
    settings = _settings()
    if not confirmed:
        tokens_for(settings)  # refuse before storing anything if no secret key is set
    with _session(settings) as session:
        outcome = subscribers.add(
            session, settings, email=email, name=name, confirmed=confirmed, now=now()
        )
        subscriber = outcome.subscriber
        if confirmed:
            typer.echo(f"Added {subscriber.email} (confirmed).")
        elif outcome.confirmation_due:
            _send_confirmation(settings, subscriber)
            typer.echo(f"Added {subscriber.email} (pending); sent a confirmation email.")
        else:
            typer.echo(
                f"Added {subscriber.email} (pending); a confirmation email went out recently, "
                "so no new one was sent."
            )


@app.command()
def unsubscribe(email: str) -> None:
    """Unsubscribe an address at once; queued emails to it are not sent.

    Example: subscribe unsubscribe reader@example.org
    """
    settings = _settings()
    with _session(settings) as session:
        changed = subscribers.unsubscribe_address(session, email=email, now=now())
    typer.echo(
        f"Unsubscribed {email.strip()}." if changed else f"{email.strip()} had already left."
    )


@app.command()
def remove(email: str) -> None:
    """Erase a subscriber and their delivery history (only a keyed hash of the address stays,
    so that `import` cannot quietly add them back).

    Example: subscribe remove reader@example.org
    """
    settings = _settings()
    with _session(settings) as session:
        subscribers.remove(session, settings, email=email, now=now())
    typer.echo(f"Removed {email.strip()} and their delivery history.")


class StatusChoice(StrEnum):
    pending = "pending"
    confirmed = "confirmed"
    unsubscribed = "unsubscribed"
    bounced = "bounced"


@app.command("list")
def list_(
    status: Annotated[StatusChoice | None, typer.Option(help="Only this status.")] = None,
) -> None:
    """List subscribers, one per line: email, status, name.

    Example: subscribe list --status confirmed
    """
    settings = _settings()
    with _session(settings) as session:
        wanted = SubscriberStatus(status.value) if status else None
        for subscriber in store.iter_subscribers(session, status=wanted):
            typer.echo(f"{subscriber.email}\t{subscriber.status}\t{subscriber.name}")


@app.command()
def stats() -> None:
    """Counts of subscribers by status, and of deliveries by state.

    Example: subscribe stats
    """
    settings = _settings()
    engine = _engine(settings)
    with Session(engine) as session:
        counts = store.count_by_status(session)
    typer.echo("subscribers: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    totals: dict[str, int] = {}
    posts = ledger.counts_by_post(engine)
    for per_post in posts.values():
        for state, n in per_post.items():
            totals[state] = totals.get(state, 0) + n
    typer.echo(f"posts announced: {len(posts)}")
    if totals:
        typer.echo("deliveries: " + ", ".join(f"{k} {v}" for k, v in totals.items() if v))


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV with a header row: email[,name].")],
    confirmed: Annotated[
        bool, typer.Option("--confirmed", help="Import as confirmed (you hold their consent).")
    ] = False,
) -> None:
    """Import subscribers from a CSV file; bad rows are reported by line, duplicates skipped.

    Example: subscribe import readers.csv --confirmed
    """
    settings = _settings()
    report = subscribers.import_csv(
        _engine(settings), settings, path=file, confirmed=confirmed, now=now()
    )
    for line, message in report.invalid[:50]:
        err.print(f"line {line}: {message}", markup=False, highlight=False, soft_wrap=True)
    if len(report.invalid) > 50:
        err.print(f"... and {len(report.invalid) - 50} more invalid rows", soft_wrap=True)
    typer.echo(
        f"imported {report.added}, duplicates skipped {report.duplicates}, "
        f"invalid {len(report.invalid)}, suppressed (removed earlier) {report.suppressed}"
    )


@app.command()
def export() -> None:
    """Write every subscriber as CSV to standard output.

    Example: subscribe export > subscribers.csv
    """
    settings = _settings()
    with _session(settings) as session:
        subscribers.export_csv(session, sys.stdout)


# -- running ----------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    dev: Annotated[
        bool, typer.Option("--dev", help="Also run the dev mailbox at /dev/mailbox.")
    ] = False,
) -> None:
    """Run the subscribe, confirm and unsubscribe pages.

    Example: subscribe serve --dev
    """
    from .serve import serve_forever

    serve_forever(_settings(), host=host, port=port, dev=dev)


@app.command()
def demo() -> None:
    """Show the whole flow on a throwaway database and the built-in dev mailbox.

    Example: subscribe demo
    """
    from .demo import run_demo

    run_demo(typer.echo)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply schema migrations (other commands do this by themselves on SQLite).

    Example: subscribe db upgrade
    """
    engine = _engine(_settings(), auto_upgrade=False)
    store.upgrade(engine)
    current, _ = store.current_revision(engine)
    typer.echo(f"database schema at revision {current}")


@bounces_app.command("process")
def bounces_process(
    mbox: Annotated[Path | None, typer.Option("--mbox", help="An mbox file of bounces.")] = None,
    maildir: Annotated[
        Path | None, typer.Option("--maildir", help="A Maildir folder of bounces.")
    ] = None,
    imap: Annotated[
        bool,
        typer.Option("--imap", help="The IMAP folder set by SUBSCRIBE_BOUNCE_IMAP_* (read-only)."),
    ] = False,
) -> None:
    """Read bounce messages (RFC 3464 and common formats) and mark bad addresses bounced.

    Bounces are matched to deliveries through the VERP return path (set
    SUBSCRIBE_BOUNCE_ADDRESS) or the original Message-ID. Nothing is deleted or moved:
    messages that are not bounces, or match nothing, are listed for a human to look at.

    Example: subscribe bounces process --maildir ~/Maildir/.bounces
             subscribe bounces process --imap
    """
    from .bounce_handling import process_bounces
    from .bounces import iter_maildir, iter_mbox
    from .imap_source import iter_imap

    if [mbox is not None, maildir is not None, imap].count(True) != 1:
        raise SubscribeError("give one of --mbox FILE, --maildir DIR or --imap")
    settings = _settings()
    tokens = tokens_for(settings)
    try:
        if imap:
            messages = list(iter_imap(settings))
        elif mbox is not None:
            messages = list(iter_mbox(mbox))
        else:
            messages = list(iter_maildir(Path(str(maildir))))
    except (OSError, mailbox.Error) as exc:
        raise SubscribeError(f"cannot read {mbox or maildir}: {exc}") from None
    run = process_bounces(_engine(settings), settings, tokens, messages, now=now())
    for address in run.newly_bounced:
        typer.echo(f"bounced: {address}")
    for key in run.not_bounces:
        typer.echo(f"left in place, not a bounce: {key}")
    for key in run.unmatched:
        typer.echo(f"left in place, matches no delivery: {key}")
    typer.echo(
        f"{len(messages)} messages: {run.hard} hard and {run.soft} soft bounces, "
        f"{len(run.newly_bounced)} subscribers marked bounced, "
        f"{len(run.not_bounces) + len(run.unmatched)} left for review"
    )


# Registered after the subscriber commands, so `subscribe --help` lists those first.
from . import cli_posts  # noqa: E402, F401


def main() -> None:
    app()
