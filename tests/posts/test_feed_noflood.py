"""A feed watched by cron never floods readers: each scenario runs `notify --feed` against
a feed served over HTTP on 127.0.0.1 (real SQLite file, real PostgreSQL), changes the feed
the way real blogs change theirs, runs again and counts the posts announced.

A first run on a long feed, GUIDs that all change (a new engine, http -> https, a new
domain, FeedBurner in between, tracking parameters), entries reordered, an old post
re-dated and retitled, a feed truncated or empty for a while, duplicates, a post
unpublished and republished, a huge feed: each announces exactly the new posts, once."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import sqlalchemy as sa
from clihelp import run, settings_env
from sqlalchemy.engine import Engine
from sqlmodel import Session
from webserver import plain_http_server

from subscribe.config import Settings
from subscribe.db.models import utcnow
from subscribe.readers import subscribers

FEEDS = Path(__file__).parent / "feeds"
BASE = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Entry:
    n: int  # the post's number: its date is BASE + n days
    guid: str = "wp"  # how the GUID is written: wp (?p=N), link, none, uuid, ...
    host: str = "http://www.garden.blog.example"
    path: str = "/{n}/post-{n}/"
    title: str = "Post {n}"
    date: datetime | None = None
    query: str = ""
    extra: str = ""  # more XML for the item ({path}: the post's path)

    def link(self) -> str:
        return self.host + self.path.format(n=self.n) + self.query

    def item(self) -> str:
        title = self.title.format(n=self.n)
        guids = {
            "wp": f'<guid isPermaLink="false">{self.host}/?p={self.n}</guid>',
            "link": f"<guid>{self.link()}</guid>",
            "uuid": f'<guid isPermaLink="false">urn:uuid:0000-{self.n:04d}-new</guid>',
            "none": "",
        }
        date = self.date or BASE + timedelta(days=self.n)
        return (
            f"<item><title>{title}</title><link>{self.link().replace('&', '&amp;')}</link>"
            f"{guids[self.guid]}<pubDate>{format_datetime(date)}</pubDate>"
            f"<description>About {title}.</description>"
            f"{self.extra.format(path=self.path.format(n=self.n))}</item>"
        )


def rss(entries: Sequence[Entry]) -> bytes:
    items = "".join(entry.item() for entry in sorted(entries, key=lambda e: -e.n))
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        "<title>Garden</title><link>https://garden.blog.example/</link>"
        f"<description>d</description>{items}</channel></rss>"
    ).encode()


class _Feed:
    body: bytes = b""
    content_type: str = "application/rss+xml"


FEED = _Feed()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", FEED.content_type)
        self.send_header("Content-Length", str(len(FEED.body)))
        self.end_headers()
        self.wfile.write(FEED.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    with plain_http_server(_Handler) as base:
        yield base + "/feed/"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings, engine: Engine) -> None:
    settings_env(monkeypatch, settings)
    with Session(engine) as session:
        subscribers.add(session, settings, email="ann@example.org", confirmed=True, now=utcnow())
    FEED.content_type = "application/rss+xml"


def serve(body: bytes, content_type: str = "application/rss+xml") -> None:
    FEED.body, FEED.content_type = body, content_type


def announced(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(sa.text("SELECT title FROM post ORDER BY id")))


def notify(web: str) -> str:
    result = run("notify", "--feed", web, "--yes")
    assert result.exit_code == 0, result.output
    return result.stdout


def posts(numbers: range | Sequence[int], **fields: object) -> list[Entry]:
    return [Entry(n, **fields) for n in numbers]  # type: ignore[arg-type]


def test_a_first_run_on_a_long_feed_announces_only_the_newest(web: str, engine: Engine) -> None:
    serve(rss(posts(range(1, 41))))
    notify(web)
    assert announced(engine) == ["Post 40"]
    assert "Nothing new in the feed." in notify(web)
    serve(rss(posts(range(1, 43))))
    notify(web)
    assert announced(engine) == ["Post 40", "Post 41", "Post 42"]


def test_every_guid_and_link_changed_by_a_migration_announces_only_the_new_post(
    web: str, engine: Engine
) -> None:
    serve(rss(posts(range(1, 11))))
    notify(web)
    # WordPress to a static site on a new domain: GUIDs, hosts and paths all new.
    moved = dict(guid="link", host="https://garden.example.net", path="/posts/post-{n}")
    serve(rss(posts(range(1, 11), **moved)))
    output = notify(web)
    assert "matched by title" in output
    assert announced(engine) == ["Post 10"]
    serve(rss(posts(range(1, 12), **moved)))
    notify(web)
    assert announced(engine) == ["Post 10", "Post 11"]
    # The new keys were recorded: a later move is followed by GUID or link again.
    serve(rss(posts(range(1, 12), guid="uuid", host="https://garden.example.net", path="/p/{n}")))
    assert "Nothing new in the feed." in notify(web)


@pytest.mark.parametrize(
    "change",
    [
        {"host": "https://garden.blog.example"},  # http -> https, www. dropped
        {"guid": "link", "path": "/{n}/post-{n}"},  # GUIDs become permalinks, no slash
        {"guid": "none", "query": "?utm_source=rss&utm_medium=rss&ref=rss"},
        {"guid": "uuid"},  # a new engine's GUIDs, same links
        {"guid": "uuid", "host": "https://blog.garden.example"},  # and a new domain
    ],
    ids=["https", "permalink-guids", "tracking", "new-guids", "new-guids-and-domain"],
)
def test_a_feed_whose_keys_all_change_announces_nothing_old(
    web: str, engine: Engine, change: dict[str, str]
) -> None:
    serve(rss(posts(range(1, 21))))
    notify(web)
    serve(rss(posts(range(1, 21), **change)))  # type: ignore[arg-type]
    assert "Nothing new in the feed." in notify(web)
    serve(rss(posts(range(1, 22), **change)))  # type: ignore[arg-type]
    notify(web)
    assert announced(engine) == ["Post 20", "Post 21"]


def test_feedburner_in_front_of_the_blog_changes_nothing(web: str, engine: Engine) -> None:
    serve(rss(posts(range(1, 6), guid="none", host="https://orchard.blog.example")))
    notify(web)
    origin = (
        "<feedburner:origLink>https://orchard.blog.example{path}?utm_source=feedburner"
        "</feedburner:origLink>"
    )
    proxied = [
        Entry(n, guid="none", host="https://feedproxy.google.example", extra=origin)
        for n in range(1, 7)
    ]
    body = rss(proxied).replace(
        b'<rss version="2.0">',
        b'<rss version="2.0" xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">',
    )
    serve(body)
    notify(web)
    assert announced(engine) == ["Post 5", "Post 6"]
    with Session(engine) as session:
        url = session.scalar(sa.text("SELECT url FROM post WHERE title = 'Post 6'"))
    assert url.startswith("https://orchard.blog.example/6/post-6/")


def test_reordered_redated_and_retitled_entries_are_not_new(web: str, engine: Engine) -> None:
    entries = posts(range(1, 16))
    serve(rss(entries))
    notify(web)
    shuffled = list(entries)
    random.Random(7).shuffle(shuffled)
    body = rss([]).replace(
        b"</channel>", "".join(e.item() for e in shuffled).encode() + b"</channel>"
    )
    serve(body)
    assert "Nothing new in the feed." in notify(web)
    # An old post edited: dated today and retitled, same GUID.
    edited = Entry(3, title="Post {n} (updated)", date=datetime.now(UTC))
    serve(rss([*posts([1, 2, *range(4, 16)]), edited]))
    assert "Nothing new in the feed." in notify(web)
    assert announced(engine) == ["Post 15"]


@pytest.mark.parametrize("short", [[], [15], [14, 15]], ids=["empty", "newest-only", "two"])
def test_a_feed_short_for_a_while_then_whole_again(
    web: str, engine: Engine, short: list[int]
) -> None:
    serve(rss(posts(range(1, 16))))
    notify(web)
    serve(rss(posts(short)))
    assert "Nothing new in the feed." in notify(web)
    serve(rss(posts(range(1, 17))))
    notify(web)
    assert announced(engine) == ["Post 15", "Post 16"]


def test_a_first_run_on_a_short_feed_then_the_whole_back_catalogue(
    web: str, engine: Engine
) -> None:
    serve(rss(posts([29, 30])))  # the host served a truncated feed that day
    notify(web)
    serve(rss(posts(range(1, 31))))
    output = notify(web)
    assert "28 unseen entries are older than those seen before" in output
    assert announced(engine) == ["Post 30"]
    serve(rss(posts(range(1, 32))))
    notify(web)
    assert announced(engine) == ["Post 30", "Post 31"]


def test_duplicate_entries_are_one_post(web: str, engine: Engine) -> None:
    serve(rss(posts(range(1, 4))))
    notify(web)
    twice = [*posts(range(1, 5)), Entry(4), Entry(4, guid="uuid")]  # one GUID, one link+title
    serve(rss(twice))
    notify(web)
    assert announced(engine) == ["Post 3", "Post 4"]


def test_unpublished_then_republished_is_not_announced_again(web: str, engine: Engine) -> None:
    serve(rss(posts(range(1, 6))))
    notify(web)
    serve(rss(posts(range(1, 5))))  # Post 5 taken down
    assert "Nothing new in the feed." in notify(web)
    later = datetime.now(UTC) + timedelta(hours=1)
    serve(rss([*posts(range(1, 5)), Entry(5, date=later)]))  # back, with a new date
    assert "Nothing new in the feed." in notify(web)
    serve(rss([*posts(range(1, 5)), Entry(5, guid="uuid", date=later)]))  # and a new GUID
    assert "Nothing new in the feed." in notify(web)
    assert announced(engine) == ["Post 5"]


def test_a_feed_that_matches_nothing_at_all_is_a_first_run_again(web: str, engine: Engine) -> None:
    serve(rss(posts(range(1, 11))))
    notify(web)
    # Another blog at the same address, its posts all older than the last run: none of it.
    other = dict(guid="uuid", host="https://other.blog.example", title="Other {n}")
    serve(rss(posts(range(1, 11), **other)))  # type: ignore[arg-type]
    assert "Nothing new in the feed." in notify(web)
    # A feed that shows only its newest entry, a new one each time: that one, once.
    serve(rss([Entry(99, guid="uuid", title="Fresh {n}", date=datetime.now(UTC))]))
    notify(web)
    notify(web)
    assert announced(engine) == ["Post 10", "Fresh 99"]


def test_a_huge_feed(web: str, engine: Engine) -> None:
    serve(rss(posts(range(1, 601), guid="link")))
    notify(web)
    serve(rss(posts(range(3, 603), guid="link")))  # the oldest two fell off the end
    notify(web)
    assert announced(engine) == ["Post 600", "Post 601", "Post 602"]


def test_blogger_atom_then_its_rss_and_a_json_feed_with_the_wrong_type(
    web: str, engine: Engine
) -> None:
    serve((FEEDS / "blogger.xml").read_bytes(), "application/atom+xml; charset=UTF-8")
    notify(web)
    serve((FEEDS / "blogger-rss.xml").read_bytes(), "text/html; charset=ISO-8859-1")
    notify(web)
    assert announced(engine) == ["A loaf in four steps", "Rye, and why it sticks"]


def test_a_json_feed_is_watched_like_any_other(web: str, engine: Engine) -> None:
    serve((FEEDS / "json-feed-1.0.json").read_bytes(), "application/feed+json")
    notify(web)
    assert "Nothing new in the feed." in notify(web)
    assert announced(engine) == ["First snow"]


def test_an_undated_feed_short_for_a_while_then_whole_again(web: str, engine: Engine) -> None:
    """No dates (RSS 0.91, hand-written feeds): the feed's own order says what is older."""

    def undated(numbers: range | list[int]) -> bytes:
        return re.sub(rb"<pubDate>[^<]*</pubDate>", b"", rss(posts(numbers, guid="none")))

    serve(undated([9, 10]))
    notify(web)
    serve(undated(range(1, 11)))
    assert "Nothing new in the feed." in notify(web)
    serve(undated(range(1, 12)))
    notify(web)
    assert announced(engine) == ["Post 10", "Post 11"]


def test_a_new_post_dated_before_the_newest_seen_one_is_still_announced(
    web: str, engine: Engine
) -> None:
    """A static site dates a post when its draft began: it can go live after a newer one."""
    serve(rss(posts(range(1, 11))))
    notify(web)
    draft = Entry(100, title="Long draft", date=BASE + timedelta(days=6, hours=1))
    serve(rss([*posts(range(1, 11)), draft]))
    notify(web)
    assert announced(engine) == ["Post 10", "Long draft"]


def test_a_guid_every_entry_shares_names_none(web: str, engine: Engine) -> None:
    """A template that writes the site's address as every item's GUID."""

    def constant(numbers: range) -> bytes:
        body = rss(posts(numbers, guid="none"))
        return body.replace(b"</link>", b"</link><guid>https://garden.blog.example/</guid>")

    serve(constant(range(1, 6)))
    notify(web)
    serve(constant(range(1, 8)))
    notify(web)
    assert announced(engine) == ["Post 5", "Post 6", "Post 7"]


@pytest.mark.parametrize("title", ["Post {n}", "\u00dcber den Fluss {n}"])
def test_a_post_announced_by_hand_is_not_announced_again_by_the_feed(
    web: str, engine: Engine, title: str
) -> None:
    serve(rss(posts(range(1, 5))))
    notify(web)
    entry = Entry(5, title=title)
    by_hand = run(
        "notify", "--title", title.format(n=5), "--url", entry.link().rstrip("/"), "--yes"
    )
    assert by_hand.exit_code == 0, by_hand.output
    serve(rss([*posts(range(1, 5)), entry]))  # cron's next run sees it in the feed, GUID ?p=5
    output = notify(web)
    assert "announced:" not in output
    assert announced(engine) == ["Post 4", title.format(n=5)]


def test_a_migration_that_also_retitled_an_old_post(web: str, engine: Engine) -> None:
    serve(rss(posts(range(1, 11))))
    notify(web)
    moved = dict(guid="link", host="https://garden.example.net", path="/posts/post-{n}")
    retitled = Entry(4, title="Post {n}, revised", **moved)  # type: ignore[arg-type]
    fresh = Entry(11, date=datetime.now(UTC), **moved)  # type: ignore[arg-type]
    serve(rss([*posts([1, 2, 3, *range(5, 11)], **moved), retitled, fresh]))
    notify(web)
    assert announced(engine) == ["Post 10", "Post 11"]


def test_the_same_feed_at_a_new_address_sends_nothing_twice(web: str, engine: Engine) -> None:
    """cron pointed at the blog's new feed URL (a FeedBurner address, /rss.xml for /feed/):
    a first run for that address, whose newest entry was announced through the old one."""
    serve(rss(posts(range(1, 6))))
    notify(web)
    output = notify(web.replace("/feed/", "/rss.xml"))
    assert "announced:" not in output
    assert announced(engine) == ["Post 5"]
    serve(rss(posts(range(1, 7))))
    notify(web.replace("/feed/", "/rss.xml"))
    assert announced(engine) == ["Post 5", "Post 6"]
    with Session(engine) as session:
        deliveries = session.scalar(
            sa.text("SELECT count(*) FROM delivery WHERE post_id IS NOT NULL")
        )
    assert deliveries == 2  # one reader, two posts


def test_an_entry_with_a_huge_title_and_link(web: str, engine: Engine) -> None:
    """A whole paragraph for a title, a link with a long query, a GUID of 3,000 characters:
    stored (PostgreSQL refuses what is longer than its columns) and announced once; a link
    longer than any real one is skipped, and the dry run says why."""
    query = "?" + "&".join(f"k{i}=v" for i in range(150))
    long = Entry(2, title="Very " * 700 + "{n}", query=query, guid="none")
    body = rss([Entry(1), long]).replace(
        b"<pubDate>", b"<guid>" + b"g" * 3000 + b"</guid><pubDate>", 1
    )
    serve(body)
    notify(web)
    assert "Nothing new in the feed." in notify(web)
    [title] = announced(engine)
    assert title.startswith("Very Very") and title.endswith("\u2026") and len(title) <= 300
    endless = Entry(3, query="?" + "&".join(f"k{i}=v" for i in range(400)))
    serve(rss([Entry(1), long, endless]))
    dry = run("notify", "--feed", web, "--dry-run")
    assert "skipped: Post 3: its link is longer than 1500 characters" in dry.stdout


def test_links_percent_encoded_after_an_update_are_the_same_posts(web: str, engine: Engine) -> None:
    """Half the slugs are French: an engine update that starts escaping them (or stops)
    must not make those look new while the others still match."""

    def french(n: int, escaped: bool) -> Entry:
        slug = "caf%C3%A9-cr%C3%A8me-{n}" if escaped else "café-crème-{n}"
        return Entry(n, guid="link", path="/{n}/" + (slug if n % 2 else "post-{n}") + "/")

    serve(rss([french(n, escaped=False) for n in range(1, 11)]))
    notify(web)
    serve(rss([french(n, escaped=True) for n in range(1, 11)]))
    assert "Nothing new in the feed." in notify(web)
    serve(rss([french(n, escaped=False) for n in range(1, 12)]))
    notify(web)
    assert announced(engine) == ["Post 10", "Post 11"]


def test_an_old_post_with_a_new_guid_and_a_new_title(web: str, engine: Engine) -> None:
    """A post edited in an engine that gives the edit a GUID of its own: same link, same
    date, new title: the same post."""
    serve(rss(posts(range(1, 11))))
    notify(web)
    edited = Entry(6, guid="uuid", title="Post {n}: the second draft")
    serve(rss([*posts([1, 2, 3, 4, 5, 7, 8, 9, 10]), edited]))
    assert "Nothing new in the feed." in notify(web)
    assert announced(engine) == ["Post 10"]


def test_guids_made_up_on_every_build_add_no_rows_run_after_run(web: str, engine: Engine) -> None:
    def build(number: int) -> bytes:
        return rss(posts(range(1, 11), guid="none", extra=f"<guid>b{number}{{path}}</guid>"))

    def rows() -> int:
        with Session(engine) as session:
            return session.scalar(sa.text("SELECT count(*) FROM feedentry"))

    serve(build(1))
    notify(web)
    serve(build(2))
    notify(web)
    after_two = rows()
    for number in range(3, 6):
        serve(build(number))
        assert "Nothing new in the feed." in notify(web)
    assert rows() == after_two
    assert announced(engine) == ["Post 10"]


def test_a_first_run_on_an_empty_feed_then_a_full_one(web: str, engine: Engine) -> None:
    serve(rss([]))  # a new blog, or a host that served an empty channel that day
    assert "Nothing new in the feed." in notify(web)
    serve(rss(posts(range(1, 21))))
    notify(web)
    assert announced(engine) == ["Post 20"]
