"""The `notify` use case: turn a post source into announced posts, then send what is due.

The CLI, the publish webhook and `worker` all go through ``notify``: plan what a source
brings (for a feed: which entries are new), let the caller approve it, record the entries
passed over, announce each post, and run one sending pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from subscribe.content import PostSpec
from subscribe.db import store
from subscribe.db.models import FeedEntry
from subscribe.sending.report import RunReport

from . import identity
from .announce import Announcement, register_post
from .feeds import Feed, FeedItem

DEFAULT_MAX_NEW = 3  # SUBSCRIBE_FEED_MAX_NEW's default


@dataclass(frozen=True, slots=True)
class FeedPlan:
    """What a `notify --feed` run will announce, and which entries it only records as seen."""

    feed: Feed
    announce: list[FeedItem]  # oldest first
    pass_over: list[FeedItem]
    capped: int = 0  # new entries passed over because of the SUBSCRIBE_FEED_MAX_NEW cap
    max_new: int = DEFAULT_MAX_NEW


def seen_keys(session: Session, feed: Feed) -> set[str]:
    """The keys recorded for this feed, under any spelling of its address (a feed moved to
    https or off ``www.`` is the same feed), in their written and normalised forms."""
    feeds = session.exec(select(FeedEntry.feed).distinct()).all()
    stored: set[str] = set()
    for name in feeds:
        if identity.same_feed(name, feed.identity):
            stored |= store.seen_entry_keys(session, feed=name)
    return identity.expand_seen(stored)


def plan_feed(session: Session, feed: Feed, *, max_new: int = DEFAULT_MAX_NEW) -> FeedPlan:
    """The first run for a feed announces only its newest entry; later runs every unseen
    one, but never more than ``max_new`` (the newest): a feed whose entries all look new
    (a move the keys could not follow) must not mail the whole back catalogue."""
    seen = seen_keys(session, feed)
    if not seen:
        return FeedPlan(feed, feed.entries[-1:], feed.entries[:-1], max_new=max_new)
    unseen = [item for item in feed.entries if seen.isdisjoint(item.keys)]
    over = max(0, len(unseen) - max_new)
    return FeedPlan(feed, unseen[over:], unseen[:over], capped=over, max_new=max_new)


def _known_key(session: Session, item: FeedItem) -> PostSpec:
    """The entry's post, under the key it was announced with: a post stored under an
    older spelling of the key is resumed, not announced a second time."""
    for key in item.keys:
        if store.post_by_key(session, key=key) is not None:
            return replace(item.spec, key=key)
    return item.spec


def announce(
    session: Session,
    specs: list[PostSpec],
    *,
    now: datetime,
    feed: str | None = None,
    record: Mapping[str, Sequence[str]] | None = None,
) -> list[Announcement]:
    """Register each post (idempotent) and, for a feed, record its entry as seen afterwards
    (under the keys in ``record``, else its own): a crash in between makes the next run
    find the entry unseen and resume the same post."""
    announcements = []
    for spec in specs:
        announcements.append(register_post(session, spec, now=now))
        if feed is not None:
            keys = (record or {}).get(spec.key, (spec.key,))
            store.mark_entries_seen(session, feed=feed, keys=list(keys), now=now)
            session.commit()
    return announcements


def record_passed_over(session: Session, plan: FeedPlan, *, now: datetime) -> None:
    keys = [key for item in plan.pass_over for key in item.record]
    store.mark_entries_seen(session, feed=plan.feed.identity, keys=keys, now=now)
    session.commit()


@dataclass(frozen=True, slots=True)
class NotifyPlan:
    """What one `notify` run would do, for the caller to show or approve."""

    announce: list[PostSpec]  # oldest first
    fresh: list[PostSpec]  # of those, the ones never announced before
    audience: int  # confirmed subscribers now
    feed: FeedPlan | None = None
    record: dict[str, tuple[str, ...]] = field(default_factory=dict)  # post key -> seen keys


@dataclass(slots=True)
class NotifyOutcome:
    plan: NotifyPlan
    announced: list[Announcement] = field(default_factory=list)
    report: RunReport | None = None  # None: nothing to send, or not approved


def plan_notify(
    session: Session,
    *,
    specs: Sequence[PostSpec] = (),
    feed: Feed | None = None,
    max_new: int = DEFAULT_MAX_NEW,
) -> NotifyPlan:
    feed_plan = None
    chosen = list(specs)
    record: dict[str, tuple[str, ...]] = {}
    if feed is not None:
        feed_plan = plan_feed(session, feed, max_new=max_new)
        chosen = []
        for item in feed_plan.announce:
            spec = _known_key(session, item)
            chosen.append(spec)
            record[spec.key] = tuple(dict.fromkeys((spec.key, *item.record)))
    fresh = [spec for spec in chosen if store.post_by_key(session, key=spec.key) is None]
    return NotifyPlan(chosen, fresh, store.count_confirmed(session), feed_plan, record)


def notify(
    engine: Engine,
    *,
    specs: Sequence[PostSpec] = (),
    feed: Feed | None = None,
    max_new: int = DEFAULT_MAX_NEW,
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
        plan = plan_notify(session, specs=specs, feed=feed, max_new=max_new)
        outcome = NotifyOutcome(plan)
        if not approve(plan):
            return outcome
        if plan.feed is not None:
            record_passed_over(session, plan.feed, now=now())
        feed_identity = plan.feed.feed.identity if plan.feed is not None else None
        outcome.announced = announce(
            session, plan.announce, now=now(), feed=feed_identity, record=plan.record
        )
        for item in outcome.announced:
            on_announced(item)
    if plan.announce:
        outcome.report = send()
    return outcome
