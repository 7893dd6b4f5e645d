"""Importing a list: CSV rows in chunks, bad rows reported by line, duplicates and erased
addresses skipped."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import Engine

from subscribe.config import Settings
from subscribe.db import deliveries, store
from subscribe.db.models import SubscriberStatus
from subscribe.errors import InvalidAddress, SubscribeError

from .addresses import normalize
from .subscribers import clean_name, suppression_hasher

IMPORT_CHUNK = 5000


@dataclass
class ImportReport:
    added: int = 0
    duplicates: int = 0
    suppressed: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)
    confirmations_queued: int = 0


def _read_rows(handle: TextIO) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(handle)
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    if "email" not in fields:
        raise SubscribeError("the CSV file needs a header row with an 'email' column")
    reader.fieldnames = fields
    for row in reader:
        yield reader.line_num, row


def import_csv(
    engine: Engine,
    settings: Settings,
    *,
    path: Path,
    confirmed: bool,
    now: datetime,
    confirmation_emails: bool = True,
) -> ImportReport:
    """Bulk import in chunks (Core executemany); bad rows reported by line, duplicates skipped.

    Readers imported as pending get a confirmation email each, queued on the ledger (and
    sent, paced, like any other), unless ``confirmation_emails`` is False.
    """
    report = ImportReport()
    hasher = suppression_hasher(settings)
    status = SubscriberStatus.CONFIRMED if confirmed else SubscriberStatus.PENDING
    source = f"import:{path.name}"[:200]
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise SubscribeError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        chunk: list[dict[str, object]] = []
        try:
            for line, row in _read_rows(handle):
                try:
                    address = normalize(row.get("email") or "")
                except InvalidAddress as exc:
                    report.invalid.append((line, f"{(row.get('email') or '').strip()!r}: {exc}"))
                    continue
                chunk.append(
                    {
                        "email": address.display,
                        "email_key": address.key,
                        "name": clean_name(row.get("name") or ""),
                        "status": status.value,
                        "created_at": now,
                        "confirmed_at": now if confirmed else None,
                        "consent_source": source,
                        "consent_ip": "",
                        "consent_user_agent": "",
                        "consent_at": now,
                        "confirmation_day": "",
                        "confirmations_that_day": 0,
                        "bounce_count": 0,
                    }
                )
                if len(chunk) >= IMPORT_CHUNK:
                    _insert_chunk(engine, hasher, chunk, report)
                    chunk = []
        except (UnicodeDecodeError, csv.Error) as exc:
            raise SubscribeError(f"{path} is not a readable CSV file: {exc}") from None
        _insert_chunk(engine, hasher, chunk, report)
    if not confirmed and confirmation_emails and report.added:
        with engine.begin() as connection:
            report.confirmations_queued = deliveries.enqueue_import_confirmations(
                connection, source=source, at=now
            )
    return report


def _insert_chunk(
    engine: Engine,
    hasher: Callable[[str], list[str]],
    chunk: list[dict[str, object]],
    report: ImportReport,
) -> None:
    if not chunk:
        return
    by_key = {str(row["email_key"]): row for row in chunk}
    hashes = {key: hasher(key) for key in by_key}
    with engine.begin() as connection:
        found = store.suppressed_hashes(
            connection, hashes=[digest for digests in hashes.values() for digest in digests]
        )
        suppressed = {key for key, digests in hashes.items() if found.intersection(digests)}
        rows = [row for key, row in by_key.items() if key not in suppressed]
        added = store.insert_subscribers(connection, rows=rows)
    report.suppressed += len(suppressed)
    report.added += added
    report.duplicates += len(chunk) - len(suppressed) - added
