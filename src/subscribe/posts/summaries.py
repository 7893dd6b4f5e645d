"""A post's excerpt, from the HTML a feed (or our Markdown rendering) carries.

The markup is parsed by lxml (libxml2's HTML parser, forgiving as browsers are) and the
text is gathered as a browser lays it out: whitespace collapses, inline tags add nothing
(``<a>Pelican</a>, and`` is "Pelican, and"; ``在<code>Vue</code>中`` stays unspaced), block
elements start paragraphs. Code blocks, tables, images, figures and anything hidden are left
out; so are the "Read more »" and "[…]" tails engines append. The same walk gives the HTML
part's excerpt: paragraphs with their links and emphasis and nothing else, which nh3 (Rust's
ammonia) then sanitises once more, so no script, style or tracking pixel can reach a reader.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from urllib.parse import urljoin

import lxml.html
import nh3
from lxml import etree
from markupsafe import escape

SUMMARY_LIMIT = 600


def _names(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


_BLOCK = _names(
    "address article aside blockquote body br dd details div dl dt fieldset footer form h1 h2 "
    "h3 h4 h5 h6 header hr li main nav ol p section summary ul"
)
# Left out of an excerpt, with everything inside them.
_SKIP = _names(
    "audio button canvas embed figcaption figure head iframe img input map math noscript "
    "object picture pre script select style svg table template textarea title video"
)
_SKIP_CLASSES = ("highlight", "codehilite", "sourcecode", "code-block", "gist", "screen-reader")
# Inline elements whose meaning the HTML excerpt keeps.
_MARKS = {"a": "a", "em": "em", "i": "em", "strong": "strong", "b": "strong", "code": "code"}
_ALLOWED_TAGS = {"p", "a", "em", "strong", "code"}

_SPACE = re.compile(r"[ \t\n\r\f]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TRUNCATED_TAG = re.compile(r"<[^<>]*\Z")  # "... text <cod": a summary cut inside a tag
_TRUNCATED_ENTITY = re.compile(r"&#?\w{0,10}\Z")
_ESCAPED_TAG = re.compile(
    r"</?(?:p|a|div|br|em|strong|b|i|span|img|ul|ol|li|h[1-6]|blockquote|code|pre|figure)\b[^<>]*>",
    re.I,
)
_ARROWS = r"(?:»|→|›|>>|…|\.\.\.|&raquo;|&rarr;)"
_TAIL = re.compile(
    r"(?:\[\s*(?:…|\.\.\.|more|read more)\s*\]|\(\s*(?:more|read more)\s*(?:…|\.\.\.)?\s*\)"
    r"|(?:read more|read the rest|read the full|read full|continue reading|keep reading)"
    rf"(?:[^.!?\n]{{0,120}}?{_ARROWS}|[^.!?\n]{{0,40}})?)\s*\Z",
    re.I,
)
_BRACKETED = ("[", "(")
_SENTENCE_END = '.!?…:;)]"”’»'
# Paragraphs an engine adds to every entry: WordPress (Yoast), Medium.
_BOILERPLATE = re.compile(
    r"\A(?:The post .{1,300} appeared first on .{1,200}"
    r"|.{1,300} was originally published in .{1,200} on Medium\.?)\Z",
    re.S,
)
_TRACKER_HINTS = ("pixel", "tracking", "/track/", "feeds.feedburner.com/~r", "stats.wordpress")
_DECORATIVE_HINTS = ("/emoji/", "gravatar.com/avatar", "avatars.", "/avatar/")
MIN_IMAGE_SIDE = 100  # pixels, when the markup says: smaller is an icon, an avatar or a tracker

# One inline run: its text and the marks around it (("a", href), ("em", ""), ...).
Run = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class Excerpt:
    text: str  # paragraphs separated by a blank line, for the text part
    html: str  # sanitised <p> paragraphs with links and emphasis, for the HTML part

    def __bool__(self) -> bool:
        return bool(self.text)


def _parse(markup: str) -> etree._Element | None:
    markup = _CONTROL.sub("", markup)
    markup = _TRUNCATED_ENTITY.sub("", _TRUNCATED_TAG.sub("", markup))
    if not markup.strip():
        return None
    try:
        return lxml.html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):  # nothing lxml can build a tree from
        return None


def _is_skipped(element: etree._Element) -> bool:
    if not isinstance(element.tag, str):  # comments and processing instructions
        return True
    if element.tag.lower() in _SKIP:
        return True
    classes = (element.get("class") or "").lower()
    style = (element.get("style") or "").replace(" ", "").lower()
    return any(hint in classes for hint in _SKIP_CLASSES) or "display:none" in style


class _Walker:
    """Paragraphs of inline runs, in the order a browser shows them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.paragraphs: list[list[Run]] = [[]]

    def _add(self, text: str | None, marks: tuple[tuple[str, str], ...]) -> None:
        if not text:
            return
        text = _SPACE.sub(" ", text)
        current = self.paragraphs[-1]
        if text.startswith(" ") and (not current or current[-1][0].endswith(" ")):
            text = text[1:]
        if text:
            current.append((text, marks))

    def _break(self) -> None:
        if self.paragraphs[-1]:
            self.paragraphs.append([])

    def walk(self, element: etree._Element, marks: tuple[tuple[str, str], ...] = ()) -> None:
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        block = tag in _BLOCK
        if block:
            self._break()
        mark = _MARKS.get(tag)
        if mark == "a":
            href = urljoin(self.base, (element.get("href") or "").strip())
            marks = (*marks, ("a", href)) if href.startswith(("http://", "https://")) else marks
        elif mark is not None:
            marks = (*marks, (mark, ""))
        self._add(element.text, marks)
        for child in element:
            if not _is_skipped(child):
                self.walk(child, marks)
            # The tail belongs to the parent: outside the child's marks, after its block.
            self._add(child.tail, marks)
        if block:
            self._break()

    def result(self) -> list[list[Run]]:
        cleaned = []
        for runs in self.paragraphs:
            runs = _strip_end(runs)
            if runs:
                cleaned.append(runs)
        return cleaned


def _strip_end(runs: list[Run]) -> list[Run]:
    runs = [run for run in runs if run[0]]
    while runs and not runs[-1][0].rstrip():
        runs.pop()
    if runs:
        runs[-1] = (runs[-1][0].rstrip(), runs[-1][1])
    return runs


def _text(runs: list[Run]) -> str:
    return "".join(text for text, _ in runs)


def _cut(runs: list[Run], length: int) -> list[Run]:
    """The first ``length`` characters of the runs, marks kept."""
    kept: list[Run] = []
    for text, marks in runs:
        if length <= 0:
            break
        kept.append((text[:length], marks))
        length -= len(text)
    return _strip_end(kept)


def _without_tail(runs: list[Run]) -> list[Run]:
    """The paragraph without an engine's "Read more »", "[…]" or "Continue reading →"."""
    while runs:
        text = _text(runs)
        match = _TAIL.search(text)
        if match is None:
            return runs
        before = text[: match.start()].rstrip()
        # "You should read more" is the author's; a tail stands alone or after a sentence.
        if before and before[-1] not in _SENTENCE_END and not match.group().startswith(_BRACKETED):
            return runs
        runs = _cut(runs, len(before))
    return runs


def _paragraphs(markup: str, base: str, *, tidy: bool = True) -> list[list[Run]]:
    """The text's paragraphs; ``tidy``: without the engine's boilerplate and tails (for an
    excerpt, not for a title, where "Read more" may be the author's words)."""
    root = _parse(markup)
    if root is None:
        return []
    if len(root) == 0 and _ESCAPED_TAG.search(root.text or ""):
        # Escaped twice by the feed's writer: what we parsed is markup as text. Undo once.
        root = _parse(root.text or "")
        if root is None:
            return []
    walker = _Walker(base)
    walker.walk(root)
    if not tidy:
        return walker.result()
    paragraphs = []
    for runs in walker.result():
        if _BOILERPLATE.match(_text(runs)):
            continue
        runs = _without_tail(runs)
        if runs:
            paragraphs.append(runs)
    return paragraphs


def _shorten(paragraphs: list[list[Run]], limit: int) -> list[list[Run]]:
    kept: list[list[Run]] = []
    used = 0
    for runs in paragraphs:
        text = _text(runs)
        if used + len(text) <= limit:
            kept.append(runs)
            used += len(text) + 2
            continue
        room = limit - used
        if room < 40 and kept:
            break
        space = text.rfind(" ", 0, room + 1)
        # Cut at a word when there are words (CJK text has no spaces to cut at).
        cut = space if space > room * 0.6 else room
        shortened = _cut(runs, cut)
        if shortened:
            last_text, marks = shortened[-1]
            ellipsis = " …" if " " in text else "…"
            shortened[-1] = (last_text.rstrip(" ,;:") + ellipsis, marks)
            kept.append(shortened)
        break
    return kept


def _run_html(text: str, marks: tuple[tuple[str, str], ...]) -> str:
    opened = closed = ""
    for name, value in marks:
        opened += f'<a href="{escape(value)}">' if name == "a" else f"<{name}>"
        closed = f"</{name}>" + closed
    return opened + str(escape(text)) + closed


def excerpt(
    markup: str, *, base: str = "", limit: int = SUMMARY_LIMIT, plain: bool = False
) -> Excerpt:
    """The start of the post, as text and as sanitised HTML. ``plain``: the source is text
    (blank lines separate paragraphs), not HTML."""
    if plain:
        blocks = re.split(r"\n\s*\n", markup.strip())
        markup = "".join(f"<p>{escape(block)}</p>" for block in blocks)
    paragraphs = _shorten(_paragraphs(markup, base), limit)
    if paragraphs and _TRUNCATED_TAG.search(markup):
        # The engine cut the summary inside a tag (Hexo): say that the text goes on.
        last_text, marks = paragraphs[-1][-1]
        if not last_text.endswith("…"):
            paragraphs[-1][-1] = (last_text + " …", marks)
    text = "\n\n".join(_text(runs) for runs in paragraphs)
    body = "".join("<p>" + "".join(_run_html(*run) for run in runs) + "</p>" for runs in paragraphs)
    return Excerpt(text, nh3.clean(body, tags=_ALLOWED_TAGS, attributes={"a": {"href"}}))


def is_usable(summary: Excerpt, title: str) -> bool:
    """A summary worth showing: some words, and not merely the title again."""
    words = summary.text.strip(" .…")
    return len(words) >= 3 and words.casefold() != title.strip().casefold()


def plain_text(markup: str) -> str:
    """One line of text from a bit of HTML (a title with entities or tags in it)."""
    if "<" not in markup and "&" not in markup:
        return " ".join(markup.split())
    text = " ".join(_text(runs) for runs in _paragraphs(markup, "", tidy=False))
    return " ".join(text.split()) or " ".join(html_lib.unescape(markup).split())


def title_from_text(text: str, limit: int = 80) -> str:
    """A title for an untitled entry (micro.blog, Scripting News): its first sentence."""
    first = " ".join(text.split("\n\n", 1)[0].split())
    sentence = re.match(r".+?[.!?。！？](?=\s|\Z)", first)
    if sentence and len(sentence.group()) <= limit:
        return sentence.group()
    if len(first) <= limit:
        return first
    space = first.rfind(" ", 0, limit)
    return first[: space if space > limit // 2 else limit].rstrip(" ,;:") + "…"


def first_image(markup: str, *, base: str) -> str:
    """The first real image of the content: not a 1x1 tracker, an emoji or an avatar."""
    root = _parse(markup)
    if root is None:
        return ""
    for image in root.iter("img"):
        src = urljoin(base, (image.get("src") or "").strip())
        if not src.startswith(("http://", "https://")):
            continue
        if is_decorative(src, image.get("width"), image.get("height")):
            continue
        return src
    return ""


def is_decorative(src: str, width: object = None, height: object = None) -> bool:
    """A tracker, an emoji, an avatar or an icon: no image to head a post's email with."""
    lowered = src.lower()
    if any(hint in lowered for hint in _TRACKER_HINTS + _DECORATIVE_HINTS):
        return True
    for size in (width, height):
        digits = str(size or "").strip().removesuffix("px")
        if digits.isdigit() and int(digits) < MIN_IMAGE_SIDE:
            return True
    return False
