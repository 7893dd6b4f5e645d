"""Putting deliveries on the ledger: a transactional email in the caller's transaction, and
set-based INSERT ... SELECT statements that queue one delivery per matching reader.

What happens to a delivery afterwards (claim, send, record) is ``sending.ledger``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlmodel import Session

from .models import (
    Delivery,
    MessageKind,
    SubscriberStatus,
    UTCDateTime,
    delivery_table,
    post_category_table,
    post_table,
    subscriber_category_table,
    subscriber_table,
)
from .ratelimit import advisory_key
from .store import insert_ignoring_duplicates

# Held by every transaction that sets watermarks against the posts (see ``hold_watermarks``).
_WATERMARK_LOCK = advisory_key("subscribe:watermarks")


class _Greatest(sa.sql.functions.GenericFunction[int]):
    """greatest(a, b): SQLite spells it max(a, b)."""

    name = "greatest"
    type = sa.Integer()
    inherit_cache = True


@compiles(_Greatest, "sqlite")
def _greatest_sqlite(element: _Greatest, compiler: Any, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


def digest_watermark(subscriber_id: Any = None) -> sa.ColumnElement[int]:
    """The reader's digest watermark: the id of the last post dealt with for them, the
    larger of ``subscriber.digest_after`` (moved by a change of cadence) and what their
    latest digest lists up to. Read this way, queuing a period's digests moves nothing on
    a million readers; one probe of ``ix_delivery_digest_through`` each."""
    s = subscriber_table.c
    d = delivery_table.alias("latest_digest").c
    latest = (
        sa.select(sa.func.max(d.digest_through))
        .where(d.subscriber_id == (s.id if subscriber_id is None else subscriber_id))
        # A literal, as in the partial index's condition, so that the index is used.
        .where(sa.text("latest_digest.kind = 'digest'"))
        .correlate(subscriber_table)  # nested in EXISTS: say which reader it is for
        .scalar_subquery()
    )
    return _Greatest(s.digest_after, sa.func.coalesce(latest, 0))


def hold_watermarks(connection: Connection) -> None:
    """Until the caller's transaction ends, order it with every other that announces a
    post, queues digests or changes a reader's cadence: each of them reads what the
    others write (the latest post id, the reader's cadence and watermark, the latest
    digest), and under READ COMMITTED it would not see one still in flight. Unordered,
    a switch from 'post' to a digest beside an announcement got the post alone and in the
    next digest, a switch back got it in neither, and a post id lower than one already
    committed (ids are not handed out in commit order) fell below a digest's watermark.

    PostgreSQL: a transaction-scoped advisory lock, taken before the first of those
    reads. SQLite: nothing to do, its single writer orders them already (use cases take
    the write lock up front; a deferred one fails to write rather than race)."""
    if connection.dialect.name != "sqlite":
        connection.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(%(key)s)", {"key": _WATERMARK_LOCK}
        )


def enqueue_message(
    session: Session, *, kind: MessageKind, subscriber_id: int, now: datetime
) -> None:
    """A transactional email as a ledger row, in the caller's transaction: it goes out with
    the change that causes it (a sign-up, a confirmation) or not at all, and then surely."""
    session.add(Delivery(kind=kind, subscriber_id=subscriber_id, due_at=now, created_at=now))


def wants_post(post_id: Any) -> sa.ColumnElement[bool]:
    """The subscriber's category choice takes the post ``post_id`` (a value or a column):
    they chose none (everything), or one of the post's. Probes of the two primary keys
    per reader, so it stays inside the one INSERT ... SELECT of a post's deliveries."""
    sc = subscriber_category_table.c
    pc = post_category_table.c
    # Correlated by name: nested in the EXISTS over posts of ``digest_readers``, auto-
    # correlation would not reach the reader and join every subscriber instead.
    chose_nothing = ~sa.exists().where(sc.subscriber_id == subscriber_table.c.id).correlate(
        subscriber_table
    )
    chose_one = (
        sa.exists()
        .where(sc.subscriber_id == subscriber_table.c.id, pc.post_id == post_id)
        .where(pc.category == sc.category)
        .correlate(subscriber_table, post_table)
    )
    return sa.or_(chose_nothing, chose_one)


def queued_deliveries(
    *,
    kind: MessageKind,
    readers: sa.ColumnElement[bool],
    at: datetime,
    post_id: int | None = None,
    digest: tuple[str, int] | None = None,
) -> tuple[list[str], sa.Select[Any]]:
    """The columns and rows of an INSERT ... SELECT that queues one delivery, due ``at``,
    for every subscriber matching ``readers``: a million in one statement. A digest
    (``digest``: its period and the last post id it lists) starts after each reader's
    watermark."""
    when = sa.literal(at, UTCDateTime)
    columns = ["kind", "post_id", "subscriber_id", "status", "attempts", "ambiguous_count"]
    columns += ["due_at", "claimed_by", "last_error", "message_id", "created_at"]
    extra: list[Any] = []
    if digest is not None:
        columns += ["period", "digest_after", "digest_through"]
        extra = [sa.literal(digest[0]), digest_watermark(), sa.literal(digest[1])]
    rows = sa.select(
        sa.literal(kind.value),
        sa.cast(sa.null(), sa.Integer) if post_id is None else sa.literal(post_id),
        subscriber_table.c.id,
        sa.literal("queued"),
        sa.literal(0),
        sa.literal(0),
        when,
        sa.literal(""),
        sa.literal(""),
        sa.literal(""),
        when,
        *extra,
    ).where(readers)
    return columns, rows


def enqueue_import_confirmations(
    connection: Connection, *, keys: Sequence[str], at: datetime
) -> int:
    """One confirmation email on the ledger for each reader an import just stored as pending
    (their ``email_key`` among ``keys``, never sent one), and their confirmation slot taken,
    so the form's cooldown counts it. Run in the transaction that stored them."""
    if not keys:
        return 0
    s = subscriber_table.c
    # An expanding parameter, not in_(list): SQLAlchemy keeps something of every literal
    # list it sees, and an import passes a thousand lists of 5,000 keys.
    parameters = {"import_keys": list(keys)}
    imported = sa.and_(
        s.email_key.in_(sa.bindparam("import_keys", expanding=True)),
        s.status == SubscriberStatus.PENDING.value,
        s.confirmation_sent_at.is_(None),
    )
    columns, rows = queued_deliveries(kind=MessageKind.CONFIRM, readers=imported, at=at)
    connection.execute(delivery_table.insert().from_select(columns, rows), parameters)
    result = connection.execute(
        subscriber_table.update()
        .where(imported)
        .values(
            confirmation_sent_at=at,
            confirmation_day=at.date().isoformat(),
            confirmations_that_day=1,
        ),
        parameters,
    )
    return max(result.rowcount, 0)


def digest_readers(
    *, cadence: str, through: int, period: str | None = None
) -> sa.ColumnElement[bool]:
    """Confirmed readers on ``cadence`` with at least one post they want after their
    watermark (up to ``through``), announced after they confirmed (as a post email
    would: nobody gets what came out before they joined); with ``period``: who have no
    digest for that period yet."""
    s = subscriber_table.c
    p = post_table.c
    joined = sa.func.coalesce(s.confirmed_at, s.created_at)
    something_new = sa.exists().where(
        p.id > digest_watermark(),
        p.id <= through,
        p.created_at > joined,
        sa.or_(~sa.exists().where(post_category_table.c.post_id == p.id), wants_post(p.id)),
    )
    readers = sa.and_(
        s.status == SubscriberStatus.CONFIRMED.value, s.cadence == cadence, something_new
    )
    if period is not None:
        d = delivery_table.c
        readers = sa.and_(
            readers,
            ~sa.exists().where(
                d.kind == MessageKind.DIGEST.value, d.period == period, d.subscriber_id == s.id
            ),
        )
    return readers


def enqueue_digests(
    connection: Connection, *, cadence: str, period: str, through: int, at: datetime
) -> int:
    """One digest for ``period`` per reader on ``cadence`` with something new, in one
    INSERT ... SELECT in the caller's transaction. The digest row is the reader's new
    watermark (``digest_watermark``): nothing else moves, so a crash leaves all of it or
    none. Running it again in the same period queues nothing (one digest per (kind,
    period, reader)); posts announced in between wait for the next period."""
    columns, rows = queued_deliveries(
        kind=MessageKind.DIGEST,
        readers=digest_readers(cadence=cadence, through=through, period=period),
        at=at,
        digest=(period, through),
    )
    # Counted, not rowcount: psycopg reports -1 for this INSERT ... SELECT.
    before = _count_period(connection, period)
    # Two `digest` runs at once: the unique (kind, period, subscriber) decides, quietly.
    insert = insert_ignoring_duplicates(connection, delivery_table)
    connection.execute(insert.from_select(columns, rows))
    return _count_period(connection, period) - before


def _count_period(connection: Connection, period: str) -> int:
    d = delivery_table.c
    query = sa.select(sa.func.count()).where(d.kind == MessageKind.DIGEST.value, d.period == period)
    return int(connection.execute(query).scalar_one())
