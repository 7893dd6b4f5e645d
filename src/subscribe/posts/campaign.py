"""The `notify` use case: turn a post source into announced posts, then send what is due.

The CLI, the publish webhook and `worker` all go through ``notify``: plan what a source
brings (for a feed: which entries are new), let the caller approve it, record the entries
passed over, announce each post, and run one sending pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, or_, select

from subscribe.content import PostSpec
from subscribe.db import store
from subscribe.db.models import FeedEntry, Post
from subscribe.sending.report import RunReport

from . import identity
from .announce import Announcement, register_post
from .feeds import Feed, FeedItem

DEFAULT_MAX_NEW = 3  # SUBSCRIBE_FEED_MAX_NEW's default
# How far before the last run an entry of an unrecognisable feed may be dated and still be
# taken for new: feeds that give local time as UTC, a post dated when its draft began.
_CLOCK_SLACK = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class FeedPlan:
    """What a `notify --feed` run will announce, and which entries it only records as seen."""

    feed: Feed
    announce: list[FeedItem]  # oldest first
    pass_over: list[FeedItem]
    capped: int = 0  # new entries passed over because of the SUBSCRIBE_FEED_MAX_NEW cap
    max_new: int = DEFAULT_MAX_NEW
    older: int = 0  # unseen entries older than every seen one: back catalogue, passed over
    rekeyed: bool = False  # no entry matched by GUID or link: compared by title instead
    refresh: tuple[str, ...] = ()  # seen entries' keys not recorded yet (new spellings)


def _feed_rows(session: Session, feed: Feed) -> list[str]:
    """The names this feed's entries are recorded under: any spelling of its address (a
    feed moved to https or off ``www.`` is the same feed)."""
    feeds = session.exec(select(FeedEntry.feed).distinct()).all()
    return [name for name in feeds if identity.same_feed(name, feed.identity)]


def seen_keys(session: Session, feed: Feed) -> set[str]:
    """The keys recorded for this feed, under any spelling of its address, in their
    written and normalised forms."""
    stored: set[str] = set()
    for name in _feed_rows(session, feed):
        stored |= store.seen_entry_keys(session, feed=name)
    return identity.expand_seen(stored)


def _last_seen(session: Session, feed: Feed) -> datetime | None:
    names = _feed_rows(session, feed)
    if not names:
        return None
    query = select(func.max(FeedEntry.seen_at)).where(FeedEntry.feed.in_(names))  # type: ignore[attr-defined]
    return session.exec(query).one()


def _same_title(title: str) -> Any:
    """Post.title is ``title``, any case (SQLite's lower() knows ASCII only: as written too)."""
    return or_(Post.title == title, func.lower(Post.title) == title.lower())


def _announced_title(session: Session, title: str) -> bool:
    query = select(Post.id).where(_same_title(title)).limit(1)
    return session.exec(query).first() is not None


def _unrecognised(session: Session, feed: Feed, *, max_new: int) -> FeedPlan:
    """A feed none of whose entries matches anything seen before, not even by title: a
    blog re-published under new GUIDs, links and titles, a feed that shows only its newest
    entry, another blog at the same address. Like a first run, at most the newest entry,
    and only when it is dated after the last run (or has no date) and no post of that
    title went out before."""
    newest = feed.entries[-1]
    fresh = _after(newest, _last_seen(session, feed))
    if fresh and max_new > 0 and not _announced_title(session, newest.spec.title):
        return FeedPlan(feed, [newest], feed.entries[:-1], max_new=max_new, rekeyed=True)
    return FeedPlan(feed, [], list(feed.entries), max_new=max_new, rekeyed=True)


def _after(item: FeedItem, last: datetime | None) -> bool:
    """Whether the entry may be newer than the last run (undated entries may)."""
    published = item.spec.published_at
    return published is None or last is None or published > _as_aware(last) - _CLOCK_SLACK


def _as_aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def plan_feed(session: Session, feed: Feed, *, max_new: int = DEFAULT_MAX_NEW) -> FeedPlan:
    """The first run for a feed announces only its newest entry; later runs every unseen
    one, but never more than ``max_new`` (the newest): a feed whose entries all look new
    (a move the keys could not follow) must not mail the whole back catalogue.

    Unseen entries older than the oldest entry seen before are back catalogue, passed over:
    a feed that was short (or empty) for a while and is whole again, a first run that saw
    only the newest few. When no entry matches by GUID or link (every one changed at
    once: a new blog engine), they are compared by title; when not even a title matches,
    the run is a first run again (``_unrecognised``).
    """
    seen = seen_keys(session, feed)
    entries = feed.entries
    if not seen:
        return FeedPlan(feed, entries[-1:], entries[:-1], max_new=max_new)
    if not entries:
        return FeedPlan(feed, [], [], max_new=max_new)
    known = [not seen.isdisjoint(item.keys) for item in entries]
    rekeyed = not any(known)
    if rekeyed:
        known = [not seen.isdisjoint(item.fallback) for item in entries]
        if not any(known):
            return _unrecognised(session, feed, max_new=max_new)
    first_known = known.index(True)
    older = entries[:first_known]
    unseen = [item for item, was in zip(entries, known, strict=True) if not was][len(older) :]
    if rekeyed:  # matched by title only: a retitled old post must not pass for a new one
        last = _last_seen(session, feed)
        stale = [item for item in unseen if not _after(item, last)]
        unseen = [item for item in unseen if _after(item, last)]
        older = [*older, *stale]
    over = max(0, len(unseen) - max_new)
    # Seen entries' titles, where an older version recorded none (the fallback needs
    # them); after a migration matched by title, every new key, so that the next run
    # matches by GUID or link again. Never a seen entry's GUID otherwise: a feed that
    # makes up new GUIDs on every build would add rows on every run.
    refresh = [
        key
        for item, was in zip(entries, known, strict=True)
        if was
        for key in (item.record if rekeyed else item.fallback)
        if key not in seen
    ]
    return FeedPlan(
        feed,
        unseen[over:],
        [*older, *unseen[:over]],
        capped=over,
        max_new=max_new,
        older=len(older),
        rekeyed=rekeyed,
        refresh=tuple(dict.fromkeys(refresh)),
    )


def _known_key(session: Session, item: FeedItem) -> PostSpec:
    """The entry's post, under the key it was announced with: a post stored under an
    older spelling of the key is resumed, not announced a second time; so is one
    announced by hand (``notify --title --url``, the publish hook) with the entry's link
    and title, which a feed with GUIDs of its own never matches by key."""
    for key in item.keys:
        if store.post_by_key(session, key=key) is not None:
            return replace(item.spec, key=key)
    url = item.spec.url
    variants = {url, url.rstrip("/"), url.rstrip("/") + "/"}
    query = select(Post.key).where(
        Post.url.in_(sorted(variants)),  # type: ignore[attr-defined]
        _same_title(item.spec.title),
    )
    by_hand = session.exec(query.limit(1)).first()
    return replace(item.spec, key=by_hand) if by_hand is not None else item.spec


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
    keys += [key for key in plan.refresh if key not in keys]
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
