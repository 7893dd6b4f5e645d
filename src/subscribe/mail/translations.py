"""Message catalogs: gettext translations of the templates' and pages' strings.

The catalogs are ``.po`` files in ``templates/locales/`` (``de.po``, ``pt-BR.po``...), kept
as translators edit them and compiled in memory on first use (a few milliseconds per
language), so no compiled ``.mo`` lives in git. A site's own ``templates_dir/locales/
TAG.po`` comes first: it may replace some messages of a shipped language, or add a
language; what it leaves out falls back to the shipped catalog, then to the English of
the templates themselves. Fuzzy entries are never used.
"""

from __future__ import annotations

import functools
import gettext
import io
import itertools
import logging
import re
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from subscribe.config import language_tag

from .environment import SHIPPED_TEMPLATES

logger = logging.getLogger(__name__)
SOURCE_LANGUAGE = "en"  # the language of the msgids: the templates' own words


def catalog_path(root: Path, language: str) -> Path:
    """``locales/TAG.po``: the file whose name is the tag in any spelling (``pt_BR.po``
    for ``pt-BR``), else the canonical name."""
    folder = root / "locales"
    if folder.is_dir():
        for path in folder.glob("*.po"):
            if language_tag(path.stem) == language:
                return path
    return folder / f"{language}.po"


@functools.cache
def locale(language: str) -> Locale:
    """Babel's locale for a tag (``pt-BR``); its primary language, else English, for a
    tag Babel does not know."""
    for candidate in (language, language.partition("-")[0]):
        try:
            return Locale.parse(candidate, sep="-")
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse(SOURCE_LANGUAGE)


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _compiled(path: Path, language: str) -> Translations | None:
    if not path.is_file():
        return None
    with path.open("rb") as po:
        catalog = read_po(po, locale=locale(language), charset="utf-8")
    for message in list(catalog):
        # A translation naming a placeholder its message does not pass would fail every
        # email of that language (a KeyError mid-run): the message stays in English.
        ids = message.id if isinstance(message.id, (list, tuple)) else [message.id]
        forms = message.string if isinstance(message.string, (list, tuple)) else [message.string]
        wanted = set(_PLACEHOLDER.findall(" ".join(ids)))
        if message.id and any(set(_PLACEHOLDER.findall(f or "")) - wanted for f in forms):
            logger.warning("%s: %r names a placeholder its message lacks; ignored", path, ids[0])
            catalog.delete(message.id, message.context)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain="subscribe")


@functools.cache
def translations(templates_dir: Path | None, language: str) -> gettext.NullTranslations:
    """The site's catalog, then the shipped one, then (for a regional tag such as
    ``de-CH``) the same two for its language, then the templates' English."""
    tags = [language]
    if "-" in language:
        tags.append(language.partition("-")[0])
    roots = [templates_dir, SHIPPED_TEMPLATES] if templates_dir else [SHIPPED_TEMPLATES]
    found = (_compiled(catalog_path(root, tag), language) for tag in tags for root in roots)
    chain = [catalog for catalog in found if catalog is not None]
    if not chain:
        return gettext.NullTranslations()
    for catalog, fallback in itertools.pairwise(chain):
        catalog.add_fallback(fallback)
    return chain[0]


def text_direction(language: str) -> str:
    """``ltr`` or ``rtl``: the ``dir`` of a page or email in this language."""
    return "rtl" if locale(language).text_direction == "rtl" else "ltr"
