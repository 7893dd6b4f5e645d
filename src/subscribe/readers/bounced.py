"""What one refusal does to a reader, whoever heard of it: remove, count, or ignore.

The same judgement for a relay's 5xx while sending (``sending.ledger``), a bounce message
and a provider's webhook (``bounces``), by the refusal's reason (``refusals``):

- ``remove``: the address is gone; the reader is marked ``bounced`` at once;
- ``count``: one more bounce, unless the count has decayed: a delivery that succeeded after
  the last counted bounce, or 30 days between the two, starts the count again.
  ``SOFT_BOUNCE_LIMIT`` counts in a row mark the reader ``bounced``;
- ``ignore``: the refusal is about the sender (reputation, authentication, content...); the
  reader's status and count are untouched.

Every refusal is remembered as the reader's latest (``last_bounce_reason``/``_at``), so the
refusals about the sender can be reported by reason and receiving domain.

Times are those of the refused deliveries (when each message was sent), not of the run that
learns of them: a bounce mailbox read once a month judges like one read hourly. The success
check is one indexed query per counted refusal, asked only when one arrives, so the sending
path records nothing extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from subscribe.db.models import DeliveryStatus, SubscriberStatus, delivery_table, subscriber_table
from subscribe.refusals import BOUNCE_WINDOW, Action, Reason, action_for

SOFT_BOUNCE_LIMIT = 5
D = delivery_table.c
S = subscriber_table.c


@dataclass(frozen=True, slots=True)
class Judgement:
    action: Action
    email: str  # the reader's address as kept
    newly_bounced: bool  # this refusal marked the reader bounced


def judge_refusal(
    connection: Connection,
    *,
    subscriber_id: int,
    reason: Reason,
    delivery_id: int | None,
    sent_at: datetime,
    now: datetime,
) -> Judgement | None:
    """Apply one refusal of delivery ``delivery_id`` (sent at ``sent_at``) to the reader;
    ``None`` when the reader is gone. The delivery itself is the caller's to mark."""
    reader = connection.execute(
        sa.select(S.status, S.email, S.bounce_count, S.bounce_counted_at).where(
            S.id == subscriber_id
        )
    ).first()
    if reader is None:
        return None
    values: dict[str, object] = {"last_bounce_at": now, "last_bounce_reason": reason.value}
    action = action_for(reason)
    remove = action == Action.REMOVE
    if action == Action.COUNT:
        previous = reader.bounce_counted_at
        fresh = previous is None or _decayed(
            connection, subscriber_id, delivery_id, previous, sent_at
        )
        count = 1 if fresh else reader.bounce_count + 1
        values["bounce_count"] = count
        values["bounce_counted_at"] = sent_at if previous is None else max(previous, sent_at)
        remove = count >= SOFT_BOUNCE_LIMIT
    newly_bounced = remove and reader.status != SubscriberStatus.BOUNCED
    if newly_bounced:
        values["status"] = SubscriberStatus.BOUNCED.value
    connection.execute(subscriber_table.update().where(S.id == subscriber_id).values(**values))
    return Judgement(action, reader.email, newly_bounced)


def _decayed(
    connection: Connection,
    subscriber_id: int,
    delivery_id: int | None,
    previous: datetime,
    sent: datetime,
) -> bool:
    """Did the count lapse: 30 days since the last counted bounce, or a success since?"""
    if sent - previous > BOUNCE_WINDOW:
        return True
    # A delivery still "sent" was not refused: refused ones are marked failed.
    success = (
        sa.select(D.id)
        .where(D.subscriber_id == subscriber_id)
        .where(D.status == DeliveryStatus.SENT.value)
        .where(D.sent_at > previous)
        .where(D.sent_at < sent)
        .limit(1)
    )
    if delivery_id is not None:
        success = success.where(D.id != delivery_id)
    return connection.execute(success).first() is not None
