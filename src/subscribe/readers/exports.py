"""Exporting the list as CSV, one row per reader, walked in pages."""

from __future__ import annotations

import csv
from datetime import datetime
from typing import TextIO

from sqlmodel import Session

from subscribe.db import bulk, store

EXPORT_COLUMNS = ["email", "name", "status", "created_at", "confirmed_at", "unsubscribed_at"]
EXPORT_COLUMNS += ["cadence", "categories", "language"]
CATEGORY_SEPARATOR = "|"  # between a reader's categories in one cell (names may hold commas)


def export_csv(session: Session, out: TextIO) -> int:
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    chosen = bulk.categories_by_reader(session)
    for subscriber in store.iter_subscribers(session):
        writer.writerow(
            [
                subscriber.email,
                subscriber.name,
                subscriber.status,
                _iso(subscriber.created_at),
                _iso(subscriber.confirmed_at),
                _iso(subscriber.unsubscribed_at),
                subscriber.cadence,
                CATEGORY_SEPARATOR.join(chosen.get(subscriber.id or 0, ())),
                subscriber.language,
            ]
        )
        count += 1
    return count


def _iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""
