"""What the ledger holds, counted for the admin: deliveries by post, by kind of message and
by digest period, and why failed ones failed (`status`, `stats`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from subscribe.db.models import DeliveryStatus, MessageKind, delivery_table, post_table

D = delivery_table.c


def counts_by_post(engine: Engine, *, post_id: int | None = None) -> dict[int, dict[str, int]]:
    """Deliveries of each post by state (transactional mail: ``counts_by_kind``)."""
    query = sa.select(D.post_id, D.status, sa.func.count()).group_by(D.post_id, D.status)
    query = query.where(D.post_id.is_not(None) if post_id is None else D.post_id == post_id)
    return _counts(engine, query)


def counts_by_kind(engine: Engine) -> dict[str, dict[str, int]]:
    """Transactional emails (confirmations, welcomes) of each kind by state."""
    query = sa.select(D.kind, D.status, sa.func.count()).where(D.post_id.is_(None))
    return _counts(engine, query.group_by(D.kind, D.status))


def counts_by_period(engine: Engine) -> dict[str, dict[str, int]]:
    """Digests of each period by state, as `status` shows posts."""
    query = sa.select(D.period, D.status, sa.func.count()).where(D.kind == MessageKind.DIGEST.value)
    return _counts(engine, query.group_by(D.period, D.status))


def _counts(engine: Engine, query: sa.Select[tuple[Any, str, int]]) -> dict[Any, dict[str, int]]:
    counts: dict[Any, dict[str, int]] = {}
    with engine.connect() as connection:
        for group, status, n in connection.execute(query):
            counts.setdefault(group, {s.value: 0 for s in DeliveryStatus})[status] = n
    return counts


def failure_reasons(engine: Engine, *, limit: int = 10) -> list[tuple[str, str, int]]:
    """(what: a post's title or a message kind, the relay's last answer, how many) for
    failed deliveries, the commonest first: what the admin must fix."""
    what = sa.func.coalesce(post_table.c.title, D.kind)
    query = (
        sa.select(what, D.last_error, sa.func.count())
        .select_from(delivery_table.outerjoin(post_table, post_table.c.id == D.post_id))
        .where(D.status == DeliveryStatus.FAILED.value)
        .group_by(what, D.last_error)
        .order_by(sa.func.count().desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        return [(str(w), str(e), int(n)) for w, e, n in connection.execute(query)]
