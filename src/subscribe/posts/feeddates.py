"""Entry dates feedparser leaves unparsed, or parses wrong: what blogs really write.

feedparser reads RFC 822 and W3C dates, but gives up on an RFC 822 date without a time
zone (``Mon, 30 Nov 2026 10:00:00``), on month and weekday names in the blog's own
language (``Mo, 30 Dez 2026``, ``30 décembre 2026``), on ``November 30, 2026``, and it
takes zone names it does not know (``CET``, ``JST``) for UTC. A date only orders entries
and is shown in the email, so a best guess beats none; a date with no zone is UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_tz

# Month and weekday names (and their usual abbreviations) in the languages blogs most
# often date their feeds in, to the English abbreviation RFC 822 expects.
_MONTHS = {
    "jan": (
        "stycznia",
        "januar",
        "jänner",
        "janvier",
        "janv",
        "enero",
        "ene",
        "janeiro",
        "gennaio",
        "gen",
        "januari",
        "styczeń",
        "styczen",
        "sty",
    ),
    "feb": (
        "lutego",
        "februar",
        "feber",
        "février",
        "fevrier",
        "févr",
        "fevr",
        "febrero",
        "fevereiro",
        "fev",
        "febbraio",
        "februari",
        "luty",
        "lut",
    ),
    "mar": (
        "marca",
        "märz",
        "maerz",
        "mrz",
        "mär",
        "mars",
        "marzo",
        "março",
        "marco",
        "maart",
        "marzec",
        "mrt",
    ),
    "apr": ("kwietnia", "avril", "avr", "abril", "abr", "aprile", "kwiecień", "kwiecien", "kwi"),
    "may": ("maja", "mai", "mayo", "maio", "maggio", "mag", "mei", "maj"),
    "jun": ("czerwca", "juni", "juin", "junio", "junho", "giugno", "giu", "czerwiec", "cze"),
    "jul": ("lipca", "juli", "juillet", "juil", "julio", "julho", "luglio", "lug", "lipiec", "lip"),
    "aug": (
        "sierpnia",
        "august",
        "août",
        "aout",
        "agosto",
        "ago",
        "augustus",
        "sierpień",
        "sierpien",
        "sie",
    ),
    "sep": (
        "września",
        "september",
        "sept",
        "septembre",
        "septiembre",
        "setembro",
        "set",
        "settembre",
        "wrzesień",
        "wrzesien",
        "wrz",
    ),
    "oct": (
        "października",
        "oktober",
        "okt",
        "octobre",
        "octubre",
        "outubro",
        "out",
        "ottobre",
        "ott",
        "październik",
        "pazdziernik",
        "paź",
        "paz",
    ),
    "nov": ("listopada", "november", "novembre", "noviembre", "novembro", "listopad", "lis"),
    "dec": (
        "grudnia",
        "dezember",
        "dez",
        "décembre",
        "decembre",
        "déc",
        "diciembre",
        "dic",
        "dezembro",
        "dicembre",
        "december",
        "grudzień",
        "grudzien",
        "gru",
    ),
}
_MONTH_NAMES = {name: english for english, names in _MONTHS.items() for name in names}
_ENGLISH_MONTHS = {
    name: english
    for english, name in zip(
        _MONTHS,
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        strict=True,
    )
}
_MONTH_NUMBERS = {english: number for number, english in enumerate(_MONTHS, start=1)}
# Zone names feedparser does not know (it takes them for UTC; it does know MET and MEST);
# the ambiguous IST is left out.
_ZONES = {
    "CET": 1,
    "CEST": 2,
    "BST": 1,
    "WET": 0,
    "WEST": 1,
    "EET": 2,
    "EEST": 3,
    "MSK": 3,
    "JST": 9,
    "KST": 9,
    "HKT": 8,
    "SGT": 8,
    "AWST": 8,
    "ACST": 9.5,
    "AEST": 10,
    "AEDT": 11,
    "NZST": 12,
    "NZDT": 13,
    "BRT": -3,
    "ART": -3,
}
_WORD = re.compile(r"[^\W\d_]+\.?", re.UNICODE)
_ZONE_AT_END = re.compile(r"\s([A-Z]{3,4})\s*$")
_WRITTEN = re.compile(r"^(?:(\d{1,2})\.?\s+([a-z]{3})|([a-z]{3})\s+(\d{1,2}),?)\s+(\d{4})")


def _english(value: str) -> str:
    """Month names as RFC 822's English abbreviations, weekday names dropped."""

    def word(match: re.Match[str]) -> str:
        token = match.group().rstrip(".").lower()
        if token in _MONTH_NAMES:
            return _MONTH_NAMES[token]
        if token in _ENGLISH_MONTHS:
            return _ENGLISH_MONTHS[token]
        if token[:3] in _MONTH_NUMBERS and len(token) == 3:
            return token
        return match.group() if token.upper() == match.group().rstrip(".") else ""

    value = re.sub(r"(\d)\.(?=\s)", r"\1", value)  # "1. Dez." is German for "1 Dec"
    return re.sub(r"\s+", " ", _WORD.sub(word, value)).strip(" ,")


def parse(value: str) -> datetime | None:
    """An aware UTC datetime for what feedparser could not read; None for no date at all."""
    value = value.strip()
    if not value:
        return None
    zone = _ZONE_AT_END.search(value)
    offset = _ZONES.get(zone.group(1)) if zone else None
    if offset is not None:
        value = value[: zone.start()].strip()  # type: ignore[union-attr]
    text = _english(value)
    parts = parsedate_tz(text)
    if parts is not None and parts[0] > 0:
        try:
            naive = datetime(*parts[:6])
        except ValueError:
            return None
        seconds = parts[9] if parts[9] is not None else 0
        if offset is not None:
            seconds = int(offset * 3600)
        return (naive - timedelta(seconds=seconds)).replace(tzinfo=UTC)
    written = _WRITTEN.match(text.lower())
    if written:
        day = written.group(1) or written.group(4)
        month = written.group(2) or written.group(3)
        if month in _MONTH_NUMBERS:
            try:
                found = datetime(int(written.group(5)), _MONTH_NUMBERS[month], int(day))
            except ValueError:
                return None
            zone_of = timezone(timedelta(hours=offset or 0))
            return found.replace(tzinfo=zone_of).astimezone(UTC)
    return None


def corrected(value: str, parsed: datetime) -> datetime:
    """feedparser's reading of ``value``, unless it ends in a zone name feedparser takes
    for UTC: then ours, which knows the zone."""
    zone = _ZONE_AT_END.search(value.strip())
    if zone and zone.group(1) in _ZONES:
        return parse(value) or parsed
    return parsed
