"""Reading the dates other tools write in their exports, always to an aware UTC datetime.

Seen in exports: ISO 8601 with ``Z`` or an offset (Ghost, Substack, listmonk's ``+00``),
``YYYY-MM-DD HH:MM:SS`` in UTC (Mailchimp), the same with `` UTC``/`` GMT`` after it,
microseconds, a date alone, RFC 2822 dates, Unix seconds or milliseconds, and a spreadsheet
re-save as ``DD.MM.YYYY HH:MM``. Day-first and month-first slashes (``03/04/2019``) cannot
be told apart, so they are not guessed at.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_ZONE_SUFFIX = re.compile(r"\s*(?:UTC|GMT|Z)$", re.IGNORECASE)
_SPACED_OFFSET = re.compile(r"^(.*\d)\s+([+-]\d{2}:?\d{2})$")
_DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_EPOCH = re.compile(r"^\d{9,13}(?:\.\d+)?$")
# Unix seconds between 1990 and 2100: anything else is not a date a list could hold.
_EPOCH_RANGE = (631152000, 4102444800)


class NotADate(ValueError):
    pass


def parse_timestamp(text: str) -> datetime | None:
    """An aware UTC datetime, None for an empty cell; NotADate when it cannot be read."""
    value = text.strip()
    if not value:
        return None
    try:  # the common case, at C speed
        parsed: datetime | None = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    parsed = parsed or _iso(value) or _dotted(value) or _epoch(value) or _rfc2822(value)
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
