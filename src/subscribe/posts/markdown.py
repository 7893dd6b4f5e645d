"""A post written in Markdown, with YAML front matter (title, url; date, summary, id,
categories, image optional).

Links and images in the body are made absolute against the post's URL: a relative link is
dead in every mail client. Raw HTML in the Markdown is escaped, since the post goes into
thousands of inboxes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urljoin

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from subscribe.content import PostSpec, one_line
from subscribe.errors import SourceError

from .feeds import clean_categories
from .identity import is_web_url
from .summaries import excerpt

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.S)
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: ``date: 2026-13-45`` stays a string that we check
    ourselves (PyYAML would raise a bare ValueError while loading, with no line to show)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def require_url(url: str, what: str) -> str:
    url = url.strip()
    if not is_web_url(url):
        raise SourceError(f"{what} must be an http:// or https:// URL, got {url!r}")
    return url


def _as_datetime(value: object, path: Path) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    try:
        return _as_datetime(datetime.fromisoformat(text), path)
    except ValueError as exc:
        detail = "" if "Invalid isoformat" in str(exc) else f" ({exc})"
        raise SourceError(
            f"{path}: the front matter date {text!r} is not an ISO date{detail}"
        ) from None


def _categories(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return clean_categories(value.split(","))
    if isinstance(value, Sequence):
        return clean_categories([str(name) for name in value])
    return ()


def _absolute_links(tokens: Sequence[Token], base: str) -> None:
    """Make every link and image in the token stream absolute, in place."""
    for token in tokens:
        for attribute in ("href", "src"):
            value = token.attrs.get(attribute)
            if isinstance(value, str):
                token.attrs[attribute] = urljoin(base, value)
        if token.children:
            _absolute_links(token.children, base)


def render_body(markdown: str, *, base: str) -> str:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(markdown)
    _absolute_links(tokens, base)
    return md.renderer.render(tokens, md.options, {})


def from_markdown(path: Path) -> PostSpec:
    try:
        # utf-8-sig: a byte-order mark (Windows editors write one) must not hide the '---'.
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None
    match = _FRONT_MATTER.match(text)
    if not match:
        raise SourceError(f"{path} has no front matter (a block between '---' lines at the top)")
    try:
        meta = yaml.load(match.group(1), Loader=_Loader) or {}  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise SourceError(
            f"{path}: the front matter is not valid YAML: {one_line(str(exc))}"
        ) from None
    if not isinstance(meta, dict):
        raise SourceError(f"{path}: the front matter must be 'key: value' lines")
    title = one_line(str(meta.get("title") or ""))
    if not title:
        raise SourceError(f"{path}: the front matter needs a title")
    url = require_url(str(meta.get("url") or ""), f"{path}: the front matter's url")
    body_html = render_body(match.group(2), base=url)
    summary = str(meta.get("summary") or "").strip() or excerpt(body_html, base=url).text
    image = str(meta.get("image") or "").strip()
    return PostSpec(
        key=str(meta.get("id") or url),
        title=title,
        url=url,
        summary=summary,
        body_html=body_html,
        published_at=_as_datetime(meta.get("date"), path),
        categories=_categories(meta.get("categories")),
        image_url=urljoin(url, image) if image else "",
    )
