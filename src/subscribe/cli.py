"""The `subscribe` command: a thin Typer adapter over the use cases.

Every error a user can cause is a ``SubscribeError``; ``main()`` prints it as one line on
stderr and exits 1. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import asyncio
import mailbox
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.engine import Engine
from sqlmodel import Session

from . import campaign, ledger, mailer, store, subscribers
from .config import Settings, load_settings
from .errors import DeliveryError, SourceError, SubscribeError
from .models import Post, SubscriberStatus
from .notifier import RunReport, post_builder
from .render import Recipient, message_id
from .sender import SenderFactory, smtp_sender_factory
from .sources import PostSpec, from_flags, from_markdown, read_feed
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

        def on_progress(done: int, total: int) -> None:
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


def main() -> None:
    app()
