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

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .models import RateEvent
from .store import driver_time_converter, pipelined, placeholders

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

    @property
    def limit(self) -> Limit:
        return self._limit

    def hit(self, key: str, *, now: datetime) -> bool:
        """Record one hit for ``key``; False (and nothing recorded) when it is over the limit."""
        if self._limit.count <= 0:
            return True
        bucket = f"{self._limit.name}:{key}"[:200]
        cutoff = now - self._limit.window
        connection = self._engine.connect().execution_options(immediate=True)
        with connection, connection.begin():
            prune(connection, f"{self._limit.name}:", cutoff=cutoff)
            return record_hit(connection, bucket, at=now, cutoff=cutoff, limit=self._limit.count)


# The count and the insert in one statement: the hit is recorded only under the limit.
_HIT = (
    "INSERT INTO rateevent (bucket, at) SELECT {bucket}, {at} WHERE ("
    "SELECT count(*) FROM rateevent WHERE bucket = {bucket} AND at > {cutoff}) < {limit}"
)
_PRUNE = (
    "DELETE FROM rateevent WHERE id IN (SELECT id FROM rateevent"
    " WHERE at <= {cutoff} AND bucket LIKE {prefix} ESCAPE '\\' LIMIT {batch})"
)


@functools.cache
def _statements(dialect: str) -> tuple[str, str]:
    """(hit, prune) in the driver's style, through the driver: the web's sign-up batches
    run them for every sign-up under SQLite's write lock."""
    hit, prune_old = _HIT, _PRUNE
    if dialect != "sqlite":
        # PostgreSQL types a SELECT list's parameters itself; two pruners skip each other's
        # rows rather than wait (SQLite's write lock already serialises them).
        hit = hit.replace("SELECT {bucket}, {at}", "SELECT {bucket}::varchar, {at}::timestamptz")
        prune_old = prune_old.replace("{batch})", "{batch} FOR UPDATE SKIP LOCKED)")
    return placeholders(dialect, hit), placeholders(dialect, prune_old)


def record_hit(
    connection: Connection, bucket: str, *, at: datetime, cutoff: datetime, limit: int
) -> bool:
    """One hit on ``bucket`` in the caller's transaction; False, and nothing recorded, when
    ``limit`` hits are already inside the window."""
    dialect = connection.dialect.name
    if dialect != "sqlite":  # one bucket at a time; other clients are not held up
        connection.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(%(key)s)", {"key": advisory_key(bucket)}
        )
    convert = driver_time_converter(connection)
    parameters = {"bucket": bucket, "at": convert(at), "cutoff": convert(cutoff), "limit": limit}
    return connection.exec_driver_sql(_statements(dialect)[0], parameters).rowcount == 1


def record_hits(
    connection: Connection, buckets: Sequence[str], *, at: datetime, cutoff: datetime, limit: int
) -> list[bool]:
    """``record_hit`` for each bucket in turn (a bucket may come back), in the caller's
    transaction. On PostgreSQL in two round trips for the lot: the buckets' advisory
    locks, in a stable order (two batches never wait on each other in a cycle), then the
    hits pipelined, each seeing the ones before it."""
    if connection.dialect.name == "sqlite":
        return [
            record_hit(connection, bucket, at=at, cutoff=cutoff, limit=limit) for bucket in buckets
        ]
    if not buckets:
        return []  # no lock statement to send either
    keys = sorted({advisory_key(bucket) for bucket in buckets})
    connection.exec_driver_sql(
        "SELECT pg_advisory_xact_lock(k) FROM unnest(%(keys)s::bigint[]) AS k ORDER BY k",
        {"keys": keys},
    )
    convert = driver_time_converter(connection)
    moment, since = convert(at), convert(cutoff)
    rows = [{"bucket": b, "at": moment, "cutoff": since, "limit": limit} for b in buckets]
    found = pipelined(connection, _statements("postgresql")[0] + " RETURNING 1", rows)
    return [row is not None for row in found]


def prune(connection: Connection, prefix: str, *, cutoff: datetime) -> None:
    """Delete up to PRUNE_BATCH expired hits of the buckets named ``prefix``...: the cost of
    a check stays flat after a flood, and the table still shrinks faster than it grows."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    parameters = {
        "cutoff": driver_time_converter(connection)(cutoff),
        "prefix": escaped + "%",
        "batch": PRUNE_BATCH,
    }
    connection.exec_driver_sql(_statements(connection.dialect.name)[1], parameters)
