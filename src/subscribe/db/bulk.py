"""Set-based reads and writes over many readers at once, for imports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .models import DeliveryStatus, SubscriberStatus, delivery_table, subscriber_table


def readers_by_key(connection: Connection, *, keys: Sequence[str]) -> dict[str, Any]:
    """Who among ``keys`` is already on the list: key -> (id, status, created_at,
    confirmed_at). One indexed look-up for a chunk of an import."""
    if not keys:
        return {}
    s = subscriber_table.c
    query = sa.select(s.email_key, s.id, s.status, s.created_at, s.confirmed_at).where(
        s.email_key.in_(list(keys))
    )
    return {row.email_key: row for row in connection.execute(query)}


def record_departures(connection: Connection, *, departures: Sequence[dict[str, Any]]) -> int:
    """Readers another tool says left (``id``, ``status``, ``at``): their status changes only
    if they are still pending or confirmed, and their queued deliveries are dropped."""
    if not departures:
        return 0
    s = subscriber_table.c
    changed = 0
    for departure in departures:
        result = connection.execute(
            subscriber_table.update()
            .where(s.id == departure["id"])
            .where(s.status.in_([SubscriberStatus.PENDING.value, SubscriberStatus.CONFIRMED.value]))
            .values(status=departure["status"], unsubscribed_at=departure["at"])
        )
        changed += max(result.rowcount, 0)
    ids = [departure["id"] for departure in departures]
    d = delivery_table.c
    connection.execute(
        delivery_table.update()
        .where(d.subscriber_id.in_(ids))
        .where(d.due_at.is_not(None))
        .values(status=DeliveryStatus.SKIPPED.value, due_at=None)
    )
    return changed
