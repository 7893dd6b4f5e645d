"""The `notify` use case: turn a post source into announced posts, then send what is due."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from . import store
from .config import Settings
from .notifier import Announcement, Notifier, ProgressCallback, RunReport, register_post
from .sender import SenderFactory
from .sources import Feed, PostSpec
from .tokens import Tokens


@dataclass(frozen=True, slots=True)
class FeedPlan:
    """What a `notify --feed` run will announce, and which entries it only records as seen."""

    feed: Feed
    announce: list[PostSpec]  # oldest first
    pass_over: list[PostSpec]


def plan_feed(session: Session, feed: Feed) -> FeedPlan:
    """The first run for a feed announces only its newest entry; later runs every unseen one."""
    seen = store.seen_entry_keys(session, feed=feed.identity)
    if not seen:
        newest = feed.entries[-1:]
        return FeedPlan(feed, newest, feed.entries[:-1])
    unseen = [entry for entry in feed.entries if entry.key not in seen]
    return FeedPlan(feed, unseen, [])


def announce(
    session: Session, specs: list[PostSpec], *, now: datetime, feed: str | None = None
) -> list[Announcement]:
    """Register each post (idempotent) and, for a feed, record its entry as seen afterwards:
    a crash in between makes the next run find the entry unseen and resume the same post."""
    announcements = []
    for spec in specs:
        announcements.append(register_post(session, spec, now=now))
        if feed is not None:
            store.mark_entries_seen(session, feed=feed, keys=[spec.key], now=now)
            session.commit()
    return announcements


def record_passed_over(session: Session, plan: FeedPlan, *, now: datetime) -> None:
    keys = [entry.key for entry in plan.pass_over]
    store.mark_entries_seen(session, feed=plan.feed.identity, keys=keys, now=now)
    session.commit()


def send_due(
    engine: Engine,
    settings: Settings,
    *,
    sender_factory: SenderFactory,
    tokens: Tokens,
    on_progress: ProgressCallback | None = None,
    on_start: Callable[[Notifier], None] | None = None,
) -> RunReport:
    """One sending pass, stopping cleanly on SIGINT/SIGTERM (messages in flight finish)."""
    notifier = Notifier(
        engine, settings, sender_factory=sender_factory, tokens=tokens, on_progress=on_progress
    )
    if on_start is not None:
        on_start(notifier)

    async def run() -> RunReport:
        loop = asyncio.get_running_loop()
        handled = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, notifier.request_stop)
                handled.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests): the default handling stays
        try:
            return await notifier.run()
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)

    return asyncio.run(run())
