"""The reader commands: add, unsubscribe, remove, list, stats, export (import: imports.py)."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from .app import _deliver_messages, _engine, _mail_settings, _session, _settings, app, now
from .sending import print_mail_overview

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

EmailArg = Annotated[str, typer.Argument(metavar="EMAIL", help="The reader's address.")]


@app.command()
def add(
    email: EmailArg,
    name: Annotated[str, typer.Option(help="The reader's name, used in greetings.")] = "",
    confirmed: Annotated[
        bool, typer.Option("--confirmed", help="Skip double opt-in (you hold their consent).")
    ] = False,
    language: Annotated[
        str, typer.Option(help="Their language (de, pt-BR...); default: SUBSCRIBE_LANGUAGE.")
    ] = "",
) -> None:
    """Add a subscriber; without --confirmed they get a confirmation email first.

    Example:

    \b
      subscribe add reader@example.org --name "Ada Reader"
    """
    from subscribe.db import store
    from subscribe.readers import subscribers
    from subscribe.readers.tokens import tokens_for

    settings = _mail_settings()
    if not confirmed:
        tokens_for(settings)  # refuse before storing anything if no secret key is set
    engine = _engine(settings)
    with store.write_session(engine) as session:
        outcome = subscribers.add(
            session,
            settings,
            email=email,
            name=name,
            confirmed=confirmed,
            language=language,
            now=now(),
        )
        address = outcome.subscriber.email
    if confirmed:
        typer.echo(f"Added {address} (confirmed).")
    elif not outcome.confirmation_due:
        typer.echo(
            f"Added {address} (pending); a confirmation email went out recently, "
            "so no new one was sent."
        )
    elif trouble := _deliver_messages(settings, engine):
        typer.echo(
            f"Added {address} (pending); the confirmation email is queued ({trouble}): "
            "the next `subscribe serve`, `worker` or `resume` sends it."
        )
    else:
        typer.echo(f"Added {address} (pending); sent a confirmation email.")


@app.command()
def unsubscribe(email: EmailArg) -> None:
    """Unsubscribe an address at once; queued emails to it are not sent.

    Example:

    \b
      subscribe unsubscribe reader@example.org
    """
    from subscribe.readers import subscribers

    settings = _settings()
    with _session(settings) as session:
        changed = subscribers.unsubscribe_address(session, email=email, now=now())
    typer.echo(
        f"Unsubscribed {email.strip()}." if changed else f"{email.strip()} had already left."
    )


@app.command()
def remove(email: EmailArg) -> None:
    """Erase a subscriber and their delivery history (only a keyed hash of the address stays,
    so that `import` cannot quietly add them back).

    Example:

    \b
      subscribe remove reader@example.org
    """
    from subscribe.readers import subscribers

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
    """List subscribers, one per line: email, status, name, cadence, categories, language.

    Example:

    \b
      subscribe list --status confirmed
    """
    from subscribe.db import bulk, store
    from subscribe.db.models import SubscriberStatus

    settings = _settings()
    with _session(settings) as session:
        wanted = SubscriberStatus(status.value) if status else None
        chosen = bulk.categories_by_reader(session)
        for subscriber in store.iter_subscribers(session, status=wanted):
            categories = ",".join(chosen.get(subscriber.id or 0, ()))
            typer.echo(
                f"{subscriber.email}\t{subscriber.status}\t{subscriber.name}"
                f"\t{subscriber.cadence}\t{categories}\t{subscriber.language}"
            )


@app.command()
def stats() -> None:
    """Counts of subscribers by status, and of deliveries by state.

    Example:

    \b
      subscribe stats
    """
    from subscribe.db import store
    from subscribe.sending import tallies

    settings = _settings()
    engine = _engine(settings)
    counts = store.count_by_status(engine)
    typer.echo("subscribers: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    totals: dict[str, int] = {}
    posts = tallies.counts_by_post(engine)
    for per_post in posts.values():
        for state, n in per_post.items():
            totals[state] = totals.get(state, 0) + n
    typer.echo(f"posts announced: {len(posts)}")
    if totals:
        typer.echo("deliveries: " + ", ".join(f"{k} {v}" for k, v in totals.items() if v))
    print_mail_overview(engine)
    _print_bounce_overview(engine)


def _print_bounce_overview(engine: Engine) -> None:
    """Complaints, readers whose bounces are being counted, and refusals about the sender
    (by reason and receiving domain): those mean the sending setup needs fixing."""
    from subscribe.bounces.overview import bounce_overview

    overview = bounce_overview(engine, now=now())
    typer.echo(
        f"complaints: {overview.complaints} (unsubscribed); "
        f"readers with counted bounces (last 30 days): {overview.counting}"
    )
    if overview.sender_refusals:
        typer.echo("refused for reasons about the sender (last 30 days), by reason and domain:")
    for reason, domain, n in overview.sender_refusals:
        typer.echo(f"  {n} x {reason} at {domain}")


@app.command()
def export() -> None:
    """Write every subscriber as CSV to standard output.

    Example:

    \b
      subscribe export > subscribers.csv
    """
    from subscribe.readers import exports

    settings = _settings()
    with _session(settings) as session:
        exports.export_csv(session, sys.stdout)
