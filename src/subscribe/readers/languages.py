"""Which language a reader gets: the choice at sign-up, stored with the reader.

In order: a ``language`` form or JSON field, ``?lang=`` on the form page (which the form
sends back as that field), the browser's ``Accept-Language`` (q-values honoured), the
site's ``SUBSCRIBE_LANGUAGE``. Only languages on offer are chosen, the nearest one for a
regional tag (``de-AT`` -> ``de``, ``pt-PT`` -> ``pt-BR``); anything else falls through
to the next source rather than refusing a sign-up over a language.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from subscribe.config import Settings, on_offer
from subscribe.db.models import Subscriber
from subscribe.errors import InvalidChoice

MAX_ACCEPT_LANGUAGE = 64  # ranges read from one header: a longer one is not a browser's


def named(settings: Settings, language: str) -> str:
    """The language an admin named (``add --language``, ``preview --language``), as
    offered (``de-AT`` is ``de``); one not on offer is a one-line error."""
    chosen = on_offer(language, settings.languages)
    if chosen is None:
        offered = ", ".join(settings.languages)
        raise InvalidChoice(f"unknown language {language!r}: choose one of {offered}")
    return chosen


def accepted(header: str, offered: Sequence[str]) -> str | None:
    """The best offered language of an ``Accept-Language`` header (RFC 9110 12.5.4):
    ranges by q-value, highest first, ties in the header's order; ``q=0`` refuses."""
    ranges: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:MAX_ACCEPT_LANGUAGE]):
        name, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name and name != "*" and quality > 0:
            ranges.append((-quality, position, name))
    for _, _, name in sorted(ranges):
        if (found := on_offer(name, offered)) is not None:
            return found
    return None


def asked(settings: Settings, *, field: str = "", query: str = "", accept: str = "") -> str:
    """The language a visitor asked for: field, then ``?lang=``, then Accept-Language;
    "" when none names one on offer (a reader stored with "" follows the site's)."""
    offered = settings.languages
    for candidate in (field, query):
        if candidate and (found := on_offer(candidate, offered)) is not None:
            return found
    return (accepted(accept, offered) if accept else None) or ""


def choose(settings: Settings, *, field: str = "", query: str = "", accept: str = "") -> str:
    """The language of a visitor's pages: what they asked for, else the site's."""
    return asked(settings, field=field, query=query, accept=accept) or settings.language


def of_reader(settings: Settings, stored: str) -> str:
    """A stored reader's language; readers from before languages (or whose language the
    site no longer offers) get the site's default."""
    return (on_offer(stored, settings.languages) if stored else None) or settings.language


def of_subscriber(session: Session, settings: Settings, subscriber_id: int) -> str:
    """The language of a page behind a signed link of ours, before anything is changed:
    the reader's own (the site's when the reader is gone)."""
    subscriber = session.get(Subscriber, subscriber_id)
    return of_reader(settings, subscriber.language if subscriber else "")
