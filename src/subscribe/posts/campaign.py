"""The `notify` use case: turn a post source into announced posts, then send what is due.

The CLI, the publish webhook and `worker` all go through ``notify``: plan what a source
brings (for a feed: which entries are new), let the caller approve it, record the entries
passed over, announce each post, and run one sending pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribe.content import PostSpec
from subscribe.db import store
from subscribe.sending.report import RunReport

from .announce import Announcement, register_post
from .sources import Feed


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


@dataclass(frozen=True, slots=True)
class NotifyPlan:
    """What one `notify` run would do, for the caller to show or approve."""

    announce: list[PostSpec]  # oldest first
    fresh: list[PostSpec]  # of those, the ones never announced before
    audience: int  # confirmed subscribers now
    feed: FeedPlan | None = None


@dataclass(slots=True)
class NotifyOutcome:
    plan: NotifyPlan
    announced: list[Announcement] = field(default_factory=list)
    report: RunReport | None = None  # None: nothing to send, or not approved


def plan_notify(
    session: Session, *, specs: Sequence[PostSpec] = (), feed: Feed | None = None
) -> NotifyPlan:
    feed_plan = plan_feed(session, feed) if feed is not None else None
    chosen = feed_plan.announce if feed_plan is not None else list(specs)
    fresh = [spec for spec in chosen if store.post_by_key(session, key=spec.key) is None]
    return NotifyPlan(chosen, fresh, store.count_confirmed(session), feed_plan)


def notify(
    engine: Engine,
    *,
    specs: Sequence[PostSpec] = (),
    feed: Feed | None = None,
    now: Callable[[], datetime],
    approve: Callable[[NotifyPlan], bool] = lambda plan: True,
    on_announced: Callable[[Announcement], None] = lambda item: None,
    send: Callable[[], RunReport],
) -> NotifyOutcome:
    """Announce the posts a source brings and send them.

    ``approve`` sees the plan before anything is stored; returning False stores and sends
    nothing. Entries a feed run passes over are recorded before the announcements, so a crash
    in between never turns them into posts. ``send`` runs the sending pass (the CLI with its
    progress bar, the web process by waking its sender).
    """
    with store.write_session(engine) as session:
        plan = plan_notify(session, specs=specs, feed=feed)
        outcome = NotifyOutcome(plan)
        if not approve(plan):
            return outcome
        if plan.feed is not None:
            record_passed_over(session, plan.feed, now=now())
        feed_identity = plan.feed.feed.identity if plan.feed is not None else None
        outcome.announced = announce(session, plan.announce, now=now(), feed=feed_identity)
        for item in outcome.announced:
            on_announced(item)
    if plan.announce:
        outcome.report = send()
    return outcome
