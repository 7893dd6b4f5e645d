"""The message catalogs against the sources: extract every message of the templates and
of the Python code (``N_``, ``_``), and check or update ``templates/locales/*.po``.

    uv run python tests/catalogs.py update   # new messages in, gone ones out, then translate
    uv run python tests/catalogs.py check    # what the test checks: exit 1 on any gap

Extraction reads the templates as the app does (Jinja2's i18n extension, whitespace in
``{% trans %}`` trimmed), so a msgid here is the msgid a page looks up.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "templates" / "locales"
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trimmed": "true"}
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")
_TAG = re.compile(r"</?[a-z][^>]*>")


def extracted() -> Catalog:
    """Every message of ours, in the order the sources hold them."""
    catalog = Catalog(project="subscribe", fuzzy=False)
    sources = [
        (ROOT / "templates", [("**.html", "jinja2"), ("**.txt", "jinja2")], JINJA_OPTIONS),
        (ROOT / "src" / "subscribe", [("**.py", "python")], {}),
    ]
    for root, method_map, options in sources:
        options_map = {pattern: options for pattern, _ in method_map}
        found = extract_from_dir(str(root), method_map, options_map, strip_comment_tags=True)
        for filename, lineno, message, comments, context in found:
            where = (str((root / filename).relative_to(ROOT)), lineno)
            catalog.add(message, None, [where], auto_comments=comments, context=context)
    return catalog


def shipped_catalogs() -> dict[str, Path]:
    return {path.stem: path for path in sorted(LOCALES.glob("*.po"))}


def read(path: Path) -> Catalog:
    with path.open("rb") as po:
        return read_po(po, locale=path.stem.replace("-", "_"), charset="utf-8")


def _forms(message: Message) -> list[str]:
    value = message.string
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _ids(message: Message) -> list[str]:
    value = message.id
    return list(value) if isinstance(value, (list, tuple)) else [value]


def problems(template: Catalog, catalog: Catalog) -> list[str]:
    """What keeps ``catalog`` from being complete: a message missing, fuzzy, untranslated
    (in any plural form), or whose placeholders or HTML tags differ from the msgid's."""
    found = []
    for message in template:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        entry = catalog.get(key, message.context)
        label = repr(key[:60])
        if entry is None:
            found.append(f"missing {label}")
            continue
        if entry.fuzzy:
            found.append(f"fuzzy {label}")
        forms = _forms(entry)
        if message.pluralizable and len(forms) != catalog.num_plurals:
            found.append(f"{label} has {len(forms)} plural forms, not {catalog.num_plurals}")
        if not all(form.strip() for form in forms):
            found.append(f"untranslated {label}")
            continue
        wanted = sorted(set(_PLACEHOLDER.findall(" ".join(_ids(message)))))
        tags = sorted(_TAG.findall(_ids(message)[0]))
        for form in forms:
            if sorted(set(_PLACEHOLDER.findall(form))) != wanted:
                found.append(f"{label}: placeholders {wanted} differ in {form!r}")
            if sorted(_TAG.findall(form)) != tags:
                found.append(f"{label}: HTML tags differ in {form!r}")
    return found


def english_left(language: str, shown: str) -> list[str]:
    """The English of our messages still in ``shown`` (a page's or an email's text) in
    another language: each text run of a msgid whose translation differs, longer than a
    word or two (short ones, "Links", may be the same words in both)."""
    catalog = read(shipped_catalogs()[language])
    left = []
    for message in catalog:
        if not message.id or not isinstance(message.id, str) or message.string == message.id:
            continue
        runs = re.sub(r"<[^>]+>|%\(\w+\)s", "\0", message.id).split("\0")
        left += [run.strip() for run in runs if len(run.strip()) > 12 and run.strip() in shown]
    return left


def update() -> None:
    """Bring every shipped catalog in line with the sources: new messages untranslated,
    vanished ones dropped (translators fill the gaps; ``check`` lists them)."""
    template = extracted()
    for path in shipped_catalogs().values():
        catalog = read(path)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        buffer = io.BytesIO()
        write_po(buffer, catalog, width=0, omit_header=False, include_lineno=False)
        path.write_bytes(buffer.getvalue())


def main(argv: list[str]) -> int:
    if argv[1:] == ["update"]:
        update()
        return 0
    if argv[1:] == ["check"]:
        template = extracted()
        bad = 0
        for tag, path in shipped_catalogs().items():
            for problem in problems(template, read(path)):
                print(f"{tag}: {problem}")
                bad += 1
        return 1 if bad else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
