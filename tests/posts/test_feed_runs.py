"""`notify --feed` runs end to end (real SQLite/PostgreSQL, real SMTP server): a moved feed
announces nothing again, a flood is capped, what is not a feed fails, the email shows the
post's date, categories and image."""

from __future__ import annotations

import email.policy
import shutil
from email import message_from_bytes
from pathlib import Path

import pytest
import sqlalchemy as sa
from clihelp import run, settings_env
from mailserver import SMTPServer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.db.models import FeedEntry, Post, utcnow
from subscribe.readers import subscribers

FEEDS = Path(__file__).parent / "feeds"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    settings_env(monkeypatch, settings)


@pytest.fixture
def readers(settings: Settings, engine: Engine) -> list[str]:
    addresses = ["ann@example.org", "bob@example.org"]
    with Session(engine) as session:
        for address in addresses:
            subscribers.add(session, settings, email=address, confirmed=True, now=utcnow())
    return addresses


def subjects(smtp_server: SMTPServer) -> list[str]:
    return sorted(str(m.message()["Subject"]) for m in smtp_server.messages)


def feed_at(tmp_path: Path, name: str) -> str:
    """The corpus file copied to one place: the feed's address stays put while it changes."""
    target = tmp_path / "feed.xml"
    shutil.copy(FEEDS / name, target)
    return str(target)


def test_a_feed_moved_to_https_without_www_announces_only_what_is_new(
    readers: list[str], smtp_server: SMTPServer, tmp_path: Path
) -> None:
    first = run("notify", "--feed", feed_at(tmp_path, "moved-before.xml"), "--yes")
    assert first.exit_code == 0, first.output
    assert subjects(smtp_server) == ["Third", "Third"]
    # Same entries at https://, no www., a trailing slash and utm_* parameters; one new one.
    moved = run("notify", "--feed", feed_at(tmp_path, "moved-after.xml"), "--yes")
    assert moved.exit_code == 0, moved.output
    assert "announced: Fourth" in moved.stdout and "First" not in moved.stdout
    assert subjects(smtp_server) == ["Fourth", "Fourth", "Third", "Third"]
    # Then a new domain altogether: the entries are matched by path and title.
    domain = run("notify", "--feed", feed_at(tmp_path, "moved-domain.xml"), "--yes")
    assert domain.exit_code == 0, domain.output
    assert subjects(smtp_server) == ["Fifth", "Fifth", "Fourth", "Fourth", "Third", "Third"]


def test_keys_stored_the_old_way_still_match(
    readers: list[str], smtp_server: SMTPServer, engine: Engine, tmp_path: Path
) -> None:
    """A database written before keys were normalised holds ``entry.id or link`` as it was."""
    location = feed_at(tmp_path, "moved-before.xml")
    old_links = [f"http://www.cabin.blog.example/2026/{n}" for n in ("first", "second", "third")]
    with Session(engine) as session:
        for link in old_links:
            session.add(FeedEntry(feed=location, entry_key=link, seen_at=utcnow()))
        session.add(Post(key=old_links[2], title="Third", url=old_links[2], created_at=utcnow()))
        session.commit()
    result = run("notify", "--feed", feed_at(tmp_path, "moved-after.xml"), "--yes")
    assert result.exit_code == 0, result.output
    assert subjects(smtp_server) == ["Fourth", "Fourth"]
    with Session(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Post)) == 2


def test_a_run_announces_at_most_feed_max_new(
    readers: list[str], smtp_server: SMTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "feed.xml"
    item = (
        "<item><title>Post {n}</title><link>https://flood.blog.example/{n}</link>"
        "<pubDate>Mon, {n:02d} Nov 2026 10:00:00 +0000</pubDate></item>"
    )

    def write(numbers: range) -> None:
        items = "".join(item.format(n=n) for n in reversed(numbers))
        path.write_text(f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>')

    write(range(1, 2))
    assert run("notify", "--feed", str(path), "--yes").exit_code == 0
    write(range(1, 9))  # seven new entries at once
    dry = run("notify", "--feed", str(path), "--dry-run")
    assert "7 new entries in the feed: only the newest 3 (SUBSCRIBE_FEED_MAX_NEW=3) would be" in (
        dry.stdout
    )
    capped = run("notify", "--feed", str(path), "--yes")
    assert capped.exit_code == 0, capped.output
    assert (
        "7 new entries in the feed: only the newest 3 (SUBSCRIBE_FEED_MAX_NEW=3) are announced; "
        "the 4 older ones are recorded as seen"
    ) in capped.stdout
    assert sorted(set(subjects(smtp_server))) == ["Post 1", "Post 6", "Post 7", "Post 8"]
    again = run("notify", "--feed", str(path), "--yes")
    assert "Nothing new in the feed." in again.stdout
    monkeypatch.setenv("SUBSCRIBE_FEED_MAX_NEW", "1")
    write(range(1, 12))
    one = run("notify", "--feed", str(path), "--yes")
    assert "only the newest 1 (SUBSCRIBE_FEED_MAX_NEW=1)" in one.stdout
    assert "announced: Post 11" in one.stdout and "Post 10" not in one.stdout


@pytest.mark.parametrize(
    "name", ["empty.xml", "garbage.txt", "not-a-feed.html", "no-links.xml", "not-a-feed.json"]
)
def test_not_a_feed_exits_1_with_one_line(name: str, readers: list[str]) -> None:
    result = run("notify", "--feed", str(FEEDS / name), "--yes")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: ") and "Nothing new" not in result.stdout


def test_dry_run_shows_skipped_entries_and_unreachable_links(
    readers: list[str], smtp_server: SMTPServer, tmp_path: Path, engine: Engine
) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(
        '<rss version="2.0"><channel><title>t</title>'
        "<item><title>Local</title><link>http://localhost:1313/posts/draft/</link>"
        "<description>&lt;a href='https://example.com/x'&gt;x&lt;/a&gt;</description></item>"
        "<item><title>Lost</title><link>/relative/only</link></item></channel></rss>"
    )
    result = run("notify", "--feed", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert (
        "skipped: Lost: its link '/relative/only' is relative and the feed has no address "
        "to resolve it"
    ) in result.stdout
    assert "warning: 'Local' links to http://localhost:1313/posts/draft/" in result.stderr
    assert "links to https://example.com/x" in result.stderr
    assert smtp_server.messages == []
    with Session(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(FeedEntry)) == 0


def test_the_email_shows_date_categories_and_image(
    readers: list[str], smtp_server: SMTPServer, engine: Engine
) -> None:
    result = run("notify", "--feed", str(FEEDS / "ghost.xml"), "--category", "Weekly", "--yes")
    assert result.exit_code == 0, result.output
    raw = smtp_server.messages[0].data
    message = message_from_bytes(raw, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "November 30, 2026" in text and "November 30, 2026" in html
    assert "Filed under Travel, Mountains, Weekly" in text
    assert "Filed under Travel, Mountains, Weekly" in html
    image = 'src="https://journal.blog.example/content/images/2026/11/ridge.jpg"'
    assert image in html and 'width="552"' in html and "max-width: 100%" in html
    assert ">What the weather did, and what we did about it.</p>" in html
    with Session(engine) as session:
        rows = session.execute(sa.text("SELECT category FROM post_category ORDER BY position"))
        assert [row[0] for row in rows] == ["Travel", "Mountains", "Weekly"]
        assert session.scalar(sa.text("SELECT image_url FROM post")).endswith("/ridge.jpg")


def test_notify_category_for_a_single_post(
    readers: list[str], smtp_server: SMTPServer, engine: Engine
) -> None:
    result = run(
        "notify",
        *("--title", "Tagged", "--url", "https://blog.example.org/tagged"),
        *("--category", "Python", "--category", "python", "--category", "Release"),
        "--yes",
    )
    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        rows = session.execute(sa.text("SELECT category FROM post_category ORDER BY position"))
        assert [row[0] for row in rows] == ["Python", "Release"]  # one per name, any case
    text = smtp_server.messages[0].message().get_body(("plain",)).get_content()
    assert "Filed under Python, Release" in text


def test_preview_feed_says_what_a_dry_run_says_and_writes_the_files(
    readers: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run("preview", "--feed", str(FEEDS / "github-releases.xml"), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "would announce: v1.3.0 <https://github.com/tinytools/squash/releases/tag/v1.3.0>" in (
        result.stdout
    )
    eml = message_from_bytes((out / "preview.eml").read_bytes(), policy=email.policy.default)
    assert eml["Subject"] == "v1.3.0"
    assert "https://github.com/tinytools/squash/pull/88" in (out / "preview.html").read_text()
    assert "warning:" not in result.stderr  # github.com is a public address
    # A post on a local server (a static site generator's preview) is warned about.
    page = run("preview", "--title", "T", "--url", "http://127.0.0.1:4000/t", "--out", str(out))
    assert "warning: 'T' links to http://127.0.0.1:4000/t" in page.stderr
