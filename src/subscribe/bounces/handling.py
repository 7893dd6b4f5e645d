"""Apply bounce and complaint messages to the list: judge each bounce by its reason.

A bounce names its delivery through the signed VERP return path, or through the original
Message-ID when the bounced address is that reader's own (``matching``). Its reason
(``refusals``) decides what happens to the reader, as for a refusal heard while sending
(``readers.bounced``): remove at once, count (with decay; ``SOFT_BOUNCE_LIMIT`` in a row
remove), or ignore a refusal about the sender and report it by reason and receiving domain.
``apply_bounce`` and ``apply_complaint`` are shared with the providers' webhooks (``hooks``).

A complaint (an ARF feedback report) unsubscribes the reader at once and is remembered in
``complained_at``. Messages that are not bounces, or match nobody, are reported and left
where they are: this reads, never deletes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.db.models import DeliveryStatus, delivery_table, subscriber_table
from subscribe.readers import subscribers
from subscribe.readers.bounced import judge_refusal
from subscribe.readers.tokens import Tokens
from subscribe.refusals import Action, Reason

from .complaints import Complaint, parse_complaint
from .matching import Match, address_key, find_match
from .parse import parse_bounce

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
            apply_bounce(
                connection,
                match,
                reason=recipient.reason,
                detail=recipient.diagnostic or recipient.status,
                run=run,
                now=now,
            )
    return run


def apply_bounce(
    connection: Connection,
    match: Match,
    *,
    reason: Reason,
    detail: str,
    run: BounceRun,
    now: datetime,
) -> None:
    """One bounced recipient: its delivery (when known) failed, the reader judged by
    ``reason`` (``readers.bounced``); ``detail`` is the diagnostic kept on the delivery."""
    if match.delivery_id is not None:
        connection.execute(
            delivery_table.update()
            .where(D.id == match.delivery_id)
            .values(
                status=DeliveryStatus.FAILED.value,
                last_error=f"bounced after acceptance ({reason}): {detail}"[:1000],
            )
        )
    judgement = judge_refusal(
        connection,
        subscriber_id=match.subscriber_id,
        reason=reason,
        delivery_id=match.delivery_id,
        sent_at=match.sent_at or now,
        now=now,
    )
    if judgement is None:
        return
    if judgement.action == Action.IGNORE:
        run.ignored += 1
        run.sender_refusals[(reason.value, match.email_key.rpartition("@")[2])] += 1
    elif judgement.action == Action.REMOVE:
        run.removals += 1
    else:
        run.counted += 1
    if judgement.newly_bounced:
        run.newly_bounced.append(judgement.email)


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
        apply_complaint(session, match, run=run, now=now)
    return True


def apply_complaint(session: Session, match: Match, *, run: BounceRun, now: datetime) -> None:
    """The reader said "this is spam": unsubscribed at once, remembered in ``complained_at``."""
    reader = session.execute(
        subscriber_table.update()
        .where(S.id == match.subscriber_id)
        .values(complained_at=now)
        .returning(S.email)
    ).one()
    subscribers.unsubscribe_address(session, email=reader.email, now=now)
    session.commit()
    run.complaints.append(reader.email)
