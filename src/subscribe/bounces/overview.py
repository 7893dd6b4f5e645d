"""What the admin should know about bounces and complaints, for ``subscribe stats``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from subscribe.db.models import SubscriberStatus, UTCDateTime, subscriber_table
from subscribe.refusals import ACTIONS, BOUNCE_WINDOW, Action

S = subscriber_table.c
_SENDER_SIDE = sorted(reason.value for reason, action in ACTIONS.items() if action == Action.IGNORE)


@dataclass(frozen=True, slots=True)
class BounceOverview:
    complaints: int  # readers who ever complained (they were unsubscribed)
    counting: int  # readers not bounced whose counted bounces have not decayed yet
    # (reason, receiving domain, readers) whose latest refusal, within the window, was
    # about the sender; most first
    sender_refusals: list[tuple[str, str, int]]


def bounce_overview(engine: Engine, *, now: datetime) -> BounceOverview:
    since = sa.literal(now - BOUNCE_WINDOW, UTCDateTime)
    with engine.connect() as connection:
        complaints = connection.execute(
            sa.select(sa.func.count()).where(S.complained_at.is_not(None))
        ).scalar_one()
        counting = connection.execute(
            sa.select(sa.func.count())
            .where(S.bounce_count > 0)
            .where(S.bounce_counted_at >= since)
            .where(S.status != SubscriberStatus.BOUNCED.value)
        ).scalar_one()
        # Grouped by domain here, not in SQL: the domain is part of the address, and the
        # portable string functions to cut it out differ between SQLite and PostgreSQL.
        refused: Counter[tuple[str, str]] = Counter()
        rows = connection.execute(
            sa.select(S.last_bounce_reason, S.email_key)
            .where(S.last_bounce_reason.in_(_SENDER_SIDE))
            .where(S.last_bounce_at >= since)
        )
        for reason, key in rows:
            refused[(reason, key.rpartition("@")[2])] += 1
    ordered = sorted(refused.items(), key=lambda item: (-item[1], item[0]))
    return BounceOverview(complaints, counting, [(r, d, n) for (r, d), n in ordered])
