"""A reader's choices: how often (cadence), which categories, their name, their address.

The rule that keeps switching cadence from losing or repeating a post: a reader's
watermark (``deliveries.digest_watermark``: ``digest_after``, or what their latest digest
listed up to, whichever is larger) is the id of the last post dealt with for them. Posts
one by one are queued when announced; a digest lists the posts after the watermark. So:

- to a digest from ``post`` (or back from ``paused``): the watermark moves to the latest
  post, which was queued for them one by one (or was passed over during the pause);
- to ``post`` from a digest: the posts after the watermark, which no digest listed yet,
  are queued one by one now, and the watermark moves past them;
- between daily and weekly: nothing moves; the next digest lists what is waiting.

A change waits for an announcement or a digest run in flight (``hold_watermarks``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.db import deliveries, store
from subscribe.db.models import (
    DIGEST_CADENCES,
    Cadence,
    MessageKind,
    Subscriber,
    SubscriberCategory,
    SubscriberStatus,
    delivery_table,
    post_category_table,
    post_table,
    subscriber_category_table,
    subscriber_table,
)
from subscribe.errors import N_, InvalidAddress, InvalidChoice, TokenInvalid

from . import languages
from .addresses import normalize
from .tokens import TokenSubject, key_digest

CADENCES = tuple(cadence.value for cadence in Cadence)
# What the subscribe form offers: pausing before the first email makes no sense there.
SIGNUP_CADENCES = (Cadence.POST, Cadence.DAILY, Cadence.WEEKLY)


def reader_for(session: Session, subject: TokenSubject, *, check_digest: bool = True) -> Subscriber:
    """The reader a preferences link names; ``check_digest`` False for an address-change
    link, whose digest is of the new address (``confirm_address`` checks it)."""
    reader = session.get(Subscriber, subject.subscriber_id)
    if reader is None or (check_digest and key_digest(reader.email_key) != subject.digest):
        raise TokenInvalid(N_("This link is not valid any more."))
    return reader


def latest_post_id(session: Session) -> int:
    return int(session.execute(sa.select(sa.func.max(post_table.c.id))).scalar() or 0)


def site_categories(session: Session, settings: Settings) -> list[str]:
    """What readers may choose: SUBSCRIBE_CATEGORIES, else the categories seen on posts."""
    if settings.category_list:
        return settings.category_list
    pc = post_category_table.c
    query = sa.select(pc.category).distinct().order_by(pc.category)
    return [str(name) for name in session.execute(query).scalars()]


def categories_of(session: Session, subscriber_id: int) -> list[str]:
    sc = subscriber_category_table.c
    query = sa.select(sc.category).where(sc.subscriber_id == subscriber_id).order_by(sc.category)
    return [str(name) for name in session.execute(query).scalars()]


# What a page says of a choice that is not on offer (the detail is for the CLI and logs).
NOT_ON_OFFER = N_("Please choose again: one of your choices is not on offer.")


def parse_cadence(value: str) -> Cadence:
    try:
        return Cadence(value.strip().lower())
    except ValueError:
        raise InvalidChoice(
            f"unknown cadence {value!r}: choose one of {', '.join(CADENCES)}", public=NOT_ON_OFFER
        ) from None


def clean_categories(
    session: Session, settings: Settings, names: Sequence[str], *, strict: bool = True
) -> list[str]:
    """The chosen categories as the site spells them; ``strict``: one not on offer is an
    error (a form), else it is kept as given (an import from another site's export)."""
    return _clean(site_categories(session, settings), names, strict=strict)


def _clean(site: Sequence[str], names: Sequence[str], *, strict: bool) -> list[str]:
    offered = {name.casefold(): name for name in site}
    chosen: list[str] = []
    for raw in names:
        name = " ".join(raw.split())[:200]
        if not name:
            continue
        if name.casefold() in offered:
            name = offered[name.casefold()]
        elif strict:
            raise InvalidChoice(f"unknown category {name!r}", public=NOT_ON_OFFER)
        if name not in chosen:
            chosen.append(name)
    return chosen


def signup_choices(
    settings: Settings,
    fields: dict[str, list[str]],
    *,
    offered_categories: Callable[[], list[str]],
) -> tuple[Cadence, tuple[str, ...]] | None:
    """The cadence and categories a sign-up chose, among those SUBSCRIBE_FORM_CHOICES
    offers (a field not on offer is ignored, so a crafted post cannot set it); None when
    nothing was offered or chosen. ``offered_categories`` is only called when categories
    were ticked (it may read the database). Raises InvalidChoice for one not on offer,
    whatever the address: the answer says nothing about who is subscribed."""
    offered = settings.form_choice_set
    values = fields.get("cadence", []) if "cadence" in offered else []
    names = fields.get("categories", []) if "categories" in offered else []
    ticked = any(name.strip() for name in names)
    if not values and not ticked:
        return None
    cadence = parse_cadence(values[-1]) if values else Cadence.POST
    if cadence not in SIGNUP_CADENCES:
        allowed = ", ".join(c.value for c in SIGNUP_CADENCES)
        raise InvalidChoice(
            f"unknown cadence {values[-1]!r}: choose one of {allowed}", public=NOT_ON_OFFER
        )
    categories = _clean(offered_categories(), names, strict=True) if ticked else []
    return cadence, tuple(categories)


def start_cadence(session: Session, subscriber: Subscriber, cadence: Cadence) -> None:
    """A new reader's cadence, with the watermark at the latest post: their first digest
    lists only what comes after they joined."""
    subscriber.cadence = cadence
    subscriber.digest_after = latest_post_id(session)


def set_categories(session: Session, subscriber_id: int, categories: Sequence[str]) -> None:
    sc = subscriber_category_table.c
    session.execute(subscriber_category_table.delete().where(sc.subscriber_id == subscriber_id))
    session.add_all(SubscriberCategory(subscriber_id=subscriber_id, category=c) for c in categories)
    session.flush()


def change_cadence(
    session: Session, subscriber: Subscriber, cadence: Cadence, *, now: datetime
) -> int:
    """Move a reader to ``cadence`` without losing or repeating a post (see the module
    docstring); the number of posts queued one by one. Call after their categories are
    saved: what is queued follows the new choice."""
    old = Cadence(subscriber.cadence)
    if old == cadence:
        return 0
    assert subscriber.id is not None
    deliveries.hold_watermarks(session.connection())  # no announcement in flight: it waits
    queued = 0
    latest = latest_post_id(session)
    if old.value in DIGEST_CADENCES and cadence == Cadence.POST:
        if subscriber.status == SubscriberStatus.CONFIRMED:
            queued = _queue_waiting_posts(session, subscriber, latest, now=now)
        subscriber.digest_after = latest
    elif cadence.value in DIGEST_CADENCES and old in (Cadence.POST, Cadence.PAUSED):
        subscriber.digest_after = latest
    elif cadence == Cadence.PAUSED:
        subscriber.digest_after = latest  # what comes out during the pause is passed over
    subscriber.cadence = cadence
    session.add(subscriber)
    return queued


def _queue_waiting_posts(
    session: Session, subscriber: Subscriber, latest: int, *, now: datetime
) -> int:
    """The posts after the reader's watermark that they want, one delivery each (a post
    they somehow have already is left alone)."""
    s = subscriber_table.c
    p = post_table.c
    joined = subscriber.confirmed_at or subscriber.created_at
    watermark = session.execute(
        sa.select(deliveries.digest_watermark()).where(s.id == subscriber.id)
    ).scalar_one()
    waiting = session.execute(
        sa.select(p.id).where(
            p.id > watermark,
            p.id <= latest,
            p.created_at > sa.literal(joined, p.created_at.type),
        )
    ).scalars()
    queued = 0
    for post_id in waiting:
        uncategorised = ~sa.exists().where(post_category_table.c.post_id == post_id)
        readers = sa.and_(
            s.id == subscriber.id, sa.or_(uncategorised, deliveries.wants_post(post_id))
        )
        columns, rows = deliveries.queued_deliveries(
            kind=MessageKind.POST, readers=readers, at=now, post_id=post_id
        )
        insert = store.insert_ignoring_duplicates(session, delivery_table)
        queued += max(session.execute(insert.from_select(columns, rows)).rowcount, 0)
    return queued


@dataclass(frozen=True, slots=True)
class Choices:
    name: str
    cadence: Cadence
    categories: list[str]
    language: str = ""  # "": unchanged; one not on offer is ignored


@dataclass(frozen=True, slots=True)
class Saved:
    address_change_sent: bool  # a confirmation went to the new address


def save(
    session: Session,
    settings: Settings,
    subscriber: Subscriber,
    choices: Choices,
    *,
    new_email: str = "",
    now: datetime,
) -> Saved:
    """Save a reader's choices from the preferences page, in one transaction; a new
    address is only asked for: a confirmation goes to it, on the ledger, and the reader
    moves once it is followed."""
    assert subscriber.id is not None
    subscriber.name = " ".join(choices.name.split())[:200]
    categories = clean_categories(session, settings, choices.categories)
    set_categories(session, subscriber.id, categories)
    change_cadence(session, subscriber, choices.cadence, now=now)
    if choices.language and (tag := languages.on_offer(choices.language, settings.languages)):
        subscriber.language = tag
    change_sent = False
    if new_email.strip():
        address = normalize(new_email)
        if address.key != subscriber.email_key:
            taken = store.subscriber_by_key(session, email_key=address.key)
            if taken is None:
                # Someone else's address gets no email and no hint that it is on the list.
                subscriber.pending_email = address.display
                deliveries.enqueue_message(
                    session, kind=MessageKind.ADDRESS_CHANGE, subscriber_id=subscriber.id, now=now
                )
                change_sent = True
    session.add(subscriber)
    session.commit()
    session.refresh(subscriber)
    return Saved(change_sent)


def confirm_address(session: Session, subscriber: Subscriber, *, digest: str) -> Subscriber:
    """Move the reader to the pending address the link was sent to (``digest`` is of
    that address's key): replaying it, or an older link, changes nothing."""
    pending = subscriber.pending_email
    if not pending:
        return subscriber
    address = normalize(pending)
    if key_digest(address.key) != digest:
        raise InvalidAddress(N_("This link is for another address change."))
    if store.subscriber_by_key(session, email_key=address.key) is None:
        subscriber.email = address.display
        subscriber.email_key = address.key
    subscriber.pending_email = ""
    session.add(subscriber)
    session.commit()
    session.refresh(subscriber)
    return subscriber
