"""Apply bounce and complaint messages to the list: judge each bounce by its reason.

A bounce names its delivery through the signed VERP return path, or through the original
Message-ID when the bounced address is that reader's own (``matching``). Its reason
(``reasons``) decides what happens to the reader:

- ``remove``: the address is gone; the reader is marked ``bounced`` at once;
- ``count``: one more bounce, unless the count has decayed: a delivery that succeeded after
  the last counted bounce, or 30 days between the two, starts the count again.
  ``SOFT_BOUNCE_LIMIT`` counts in a row mark the reader ``bounced``;
- ``ignore``: the refusal is about the sender (reputation, authentication, content...);
  the reader is untouched and the refusal is reported by reason and receiving domain.

Times are those of the bounced deliveries (when each message was sent), not of this run:
an admin who reads the bounce mailbox once a month gets the same judgement as one who reads
it hourly. The success check is one indexed query per counted bounce, asked only when a
bounce arrives, so the sending path records nothing extra.

A complaint (an ARF feedback report) unsubscribes the reader at once and is remembered in
``complained_at``. Messages that are not bounces, or match nobody, are reported and left
where they are: this reads, never deletes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.db.models import DeliveryStatus, SubscriberStatus, delivery_table, subscriber_table
from subscribe.readers import subscribers
from subscribe.readers.tokens import Tokens

from .complaints import Complaint, parse_complaint
from .matching import Match, address_key, find_match
from .parse import BouncedRecipient, parse_bounce
from .reasons import BOUNCE_WINDOW, Action

SOFT_BOUNCE_LIMIT = 5
D = delivery_table.c
S = subscriber_table.c


@dataclass
class BounceRun:
    removals: int = 0  # bounces whose reason says the address is gone
    counted: int = 0  # bounces counted against the reader
    ignored: int = 0  # refusals about the sender: the reader is untouched
    newly_bounced: list[str] = field(default_factory=list)  # addresses marked bounced now
    complaints: list[str] = field(default_factory=list)  # addresses unsubscribed now
    # (reason, receiving domain) -> refusals about the sender, for the admin to act on
    sender_refusals: Counter[tuple[str, str]] = field(default_factory=Counter)
    not_bounces: list[str] = field(default_factory=list)  # message keys left unclassified
    unmatched: list[str] = field(default_factory=list)  # naming no delivery of ours


def process_bounces(
    engine: Engine,
    settings: Settings,
    tokens: Tokens,
    messages: Iterable[tuple[str, bytes]],
    *,
    now: datetime,
) -> BounceRun:
    run = BounceRun()
    for key, raw in messages:
        complaint = parse_complaint(raw, bounce_address=settings.bounce_address)
        if complaint is not None:
            if not _apply_complaint(engine, tokens, complaint, run, now=now):
                run.unmatched.append(key)
            continue
        report = parse_bounce(raw, bounce_address=settings.bounce_address)
        if report is None:
            run.not_bounces.append(key)
            continue
        with engine.begin() as connection:
            match = find_match(
                connection,
                tokens,
                verp_tokens=report.verp_tokens,
                message_id=report.message_id,
                addresses=[r.address for r in report.recipients],
            )
            if match is None or match.delivery_id is None:
                run.unmatched.append(key)
                continue
            recipient = next(
                (r for r in report.recipients if address_key(r.address) == match.email_key),
                report.recipients[0],
            )
            _apply_bounce(connection, match, recipient, run, now=now)
    return run


def _apply_bounce(
    connection: Connection,
    match: Match,
    recipient: BouncedRecipient,
    run: BounceRun,
    *,
    now: datetime,
) -> None:
    note = f"bounced after acceptance ({recipient.reason}): "
    connection.execute(
        delivery_table.update()
        .where(D.id == match.delivery_id)
        .values(
            status=DeliveryStatus.FAILED.value,
            last_error=(note + (recipient.diagnostic or recipient.status))[:1000],
        )
    )
    reader = connection.execute(
        sa.select(S.status, S.email, S.bounce_count, S.bounce_counted_at).where(
            S.id == match.subscriber_id
        )
    ).one()
    values: dict[str, object] = {"last_bounce_at": now, "last_bounce_reason": recipient.reason}
    action = recipient.action
    remove = action == Action.REMOVE
    if action == Action.IGNORE:
        run.ignored += 1
        run.sender_refusals[(recipient.reason.value, match.email_key.rpartition("@")[2])] += 1
    elif remove:
        run.removals += 1
    else:
        run.counted += 1
        sent = match.sent_at or now
        previous = reader.bounce_counted_at
        fresh = previous is None or _decayed(connection, match, previous, sent)
        count = 1 if fresh else reader.bounce_count + 1
        values["bounce_count"] = count
        values["bounce_counted_at"] = sent if previous is None else max(previous, sent)
        remove = count >= SOFT_BOUNCE_LIMIT
    if remove and reader.status != SubscriberStatus.BOUNCED:
        values["status"] = SubscriberStatus.BOUNCED.value
        run.newly_bounced.append(reader.email)
    connection.execute(
        subscriber_table.update().where(S.id == match.subscriber_id).values(**values)
    )


def _decayed(connection: Connection, match: Match, previous: datetime, sent: datetime) -> bool:
    """Did the count lapse: 30 days since the last counted bounce, or a success since?"""
    if sent - previous > BOUNCE_WINDOW:
        return True
    # A delivery still "sent" was not bounced: bounced ones are marked failed above.
    success = (
        sa.select(D.id)
        .where(D.subscriber_id == match.subscriber_id)
        .where(D.id != match.delivery_id)
        .where(D.status == DeliveryStatus.SENT.value)
        .where(D.sent_at > previous)
        .where(D.sent_at < sent)
        .limit(1)
    )
    return connection.execute(success).first() is not None


def _apply_complaint(
    engine: Engine, tokens: Tokens, complaint: Complaint, run: BounceRun, *, now: datetime
) -> bool:
    with Session(engine) as session:
        match = find_match(
            session.connection(),
            tokens,
            verp_tokens=complaint.verp_tokens,
            unsubscribe_tokens=complaint.unsubscribe_tokens,
            message_id=complaint.message_id,
            addresses=complaint.addresses,
        )
        if match is None:
            return False
        reader = session.execute(
            subscriber_table.update()
            .where(S.id == match.subscriber_id)
            .values(complained_at=now)
            .returning(S.email)
        ).one()
        subscribers.unsubscribe_address(session, email=reader.email, now=now)
        session.commit()
    run.complaints.append(reader.email)
    return True
