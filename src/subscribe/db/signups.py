"""The statements of a batch of web sign-ups, through the driver: one rate-limit hit, one
new pending reader with their confirmation slot taken, and their confirmation email on the
ledger, for each sign-up, all in one transaction for the whole batch.

Through the driver because a sign-up's cost is mostly its statements: each one released
and re-took the GIL under SQLite's write lock, which sixteen request threads then queued
for. A batch holds the lock once for many sign-ups.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from .models import MessageKind, SubscriberStatus
from .ratelimit import advisory_key
from .store import driver_sql, driver_time_converter, is_sqlite

# One statement for the count and the insert: the hit is recorded only under the limit.
_HIT = (
    "INSERT INTO rateevent (bucket, at) SELECT {bucket}, {at} WHERE ("
    "SELECT count(*) FROM rateevent WHERE bucket = {bucket} AND at > {cutoff}) < {limit}"
)
_PRUNE = (
    "DELETE FROM rateevent WHERE id IN (SELECT id FROM rateevent"
    " WHERE at <= {cutoff} AND bucket LIKE {prefix} ESCAPE '\\' LIMIT {batch})"
)
_NEW_READER = (
    "INSERT INTO subscriber (email, email_key, name, status, created_at, consent_source,"
    " consent_ip, consent_user_agent, consent_at, confirmation_sent_at, confirmation_day,"
    " confirmations_that_day, bounce_count) VALUES ({email}, {email_key}, {name}, {status},"
    " {at}, {source}, {ip}, {user_agent}, {at}, {at}, {day}, 1, 0)"
    " ON CONFLICT (email_key) DO NOTHING RETURNING id"
)
_CONFIRMATION = (
    "INSERT INTO delivery (kind, post_id, subscriber_id, status, attempts, ambiguous_count,"
    " due_at, claimed_by, last_error, message_id, created_at)"
    " VALUES ({kind}, NULL, {subscriber_id}, 'queued', 0, 0, {at}, '', '', '', {at})"
)


class SignupStatements:
    """The batch's statements in the connection's driver style, and its times converted
    once for the batch."""

    def __init__(self, connection: Connection, *, now: datetime) -> None:
        self.connection = connection
        convert = driver_time_converter(connection)
        self.at = convert(now)
        self.day = now.date().isoformat()
        self._convert = convert
        hit = _HIT
        if not is_sqlite(connection):  # PostgreSQL types a SELECT list's parameters itself
            hit = hit.replace(
                "SELECT {bucket}, {at}", "SELECT {bucket}::varchar, {at}::timestamptz"
            )
        self._hit = driver_sql(connection, hit)
        prune = _PRUNE
        if not is_sqlite(connection):  # two pruners skip each other's rows, never wait
            prune = prune.replace("{batch})", "{batch} FOR UPDATE SKIP LOCKED)")
        self._prune = driver_sql(connection, prune)
        self._reader = driver_sql(connection, _NEW_READER)
        self._confirmation = driver_sql(connection, _CONFIRMATION)
        self._postgres = not is_sqlite(connection)

    def hit(self, bucket: str, *, cutoff: datetime, limit: int) -> bool:
        """One hit on ``bucket``; False, and nothing recorded, when it is over ``limit``."""
        if self._postgres:  # one bucket at a time, as RateLimiter.hit does
            self.connection.exec_driver_sql(
                "SELECT pg_advisory_xact_lock(%(key)s)", {"key": advisory_key(bucket)}
            )
        parameters = {"bucket": bucket, "at": self.at, "cutoff": self._convert(cutoff)}
        result = self.connection.exec_driver_sql(self._hit, parameters | {"limit": limit})
        return result.rowcount == 1

    def prune(self, prefix: str, *, cutoff: datetime, batch: int) -> None:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        parameters = {"cutoff": self._convert(cutoff), "prefix": escaped + "%", "batch": batch}
        self.connection.exec_driver_sql(self._prune, parameters)

    def new_reader(
        self, *, email: str, email_key: str, name: str, source: str, ip: str, user_agent: str
    ) -> int | None:
        """A new pending reader with their confirmation email queued; None when the address
        is already known (the caller takes the slow path for it)."""
        row = self.connection.exec_driver_sql(
            self._reader,
            {
                "email": email,
                "email_key": email_key,
                "name": name,
                "status": SubscriberStatus.PENDING.value,
                "at": self.at,
                "source": source,
                "ip": ip,
                "user_agent": user_agent,
                "day": self.day,
            },
        ).first()
        if row is None:
            return None
        subscriber_id = int(row[0])
        self.connection.exec_driver_sql(
            self._confirmation,
            {"kind": MessageKind.CONFIRM.value, "subscriber_id": subscriber_id, "at": self.at},
        )
        return subscriber_id
