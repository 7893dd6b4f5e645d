"""Use cases for one reader: subscribe, confirm, unsubscribe, add, remove.

Plain functions over a session and settings: no web or terminal code here. An email a
change causes (a confirmation, a welcome) is a ledger row written in the same transaction;
the caller only says whether one is due and wakes a sender, so nothing waits on SMTP.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.content import one_line
from subscribe.db import deliveries, store
from subscribe.db.models import (
    Cadence,
    DeliveryStatus,
    MessageKind,
    Subscriber,
    SubscriberStatus,
    Suppression,
    delivery_table,
)
from subscribe.errors import (
    N_,
    InvalidAddress,
    NotFound,
    SubscribeError,
    SuppressedAddress,
    TokenInvalid,
)

from . import languages, preferences
from .addresses import Address, normalize
from .tokens import TokenSubject, key_digest

CONFIRMATION_COOLDOWN = timedelta(minutes=10)
CONFIRMATIONS_PER_DAY = 3


@dataclass(frozen=True, slots=True)
class Consent:
    source: str = ""
    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class SignupOutcome:
    subscriber: Subscriber
    confirmation_due: bool  # the caller should send a confirmation email now


def clean_name(name: str) -> str:
    return one_line(name)[:200]


def suppression_hashes(settings: Settings, address_key: str) -> list[str]:
    """Keyed, so the table of erased addresses cannot be reversed with a word list: one hash
    per configured key, the signing key's first. An address erased before the keys were
    rotated (``old,new``) is still recognised while the old key stays in the list."""
    return suppression_hasher(settings)(address_key)


def suppression_hasher(settings: Settings) -> Callable[[str], list[str]]:
    """``suppression_hashes`` with the keys read once, for imports that hash every row."""
    keys = [key.encode() for key in reversed(settings.secret_keys())]
    return lambda address_key: [
        hmac.new(key, address_key.encode(), hashlib.sha256).hexdigest() for key in keys
    ]


def check_domain(settings: Settings, address: Address) -> None:
    domain = address.ascii.rpartition("@")[2]
    for blocked in settings.blocked_domain_list:
        if domain == blocked or domain.endswith("." + blocked):
            raise InvalidAddress(N_("Addresses at that domain cannot subscribe."))


def _take_confirmation_slot(session: Session, subscriber: Subscriber, now: datetime) -> bool:
    """At most one confirmation per address per 10 minutes and a few a day, atomically.

    A conditional UPDATE, not a read-then-write: two requests racing in two processes
    cannot both win.
    """
    table = Subscriber.__table__  # type: ignore[attr-defined]
    today = now.date().isoformat()
    c = table.c
    result = session.execute(
        table.update()
        .where(c.id == subscriber.id)
        .where(
            sa.or_(
                c.confirmation_sent_at.is_(None),
                c.confirmation_sent_at <= now - CONFIRMATION_COOLDOWN,
            )
        )
        .where(
            sa.or_(c.confirmation_day != today, c.confirmations_that_day < CONFIRMATIONS_PER_DAY)
        )
        .values(
            confirmation_sent_at=now,
            confirmations_that_day=sa.case(
                (c.confirmation_day == today, c.confirmations_that_day + 1), else_=1
            ),
            confirmation_day=today,
        )
    )
    return result.rowcount == 1


def _insert_pending(session: Session, address: Address, name: str, now: datetime) -> Subscriber:
    """Insert a pending subscriber; if a concurrent request won the race (a double click on
    PostgreSQL), carry on with the row it inserted."""
    subscriber = Subscriber(
        email=address.display,
        email_key=address.key,
        name=clean_name(name),
        status=SubscriberStatus.PENDING,
        created_at=now,
        digest_after=preferences.latest_post_id(session),
    )
    try:
        with session.begin_nested():
            session.add(subscriber)
    except sa.exc.IntegrityError:
        existing = store.subscriber_by_key(session, email_key=address.key)
        if existing is None:
            raise
        return existing
    return subscriber


def request_subscription(
    session: Session,
    settings: Settings,
    *,
    email: str,
    name: str = "",
    consent: Consent,
    now: datetime,
    choices: tuple[Cadence, Sequence[str]] | None = None,
    language: str = "",
) -> SignupOutcome:
    """Someone asked to subscribe (web form, or `add` without --confirmed); ``language``
    is the one they chose (``readers.languages.choose``), "" for the site's default.

    The outcome looks the same to the visitor whatever the address's state; only whether
    a confirmation email goes out differs, and a confirmed reader gets none.
    """
    address = normalize(email)
    check_domain(settings, address)
    subscriber = store.subscriber_by_key(session, email_key=address.key)
    if subscriber is None:
        subscriber = _insert_pending(session, address, name, now)
    if subscriber.status == SubscriberStatus.CONFIRMED:
        return SignupOutcome(subscriber, confirmation_due=False)
    elif subscriber.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
        # Coming back needs a fresh confirmation, like a new address.
        subscriber.status = SubscriberStatus.PENDING
    if name and subscriber.status == SubscriberStatus.PENDING:
        subscriber.name = clean_name(name)
    if language and subscriber.status == SubscriberStatus.PENDING:
        subscriber.language = language  # the confirmation comes in the language asked in
    if choices is not None and subscriber.status == SubscriberStatus.PENDING:
        # Only for an address not yet confirmed, like the name: the form must not let
        # anyone pause or narrow someone else's subscription.
        categories = preferences.clean_categories(session, settings, choices[1])
        preferences.start_cadence(session, subscriber, choices[0])
        session.flush()
        assert subscriber.id is not None
        preferences.set_categories(session, subscriber.id, categories)
    subscriber.consent_source = consent.source[:200]
    subscriber.consent_ip = consent.ip[:64]
    subscriber.consent_user_agent = consent.user_agent[:400]
    subscriber.consent_at = now
    session.add(subscriber)
    session.flush()
    due = _take_confirmation_slot(session, subscriber, now)
    if due:
        # In the same transaction: a stored sign-up always has its email on the ledger.
        assert subscriber.id is not None
        deliveries.enqueue_message(
            session, kind=MessageKind.CONFIRM, subscriber_id=subscriber.id, now=now
        )
    session.commit()
    session.refresh(subscriber)
    return SignupOutcome(subscriber, confirmation_due=due)


def _subscriber_for_token(session: Session, subject: TokenSubject) -> Subscriber:
    subscriber = session.get(Subscriber, subject.subscriber_id)
    if subscriber is None or key_digest(subscriber.email_key) != subject.digest:
        raise TokenInvalid(N_("This link is not valid any more."))
    return subscriber


def confirm(session: Session, *, subject: TokenSubject, now: datetime) -> tuple[Subscriber, bool]:
    """Confirm a pending subscriber; (subscriber, True) the first time, replays are harmless.
    The welcome email is queued with the confirmation.

    Only a pending address is confirmed: an old confirmation link cannot undo a later
    unsubscribe.
    """
    subscriber = _subscriber_for_token(session, subject)
    if subscriber.status != SubscriberStatus.PENDING:
        return subscriber, False
    subscriber.status = SubscriberStatus.CONFIRMED
    subscriber.confirmed_at = now
    session.add(subscriber)
    assert subscriber.id is not None
    deliveries.enqueue_message(
        session, kind=MessageKind.WELCOME, subscriber_id=subscriber.id, now=now
    )
    session.commit()
    session.refresh(subscriber)
    return subscriber, True


def renew_confirmation(
    session: Session, settings: Settings, *, subject: TokenSubject, consent: Consent, now: datetime
) -> SignupOutcome:
    """A fresh confirmation link for the subscriber an expired link names.

    The address comes from the store, never from the visitor, the digest must still match
    (an erased subscriber's id may have been reused), and the cooldown applies as usual.
    """
    subscriber = _subscriber_for_token(session, subject)
    return request_subscription(session, settings, email=subscriber.email, consent=consent, now=now)


def _unsubscribe(session: Session, subscriber: Subscriber, now: datetime) -> bool:
    if subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        return False
    subscriber.status = SubscriberStatus.UNSUBSCRIBED
    subscriber.unsubscribed_at = now
    session.add(subscriber)
    # Queued deliveries are dropped at once, not merely skipped when their turn comes.
    session.execute(
        delivery_table.update()
        .where(delivery_table.c.subscriber_id == subscriber.id)
        .where(delivery_table.c.due_at.is_not(None))
        .values(status=DeliveryStatus.SKIPPED.value, due_at=None)
    )
    session.commit()
    return True


def unsubscribe_by_token(session: Session, *, subject: TokenSubject, now: datetime) -> Subscriber:
    subscriber = _subscriber_for_token(session, subject)
    _unsubscribe(session, subscriber, now)
    session.refresh(subscriber)
    return subscriber


def find(session: Session, *, email: str) -> Subscriber:
    subscriber = store.subscriber_by_key(session, email_key=normalize(email).key)
    if subscriber is None:
        raise NotFound(f"{email.strip()} is not on the list.")
    return subscriber


def unsubscribe_address(session: Session, *, email: str, now: datetime) -> bool:
    """The admin's unsubscribe; False when the address had already left."""
    return _unsubscribe(session, find(session, email=email), now)


def add(
    session: Session,
    settings: Settings,
    *,
    email: str,
    name: str = "",
    confirmed: bool = False,
    language: str = "",
    now: datetime,
) -> SignupOutcome:
    """The admin adds one address: confirmed at once, or pending with a confirmation email
    (in ``language``, one on offer; "" for the site's)."""
    language = languages.named(settings, language) if language else ""
    address = normalize(email)
    existing = store.subscriber_by_key(session, email_key=address.key)
    if existing is not None and existing.status in (
        SubscriberStatus.PENDING,
        SubscriberStatus.CONFIRMED,
    ):
        raise SubscribeError(f"{existing.email} is already on the list ({existing.status}).")
    if confirmed:
        if existing is not None:
            raise SubscribeError(
                f"{existing.email} left the list ({existing.status}); only they can come back, "
                "through the subscribe form or without --confirmed"
            )
        hashes = suppression_hashes(settings, address.key)
        if store.is_suppressed(session, address_hashes=hashes):
            raise SuppressedAddress(
                f"{address.display} was removed at their request; add it without --confirmed "
                "so that they confirm again"
            )
        subscriber = Subscriber(
            email=address.display,
            email_key=address.key,
            name=clean_name(name),
            status=SubscriberStatus.CONFIRMED,
            created_at=now,
            confirmed_at=now,
            consent_source="cli",
            consent_at=now,
            digest_after=preferences.latest_post_id(session),
            language=language,
        )
        session.add(subscriber)
        session.commit()
        session.refresh(subscriber)
        return SignupOutcome(subscriber, confirmation_due=False)
    return request_subscription(
        session,
        settings,
        email=email,
        name=name,
        consent=Consent(source="cli"),
        now=now,
        language=language,
    )


def remove(session: Session, settings: Settings, *, email: str, now: datetime) -> None:
    """Erase a subscriber and their deliveries, keeping only a keyed hash of the address."""
    subscriber = find(session, email=email)
    session.execute(delivery_table.delete().where(delivery_table.c.subscriber_id == subscriber.id))
    hashes = suppression_hashes(settings, subscriber.email_key)
    if not store.is_suppressed(session, address_hashes=hashes):
        session.add(Suppression(address_hash=hashes[0], created_at=now))
    session.delete(subscriber)
    session.commit()
