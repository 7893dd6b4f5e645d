"""The commands that announce and send posts: notify, preview, send-test, resume, worker,
status."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.engine import Engine
from sqlmodel import Session

from . import campaign, ledger, store
from .cli_app import (
    _engine,
    _sender_factory,
    _session,
    _settings,
    app,
    err,
    now,
)
from .config import Settings
from .envelopes import post_builder
from .errors import DeliveryError, SourceError, SubscribeError
from .models import Post, SubscriberStatus
from .notifier import RunReport
from .render import Recipient, message_id
from .sources import PostSpec, from_flags, from_markdown, read_feed
from .tokens import tokens_for

# -- posts ----------------------------------------------------------------------------------

TitleOpt = Annotated[str, typer.Option("--title", help="The post's title.")]
UrlOpt = Annotated[str, typer.Option("--url", help="The post's URL.")]
SummaryOpt = Annotated[str, typer.Option("--summary", help="A short summary.")]
PostOpt = Annotated[Path | None, typer.Option("--post", help="A Markdown file with front matter.")]
FeedOpt = Annotated[
    str | None,
    typer.Option("--feed", help="An RSS/Atom feed URL or file (default: SUBSCRIBE_FEED_URL)."),
]


def _single_source(title: str, url: str, summary: str, post: Path | None) -> PostSpec:
    if post is not None:
        if title or url:
            raise SourceError("give either --post or --title/--url, not both")
        return from_markdown(post)
    if not title and not url:
        raise SourceError("say what to announce: --title and --url, --post FILE.md, or --feed")
    return from_flags(title=title, url=url, summary=summary)


def _sample_recipient(settings: Settings, session: Session, spec: PostSpec) -> Recipient:
    tokens = tokens_for(settings)
    sample = next(
        store.iter_subscribers(session, status=SubscriberStatus.CONFIRMED, page_size=1), None
    )
    email, name, sid, key = "reader@example.org", "Sample Reader", 0, "reader@example.org"
    if sample is not None:
        email, name, sid, key = sample.email, sample.name, sample.id or 0, sample.email_key
    token = tokens.unsubscribe_token(sid, key)
    return Recipient(
        email=email,
        name=name,
        unsubscribe_url=f"{settings.base_url}/unsubscribe/{token}",
        message_id=message_id(settings.mail_domain, post_key=spec.key, subscriber_id=sid),
    )


def _print_report(report: RunReport) -> None:
    typer.echo(report.summary())
    if report.stopped:
        typer.echo(f"stopped early: {report.stopped}; run `subscribe resume` to continue")


def _send_pass(settings: Settings, engine: Engine) -> RunReport:
    tokens = tokens_for(settings)
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
            return campaign.send_due(
                engine,
                settings,
                sender_factory=_sender_factory(settings),
                tokens=tokens,
                on_progress=on_progress if show_bar else None,
            )
        except DeliveryError as exc:
            remaining = sum(
                n
                for per_post in ledger.counts_by_post(engine).values()
                for state, n in per_post.items()
                if state in ("queued", "deferred", "ambiguous", "sending")
            )
            raise SubscribeError(
                f"{exc}; {remaining} deliveries stay queued: run `subscribe resume` "
                "once the relay works"
            ) from None


@app.command()
def notify(
    title: TitleOpt = "",
    url: UrlOpt = "",
    summary: SummaryOpt = "",
    post: PostOpt = None,
    feed: FeedOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the audience and a sample; send nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Announce a post to every confirmed subscriber (re-running resumes; nothing goes twice).

    Examples:
      subscribe notify --title "Hello" --url https://blog.example/hello --yes
      subscribe notify --post posts/hello.md
      subscribe notify --feed https://blog.example/feed.xml --yes   (from cron)
    """
    settings = _settings()
    tokens_for(settings)  # no secret key: stop before anything is stored
    engine = _engine(settings)
    feed_location = feed if feed is not None else None
    if feed_location is not None and (title or url or post):
        raise SourceError("give either --feed or --title/--url or --post, not several")
    if feed_location == "" and settings.feed_url:
        feed_location = settings.feed_url
    with store.write_session(engine) as session:
        plan = None
        if feed_location is not None:
            if not feed_location:
                raise SourceError("--feed needs a URL or file (or set SUBSCRIBE_FEED_URL)")
            plan = campaign.plan_feed(session, read_feed(feed_location))
            specs = plan.announce
        else:
            specs = [_single_source(title, url, summary, post)]
        audience = store.count_confirmed(session)
        if dry_run:
            _dry_run(settings, session, specs, audience)
            return
        if not specs:
            typer.echo("Nothing new in the feed.")
            if plan is not None:
                campaign.record_passed_over(session, plan, now=now())
        else:
            fresh = [s for s in specs if store.post_by_key(session, key=s.key) is None]
            if fresh and not yes:
                if not sys.stdin.isatty():
                    raise SubscribeError("not asking without a terminal: add --yes to send")
                titles = ", ".join(repr(s.title) for s in fresh)
                typer.confirm(f"Send {titles} to {audience} confirmed subscribers?", abort=True)
            if plan is not None:
                campaign.record_passed_over(session, plan, now=now())
            announced = campaign.announce(
                session, specs, now=now(), feed=plan.feed.identity if plan else None
            )
            for item in announced:
                verb = "announced" if item.is_new else "resuming"
                typer.echo(f"{verb}: {item.post.title} ({item.enqueued} queued)")
    if specs:
        _print_report(_send_pass(settings, engine))


def _dry_run(settings: Settings, session: Session, specs: list[PostSpec], audience: int) -> None:
    if not specs:
        typer.echo("Nothing new in the feed: nothing would be sent.")
        return
    for spec in specs:
        known = store.post_by_key(session, key=spec.key) is not None
        note = " (announced before: a run would only resume it)" if known else ""
        typer.echo(
            f"would announce: {spec.title} <{spec.url}> to {audience} confirmed subscribers{note}"
        )
    message = post_builder(settings, specs[0]).build(_sample_recipient(settings, session, specs[0]))
    typer.echo("--- sample message ---")
    typer.echo(message.decode("ascii", "replace").replace("\r\n", "\n"))


@app.command()
def preview(
    title: TitleOpt = "",
    url: UrlOpt = "",
    summary: SummaryOpt = "",
    post: PostOpt = None,
    out: Annotated[Path, typer.Option(help="Where to write preview.eml and preview.html.")] = Path(
        "."
    ),
) -> None:
    """Render the new-post email for a post and write it as .eml and .html files.

    Example: subscribe preview --post posts/hello.md --out /tmp
    """
    settings = _settings()
    spec = _single_source(title, url, summary, post)
    with _session(settings) as session:
        recipient = _sample_recipient(settings, session, spec)
    builder = post_builder(settings, spec)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "preview.eml").write_bytes(builder.build(recipient))
        (out / "preview.html").write_text(builder.render(recipient).html, encoding="utf-8")
    except OSError as exc:
        raise SubscribeError(f"cannot write to {out}: {exc.strerror}") from None
    typer.echo(f"wrote {out / 'preview.eml'} and {out / 'preview.html'}")


@app.command("send-test")
def send_test(
    email: str,
    title: TitleOpt = "A test from subscribe",
    url: UrlOpt = "https://example.org/",
    summary: SummaryOpt = "If you can read this, your SMTP settings work.",
) -> None:
    """Send one new-post email to EMAIL through the configured relay (nothing is recorded).

    Example: subscribe send-test me@example.org
    """
    from .addresses import normalize
    from .sender import Envelope

    settings = _settings()
    tokens = tokens_for(settings)
    address = normalize(email)
    spec = from_flags(title=title, url=url, summary=summary)
    token = tokens.unsubscribe_token(0, address.key)  # names no subscriber: the link is a sample
    recipient = Recipient(
        email=address.ascii,
        name="",
        unsubscribe_url=f"{settings.base_url}/unsubscribe/{token}",
        message_id=message_id(
            settings.mail_domain, post_key=f"test:{now().isoformat()}", subscriber_id=0
        ),
    )
    message = post_builder(settings, spec).build(recipient)

    async def send() -> None:
        sender = _sender_factory(settings)()
        try:
            await sender.send(Envelope(settings.mail_from_address, address.ascii, message))
        finally:
            await sender.close()

    asyncio.run(send())
    typer.echo(
        f"Sent a test email to {address.display} via {settings.smtp_host}:{settings.smtp_port}."
    )


@app.command()
def resume() -> None:
    """Send every delivery that is due: finishes interrupted or deferred posts.

    Example: subscribe resume
    """
    settings = _settings()
    _print_report(_send_pass(settings, _engine(settings)))


@app.command()
def worker(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit once nothing is due instead of waiting.")
    ] = False,
) -> None:
    """Keep sending due deliveries; run one or more per machine against a shared database.

    Workers share the queue safely (SQLite: BEGIN IMMEDIATE claims; PostgreSQL: FOR UPDATE
    SKIP LOCKED), so each message goes out once however many run. SIGTERM stops cleanly.

    Example: SUBSCRIBE_DATABASE_URL=postgresql+psycopg://... subscribe worker
    """
    settings = _settings()
    try:
        campaign.run_worker(
            _engine(settings),
            settings,
            sender_factory=_sender_factory(settings),
            tokens=tokens_for(settings),
            until_idle=until_idle,
            on_report=_print_report,
            on_relay_error=lambda exc: err.print(
                f"relay unavailable, retrying later: {exc}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            ),
        )
    except DeliveryError as exc:
        raise SubscribeError(str(exc)) from None


@app.command()
def status(
    post: Annotated[
        str | None, typer.Argument(help="A post's URL or key (default: all posts).")
    ] = None,
) -> None:
    """Per-post delivery counts by state.

    Example: subscribe status https://blog.example/hello
    """
    settings = _settings()
    engine = _engine(settings)
    with Session(engine) as session:
        post_id = None
        if post is not None:
            found = store.post_by_key(session, key=post)
            if found is None:
                raise SubscribeError(f"no post announced with key {post!r}")
            post_id = found.id
        counts = ledger.counts_by_post(engine, post_id=post_id)
        if not counts:
            typer.echo("No posts announced yet.")
        for pid, per_state in sorted(counts.items()):
            row = session.get(Post, pid)
            label = row.title if row else f"post {pid}"
            states = ", ".join(f"{k} {v}" for k, v in per_state.items() if v)
            typer.echo(f"{label}: {states}")
