"""Dates as the emails show them, in the site's language.

One function, so that the issue bringing translations can hand it to Babel
(``babel.dates.format_date(value, "long", locale=language)``) without touching a template.
"""

from __future__ import annotations

from datetime import datetime

_MONTHS = {
    "en": "January February March April May June July August September October November December",
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November Dezember",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
    "diciembre",
    "pt": "janeiro fevereiro março abril maio junho julho agosto setembro outubro novembro "
    "dezembro",
    # Polish dates use the genitive: "1 grudnia 2026".
    "pl": "stycznia lutego marca kwietnia maja czerwca lipca sierpnia września października "
    "listopada grudnia",
}
_PATTERNS = {
    "en": "{month} {day}, {year}",
    "de": "{day}. {month} {year}",
    "es": "{day} de {month} de {year}",
    "pt": "{day} de {month} de {year}",
}


def format_date(value: datetime | None, language: str = "en") -> str:
    """``December 1, 2026`` / ``1. Dezember 2026`` / ``1 décembre 2026``; "" without a date."""
    if value is None:
        return ""
    base = language.replace("-", "_").split("_")[0].lower()
    months = _MONTHS.get(base, _MONTHS["en"]).split()
    pattern = _PATTERNS.get(base if base in _MONTHS else "en", "{day} {month} {year}")
    return pattern.format(day=value.day, month=months[value.month - 1], year=value.year)
