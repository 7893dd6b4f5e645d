"""The commands that announce posts: notify, preview, send-test."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .app import _engine, _mail_settings, _sender_factory, app, now
from .sending import finish, send_pass

if TYPE_CHECKING:
    from subscribe.config import Settings
    from subscribe.content import PostSpec
    from subscribe.mail.render import Recipient
    from subscribe.posts.announce import Announcement
    from subscribe.posts.campaign import NotifyPlan
    from subscribe.posts.feeds import Feed

SAMPLE_EMAIL = "reader@example.org"

TitleOpt = Annotated[str, typer.Option("--title", help="The post's title.")]
UrlOpt = Annotated[str, typer.Option("--url", help="The post's URL.")]
SummaryOpt = Annotated[str, typer.Option("--summary", help="A short summary.")]
PostOpt = Annotated[Path | None, typer.Option("--post", help="A Markdown file with front matter.")]
FeedOpt = Annotated[
    str | None,
    typer.Option("--feed", help="An RSS/Atom feed URL or file (default: SUBSCRIBE_FEED_URL)."),
]
CategoryOpt = Annotated[
    list[str] | None,
    typer.Option("--category", metavar="NAME", help="A category of the post (repeatable)."),
]
LanguageOpt = Annotated[
    str, typer.Option("--language", help="The readers' language to write in (de, pt-BR...).")
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


def _sources(
    settings: Settings,
    title: str,
    url: str,
    summary: str,
    post: Path | None,
    feed: str | None,
    categories: list[str],
) -> tuple[list[PostSpec], Feed | None]:
    """The post the flags or file describe, or the feed to read (``--category`` added)."""
    from subscribe.errors import SourceError
    from subscribe.posts.sources import add_categories, read_feed

    if feed is None:
        spec = _single_source(title, url, summary, post)
        return [add_categories(spec, categories) if categories else spec], None
    if title or url or post:
        raise SourceError("give either --feed or --title/--url or --post, not several")
    location = feed or settings.feed_url
    if not location:
        raise SourceError("--feed needs a URL or file (or set SUBSCRIBE_FEED_URL)")
    source = read_feed(location, language=settings.language, timezone=settings.timezone)
    if source.followed_from:
        typer.echo(
            f"{source.followed_from} is a web page; reading the feed it names: {source.identity}"
        )
    return [], source.with_categories(categories) if categories else source


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

    tokens = tokens_for(settings)
    token = tokens.unsubscribe_token(0, key)
    return Recipient(
        email=email,
        name=name,
        unsubscribe_url=f"{settings.base_url}/unsubscribe/{token}",
        message_id=message_id(settings.mail_domain, post_key=post_key, subscriber_id=0),
        preferences_url=f"{settings.base_url}/preferences/{tokens.preferences_token(0, key)}",
    )


@app.command()
def notify(
    title: TitleOpt = "",
    url: UrlOpt = "",
    summary: SummaryOpt = "",
    post: PostOpt = None,
    feed: FeedOpt = None,
    category: CategoryOpt = None,
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
      subscribe notify --post posts/hello.md --category Python --category Release
    """
    from subscribe.errors import SubscribeError
    from subscribe.posts import campaign
    from subscribe.readers.tokens import tokens_for

    settings = _mail_settings()
    tokens_for(settings)  # no secret key: stop before anything is stored
    specs, source_feed = _sources(settings, title, url, summary, post, feed, category or [])
    engine = _engine(settings)

    def approve(plan: NotifyPlan) -> bool:
        _describe_feed_plan(plan, dry_run=dry_run)
        if dry_run:
            _dry_run(settings, plan)
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
        max_new=settings.feed_max_new,
        now=now,
        approve=approve,
        on_announced=on_announced,
        send=lambda: send_pass(settings, engine),
    )
    if outcome.report is not None:
        finish(outcome.report, engine)


def _describe_feed_plan(plan: NotifyPlan, *, dry_run: bool) -> None:
    """What a feed run passes over, and why: one line for the cap, and with ``dry_run`` the
    entries that cannot be announced."""
    feed_plan = plan.feed
    if feed_plan is None:
        return
    if feed_plan.capped:
        verb = "would be" if dry_run else "are"
        typer.echo(
            f"{len(feed_plan.announce) + feed_plan.capped} new entries in the feed: only the "
            f"newest {len(feed_plan.announce)} (SUBSCRIBE_FEED_MAX_NEW={feed_plan.max_new}) "
            f"{verb} announced; the {feed_plan.capped} older ones {verb} recorded as seen"
        )
    verb = "would be" if dry_run else "are"
    if feed_plan.rekeyed:
        typer.echo(
            "No entry of the feed has a GUID or link seen before (a new blog engine or "
            "address?): entries are matched by title; what still looks new is announced "
            "only when it is newer than the last run"
        )
    if feed_plan.older:
        typer.echo(
            f"{feed_plan.older} unseen entries are older than those seen before (the feed "
            f"was short for a while, or they were re-published): they {verb} recorded as "
            "seen, not announced"
        )
    if dry_run:
        for skipped in feed_plan.feed.skipped:
            typer.echo(f"skipped: {skipped.entry}: {skipped.reason}")


def _warn_unreachable(spec: PostSpec) -> None:
    from subscribe.posts.checks import unreachable_links

    for link in unreachable_links(spec):
        typer.echo(
            f"warning: {spec.title!r} links to {link}: a local or example address that "
            "readers cannot open",
            err=True,
        )


def _dry_run(settings: Settings, plan: NotifyPlan) -> None:
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
        _warn_unreachable(spec)
    recipient = _sample_recipient(settings, plan.announce[0])
    message = post_builder(settings, plan.announce[0]).build(recipient)
    typer.echo("--- sample message ---")
    typer.echo(message.decode("ascii", "replace").replace("\r\n", "\n"))


def _feed_preview(settings: Settings, feed: Feed) -> PostSpec:
    """The entry a `notify --feed` run would send first (told as `--dry-run` tells it),
    else the feed's newest one."""
    from subscribe.db import store
    from subscribe.errors import SourceError
    from subscribe.posts import campaign

    with store.write_session(_engine(settings)) as session:
        plan = campaign.plan_notify(session, feed=feed, max_new=settings.feed_max_new)
    _describe_feed_plan(plan, dry_run=True)
    for spec in plan.announce:
        typer.echo(f"would announce: {spec.title} <{spec.url}>")
    if plan.announce:
        return plan.announce[0]
    if not feed.entries:
        raise SourceError("the feed has no entries to preview")
    newest = feed.entries[-1].spec
    typer.echo(f"Nothing new in the feed; previewing its newest entry: {newest.title}")
    return newest


@app.command()
def preview(
    title: TitleOpt = "",
    url: UrlOpt = "",
    summary: SummaryOpt = "",
    post: PostOpt = None,
    feed: FeedOpt = None,
    category: CategoryOpt = None,
    out: Annotated[Path, typer.Option(help="Where to write preview.eml and preview.html.")] = Path(
        "."
    ),
    language: LanguageOpt = "",
) -> None:
    """Render the new-post email for a post and write it as .eml and .html files.

    With --feed: what `notify --feed --dry-run` says, and the email of the entry it would
    send first. Links to localhost or example domains are warned about.

    Examples:

    \b
      subscribe preview --post posts/hello.md --out /tmp
      subscribe preview --feed https://blog.example/feed.xml --out /tmp
      subscribe preview --post posts/hello.md --language de
    """
    from subscribe.errors import SubscribeError
    from subscribe.mail.envelopes import post_builder

    settings = _mail_settings()
    chosen = _language(settings, language)
    specs, source_feed = _sources(settings, title, url, summary, post, feed, category or [])
    spec = _feed_preview(settings, source_feed) if source_feed is not None else specs[0]
    _warn_unreachable(spec)
    recipient = _sample_recipient(settings, spec)
    builder = post_builder(settings, spec, chosen)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "preview.eml").write_bytes(builder.build(recipient))
        (out / "preview.html").write_text(builder.render(recipient).html, encoding="utf-8")
    except OSError as exc:
        raise SubscribeError(f"cannot write to {out}: {exc.strerror}") from None
    typer.echo(f"wrote {out / 'preview.eml'} and {out / 'preview.html'}")


def _language(settings: Settings, language: str) -> str:
    """The language asked for on the command line, as offered, or the site's."""
    from subscribe.readers.languages import named

    return named(settings, language) if language else settings.language


@app.command("send-test")
def send_test(
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="Where to send the test.")],
    title: TitleOpt = "A test from subscribe",
    url: UrlOpt = "https://example.org/",
    summary: SummaryOpt = "If you can read this, your SMTP settings work.",
    language: LanguageOpt = "",
) -> None:
    """Send one new-post email to EMAIL through the configured relay (nothing is recorded).

    Examples:

    \b
      subscribe send-test me@example.org
      subscribe send-test me@example.org --language de
    """
    import asyncio

    from subscribe.mail.envelopes import post_builder
    from subscribe.mail.transactional import Message
    from subscribe.posts.sources import from_flags
    from subscribe.readers.addresses import normalize
    from subscribe.sending import transactional

    settings = _mail_settings()
    address = normalize(email)
    spec = from_flags(title=title, url=url, summary=summary)
    recipient = _unlisted_recipient(
        settings,
        email=address.ascii,
        key=address.key,
        name="",
        post_key=f"test:{now().isoformat()}",
    )
    builder = post_builder(settings, spec, _language(settings, language))
    message = Message(address.ascii, builder.build(recipient))
    asyncio.run(transactional.send(settings, _sender_factory(settings), message))
    typer.echo(
        f"Sent a test email to {address.display} via {settings.smtp_host}:{settings.smtp_port}."
    )
