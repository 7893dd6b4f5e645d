"""Where a post comes from: CLI flags, a Markdown file with front matter, or an RSS/Atom feed."""

from __future__ import annotations

import calendar
import html
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import feedparser
import httpx
import yaml
from markdown_it import MarkdownIt

from subscribe.content import PostSpec, one_line
from subscribe.errors import SourceError

_TAG = re.compile(r"<[^>]+>")
SUMMARY_LIMIT = 600


def _require_url(url: str, what: str) -> str:
    url = url.strip()
    if not url.startswith(("http://", "https://")):
        raise SourceError(f"{what} must be an http:// or https:// URL, got {url!r}")
    return url


def from_flags(*, title: str, url: str, summary: str = "") -> PostSpec:
    title = one_line(title)
    if not title:
        raise SourceError("the post needs a --title")
    url = _require_url(url, "--url")
    return PostSpec(key=url, title=title, url=url, summary=summary.strip())


def html_to_text(markup: str) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", markup)).split())


def _shorten(text: str, limit: int = SUMMARY_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and value.strip():
        try:
            return _as_datetime(datetime.fromisoformat(value.strip()))
        except ValueError:
            raise SourceError(f"front matter date {value!r} is not an ISO date") from None
    return None


def from_markdown(path: Path) -> PostSpec:
    """A Markdown file whose front matter has title and url (date and summary optional)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None
    match = re.match(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)(.*)\Z", text, re.S)
    if not match:
        raise SourceError(f"{path} has no front matter (a block between '---' lines at the top)")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise SourceError(f"{path}: the front matter is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise SourceError(f"{path}: the front matter must be 'key: value' lines")
    title = one_line(str(meta.get("title") or ""))
    if not title:
        raise SourceError(f"{path}: the front matter needs a title")
    url = _require_url(str(meta.get("url") or ""), f"{path}: the front matter's url")
    # Raw HTML in the Markdown is escaped: the post goes into thousands of inboxes.
    body_html = MarkdownIt("commonmark", {"html": False}).enable("table").render(match.group(2))
    summary = str(meta.get("summary") or "") or _shorten(html_to_text(body_html))
    return PostSpec(
        key=str(meta.get("id") or url),
        title=title,
        url=url,
        summary=summary.strip(),
        body_html=body_html,
        published_at=_as_datetime(meta.get("date")),
    )


@dataclass(frozen=True, slots=True)
class Feed:
    identity: str  # the URL, or the absolute path: where "seen" entries are recorded
    entries: list[PostSpec]  # oldest first


def _fetch(location: str) -> tuple[str, bytes]:
    if location.startswith(("http://", "https://")):
        try:
            response = httpx.get(location, timeout=20, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot fetch the feed {location}: {exc}") from None
        return location, response.content
    path = Path(location).expanduser()
    try:
        return str(path.resolve()), path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read the feed {location}: {exc.strerror}") from None


def read_feed(location: str) -> Feed:
    identity, content = _fetch(location)
    parsed = feedparser.parse(content)
    if not parsed.entries:
        if parsed.bozo:
            raise SourceError(f"{location} is not an RSS or Atom feed: {parsed.bozo_exception}")
        return Feed(identity, [])
    entries = []
    for position, entry in enumerate(parsed.entries):
        url = str(entry.get("link") or "")
        key = str(entry.get("id") or url)
        title = one_line(html_to_text(str(entry.get("title") or "")))
        if not key or not url.startswith(("http://", "https://")) or not title:
            continue  # an entry nobody could click through to
        parsed_time = entry.get("published_parsed") or entry.get("updated_parsed")
        published = (
            datetime.fromtimestamp(calendar.timegm(parsed_time), UTC) if parsed_time else None
        )
        summary = _shorten(html_to_text(str(entry.get("summary") or "")))
        entries.append((published, -position, PostSpec(key, title, url, summary, "", published)))
    # Oldest first: by date where every entry has one, else feeds list the newest first.
    if all(published for published, _, _ in entries):
        entries.sort(key=lambda item: (item[0], item[1]))
    else:
        entries.sort(key=lambda item: item[1])
    return Feed(identity, [spec for _, _, spec in entries])
