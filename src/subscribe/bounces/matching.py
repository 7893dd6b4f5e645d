"""Which reader a bounce or a complaint is about, trusting only what we signed.

In order: a signed VERP token (names the delivery), a signed unsubscribe token from the
original's List-Unsubscribe link (names the reader), or the original's Message-ID together
with an address the report shows. A Message-ID alone is not enough: ours are derived from
public facts, so a forged report could name anyone by it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from subscribe.db.models import delivery_table, subscriber_table
from subscribe.errors import TokenInvalid
from subscribe.readers.addresses import to_ascii
from subscribe.readers.tokens import Tokens, key_digest

D = delivery_table.c
S = subscriber_table.c


@dataclass(frozen=True, slots=True)
class Match:
    subscriber_id: int
    email_key: str
    delivery_id: int | None = None  # None when only the reader is known
    sent_at: datetime | None = None  # when that delivery was sent


def address_key(address: str) -> str:
    return to_ascii(address).casefold()


def find_match(
    connection: Connection,
    tokens: Tokens,
    *,
    verp_tokens: Iterable[str] = (),
    unsubscribe_tokens: Iterable[str] = (),
    message_id: str | None = None,
    addresses: Iterable[str] = (),
) -> Match | None:
    deliveries = sa.select(D.id, D.subscriber_id, D.sent_at, S.email_key).join(
        subscriber_table, S.id == D.subscriber_id
    )
    for token in verp_tokens:
        try:
            delivery_id = tokens.read_bounce(token)
        except TokenInvalid:
            continue
        row = connection.execute(deliveries.where(D.id == delivery_id)).first()
        if row is not None:
            return Match(row.subscriber_id, row.email_key, row.id, row.sent_at)
    for token in unsubscribe_tokens:
        try:
            subject = tokens.read_unsubscribe(token)
        except TokenInvalid:
            continue
        reader = connection.execute(
            sa.select(S.id, S.email_key).where(S.id == subject.subscriber_id)
        ).first()
        # The digest guards against an erased reader's id being reused by someone else.
        if reader is not None and key_digest(reader.email_key) == subject.digest:
            return Match(reader.id, reader.email_key)
    if message_id:
        row = connection.execute(deliveries.where(D.message_id == message_id)).first()
        if row is not None and row.email_key in {address_key(a) for a in addresses}:
            return Match(row.subscriber_id, row.email_key, row.id, row.sent_at)
    return None
