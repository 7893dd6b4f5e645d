"""Apply bounce messages to the list: match each to a delivery, count, mark bounced.

A bounce names its delivery through the VERP return path (``bounces+TOKEN@domain``, the
token signed, so a forged bounce names no one) or, failing that, through the original
Message-ID that we recorded when the message was sent, and then only when the bounced
address is that subscriber's own. A bad mailbox (5.1.x, or a hard bounce with no status
code) marks the subscriber ``bounced`` at once; soft bounces and other refusals are
counted, and ``SOFT_BOUNCE_LIMIT`` of them mark the subscriber too. Messages that are not
bounces, or match nothing, are reported and left where they are: this reads, never deletes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from subscribe.config import Settings
from subscribe.db.models import DeliveryStatus, SubscriberStatus, delivery_table, subscriber_table
from subscribe.errors import TokenInvalid
from subscribe.readers.addresses import to_ascii
from subscribe.readers.tokens import Tokens

from .parse import BouncedRecipient, BounceKind, BounceReport, parse_bounce

SOFT_BOUNCE_LIMIT = 5
D = delivery_table.c
S = subscriber_table.c


@dataclass
class BounceRun:
    hard: int = 0
    soft: int = 0
    newly_bounced: list[str] = field(default_factory=list)  # addresses marked bounced now
    not_bounces: list[str] = field(default_factory=list)  # message keys left unclassified
    unmatched: list[str] = field(default_factory=list)  # bounces naming no delivery of ours


def _is_bad_mailbox(recipient: BouncedRecipient) -> bool:
    if recipient.kind != BounceKind.HARD:
        return False
    return recipient.status == "" or recipient.status.startswith("5.1.")


def _delivery_for(
    connection: Connection, report: BounceReport, tokens: Tokens
) -> tuple[int, int, str] | None:
    """(delivery id, subscriber id, subscriber address key) the bounce answers, if any."""
    query = sa.select(D.id, D.subscriber_id, S.email_key).join(
        subscriber_table, S.id == D.subscriber_id
    )
    for token in report.verp_tokens:
        try:
            delivery_id = tokens.read_bounce(token)
        except TokenInvalid:
            continue
        row = connection.execute(query.where(D.id == delivery_id)).first()
        if row is not None:
            return row.id, row.subscriber_id, row.email_key
    if report.message_id:
        row = connection.execute(query.where(D.message_id == report.message_id)).first()
        if row is not None:
            bounced = {to_ascii(r.address).casefold() for r in report.recipients}
            if row.email_key in bounced:
                return row.id, row.subscriber_id, row.email_key
    return None


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
        report = parse_bounce(raw, bounce_address=settings.bounce_address)
        if report is None:
            run.not_bounces.append(key)
            continue
        with engine.begin() as connection:
            match = _delivery_for(connection, report, tokens)
            if match is None:
                run.unmatched.append(key)
                continue
            delivery_id, subscriber_id, address_key = match
            recipient = next(
                (r for r in report.recipients if to_ascii(r.address).casefold() == address_key),
                report.recipients[0],
            )
            hard = _is_bad_mailbox(recipient)
            note = f"bounced after acceptance: {recipient.diagnostic or recipient.status}"
            run.hard += hard
            run.soft += not hard
            connection.execute(
                delivery_table.update()
                .where(D.id == delivery_id)
                .values(
                    status=DeliveryStatus.FAILED.value if hard else delivery_table.c.status,
                    last_error=note[:1000],
                )
            )
            counted = connection.execute(
                subscriber_table.update()
                .where(S.id == subscriber_id)
                .values(bounce_count=S.bounce_count + 1)
                .returning(S.bounce_count, S.status, S.email)
            ).one()
            if counted.status != SubscriberStatus.BOUNCED and (
                hard or counted.bounce_count >= SOFT_BOUNCE_LIMIT
            ):
                connection.execute(
                    subscriber_table.update()
                    .where(S.id == subscriber_id)
                    .values(status=SubscriberStatus.BOUNCED.value)
                )
                run.newly_bounced.append(counted.email)
    return run
