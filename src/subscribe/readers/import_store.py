"""Storing an import: its rows in chunks of IMPORT_CHUNK, one transaction each, and what
it did (``ImportReport``).

A chunk adds the new readers, leaves those already here as they are unless the source says
they left since their latest consent here (then they are unsubscribed), never re-adds an
address erased at its owner's request, and queues the new pending readers' confirmation
emails in the same transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from subscribe.config import Settings
from subscribe.db import bulk, deliveries
from subscribe.db.models import SubscriberStatus

from .subscribers import suppression_hasher

IMPORT_CHUNK = 5000
STAYING = (SubscriberStatus.PENDING.value, SubscriberStatus.CONFIRMED.value)
GONE = (SubscriberStatus.UNSUBSCRIBED.value, SubscriberStatus.BOUNCED.value)


@dataclass
class ImportReport:
    format: str = ""
    title: str = ""
    mapping: list[str] = field(default_factory=list)
    encoding_note: str = ""
    imported: Counter[str] = field(default_factory=Counter)  # by status as stored
    already_present: int = 0
    suppressed: int = 0
    departed: int = 0  # readers already here whom the source says left
    invalid: list[tuple[int, str]] = field(default_factory=list)  # skipped: (line, reason)
    warnings: list[tuple[int, str]] = field(default_factory=list)  # kept, with a caveat
    confirmations_queued: int = 0
    dry_run: bool = False

    @property
    def added(self) -> int:
        return sum(self.imported.values())


@dataclass(frozen=True)
class ImportOptions:
    confirmed: bool
    now: datetime
    confirmation_emails: bool = True
    dry_run: bool = False


class ImportChunk:
    """Rows waiting to be stored together, in one transaction."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        options: ImportOptions,
        report: ImportReport,
        *,
        source: str,
    ) -> None:
        self.engine = engine
        self.hasher: Callable[[str], list[str]] = suppression_hasher(settings)
        self.options = options
        self.report = report
        self.source = source
        self.rows: dict[str, dict[str, Any]] = {}

    def add(self, reader: dict[str, Any]) -> None:
        reader["consent_source"] = self.source
        key = reader["email_key"]
        earlier = self.rows.get(key)
        if earlier is not None:
            self.report.already_present += 1
            # The same address twice: the row that says they left wins.
            if not (reader["status"] in GONE and earlier["status"] in STAYING):
                return
        self.rows[key] = reader
        if len(self.rows) >= IMPORT_CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        with self._transaction() as connection:
            self._store(connection)
        self.rows = {}

    def _transaction(self) -> Any:
        return self.engine.connect() if self.options.dry_run else self.engine.begin()

    def _store(self, connection: Connection) -> None:
        report, options = self.report, self.options
        keys = list(self.rows)
        existing = bulk.readers_by_key(connection, keys=keys)
        candidates = [key for key in keys if key not in existing]
        erased = self._erased(connection, candidates)
        new = [self.rows[key] for key in candidates if key not in erased]
        report.suppressed += len(erased)
        departures = list(self._departures(existing))
        report.already_present += len(existing) - len(departures)
        report.departed += len(departures)
        if options.dry_run:
            report.imported.update(row["status"] for row in new)
            return
        added = bulk.insert_subscribers(connection, rows=new)
        bulk.insert_reader_categories(
            connection, rows=[(r["email_key"], c) for r in new for c in r["categories"]]
        )
        report.imported.update(row["status"] for row in new)
        if added < len(new):  # someone signed up meanwhile: theirs is the row kept
            report.already_present += len(new) - added
            commonest = report.imported.most_common(1)[0][0]
            report.imported[commonest] -= len(new) - added
        bulk.record_departures(connection, departures=departures)
        if options.confirmation_emails:
            pending = [r["email_key"] for r in new if r["status"] == SubscriberStatus.PENDING]
            report.confirmations_queued += deliveries.enqueue_import_confirmations(
                connection, keys=pending, at=options.now
            )

    def _erased(self, connection: Connection, keys: list[str]) -> set[str]:
        """The addresses among ``keys`` that were erased at their request."""
        if not keys or not bulk.any_suppressed(connection):
            return set()
        hashes = {key: self.hasher(key) for key in keys}
        found = bulk.suppressed_hashes(
            connection, hashes=[digest for digests in hashes.values() for digest in digests]
        )
        return {key for key, digests in hashes.items() if found.intersection(digests)}

    def _departures(self, existing: dict[str, bulk.KnownReader]) -> Iterator[dict[str, Any]]:
        """Readers already here whom the source says left after their latest consent here
        (a departure without a date counts as now: we would rather not mail them)."""
        for key, current in existing.items():
            row = self.rows[key]
            if row["status"] not in GONE or current.status not in STAYING:
                continue
            consent = current.confirmed_at or current.created_at
            if consent is None or row["unsubscribed_at"] > consent:
                yield {"id": current.id, "status": row["status"], "at": row["unsubscribed_at"]}
