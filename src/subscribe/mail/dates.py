"""Dates as the emails show them: Babel's long form in the reader's language, on the
site's calendar (``SUBSCRIBE_TIMEZONE``)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from .translations import SOURCE_LANGUAGE, locale


def format_date(value: date | None, language: str = SOURCE_LANGUAGE, timezone: str = "UTC") -> str:
    """``December 1, 2026`` / ``1. Dezember 2026`` / ``1 grudnia 2026``; an aware datetime
    is first moved to the site's time zone; "" without a date."""
    if value is None:
        return ""
    from babel.dates import format_date as babel_format_date

    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(ZoneInfo(timezone))
        value = value.date()
    return babel_format_date(value, "long", locale=locale(language))
