"""Digests end to end into a real SMTP server, on SQLite and PostgreSQL: who gets what,
once per period, and cadence switches that neither lose nor repeat a post."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from clihelp import run, settings_env
from mailserver import SMTPServer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.db.models import Cadence, Subscriber, utcnow
from subscribe.posts.announce import register_post
from subscribe.posts.digests import digest, period_of
from subscribe.posts.sources import from_flags
from subscribe.readers import preferences, subscribers
from subscribe.readers.tokens import tokens_for
from subscribe.sending.runs import send_due
from subscribe.sending.sender import smtp_sender_factory


def _a_monday_9() -> datetime:
    """09:00 UTC on a Monday at least eight days ago, after the 8 o'clock slot: whatever
    a test queues for up to a week later is due now."""
    day = (datetime.now(UTC) - timedelta(days=9)).date()
    day -= timedelta(days=day.weekday())
    return datetime(day.year, day.month, day.day, 9, tzinfo=UTC)


MONDAY_9 = _a_monday_9()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    settings_env(monkeypatch, settings)


def _reader(
    engine: Engine,
    settings: Settings,
    address: str,
    *,
    cadence: Cadence = Cadence.POST,
    categories: tuple[str, ...] = (),
    at: datetime,
) -> None:
    with Session(engine) as session:
        outcome = subscribers.add(session, settings, email=address, confirmed=True, now=at)
        reader = outcome.subscriber
        assert reader.id is not None
        preferences.set_categories(session, reader.id, categories)
        preferences.change_cadence(session, reader, cadence, now=at)
        session.commit()


def _switch(engine: Engine, address: str, cadence: Cadence) -> None:
    with Session(engine) as session:
        reader = subscribers.find(session, email=address)
        preferences.change_cadence(session, reader, cadence, now=utcnow())
        session.commit()


def _post(engine: Engine, slug: str, *, at: datetime, categories: tuple[str, ...] = ()) -> None:
    spec = from_flags(
        title=f"Post {slug}", url=f"https://blog.example/{slug}", summary=f"About {slug}."
    )
    spec = replace(
        spec, categories=categories, published_at=at, image_url=f"https://blog.example/{slug}.png"
    )
    with Session(engine) as session:
        register_post(session, spec, now=at)


def _send(engine: Engine, settings: Settings) -> None:
    send_due(
        engine, settings, sender_factory=smtp_sender_factory(settings), tokens=tokens_for(settings)
    )


def _digest(engine: Engine, settings: Settings, at: datetime) -> int:
    def send() -> int:
        report = send_due(
            engine,
            settings,
            sender_factory=smtp_sender_factory(settings),
            tokens=tokens_for(settings),
        )
        return report.sent

    outcome = digest(engine, settings, now=lambda: at, send=lambda: send())  # type: ignore[arg-type,return-value]
    return outcome.queued


def _received(smtp_server: SMTPServer) -> list[tuple[str, EmailMessage]]:
    return [
        (rcpt, received.message())
        for received in smtp_server.messages
        for rcpt in received.rcpt_tos
    ]


def _titles(message: EmailMessage) -> list[str]:
    body = message.get_body(("plain",))
    assert body is not None
    return [line for line in body.get_content().splitlines() if line.startswith("Post ")]


def _digests_for(smtp_server: SMTPServer, address: str) -> list[EmailMessage]:
    return [
        m
        for rcpt, m in _received(smtp_server)
        if rcpt == address and "digest" in str(m.get_body(("plain",)).get_content())
    ]


def _singles_for(smtp_server: SMTPServer, address: str) -> list[str]:
    return [
        str(m["Subject"])
        for rcpt, m in _received(smtp_server)
        if rcpt == address and "has a new post" in m.get_body(("plain",)).get_content()
    ]


def test_a_daily_reader_gets_one_digest_of_their_categories_newest_first(
    engine: Engine, settings: Settings, smtp_server: SMTPServer
) -> None:
    start = MONDAY_9 - timedelta(days=1)
    _reader(
        engine,
        settings,
        "daily@example.org",
        cadence=Cadence.DAILY,
        categories=("python",),
        at=start,
    )
    _reader(engine, settings, "all@example.org", cadence=Cadence.DAILY, at=start)
    _reader(engine, settings, "each@example.org", categories=("rust",), at=start)
    _reader(engine, settings, "paused@example.org", cadence=Cadence.PAUSED, at=start)
    _post(engine, "a", at=start + timedelta(hours=1), categories=("python",))
    _post(engine, "b", at=start + timedelta(hours=2), categories=("rust",))
    _post(engine, "c", at=start + timedelta(hours=3))  # no categories: for everyone
    send_due(
        engine, settings, sender_factory=smtp_sender_factory(settings), tokens=tokens_for(settings)
    )
    # One by one only for the 'post' reader, and only what their categories take.
    # Two connections: the two posts may arrive in either order.
    assert sorted(_singles_for(smtp_server, "each@example.org")) == ["Post b", "Post c"]
    assert _singles_for(smtp_server, "daily@example.org") == []
    before = len(smtp_server.messages)

    assert _digest(engine, settings, MONDAY_9) == 2
    received = _received(smtp_server)[before:]
    assert sorted(rcpt for rcpt, _ in received) == ["all@example.org", "daily@example.org"]
    by_reader = dict(received)
    assert _titles(by_reader["daily@example.org"]) == ["Post c", "Post a"]
    assert _titles(by_reader["all@example.org"]) == ["Post c", "Post b", "Post a"]
    message = by_reader["daily@example.org"]
    # The headers of a post email: one-click unsubscribe written plainly, a Message-ID.
    raw = next(r.data for r in smtp_server.messages[before:] if r.rcpt_tos == ["daily@example.org"])
    assert b"List-Unsubscribe: <http://testserver/unsubscribe/" in raw
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert message["List-Id"] and message["Date"] and message["Message-ID"]
    assert message.get_content_type() == "multipart/alternative"
    unsubscribe = str(message["List-Unsubscribe"]).strip("<>")
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    for part in (html, text):
        assert unsubscribe in part
        assert "http://testserver/preferences/" in part
        assert "https://blog.example/a" in part
    assert 'src="https://blog.example/a.png"' in html
    assert "About a." in text


def test_a_second_run_in_the_period_sends_nothing_and_the_next_period_the_rest(
    engine: Engine, settings: Settings, smtp_server: SMTPServer
) -> None:
    start = MONDAY_9 - timedelta(days=1)
    _reader(engine, settings, "d@example.org", cadence=Cadence.DAILY, at=start)
    _reader(engine, settings, "w@example.org", cadence=Cadence.WEEKLY, at=start - timedelta(days=7))
    assert _digest(engine, settings, MONDAY_9) == 0  # nothing new: nothing at all
    assert smtp_server.messages == []
    _post(engine, "one", at=MONDAY_9)
    assert _digest(engine, settings, MONDAY_9 + timedelta(minutes=1)) == 2
    first = {rcpt: m["Message-ID"] for rcpt, m in _received(smtp_server)}
    _post(engine, "two", at=MONDAY_9 + timedelta(hours=1))
    assert _digest(engine, settings, MONDAY_9 + timedelta(hours=2)) == 0  # same period
    assert len(smtp_server.messages) == 2
    # Tomorrow's daily lists only what came after; the weekly waits for next Monday.
    assert _digest(engine, settings, MONDAY_9 + timedelta(days=1)) == 1
    ((rcpt, message),) = _received(smtp_server)[2:]
    assert rcpt == "d@example.org" and _titles(message) == ["Post two"]
    assert message["Message-ID"] != first["d@example.org"]
    assert _digest(engine, settings, MONDAY_9 + timedelta(days=7)) == 1
    ((rcpt, message),) = _received(smtp_server)[3:]
    assert rcpt == "w@example.org" and _titles(message) == ["Post two"]


def test_switching_cadence_between_posts_neither_loses_nor_repeats_one(
    engine: Engine, settings: Settings, smtp_server: SMTPServer
) -> None:
    start = MONDAY_9 - timedelta(days=2)
    _reader(engine, settings, "flip@example.org", at=start)
    _reader(engine, settings, "flop@example.org", cadence=Cadence.DAILY, at=start)
    _post(engine, "p1", at=start + timedelta(hours=1))

    def send() -> None:
        _send(engine, settings)

    send()
    _switch(engine, "flip@example.org", Cadence.DAILY)
    _switch(engine, "flop@example.org", Cadence.POST)  # p1 waited for a digest: now alone
    send()
    _post(engine, "p2", at=start + timedelta(hours=2))
    send()
    _switch(engine, "flip@example.org", Cadence.WEEKLY)
    _post(engine, "p3", at=start + timedelta(hours=3))
    _switch(engine, "flop@example.org", Cadence.DAILY)
    _post(engine, "p4", at=start + timedelta(hours=4))
    _digest(engine, settings, MONDAY_9)
    _switch(engine, "flip@example.org", Cadence.POST)
    _switch(engine, "flop@example.org", Cadence.POST)
    _post(engine, "p5", at=MONDAY_9 + timedelta(hours=1))
    send()
    _digest(engine, settings, MONDAY_9 + timedelta(days=1))
    for address in ("flip@example.org", "flop@example.org"):
        got = _singles_for(smtp_server, address)
        for message in _digests_for(smtp_server, address):
            got += _titles(message)
        assert sorted(got) == [f"Post p{n}" for n in range(1, 6)], (address, got)


def test_periods_follow_the_site_hour_weekday_and_time_zone(settings: Settings) -> None:
    berlin = settings.model_copy(
        update={"timezone": "Europe/Berlin", "digest_weekday": "wednesday"}
    )
    # 07:30 UTC is 08:30 in Berlin (winter): today's daily slot has passed there, not in UTC.
    at = datetime(2026, 12, 9, 7, 30, tzinfo=UTC)  # a Wednesday
    assert period_of(settings, "daily", at) == "daily:2026-12-08"
    assert period_of(berlin, "daily", at) == "daily:2026-12-09"
    assert period_of(berlin, "weekly", at) == "weekly:2026-12-09"
    assert period_of(berlin, "weekly", at - timedelta(hours=1)) == "weekly:2026-12-02"
    assert period_of(settings, "weekly", at) == "weekly:2026-12-07"


def test_digest_cli_dry_run_changes_nothing_and_a_run_reports(
    engine: Engine, settings: Settings, smtp_server: SMTPServer
) -> None:
    _reader(
        engine, settings, "d@example.org", cadence=Cadence.DAILY, at=utcnow() - timedelta(days=2)
    )
    _post(engine, "x", at=utcnow() - timedelta(seconds=1))
    result = run("digest", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would get 1 readers" in result.output
    assert smtp_server.messages == []
    result = run("digest")
    assert result.exit_code == 0, result.output
    assert "queued for 1 readers" in result.output and "sent 1" in result.output
    assert len(smtp_server.messages) == 1
    again = run("digest")
    assert again.exit_code == 0 and "queued for 0 readers" in again.output
    assert len(smtp_server.messages) == 1
    status = run("status")
    assert "digest daily:" in status.output and "sent 1" in status.output
    with Session(engine) as session:
        assert session.get(Subscriber, 1) is not None


def test_a_digest_lists_only_what_came_out_after_its_reader_joined(
    engine: Engine, settings: Settings, smtp_server: SMTPServer
) -> None:
    """Readers of one batch share their list, except one who joined between the posts
    (an import with no watermark, say): theirs leaves out what came out before."""
    start = MONDAY_9 - timedelta(days=1)
    for address in ("early@example.org", "late@example.org", "also@example.org"):
        _reader(engine, settings, address, cadence=Cadence.DAILY, at=start)
    _post(engine, "one", at=start + timedelta(hours=1))
    _post(engine, "two", at=start + timedelta(hours=3))
    with Session(engine) as session:
        late = subscribers.find(session, email="late@example.org")
        late.digest_after = 0
        late.confirmed_at = start + timedelta(hours=2)
        session.add(late)
        session.commit()
    assert _digest(engine, settings, MONDAY_9) == 3
    titles = {rcpt: _titles(message) for rcpt, message in _received(smtp_server)}
    assert titles == {
        "early@example.org": ["Post two", "Post one"],
        "late@example.org": ["Post two"],
        "also@example.org": ["Post two", "Post one"],
    }
