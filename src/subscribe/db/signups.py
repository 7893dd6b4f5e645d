"""The statements of a batch of web sign-ups, through the driver: for each sign-up (after
its hit in ``ratelimit.record_hits``), a new pending reader with their confirmation slot
taken and their confirmation email on the ledger, all in one transaction for the batch.

Through the driver because a sign-up's cost is mostly its statements: each one released
and re-took the GIL under SQLite's write lock, which sixteen request threads then queued
for. A batch holds the lock once for many sign-ups; on PostgreSQL its statements go
pipelined, one round trip for the batch's readers rather than one each.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.engine import Connection

from .models import MessageKind, SubscriberStatus
from .store import driver_sql, driver_time_converter, is_sqlite, pipelined

# The watermark at the latest post, as ``preferences.start_cadence`` sets it: a first
# digest lists only what comes after the sign-up.
_NEW_READER = (
    "INSERT INTO subscriber (email, email_key, name, status, created_at, consent_source,"
    " consent_ip, consent_user_agent, consent_at, confirmation_sent_at, confirmation_day,"
    " confirmations_that_day, bounce_count, cadence, digest_after, language) VALUES ({email},"
    " {email_key}, {name}, {status}, {at}, {source}, {ip}, {user_agent}, {at}, {at}, {day},"
    " 1, 0, {cadence}, (SELECT coalesce(max(id), 0) FROM post), {language})"
    " ON CONFLICT (email_key) DO NOTHING RETURNING id"
)
# PostgreSQL: the reader and their confirmation in one round trip.
_NEW_READER_AND_CONFIRMATION = (
    "WITH reader AS (" + _NEW_READER + ")"
    " INSERT INTO delivery (kind, post_id, subscriber_id, status, attempts, ambiguous_count,"
    " due_at, claimed_by, last_error, message_id, created_at)"
    " SELECT {kind}, NULL, id, 'queued', 0, 0, {at}, '', '', '', {at} FROM reader"
    " RETURNING subscriber_id"
)
_CATEGORY = (
    "INSERT INTO subscriber_category (subscriber_id, category) VALUES ({subscriber_id}, {category})"
)
_CONFIRMATION = (
    "INSERT INTO delivery (kind, post_id, subscriber_id, status, attempts, ambiguous_count,"
    " due_at, claimed_by, last_error, message_id, created_at)"
    " VALUES ({kind}, NULL, {subscriber_id}, 'queued', 0, 0, {at}, '', '', '', {at})"
)


class NewReader(NamedTuple):
    """A web sign-up's reader row, cut to the columns' sizes."""

    email: str
    email_key: str
    name: str
    source: str
    ip: str
    user_agent: str
    cadence: str
    language: str


class SignupStatements:
    """The batch's statements in the connection's driver style, and its times converted
    once for the batch."""

    def __init__(self, connection: Connection, *, now: datetime) -> None:
        self.connection = connection
        self.at = driver_time_converter(connection)(now)
        self.day = now.date().isoformat()
        reader = _NEW_READER_AND_CONFIRMATION if not is_sqlite(connection) else _NEW_READER
        self._reader = driver_sql(connection, reader)
        self._confirmation = driver_sql(connection, _CONFIRMATION)
        self._category = driver_sql(connection, _CATEGORY)
        self._postgres = not is_sqlite(connection)

    def new_readers(self, readers: Sequence[NewReader]) -> list[int | None]:
        """New pending readers with their confirmation emails queued, in order; None for
        an address already known (the caller takes the slow path for it). PostgreSQL: one
        pipelined round trip for the lot (each statement also queues the confirmation)."""
        rows = [
            {
                **reader._asdict(),
                "kind": MessageKind.CONFIRM.value,
                "status": SubscriberStatus.PENDING.value,
                "at": self.at,
                "day": self.day,
            }
            for reader in readers
        ]
        if self._postgres:
            found = pipelined(self.connection, self._reader, rows)
            return [None if row is None else int(row[0]) for row in found]  # type: ignore[call-overload]
        ids: list[int | None] = []
        for parameters in rows:
            row = self.connection.exec_driver_sql(self._reader, parameters).first()
            if row is None:
                ids.append(None)
                continue
            ids.append(int(row[0]))
            self.connection.exec_driver_sql(
                self._confirmation,
                {"kind": MessageKind.CONFIRM.value, "subscriber_id": int(row[0]), "at": self.at},
            )
        return ids

    def add_categories(self, chosen: list[tuple[int, str]]) -> None:
        """The categories new readers of the batch chose, (reader, category) pairs."""
        if chosen:
            self.connection.exec_driver_sql(
                self._category,
                [{"subscriber_id": reader, "category": name} for reader, name in chosen],
            )
