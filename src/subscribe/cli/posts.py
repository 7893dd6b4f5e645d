"""The commands that announce posts: notify, preview, send-test."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .app import _engine, _sender_factory, _settings, app, now
from .sending import finish, send_pass

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from subscribe.config import Settings
    from subscribe.content import PostSpec
    from subscribe.mail.render import Recipient
    from subscribe.posts.announce import Announcement
    from subscribe.posts.campaign import NotifyPlan

SAMPLE_EMAIL = "reader@example.org"

TitleOpt = Annotated[str, typer.Option("--title", help="The post's title.")]
UrlOpt = Annotated[str, typer.Option("--url", help="The post's URL.")]
SummaryOpt = Annotated[str, typer.Option("--summary", help="A short summary.")]
PostOpt = Annotated[Path | None, typer.Option("--post", help="A Markdown file with front matter.")]
FeedOpt = Annotated[
    str | None,
    typer.Option("--feed", help="An RSS/Atom feed URL or file (default: SUBSCRIBE_FEED_URL)."),
]


def _single_source(title: str, url: str, summary: str, post: Path | None) -> PostSpec:
    from subscribe.errors import SourceError
    from subscribe.posts.sources import from_flags, from_markdown

    if post is not None:
        if title or url:
            raise SourceError("give either --post or --title/--url, not both")
        return from_markdown(post)
    if not title and not url:
        raise SourceError("say what to announce: --title and --url, --post FILE.md, or --feed")
    return from_flags(title=title, url=url, summary=summary)


def _sample_recipient(settings: Settings, spec: PostSpec) -> Recipient:
    """The made-up reader of previews and dry runs: never a real one, whose working
    unsubscribe link would end up in a file or a terminal."""
    return _unlisted_recipient(
        settings, email=SAMPLE_EMAIL, key=SAMPLE_EMAIL, name="Sample Reader", post_key=spec.key
    )


def _unlisted_recipient(
    settings: Settings, *, email: str, key: str, name: str, post_key: str
) -> Recipient:
    """A recipient who is no subscriber (id 0): their unsubscribe link names nobody."""
    from subscribe.mail.render import Recipient, message_id
    from subscribe.readers.tokens import tokens_for

    token = tokens_for(settings).unsubscribe_token(0, key)
    return Recipient(
        email=email,
        name=name,
        unsubscribe_url=f"{settings.base_url}/unsubscribe/{token}",
        message_id=message_id(settings.mail_domain, post_key=post_key, subscriber_id=0),
    )


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

    \b
      subscribe notify --title "Hello" --url https://blog.example/hello --yes
      subscribe notify --post posts/hello.md
      subscribe notify --feed https://blog.example/feed.xml --yes   (from cron)
    """
    from subscribe.errors import SourceError, SubscribeError
    from subscribe.posts import campaign
    from subscribe.posts.sources import read_feed
    from subscribe.readers.tokens import tokens_for

    settings = _settings()
    tokens_for(settings)  # no secret key: stop before anything is stored
    if feed is not None and (title or url or post):
        raise SourceError("give either --feed or --title/--url or --post, not several")
    specs: list[PostSpec] = []
    source_feed = None
    if feed is not None:
        location = feed or settings.feed_url
        if not location:
            raise SourceError("--feed needs a URL or file (or set SUBSCRIBE_FEED_URL)")
        source_feed = read_feed(location)
    else:
        specs = [_single_source(title, url, summary, post)]
    engine = _engine(settings)

    def approve(plan: NotifyPlan) -> bool:
        if dry_run:
            _dry_run(settings, engine, plan)
            return False
        if not plan.announce:
            typer.echo("Nothing new in the feed.")
        elif plan.fresh and not yes:
            if not sys.stdin.isatty():
                raise SubscribeError("not asking without a terminal: add --yes to send")
            titles = ", ".join(repr(s.title) for s in plan.fresh)
            typer.confirm(f"Send {titles} to {plan.audience} confirmed subscribers?", abort=True)
        return True

    def on_announced(item: Announcement) -> None:
        verb = "announced" if item.is_new else "resuming"
        typer.echo(f"{verb}: {item.post.title} ({item.enqueued} queued)")

    outcome = campaign.notify(
        engine,
        specs=specs,
        feed=source_feed,
        now=now,
        approve=approve,
        on_announced=on_announced,
        send=lambda: send_pass(settings, engine),
    )
    if outcome.report is not None:
        finish(outcome.report, engine)


def _dry_run(settings: Settings, engine: Engine, plan: NotifyPlan) -> None:
    from subscribe.mail.envelopes import post_builder

    if not plan.announce:
        typer.echo("Nothing new in the feed: nothing would be sent.")
        return
    for spec in plan.announce:
        note = "" if spec in plan.fresh else " (announced before: a run would only resume it)"
        typer.echo(
            f"would announce: {spec.title} <{spec.url}> to {plan.audience} confirmed "
            f"subscribers{note}"
        )
    recipient = _sample_recipient(settings, plan.announce[0])
    message = post_builder(settings, plan.announce[0]).build(recipient)
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

    Example:

    \b
      subscribe preview --post posts/hello.md --out /tmp
    """
    from subscribe.errors import SubscribeError
    from subscribe.mail.envelopes import post_builder

    settings = _settings()
    spec = _single_source(title, url, summary, post)
    recipient = _sample_recipient(settings, spec)
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
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="Where to send the test.")],
    title: TitleOpt = "A test from subscribe",
    url: UrlOpt = "https://example.org/",
    summary: SummaryOpt = "If you can read this, your SMTP settings work.",
) -> None:
    """Send one new-post email to EMAIL through the configured relay (nothing is recorded).

    Example:

    \b
      subscribe send-test me@example.org
    """
    import asyncio

    from subscribe.mail.envelopes import post_builder
    from subscribe.mail.transactional import Message
    from subscribe.posts.sources import from_flags
    from subscribe.readers.addresses import normalize
    from subscribe.sending import transactional

    settings = _settings()
    address = normalize(email)
    spec = from_flags(title=title, url=url, summary=summary)
    recipient = _unlisted_recipient(
        settings,
        email=address.ascii,
        key=address.key,
        name="",
        post_key=f"test:{now().isoformat()}",
    )
    message = Message(address.ascii, post_builder(settings, spec).build(recipient))
    asyncio.run(transactional.send(settings, _sender_factory(settings), message))
    typer.echo(
        f"Sent a test email to {address.display} via {settings.smtp_host}:{settings.smtp_port}."
    )
