"""A sliding-window rate limit kept in the database, so it holds across processes and machines.

Each accepted hit is one ``RateEvent`` row (``bucket``, ``at``). A check counts the bucket's
rows inside the window and inserts a new one in the same transaction, serialised per bucket:

- SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock before the count, so two
  processes cannot both count 9 of 10 and both insert (store.py's begin handler reads the
  ``immediate`` execution option).
- PostgreSQL: a transaction-scoped advisory lock on a hash of the bucket does the same for
  one bucket only; other clients are not held up.

Refused hits are not recorded: a client gets exactly ``count`` hits per window, and a flood
does not grow the table. Rows older than the window are pruned as we go.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .models import RateEvent
from .store import is_sqlite

rate_event_table: sa.Table = RateEvent.__table__  # type: ignore[attr-defined]

# Pruning deletes at most this many expired rows per check: the cost of a check stays flat
# even after a flood, and the table still shrinks faster than one hit per check can grow it.
PRUNE_BATCH = 200


@dataclass(frozen=True, slots=True)
class Limit:
    name: str  # bucket prefix, e.g. "subscribe-ip"
    count: int  # hits allowed per window; 0 switches the limit off
    window: timedelta


def advisory_key(bucket: str) -> int:
    """A signed 64-bit key for pg_advisory_xact_lock, stable across processes."""
    digest = hashlib.blake2b(bucket.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class RateLimiter:
    def __init__(self, engine: Engine, limit: Limit) -> None:
        self._engine = engine
        self._limit = limit
        self._sqlite = is_sqlite(engine)

    @property
    def limit(self) -> Limit:
        return self._limit

    def hit(self, key: str, *, now: datetime) -> bool:
        """Record one hit for ``key``; False (and nothing recorded) when it is over the limit."""
        if self._limit.count <= 0:
            return True
        t = rate_event_table.c
        bucket = f"{self._limit.name}:{key}"[:200]
        cutoff = now - self._limit.window
        connection = self._engine.connect().execution_options(immediate=True)
        with connection, connection.begin():
            if not self._sqlite:
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(advisory_key(bucket))))
            self._prune(connection, cutoff)
            recent = connection.execute(
                sa.select(sa.func.count()).where(t.bucket == bucket, t.at > cutoff)
            ).scalar_one()
            if recent >= self._limit.count:
                return False
            connection.execute(rate_event_table.insert().values(bucket=bucket, at=now))
            return True

    def _prune(self, connection: Connection, cutoff: datetime) -> None:
        t = rate_event_table.c
        expired = (
            sa.select(t.id)
            .where(t.at <= cutoff, t.bucket.startswith(f"{self._limit.name}:", autoescape=True))
            .limit(PRUNE_BATCH)
        )
        if not self._sqlite:
            # Two pruners never wait on (or deadlock over) the same old rows: each skips
            # the rows the other is deleting. SQLite's write lock already serialises them.
            expired = expired.with_for_update(skip_locked=True)
        connection.execute(rate_event_table.delete().where(t.id.in_(expired.scalar_subquery())))
