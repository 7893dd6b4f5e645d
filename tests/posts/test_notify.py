"""`subscribe notify` from each source, end to end into a real SMTP server."""

from __future__ import annotations

import asyncio
import email.policy
import textwrap
from email import message_from_bytes
from pathlib import Path

import pytest
from clihelp import run, settings_env
from mailserver import SMTPServer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.db.models import utcnow
from subscribe.posts.announce import register_post
from subscribe.posts.sources import from_flags
from subscribe.readers import subscribers
from subscribe.readers.tokens import tokens_for
from subscribe.sending import tallies
from subscribe.sending.sender import smtp_sender_factory
from subscribe.sending.transactional import deliver_due_messages


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    settings_env(monkeypatch, settings)


@pytest.fixture
def readers(settings: Settings, engine: Engine) -> list[str]:
    """Three confirmed readers, one pending, one who left."""
    with Session(engine) as session:
        for address, name in [
            ("ann@example.org", "Ann"),
            ("Bob@Example.org", ""),
            ("cy@example.com", "Cy"),
        ]:
            subscribers.add(
                session, settings, email=address, name=name, confirmed=True, now=utcnow()
            )
        subscribers.add(session, settings, email="pending@example.org", now=utcnow())
        subscribers.add(session, settings, email="gone@example.org", confirmed=True, now=utcnow())
        subscribers.unsubscribe_address(session, email="gone@example.org", now=utcnow())
    # The pending reader's confirmation goes out, as `subscribe add` sends it.
    asyncio.run(
        deliver_due_messages(
            engine,
            settings,
            sender_factory=smtp_sender_factory(settings),
            tokens=tokens_for(settings),
        )
    )
    return ["ann@example.org", "Bob@example.org", "cy@example.com"]


def delivered_posts(smtp_server: SMTPServer) -> list[tuple[str, str]]:
    """(recipient, subject) of every new-post email received (confirmations excluded)."""
    found = []
    for received in smtp_server.messages:
        message = received.message()
        if message["List-Unsubscribe"]:
            found.extend((rcpt, str(message["Subject"])) for rcpt in received.rcpt_tos)
    return sorted(found)


def test_notify_from_flags_reaches_exactly_the_confirmed(
    readers: list[str], smtp_server: SMTPServer, engine: Engine
) -> None:
    before = len(smtp_server.messages)  # the pending reader's confirmation email
    result = run("notify", "--title", "Hello", "--url", "https://blog.example/hello", "--yes")
    assert result.exit_code == 0, result.output
    assert "announced: Hello (3 queued)" in result.stdout
    assert "sent 3, skipped 0, deferred 0, failed 0" in result.stdout
    assert delivered_posts(smtp_server) == sorted((r, "Hello") for r in readers)
    assert len(smtp_server.messages) == before + 3

    again = run("notify", "--title", "Hello", "--url", "https://blog.example/hello", "--yes")
    assert again.exit_code == 0
    assert "resuming: Hello (0 queued)" in again.stdout and "sent 0" in again.stdout
    assert len(smtp_server.messages) == before + 3  # nothing twice
    [counts] = tallies.counts_by_post(engine).values()
    assert counts["sent"] == 3


def test_a_new_post_reports_its_own_figures_beside_an_older_backlog(
    readers: list[str], smtp_server: SMTPServer, engine: Engine
) -> None:
    """An older post left queued (relay down) goes out with the next notify; the report
    tells the two posts apart instead of crediting the new one with everything."""
    with Session(engine) as session:
        register_post(
            session, from_flags(title="Older", url="https://blog.example/o"), now=utcnow()
        )
    result = run("notify", "--title", "Newer", "--url", "https://blog.example/n", "--yes")
    assert result.exit_code == 0, result.output
    assert "announced: Newer (3 queued)" in result.stdout
    assert "sent 6, skipped 0, deferred 0, failed 0" in result.stdout
    assert "  Older: sent 3" in result.stdout and "  Newer: sent 3" in result.stdout


def test_notify_from_markdown(readers: list[str], smtp_server: SMTPServer, tmp_path: Path) -> None:
    post = tmp_path / "post.md"
    post.write_text(
        textwrap.dedent(
            """\
            ---
            title: "Markdown & friends"
            url: https://blog.example/md
            date: 2026-11-20
            ---
            # Heading

            Some *emphasis* and <script>alert(1)</script>.
            """
        )
    )
    result = run("notify", "--post", str(post), "--yes")
    assert result.exit_code == 0, result.output
    assert delivered_posts(smtp_server) == sorted((r, "Markdown & friends") for r in readers)
    html = smtp_server.messages[-1].message().get_body(("html",)).get_content()
    assert "<em>emphasis</em>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html


RSS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Blog</title><link>https://blog.example/</link>
<description>d</description>
{items}
</channel></rss>"""
ITEM = """<item><title>{title}</title><link>https://blog.example/{n}</link>
<guid>https://blog.example/?p={n}</guid><pubDate>{date}</pubDate>
<description>&lt;p&gt;Summary {n}&lt;/p&gt;</description></item>"""


def write_feed(path: Path, posts: list[int]) -> None:
    items = "\n".join(
        ITEM.format(title=f"Post {n}", n=n, date=f"Mon, {n:02d} Nov 2026 10:00:00 +0000")
        for n in sorted(posts, reverse=True)
    )
    path.write_text(RSS.format(items=items))


def test_notify_from_feed_announces_newest_first_then_each_new_once(
    readers: list[str], smtp_server: SMTPServer, tmp_path: Path
) -> None:
    feed = tmp_path / "feed.xml"
    write_feed(feed, [1, 2, 3])
    first = run("notify", "--feed", str(feed), "--yes")
    assert first.exit_code == 0, first.output
    assert delivered_posts(smtp_server) == sorted((r, "Post 3") for r in readers)

    nothing = run("notify", "--feed", str(feed), "--yes")
    assert nothing.exit_code == 0 and "Nothing new in the feed." in nothing.stdout

    write_feed(feed, [1, 2, 3, 4, 5])
    later = run("notify", "--feed", str(feed), "--yes")
    assert later.exit_code == 0
    assert later.stdout.index("announced: Post 4") < later.stdout.index("announced: Post 5")
    titles = sorted({subject for _, subject in delivered_posts(smtp_server)})
    assert titles == ["Post 3", "Post 4", "Post 5"]
    assert len(delivered_posts(smtp_server)) == 9


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Blog</title><id>urn:blog</id>
<updated>2026-11-02T00:00:00Z</updated>
<entry><title type="html">Caf&amp;eacute; &amp;amp; code</title><id>urn:post:2</id>
<link href="https://blog.example/cafe"/><updated>2026-11-02T00:00:00Z</updated>
<summary>Second</summary></entry>
<entry><title>Older</title><id>urn:post:1</id><link href="https://blog.example/older"/>
<updated>2026-11-01T00:00:00Z</updated></entry>
</feed>"""


def test_notify_from_atom_feed_with_settings_default(
    readers: list[str], smtp_server: SMTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = tmp_path / "atom.xml"
    feed.write_text(ATOM)
    monkeypatch.setenv("SUBSCRIBE_FEED_URL", str(feed))
    result = run("notify", "--feed", "", "--yes")
    assert result.exit_code == 0, result.output
    assert delivered_posts(smtp_server) == sorted((r, "Café & code") for r in readers)


def test_dry_run_sends_and_stores_nothing(
    readers: list[str], smtp_server: SMTPServer, engine: Engine
) -> None:
    before = len(smtp_server.messages)
    result = run("notify", "--title", "Dry", "--url", "https://blog.example/dry", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "to 3 confirmed subscribers" in result.stdout
    assert (
        "Subject: Dry" in result.stdout
        and "List-Unsubscribe: <http://testserver/unsubscribe/" in result.stdout
    )
    assert len(smtp_server.messages) == before
    assert tallies.counts_by_post(engine) == {}


def test_notify_without_yes_asks_on_a_terminal_only(readers: list[str]) -> None:
    result = run("notify", "--title", "Ask", "--url", "https://blog.example/ask")
    assert result.exit_code == 1
    assert "add --yes" in result.stderr


def test_per_recipient_4xx_and_5xx(
    readers: list[str], smtp_server: SMTPServer, engine: Engine
) -> None:
    smtp_server.handler.rcpt_replies["ann@example.org"] = "450 4.2.1 mailbox busy"
    smtp_server.handler.rcpt_replies["cy@example.com"] = "550 5.1.1 no such user"
    result = run("notify", "--title", "Faults", "--url", "https://blog.example/f", "--yes")
    assert result.exit_code == 0, result.output
    assert "sent 1, skipped 0, deferred 1, failed 1" in result.stdout
    with Session(engine) as session:
        assert subscribers.find(session, email="cy@example.com").status == "bounced"
        assert subscribers.find(session, email="ann@example.org").status == "confirmed"
    del smtp_server.handler.rcpt_replies["ann@example.org"]
    resumed = run("resume")
    assert "sent 1, skipped 0, deferred 0, failed 0" in resumed.stdout
    assert delivered_posts(smtp_server) == [
        ("Bob@example.org", "Faults"),
        ("ann@example.org", "Faults"),
    ]


def test_server_down_then_up(
    readers: list[str], settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = SMTPServer()  # not started yet: connections are refused
    monkeypatch.setenv("SUBSCRIBE_SMTP_PORT", str(server.port))
    down = run("notify", "--title", "Down", "--url", "https://blog.example/down", "--yes")
    assert down.exit_code == 1
    assert "cannot reach the relay" in down.stderr and "3 deliveries stay queued" in down.stderr
    [counts] = tallies.counts_by_post(engine).values()
    assert counts["queued"] == 3 and counts["sent"] == 0
    server.start()
    try:
        up = run("resume")
        assert up.exit_code == 0 and "sent 3" in up.stdout
        assert sorted(r for m in server.messages for r in m.rcpt_tos) == sorted(readers)
    finally:
        server.stop()


def test_received_message_shape(
    readers: list[str], smtp_server: SMTPServer, settings: Settings
) -> None:
    run(
        "notify",
        "--title",
        "Shape",
        "--url",
        "https://blog.example/shape",
        "--summary",
        "S",
        "--yes",
    )
    raw = next(m.data for m in smtp_server.messages if b"Subject: Shape" in m.data)
    message = message_from_bytes(raw, policy=email.policy.strict)
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    for header in ["From", "To", "Date", "Subject", "Message-ID", "List-Id", "List-Unsubscribe"]:
        assert message[header], header
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The raw header is plain text, never an RFC 2047 encoded-word.
    unsubscribe_line = next(
        line for line in raw.split(b"\r\n") if line.startswith(b"List-Unsubscribe:")
    )
    assert unsubscribe_line.startswith(b"List-Unsubscribe: <http://testserver/unsubscribe/")
    assert b"=?" not in unsubscribe_line
    url = unsubscribe_line.split(b"<", 1)[1].split(b">", 1)[0].decode()
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert url in text and url in html
    assert "https://blog.example/shape" in text and 'href="https://blog.example/shape"' in html


def test_message_id_is_stable_per_post_and_reader(
    readers: list[str], smtp_server: SMTPServer, settings: Settings, engine: Engine
) -> None:
    from subscribe.mail.render import message_id

    run("notify", "--title", "Ids", "--url", "https://blog.example/ids", "--yes")
    ids = {
        m.rcpt_tos[0]: m.message()["Message-ID"]
        for m in smtp_server.messages
        if b"Subject: Ids" in m.data
    }
    with Session(engine) as session:
        ann = subscribers.find(session, email="ann@example.org")
    assert ids["ann@example.org"] == message_id(
        settings.mail_domain, post_key="https://blog.example/ids", subscriber_id=ann.id or 0
    )
    assert len(set(ids.values())) == 3


def test_hostile_title_and_name_are_escaped(
    settings: Settings, smtp_server: SMTPServer, engine: Engine
) -> None:
    with Session(engine) as session:
        subscribers.add(
            session,
            settings,
            email="mal@example.org",
            name='Mal <b>"x"</b>\r\nBcc: victim@example.org',
            confirmed=True,
            now=utcnow(),
        )
    title = '<img src=x onerror=alert(1)> & "quotes"\nBcc: victim@example.org'
    result = run("notify", "--title", title, "--url", "https://blog.example/x?a=1&b=<2>", "--yes")
    assert result.exit_code == 0, result.output
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["mal@example.org"]
    message = message_from_bytes(received.data, policy=email.policy.strict)
    assert "Bcc" not in message
    assert message.get_all("To") == [
        '"Mal <b>\\"x\\"</b> Bcc: victim@example.org" <mal@example.org>'
    ]
    html = message.get_body(("html",)).get_content()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<b>" not in html and "Mal &lt;b&gt;" in html
    assert "b=&lt;2&gt;" in html or "b=%3C2%3E" in html


def test_preview_writes_eml_and_html(tmp_path: Path) -> None:
    result = run(
        "preview", "--title", "P", "--url", "https://blog.example/p", "--out", str(tmp_path / "out")
    )
    assert result.exit_code == 0, result.output
    raw = (tmp_path / "out" / "preview.eml").read_bytes()
    assert message_from_bytes(raw, policy=email.policy.strict)["Subject"] == "P"
    assert "<html" in (tmp_path / "out" / "preview.html").read_text()


def test_send_test(smtp_server: SMTPServer) -> None:
    result = run("send-test", "me@example.org")
    assert result.exit_code == 0, result.output
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["me@example.org"]


def test_status_shows_counts_per_post(readers: list[str]) -> None:
    run("notify", "--title", "Counted", "--url", "https://blog.example/c", "--yes")
    result = run("status", "https://blog.example/c")
    assert result.exit_code == 0
    assert "Counted: sent 3" in result.stdout
