"""A reader who switches cadence while a post is announced or digests are queued neither
loses nor repeats a post, on SQLite and PostgreSQL.

Each test stops one transaction at the racy point (a post's deliveries inserted, or the
daily digests, not yet committed), runs the others meanwhile, each until it finishes or
waits on a lock, then lets the first one commit. On PostgreSQL (READ COMMITTED) nothing
stopped them before the fix: the switch read the latest post without the one in flight,
and the announcement had read the reader's old cadence. SQLite's single writer (BEGIN
IMMEDIATE) always made them wait.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from types import FrameType

import pytest
from mailserver import SMTPServer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.db import store
from subscribe.db.models import Cadence
from subscribe.posts import digests
from subscribe.posts.announce import register_post
from subscribe.posts.sources import from_flags
from subscribe.readers import preferences, subscribers
from subscribe.readers.tokens import tokens_for
from subscribe.sending import ledger
from subscribe.sending.runs import send_due
from subscribe.sending.sender import smtp_sender_factory

READER = "switch@example.org"
# Not a timing: a bound on waiting for another thread, so that a bug fails instead of hanging.
PATIENCE_S = 60.0


def _a_monday_9() -> datetime:
    day = (datetime.now(UTC) - timedelta(days=9)).date()
    day -= timedelta(days=day.weekday())
    return datetime(day.year, day.month, day.day, 9, tzinfo=UTC)


MONDAY_9 = _a_monday_9()
START = MONDAY_9 - timedelta(days=1)


# -- the reader, posts, digests and what arrived -------------------------------------------


def _reader(engine: Engine, settings: Settings, cadence: Cadence) -> None:
    with Session(engine) as session:
        reader = subscribers.add(session, settings, email=READER, confirmed=True, now=START)
        preferences.change_cadence(session, reader.subscriber, cadence, now=START)
        session.commit()


def _switch(engine: Engine, settings: Settings, cadence: Cadence) -> Callable[[], None]:
    """The preferences page's save, as the web app runs it."""

    def switch() -> None:
        with store.write_session(engine) as session:
            reader = subscribers.find(session, email=READER)
            choices = preferences.Choices(reader.name, cadence, [])
            preferences.save(session, settings, reader, choices, now=START + timedelta(hours=3))

    return switch


def _announce(engine: Engine, slug: str, hour: int) -> Callable[[], None]:
    """`notify` of one post: stored and enqueued in one write transaction."""
    spec = from_flags(title=f"Post {slug}", url=f"https://blog.example/{slug}")
    spec = replace(spec, published_at=START + timedelta(hours=hour))

    def announce() -> None:
        with store.write_session(engine) as session:
            register_post(session, spec, now=START + timedelta(hours=hour))

    return announce


def _send(engine: Engine, settings: Settings) -> None:
    factory = smtp_sender_factory(settings)
    send_due(engine, settings, sender_factory=factory, tokens=tokens_for(settings))


def _digest(engine: Engine, settings: Settings, at: datetime) -> Callable[[], None]:
    def run() -> None:
        digests.queue_digests(engine, settings, now=at)
        _send(engine, settings)

    return run


def _posts_received(smtp_server: SMTPServer) -> list[str]:
    """Every post the reader was sent, alone or in a digest, as often as it was sent."""
    got = []
    for received in smtp_server.messages:
        assert received.rcpt_tos == [READER]
        message: EmailMessage = received.message()
        body = message.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        if "has a new post" in text:
            got.append(str(message["Subject"]))
        else:
            got += [line for line in text.splitlines() if line.startswith("Post ")]
    return sorted(got)


def _finish(engine: Engine, settings: Settings) -> None:
    """Whatever is due afterwards: posts queued one by one, then two days' digests."""
    _send(engine, settings)
    _digest(engine, settings, MONDAY_9)()
    _digest(engine, settings, MONDAY_9 + timedelta(days=1))()


# -- running transactions into each other ----------------------------------------------------


@contextmanager
def _stopped_after(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str
) -> Iterator[tuple[threading.Event, threading.Event]]:
    """``owner.name`` runs, then its first caller waits (inside its transaction) until
    told to go on: (reached, go)."""
    reached, go = threading.Event(), threading.Event()
    original = getattr(owner, name)

    def stopping(*args: object, **kwargs: object) -> object:
        result = original(*args, **kwargs)
        if not reached.is_set():
            reached.set()
            assert go.wait(PATIENCE_S), "never told to go on"
        return result

    monkeypatch.setattr(owner, name, stopping)
    try:
        yield reached, go
    finally:
        go.set()


def _waiting(engine: Engine, threads: list[int]) -> int:
    """How many of these threads wait on a lock: PostgreSQL's ungranted locks in this
    database (one per waiting transaction); SQLite's writers queue in store's begin
    handler, before BEGIN IMMEDIATE."""
    if store.is_sqlite(engine):
        frames = sys._current_frames()
        return sum(1 for ident in threads if _inside(frames.get(ident), "_on_begin"))
    with engine.connect() as connection:
        query = (
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return int(connection.exec_driver_sql(query).scalar_one())


def _inside(frame: FrameType | None, function: str) -> bool:
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


def _race(
    engine: Engine,
    reached: threading.Event,
    go: threading.Event,
    first: Callable[[], None],
    *others: Callable[[], None],
) -> None:
    """Start ``first`` until it stops; then each of ``others`` in turn, until it is done or
    waits on a lock; then let ``first`` commit, and wait for all of them."""
    threads: list[int] = []

    def tracked(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            threads.append(threading.get_ident())
            work()

        return run

    with ThreadPoolExecutor(1 + len(others)) as pool:
        stopped = pool.submit(first)
        _until(lambda: reached.is_set() or stopped.done(), "the first transaction to stop")
        assert not stopped.done(), stopped.result()
        started: list[Future[None]] = []
        for work in others:
            started.append(pool.submit(tracked(work)))

            def settled() -> bool:
                pending = [f for f in started if not f.done()]
                return len(pending) == _waiting(engine, threads) if pending else True

            _until(settled, "the others to finish or wait")
        go.set()
        for future in (stopped, *started):
            future.result()


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


# -- the races -----------------------------------------------------------------------------


def test_a_switch_to_a_digest_while_a_post_is_enqueued_does_not_repeat_it(
    engine: Engine, settings: Settings, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The post's deliveries include the reader (still on 'post'); the switch, before the
    post is committed, put the watermark below it: sent alone and in the next digest."""
    _reader(engine, settings, Cadence.POST)
    _announce(engine, "p1", 1)()
    with _stopped_after(monkeypatch, ledger, "enqueue") as (reached, go):
        _race(
            engine,
            reached,
            go,
            _announce(engine, "p2", 2),
            _switch(engine, settings, Cadence.DAILY),
        )
    _finish(engine, settings)
    assert _posts_received(smtp_server) == ["Post p1", "Post p2"]


def test_a_switch_to_posts_while_a_post_is_enqueued_does_not_lose_it(
    engine: Engine, settings: Settings, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The post's deliveries leave the reader out (still on 'daily'); the switch, before
    the post is committed, queued what was waiting without it: in neither."""
    _reader(engine, settings, Cadence.DAILY)
    _announce(engine, "p1", 1)()
    with _stopped_after(monkeypatch, ledger, "enqueue") as (reached, go):
        _race(
            engine, reached, go, _announce(engine, "p2", 2), _switch(engine, settings, Cadence.POST)
        )
    _finish(engine, settings)
    assert _posts_received(smtp_server) == ["Post p1", "Post p2"]


def test_a_switch_to_posts_while_digests_are_queued_does_not_repeat_a_post(
    engine: Engine, settings: Settings, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daily digest lists the post; the switch, before the digest is committed, read
    the watermark without it and queued the post alone as well."""
    _reader(engine, settings, Cadence.DAILY)
    _announce(engine, "p1", 1)()
    with _stopped_after(monkeypatch, digests, "enqueue_digests") as (reached, go):
        queue = _digest(engine, settings, MONDAY_9)
        _race(engine, reached, go, queue, _switch(engine, settings, Cadence.POST))
    _finish(engine, settings)
    assert _posts_received(smtp_server) == ["Post p1"]


def test_a_digest_between_two_overlapping_announcements_loses_neither_post(
    engine: Engine, settings: Settings, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Post ids are not handed out in commit order: p2 committed while p1 (a lower id)
    was still being enqueued, the digest listed up to p2, and p1 fell below the
    watermark."""
    _reader(engine, settings, Cadence.DAILY)
    with _stopped_after(monkeypatch, ledger, "enqueue") as (reached, go):
        digest = _digest(engine, settings, MONDAY_9)
        _race(engine, reached, go, _announce(engine, "p1", 1), _announce(engine, "p2", 2), digest)
    _finish(engine, settings)
    assert _posts_received(smtp_server) == ["Post p1", "Post p2"]
