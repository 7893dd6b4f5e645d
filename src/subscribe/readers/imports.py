"""Importing a list from another tool (or our own export) without losing anyone's consent.

The file is read to its end before anything is stored (``import_file``); its format comes
from its header row (``import_formats``). Each reader keeps the standing the source gave
them: people who left stay unsubscribed and undeliverable ones bounced, whatever
``--confirmed`` says, and a reader already here whom the source says left since their last
consent is unsubscribed. Rows go in by chunks, one transaction each, with the confirmation
emails of the new pending readers queued in the same transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from subscribe.config import Settings, language_tag
from subscribe.db.models import Cadence, SubscriberStatus
from subscribe.errors import InvalidAddress, SubscribeError

from . import import_file
from .addresses import normalize
from .exports import CATEGORY_SEPARATOR
from .import_formats import Layout, Row, Standing, format_named, layout_for
from .import_store import GONE, ImportChunk, ImportOptions, ImportReport
from .subscribers import clean_name
from .timestamps import NotADate, parse_timestamp, slash_order, slash_parts


class _SlashOrder:
    """How the file's date columns write ``03/04/2019``, "dmy" or "mdy", if one of its dates
    shows it (``25/12/2019``) and none says the other; None when none does. Read from the
    whole file the first time such a date is met (files without one never pay for it)."""

    def __init__(
        self,
        path: Path,
        shape: import_file.TextShape,
        layout: Layout,
        start: int,
        report: ImportReport,
    ) -> None:
        self.path, self.shape, self.layout, self.start = path, shape, layout, start
        self.report = report
        self.order: str | None = None
        self.decided = False

    def __call__(self) -> str | None:
        if not self.decided:
            self.decided = True
            examples: list[str] = []
            self.order = slash_order(self._pairs(examples))
            if self.order and examples:
                spelled = "day first" if self.order == "dmy" else "month first"
                note = f"dates such as 03/04/2019 read {spelled}, as {examples[0]} shows"
                self.report.encoding_note = "; ".join(
                    filter(None, (self.report.encoding_note, note))
                )
        return self.order

    def _pairs(self, examples: list[str]) -> Iterator[tuple[int, int]]:
        fmt, layout = self.layout.format, self.layout
        columns = [
            c for c in dict.fromkeys((*fmt.created, *fmt.confirmed, *fmt.left)) if c in layout.index
        ]
        for line, fields in import_file.rows(self.path, self.shape):
            if line <= self.start:
                continue
            row = layout.row(fields)
            for column in columns:
                value = row.get(column)
                if "/" in value and (parts := slash_parts(value)) is not None:
                    if max(parts) > 12 and not examples:
                        examples.append(f"{value!r} on line {line}")
                    yield parts


def import_csv(
    engine: Engine,
    settings: Settings,
    *,
    path: Path,
    confirmed: bool,
    now: datetime,
    confirmation_emails: bool = True,
    format: str | None = None,
    encoding: str | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Read ``path`` whole, then store its readers by chunks (``dry_run``: only count them).

    A ZIP (Mailchimp's audience export: its subscribed, unsubscribed and cleaned files;
    Substack's data export) is its CSV files, each read whole before any is stored, those
    that say who left last; members without an address column are passed over."""
    if format is not None:
        format_named(format)  # a wrong name is the error, not a reason to pass a file over
    with import_file.csv_members(path) as members:
        prepared = [_prepare(member, format, encoding) for member in members]
        usable = [p for p in prepared if p.layout is not None]
        if not usable:
            reasons = "; ".join(f"{p.name}: {p.problem}" for p in prepared)
            raise import_file.UnreadableFile(f"{path}: nothing to import ({reasons})")
        head = usable[0]
        assert head.layout is not None
        report = ImportReport(
            format=head.layout.format.name,
            title=head.layout.format.title,
            mapping=head.layout.mapping(),
            encoding_note=head.shape.note if len(prepared) == 1 else "",
            dry_run=dry_run,
        )
        if len(prepared) > 1:
            read = ", ".join(p.short for p in usable)
            passed = [f"{p.short} ({p.problem})" for p in prepared if p.layout is None]
            notes = [f"read {read}"] + ([f"passed over {', '.join(passed)}"] if passed else [])
            notes += [f"{p.short}: {p.shape.note}" for p in usable if p.shape.note]
            report.encoding_note = "; ".join(notes)
        options = ImportOptions(confirmed, now, confirmation_emails, dry_run)
        for member in usable:
            _import_member(engine, settings, member, options, report, many=len(prepared) > 1)
    return report


@dataclass
class _Member:
    name: str
    path: Path
    shape: import_file.TextShape
    layout: Layout | None  # None: not an export we can read (``problem`` says why)
    start: int = 0  # the header's line, or the line before a headerless list's first
    problem: str = ""

    @property
    def short(self) -> str:
        """A ZIP member's own name, without the ZIP's."""
        return self.name.split(":", 1)[-1]


def _prepare(member: import_file.Member, format: str | None, encoding: str | None) -> _Member:
    """A member's encoding, delimiter and format, and every record read once to its end:
    a file that cannot be read changes nothing."""
    try:
        return _read_member(member, format, encoding)
    except SubscribeError as exc:  # a ZIP's member is named as the ZIP and the member
        if str(member.path) == member.name:
            raise
        raise type(exc)(str(exc).replace(str(member.path), member.name)) from None


def _read_member(member: import_file.Member, format: str | None, encoding: str | None) -> _Member:
    path = member.path
    shape = import_file.inspect(path, encoding=encoding)
    records = import_file.rows(path, shape)
    # The header is the first record with something in it, after any blank lines and
    # Excel's "sep=;" line.
    first = next((r for r in records if not import_file.is_preamble(r[1])), None)
    records.close()
    if first is None:
        if member.alone:
            raise import_file.UnreadableFile(f"{member.name} has no rows")
        return _Member(member.name, path, shape, None, problem="no rows")
    try:
        layout = layout_for(first[1], forced=format)
    except SubscribeError:
        if member.alone:
            raise
        return _Member(member.name, path, shape, None, problem="no email column")
    import_file.check_readable(path, shape)
    start = first[0] if layout.has_header_row else first[0] - 1
    return _Member(member.name, path, shape, layout, start)


def _import_member(
    engine: Engine,
    settings: Settings,
    member: _Member,
    options: ImportOptions,
    report: ImportReport,
    *,
    many: bool,
) -> None:
    layout = member.layout
    assert layout is not None
    shown = (len(report.invalid), len(report.warnings))
    slashes = _SlashOrder(member.path, member.shape, layout, member.start, report)
    chunk = ImportChunk(engine, settings, options, report, source=f"import:{layout.format.name}")
    columns = _Columns.of(layout)
    for line, fields in import_file.rows(member.path, member.shape):
        if line <= member.start:
            continue
        reader = _reader(layout, columns, layout.row(fields), line, options, report, slashes)
        if reader is not None:
            chunk.add(reader)
    chunk.flush()
    if many:  # say which file of the ZIP a line is in
        for problems, since in ((report.invalid, shown[0]), (report.warnings, shown[1])):
            problems[since:] = [(n, f"{member.short}: {text}") for n, text in problems[since:]]


@dataclass(frozen=True, slots=True)
class _Columns:
    """The columns of each field this file has, worked out once per file, not per row."""

    email: tuple[str, ...]
    created: tuple[str, ...]
    confirmed: tuple[str, ...]
    left: tuple[str, ...]
    ip: tuple[str, ...]
    language: tuple[str, ...]

    @classmethod
    def of(cls, layout: Layout) -> _Columns:
        fmt, present = layout.format, layout.present
        return cls(
            email=present(fmt.email),
            created=present(fmt.created),
            confirmed=present(fmt.confirmed),
            left=present(fmt.left),
            ip=present(fmt.ip),
            language=present(fmt.language),
        )


def _reader(
    layout: Layout,
    columns: _Columns,
    row: Row,
    line: int,
    options: ImportOptions,
    report: ImportReport,
    slashes: Callable[[], str | None] = lambda: None,
) -> dict[str, Any] | None:
    """The subscriber row a record makes, None when it is skipped (and listed)."""
    fmt = layout.format
    raw = row.get(*columns.email)
    if not raw:
        if row.get(*layout.index):  # a row with cells but no address
            report.invalid.append((line, "no email address"))
        return None
    raw, named = _unwrapped(raw)
    try:
        address = normalize(raw)
    except InvalidAddress as exc:
        report.invalid.append((line, f"{raw!r}: {exc}"))
        return None
    standing = fmt.standing(row, layout.header)
    if not isinstance(standing, Standing):
        report.invalid.append((line, f"{address.display}: {standing}"))
        return None

    def when(columns: tuple[str, ...]) -> datetime | None:
        value = row.get(*columns)
        try:
            return parse_timestamp(value)
        except NotADate:
            if "/" in value and slash_parts(value) is not None and (order := slashes()):
                try:
                    return parse_timestamp(value, slashes=order)
                except NotADate:
                    pass
            report.warnings.append((line, f"{value!r} is not a date; the import time is used"))
            return None

    created, consented = when(columns.created), when(columns.confirmed)
    status = _status(standing, options.confirmed)
    left = when(columns.left) if status in GONE else None
    if status == SubscriberStatus.CONFIRMED:
        confirmed_at: datetime | None = consented or created or options.now
    elif status == SubscriberStatus.PENDING:
        confirmed_at = None
    else:
        confirmed_at = consented
    return {
        "email": address.display,
        "email_key": address.key,
        "name": clean_name(layout.name_of(row) or named),
        "status": status.value,
        "created_at": created or consented or options.now,
        "confirmed_at": confirmed_at,
        "unsubscribed_at": left or (options.now if status in GONE else None),
        "consent_source": "",  # set by the chunk
        "consent_ip": row.get(*columns.ip)[:64],
        "consent_user_agent": "",
        "consent_at": consented or created or options.now,
        "cadence": _cadence(row.get(*fmt.cadence)) if fmt.cadence else "post",
        "categories": _categories(row.get(*fmt.categories)) if fmt.categories else [],
        # Kept as the source spells it (``de-AT``): the nearest language on offer is
        # chosen when an email is made, so a language added later is picked up.
        "language": (language_tag(row.get(*columns.language)[:35]) or "") if fmt.language else "",
        "confirmation_day": "",
        "confirmations_that_day": 0,
        "bounce_count": 0,
    }


# "Ada Lovelace <ada@example.org>" (an address book's or a mail client's copy) and
# "mailto:ada@example.org" (a spreadsheet's link): the address, and the name if there is one.
_NAMED_ADDRESS = re.compile(r'^\s*"?([^"<>]*?)"?\s*<\s*([^<>\s]+@[^<>\s]+)\s*>\s*$')
_MAILTO = re.compile(r"^\s*mailto:\s*(\S+@\S+?)\s*$", re.IGNORECASE)


def _unwrapped(raw: str) -> tuple[str, str]:
    if "<" in raw:
        match = _NAMED_ADDRESS.match(raw)
        if match:
            return match.group(2), match.group(1).strip()
    if raw[:7].casefold() == "mailto:":
        match = _MAILTO.match(raw)
        if match:
            return match.group(1).split("?", 1)[0], ""
    return raw, ""


def _status(standing: Standing, confirmed: bool) -> SubscriberStatus:
    if standing == Standing.SUBSCRIBED:
        return SubscriberStatus.CONFIRMED if confirmed else SubscriberStatus.PENDING
    if standing == Standing.PENDING:
        return SubscriberStatus.PENDING
    if standing == Standing.LEFT:
        return SubscriberStatus.UNSUBSCRIBED
    return SubscriberStatus.BOUNCED


_CADENCES = frozenset(cadence.value for cadence in Cadence)


def _cadence(value: str) -> str:
    """A cadence from our own export; anything else (an older export's blank) is 'post'."""
    value = value.strip().lower()
    return value if value in _CADENCES else Cadence.POST.value


def _categories(value: str) -> list[str]:
    names = (" ".join(name.split())[:200] for name in value.split(CATEGORY_SEPARATOR))
    return list(dict.fromkeys(name for name in names if name))
