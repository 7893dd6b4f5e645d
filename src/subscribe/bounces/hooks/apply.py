"""Apply a verified webhook call: each event once, to the reader it names.

An event whose id was seen before is skipped, so a provider's retry or a repeated delivery
of one event changes nothing more. The id is stored in the same transaction as the event's
effect: a call that fails half-way is applied in full when the provider retries it.

The reader is found through our signed VERP return path or our Message-ID where the
provider echoes them (naming the delivery, for the decay of counted bounces), else by the
recipient address alone. An address is trusted here, unlike in a bounce message, because
the call is signed by the provider that sent the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from subscribe.bounces.handling import BounceRun, apply_bounce, apply_complaint
from subscribe.bounces.matching import Match, address_key, find_match
from subscribe.db.models import subscriber_table, webhook_event_table
from subscribe.db.store import insert_ignoring_duplicates
from subscribe.errors import HookRefused
from subscribe.readers import subscribers
from subscribe.readers.tokens import Tokens

from .events import Batch, EventKind, HookEvent

S = subscriber_table.c


@dataclass
class HookRun:
    applied: int = 0
    repeated: int = 0  # events already applied before: skipped
    unmatched: int = 0  # naming nobody on the list
    unsubscribed: list[str] = field(default_factory=list)
    bounces: BounceRun = field(default_factory=BounceRun)


def apply_batch(
    engine: Engine, tokens: Tokens, *, provider: str, batch: Batch, now: datetime
) -> HookRun:
    run = HookRun()
    if batch.nonce is not None and not _first_time(engine, f"{provider}-token", batch.nonce, now):
        raise HookRefused("This signed request was already used.")
    for event in batch.events:
        with Session(engine) as session:
            if not _first_time(session.connection(), provider, event.event_id, now):
                run.repeated += 1
                continue
            match = _match(session.connection(), tokens, event)
            if match is None:
                run.unmatched += 1
            else:
                _apply(session, match, event, run, now=now)
                run.applied += 1
            session.commit()  # the event id, with the effect if any
    return run


def _first_time(bind: Engine | Connection, provider: str, value: str, now: datetime) -> bool:
    """Record (provider, value); False when it was recorded before."""
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT DO NOTHING.
    statement = (
        insert_ignoring_duplicates(bind, webhook_event_table)
        .values(provider=provider, event_id=value, received_at=now)
        .returning(webhook_event_table.c.event_id)
    )
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            return connection.execute(statement).first() is not None
    return bind.execute(statement).first() is not None


def _match(connection: Connection, tokens: Tokens, event: HookEvent) -> Match | None:
    match = find_match(
        connection,
        tokens,
        verp_tokens=event.verp_tokens,
        message_id=event.message_id,
        addresses=[event.address] if event.address else [],
    )
    if match is not None or not event.address:
        return match
    try:
        key = address_key(event.address)
    except UnicodeError:  # an IDN domain that does not encode: no one of ours
        return None
    reader = connection.execute(sa.select(S.id, S.email_key).where(S.email_key == key)).first()
    return Match(reader.id, reader.email_key) if reader is not None else None


def _apply(
    session: Session, match: Match, event: HookEvent, run: HookRun, *, now: datetime
) -> None:
    if event.kind == EventKind.BOUNCE:
        apply_bounce(
            session.connection(),
            match,
            reason=event.reason,
            detail=event.detail,
            run=run.bounces,
            now=now,
        )
    elif event.kind == EventKind.COMPLAINT:
        apply_complaint(session, match, run=run.bounces, now=now)
    else:
        email = session.execute(sa.select(S.email).where(S.id == match.subscriber_id)).scalar_one()
        if subscribers.unsubscribe_address(session, email=email, now=now):
            run.unsubscribed.append(email)
