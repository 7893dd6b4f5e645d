"""The commands that send what is queued: resume, worker, status; and the sending pass that
`notify` shares with them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from .app import EXIT_TEMPFAIL, _engine, _mail_settings, _sender_factory, _settings, app, warn

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from subscribe.config import Settings
    from subscribe.sending.report import RunReport


def print_report(report: RunReport, engine: Engine | None = None) -> None:
    typer.echo(report.summary())
    if engine is not None and len(report.by_post) > 1:
        _print_posts(report, engine)
    if report.stopped:
        typer.echo(f"stopped early: {report.stopped}; run `subscribe resume` to continue")


def _print_posts(report: RunReport, engine: Engine) -> None:
    """A pass that sent several posts' deliveries says how many of each, so that a new
    post's figures are not an older post's backlog."""
    from sqlmodel import Session

    from subscribe.db.models import Post

    with Session(engine) as session:
        for post_id, per_state in sorted(report.by_post.items()):
            post = session.get(Post, post_id)
            label = post.title if post is not None else f"post {post_id}"
            typer.echo(f"  {label}: {_states(per_state)}")


def finish(report: RunReport, engine: Engine) -> None:
    """Print the report of a `notify`/`resume` pass; an interrupted one exits 75 (EX_TEMPFAIL)
    so that cron and scripts know the work is not done."""
    print_report(report, engine)
    if report.interrupted:
        raise typer.Exit(EXIT_TEMPFAIL)


def send_pass(settings: Settings, engine: Engine) -> RunReport:
    """One sending pass, with a progress bar on a terminal; a relay that cannot be reached
    ends it with the count of what stays queued."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from subscribe.errors import DeliveryError, SubscribeError
    from subscribe.readers.tokens import tokens_for
    from subscribe.sending import runs, tallies

    tokens = tokens_for(settings)
    err = Console(stderr=True)
    show_bar = err.is_terminal
    with Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not show_bar,
    ) as progress:
        task = progress.add_task("sending", total=None)
        next_update = 0.0

        def on_progress(done: int, total: int) -> None:
            # Called for every message; redrawing the bar each time cost up to 8% of a
            # run at thousands a second. Ten updates a second, and the last, are plenty.
            nonlocal next_update
            now = time.monotonic()
            if now >= next_update or done >= total:
                next_update = now + 0.1
                progress.update(task, completed=done, total=total or None)

        try:
            return runs.send_due(
                engine,
                settings,
                sender_factory=_sender_factory(settings),
                tokens=tokens,
                on_progress=on_progress if show_bar else None,
            )
        except DeliveryError as exc:
            remaining = sum(
                n
                for per_post in tallies.counts_by_post(engine).values()
                for state, n in per_post.items()
                if state in ("queued", "deferred", "ambiguous", "sending")
            )
            raise SubscribeError(
                f"{exc}; {remaining} deliveries stay queued: run `subscribe resume` "
                "once the relay works"
            ) from None


@app.command()
def resume() -> None:
    """Send every delivery that is due: finishes interrupted or deferred posts.

    Example:

    \b
      subscribe resume
    """
    settings = _mail_settings()
    engine = _engine(settings)
    finish(send_pass(settings, engine), engine)


@app.command()
def worker(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit once nothing is due instead of waiting.")
    ] = False,
) -> None:
    """Keep sending due deliveries; run one or more per machine against a shared database.

    Workers share the queue safely (SQLite: BEGIN IMMEDIATE claims; PostgreSQL: FOR UPDATE
    SKIP LOCKED), so each message goes out once however many run. SIGTERM stops cleanly.

    Example:

    \b
      SUBSCRIBE_DATABASE_URL=postgresql+psycopg://... subscribe worker
    """
    from subscribe.db.models import utcnow
    from subscribe.errors import DeliveryError, SubscribeError
    from subscribe.posts.digests import DigestSchedule
    from subscribe.readers.tokens import tokens_for
    from subscribe.sending import runs

    settings = _mail_settings()
    engine = _engine(settings)
    schedule = DigestSchedule(settings)

    def queue_digests() -> None:
        # Once a period (the statement reads every digest reader), not on every poll.
        if schedule.due(utcnow()):
            schedule.run(engine, now=utcnow())

    try:
        runs.run_worker(
            engine,
            settings,
            sender_factory=_sender_factory(settings),
            tokens=tokens_for(settings),
            until_idle=until_idle,
            before_pass=queue_digests,
            on_report=lambda report: print_report(report, engine),
            on_relay_error=lambda exc: warn(f"relay unavailable, retrying later: {exc}"),
            on_database_error=lambda exc: warn(
                f"database unavailable, retrying: {str(exc).splitlines()[0]}"
            ),
        )
    except DeliveryError as exc:
        raise SubscribeError(str(exc)) from None


@app.command()
def status(
    post: Annotated[
        str | None, typer.Argument(metavar="POST", help="A post's URL or key (default: all posts).")
    ] = None,
) -> None:
    """Per-post delivery counts by state.

    Example:

    \b
      subscribe status https://blog.example/hello
    """
    from sqlmodel import Session

    from subscribe.db import store
    from subscribe.db.models import Post
    from subscribe.errors import SubscribeError
    from subscribe.sending import tallies

    settings = _settings()
    engine = _engine(settings)
    with Session(engine) as session:
        post_id = None
        if post is not None:
            found = store.post_by_key(session, key=post)
            if found is None:
                raise SubscribeError(f"no post announced with key {post!r}")
            post_id = found.id
        counts = tallies.counts_by_post(engine, post_id=post_id)
        if not counts:
            typer.echo("No posts announced yet.")
        for pid, per_state in sorted(counts.items()):
            row = session.get(Post, pid)
            label = row.title if row else f"post {pid}"
            typer.echo(f"{label}: {_states(per_state)}")
    if post is None:
        print_mail_overview(engine)


_KIND_LABELS = {
    "confirm": "confirmation emails",
    "welcome": "welcome emails",
    "address_change": "address confirmations",
}


def _states(per_state: dict[str, int]) -> str:
    return ", ".join(f"{state} {n}" for state, n in per_state.items() if n)


def print_mail_overview(engine: Engine) -> None:
    """Transactional mail by kind and state, then failures grouped by the relay's answer:
    a refusal the admin can act on ("500 Line too long") rather than "failed 1"."""
    from subscribe.sending import tallies

    for period, per_state in sorted(tallies.counts_by_period(engine).items()):
        typer.echo(f"digest {period}: {_states(per_state)}")
    for kind, per_state in sorted(tallies.counts_by_kind(engine).items()):
        if kind == "digest":
            continue  # by period, above
        typer.echo(f"{_KIND_LABELS.get(kind, kind)}: {_states(per_state)}")
    reasons = tallies.failure_reasons(engine)
    if reasons:
        typer.echo("failed deliveries, by the relay's answer:")
    for what, error, n in reasons:
        label = _KIND_LABELS.get(what, repr(what))
        typer.echo(f"  {n} x {label}: {error or '(no answer recorded)'}")
