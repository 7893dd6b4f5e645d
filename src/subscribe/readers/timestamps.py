"""Reading the dates other tools write in their exports, always to an aware UTC datetime.

Seen in exports: ISO 8601 with ``Z`` or an offset (Ghost, Substack, listmonk's ``+00``),
``YYYY-MM-DD HH:MM:SS`` in UTC (Mailchimp), the same with `` UTC``/`` GMT`` after it,
microseconds, a date alone, RFC 2822 dates, Unix seconds or milliseconds, and a spreadsheet
re-save as ``DD.MM.YYYY HH:MM`` or ``YYYY/MM/DD``, and English month names as dashboards show
them (``Jan 5, 2023 10:00 AM``, ``5 January 2023``). Day-first and month-first slashes
(``03/04/2019``) cannot be told apart by themselves, so they are not guessed at: only when
the file shows its order (a ``25/12/2019`` and no ``12/25/2019``) are they read that way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_ZONE_SUFFIX = re.compile(r"\s*(?:UTC|GMT|Z)$", re.IGNORECASE)
_SPACED_OFFSET = re.compile(r"^(.*\d)\s+([+-]\d{2}:?\d{2})$")
_DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_YEAR_FIRST = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})((?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?.*)$")
# Dates spelled with an English month name, as dashboards show them ("Jan 5, 2023 10:00 AM").
_MONTH_NAMED = (
    "%b %d, %Y",
    "%B %d, %Y",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y %I:%M %p",
    "%B %d, %Y %I:%M %p",
    "%b %d, %Y %H:%M",
    "%B %d, %Y %H:%M",
    "%b %d, %Y %I:%M:%S %p",
    "%d %b %Y %H:%M",
    "%d %b %Y %H:%M:%S",
    "%a %b %d %Y %H:%M:%S",
)
_SLASHED = re.compile(
    r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?$"
)
_EPOCH = re.compile(r"^\d{9,13}(?:\.\d+)?$")
# Unix seconds between 1990 and 2100: anything else is not a date a list could hold.
_EPOCH_RANGE = (631152000, 4102444800)


class NotADate(ValueError):
    pass


def parse_timestamp(text: str, *, slashes: str | None = None) -> datetime | None:
    """An aware UTC datetime, None for an empty cell; NotADate when it cannot be read.

    ``slashes`` ("dmy" or "mdy") is how the whole file writes ``03/04/2019``, when the file
    itself shows it (``slash_order``); without it such dates are not read."""
    value = text.strip()
    if not value:
        return None
    if slashes and "/" in value:
        slashed = _slashed(value, slashes)
        if slashed is not None:
            return slashed.replace(tzinfo=UTC)
    try:  # the common case, at C speed
        parsed: datetime | None = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    parsed = (
        parsed
        or _iso(value)
        or _dotted(value)
        or _epoch(value)
        or _year_first_slashes(value)
        or _month_named(value)  # before RFC 2822, whose parser would drop a "PM"
        or _rfc2822(value)
    )
    if parsed is None:
        raise NotADate(value)
    if parsed.tzinfo is None:  # the tools that write naive times write UTC
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _iso(value: str) -> datetime | None:
    candidates = [(value, False)]
    bare = _ZONE_SUFFIX.sub("", value)
    if bare != value:
        candidates.append((bare, True))
    spaced = _SPACED_OFFSET.match(value)
    if spaced:
        candidates.append((spaced.group(1) + spaced.group(2), False))
    for candidate, zone_removed in candidates:
        try:
            parsed = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        if zone_removed and parsed.tzinfo is not None:
            continue  # "…+02:00 UTC" says two things
        return parsed
    return None


def _dotted(value: str) -> datetime | None:
    match = _DOTTED.match(value)
    if match is None:
        return None
    day, month, year, hour, minute, second = match.groups()
    try:
        return datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        return None


def slash_parts(value: str) -> tuple[int, int] | None:
    """The two numbers before the year of ``03/04/2019 10:00``, None for other shapes."""
    match = _SLASHED.match(value.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


def slash_order(pairs: Iterable[tuple[int, int]]) -> str | None:
    """ "dmy" when some date has a day over 12 first and none has it second, "mdy" the other
    way round; None when the file does not show it (or shows both: a mixed file)."""
    day_first = month_first = False
    for first, second in pairs:
        day_first = day_first or first > 12
        month_first = month_first or second > 12
    if day_first != month_first:
        return "dmy" if day_first else "mdy"
    return None


def _slashed(value: str, order: str) -> datetime | None:
    match = _SLASHED.match(value)
    if match is None:
        return None
    first, second, year, hour, minute, second_s, meridiem = match.groups()
    day, month = (first, second) if order == "dmy" else (second, first)
    hours = int(hour or 0)
    if meridiem:
        if not 1 <= hours <= 12:
            return None
        hours = hours % 12 + (12 if meridiem.lower() == "pm" else 0)
    try:
        return datetime(
            int(year), int(month), int(day), hours, int(minute or 0), int(second_s or 0)
        )
    except ValueError:
        return None


def _year_first_slashes(value: str) -> datetime | None:
    """``2023/05/12 10:00``: year first, so never ambiguous (spreadsheets in East Asia)."""
    match = _YEAR_FIRST.match(value)
    if match is None:
        return None
    year, month, day, rest = match.groups()
    return _iso(f"{year}-{int(month):02d}-{int(day):02d}{rest.replace('T', ' ', 1)}")


def _month_named(value: str) -> datetime | None:
    if not value[:1].isalpha() and not value[:2].strip().isdigit():
        return None
    text = " ".join(_ZONE_SUFFIX.sub("", value).replace(" at ", " ").split())
    for pattern in _MONTH_NAMED:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


def _epoch(value: str) -> datetime | None:
    if not _EPOCH.match(value):
        return None
    seconds = float(value)
    if seconds > _EPOCH_RANGE[1]:
        seconds /= 1000  # milliseconds
    if not _EPOCH_RANGE[0] <= seconds <= _EPOCH_RANGE[1]:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _rfc2822(value: str) -> datetime | None:
    if "," not in value and not value[:1].isalpha():
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
