"""Set-based reads and writes over many readers at once, for imports: the insert through
the driver's executemany, who is already known, who was erased, who left since."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlmodel import Session

from .models import (
    DeliveryStatus,
    SubscriberStatus,
    Suppression,
    delivery_table,
    subscriber_category_table,
    subscriber_table,
)
from .store import driver_sql, driver_time_converter, insert_ignoring_duplicates


@dataclass(frozen=True, slots=True)
class KnownReader:
    id: int
    status: str
    created_at: datetime | None
    confirmed_at: datetime | None


def readers_by_key(connection: Connection, *, keys: Sequence[str]) -> dict[str, KnownReader]:
    """Who among ``keys`` is already on the list. One indexed look-up for a chunk of an
    import, through the driver: the same query built by SQLAlchemy grew the process by
    ~250 KB a chunk (flat through sqlite3 alone)."""
    if not keys:
        return {}
    columns = "email_key, id, status, created_at, confirmed_at"
    if connection.dialect.name == "sqlite":
        marks = ",".join("?" * len(keys))
        sql = f"SELECT {columns} FROM subscriber WHERE email_key IN ({marks})"
        result = connection.exec_driver_sql(sql, tuple(keys))
    else:
        sql = f"SELECT {columns} FROM subscriber WHERE email_key = ANY(%(keys)s)"
        result = connection.exec_driver_sql(sql, {"keys": list(keys)})
    return {
        key: KnownReader(id, status, _utc(created), _utc(confirmed))
        for key, id, status, created, confirmed in result
    }


def _utc(value: object) -> datetime | None:
    """A time as the driver returns it (SQLite: naive UTC text) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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


_SUBSCRIBER_COLUMNS = (
    "email",
    "email_key",
    "name",
    "status",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "consent_source",
    "consent_ip",
    "consent_user_agent",
    "consent_at",
    "confirmation_day",
    "confirmations_that_day",
    "bounce_count",
    "cadence",
    "digest_after",
    "language",
)
# Columns a caller's rows may leave out.
_SUBSCRIBER_DEFAULTS: dict[str, object] = {"cadence": "post", "digest_after": 0, "language": ""}
_SUBSCRIBER_TIME_COLUMNS = frozenset(
    {"created_at", "confirmed_at", "unsubscribed_at", "consent_at"}
)
_INSERT_SUBSCRIBER = (
    f"INSERT INTO subscriber ({', '.join(_SUBSCRIBER_COLUMNS)}) VALUES "
    f"({', '.join('{' + c + '}' for c in _SUBSCRIBER_COLUMNS)}) ON CONFLICT DO NOTHING"
)


def insert_subscribers(connection: Connection, *, rows: Sequence[dict[str, Any]]) -> int:
    """Bulk insert through the driver's executemany; existing addresses are left alone.

    Returns how many rows were inserted. The driver's own executemany (not SQLAlchemy's,
    which converts three timestamps per row and builds its parameters row by row) keeps a
    million-row import within a minute; its rowcount is the sum over the rows.
    """
    if not rows:
        return 0
    convert = driver_time_converter(connection)
    last: list[object] = [None, None]  # a row's times are often one object (consent = confirm)

    def time(value: datetime) -> object:
        if value is not last[0]:
            last[0], last[1] = value, convert(value)
        return last[1]

    times = _SUBSCRIBER_TIME_COLUMNS
    parameters = [
        {
            c: (time(value) if c in times and value is not None else value)
            for c in _SUBSCRIBER_COLUMNS
            for value in (row.get(c, _SUBSCRIBER_DEFAULTS.get(c)),)
        }
        for row in rows
    ]
    cursor = connection.exec_driver_sql(driver_sql(connection, _INSERT_SUBSCRIBER), parameters)
    return max(cursor.rowcount, 0)


def categories_by_reader(session: Session) -> dict[int, list[str]]:
    """Every reader's chosen categories (few rows: most readers choose none)."""
    sc = subscriber_category_table.c
    chosen: dict[int, list[str]] = {}
    query = sa.select(sc.subscriber_id, sc.category).order_by(sc.subscriber_id, sc.category)
    for subscriber_id, category in session.execute(query):
        chosen.setdefault(subscriber_id, []).append(category)
    return chosen


def insert_reader_categories(connection: Connection, *, rows: Sequence[tuple[str, str]]) -> None:
    """(email_key, category) rows for readers just inserted, by their address key."""
    if not rows:
        return
    sc = subscriber_category_table
    s = subscriber_table.c
    source = sa.select(s.id, sa.bindparam("category", type_=sa.String)).where(
        s.email_key == sa.bindparam("key")
    )
    statement = insert_ignoring_duplicates(connection, sc).from_select(
        ["subscriber_id", "category"], source
    )
    for key, category in rows:
        connection.execute(statement, {"key": key, "category": category})


def any_suppressed(connection: Connection) -> bool:
    """Whether anyone was ever erased: an import that finds nobody skips hashing its rows."""
    table: sa.Table = Suppression.__table__  # type: ignore[attr-defined]
    return connection.execute(sa.select(table.c.id).limit(1)).first() is not None


def suppressed_hashes(connection: Connection, *, hashes: Sequence[str]) -> set[str]:
    table: sa.Table = Suppression.__table__  # type: ignore[attr-defined]
    wanted = sa.bindparam("hashes", expanding=True)  # not in_(list): see bulk.readers_by_key
    query = sa.select(table.c.address_hash).where(table.c.address_hash.in_(wanted))
    return set(connection.execute(query, {"hashes": list(hashes)}).scalars())
