"""Reading a blog's feed (RSS 0.9x/1.0/2.0, Atom, JSON Feed) into posts to announce.

feedparser does the parsing (and resolves relative links against ``xml:base`` and the
address the feed was fetched from); this module decides what an entry means for a mailing
list: its identity (``identity``), a link readers can open, a title even when the entry has
none, an excerpt (``summaries``), its date, categories and image. A location that is not a
feed is an error, never "nothing new": a cron job pointed at the wrong page must fail
loudly. A web page that advertises its feed is followed, as feed readers do.
"""

from __future__ import annotations

import calendar
import hashlib
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from subscribe.content import PostSpec, one_line
from subscribe.errors import SourceError
from subscribe.mail.dates import format_date

from . import feeddates, identity, jsonfeed, summaries
from .feedfetch import Fetched, advertised_feed, fetch, looks_like_html

MAX_CATEGORIES = 10
# What fits the store (post.title is 500 characters, keys and URLs 2000) with room for
# the keys made of a link and a title: a title is cut at a word, a longer link or image
# address is none, a longer GUID is known by its digest.
MAX_TITLE = 300
MAX_LINK = 1500
# Titles that say an entry has none: the email is better titled by its text or date.
_PLACEHOLDER_TITLES = frozenset({"untitled", "(untitled)", "(no title)", "no title"})
_TUMBLR_TITLES = frozenset({"photo", "video", "audio", "quote", "link", "chat", "answer"})
_IGNORED_CATEGORIES = frozenset({"uncategorized", "uncategorised"})  # WordPress' default
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")


@dataclass(frozen=True, slots=True)
class FeedItem:
    """An entry worth announcing, and every key it may have been recorded under."""

    spec: PostSpec
    keys: tuple[str, ...]  # spec.key first, then older spellings and the move alias
    record: tuple[str, ...]  # the keys to write once it is announced or passed over
    # Compared only when none of the feed's entries matches by ``keys`` (a feed whose
    # GUIDs and links all changed at once: a new blog engine): the entry's title.
    fallback: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Skipped:
    entry: str  # its title, or its position in the feed
    reason: str


@dataclass(frozen=True, slots=True)
class Feed:
    identity: str  # the URL, or the absolute path: where "seen" entries are recorded
    entries: list[FeedItem]  # oldest first
    skipped: list[Skipped] = field(default_factory=list)
    followed_from: str = ""  # the web page that named this feed, when one did

    def with_categories(self, names: Sequence[str]) -> Feed:
        entries = [replace(item, spec=add_categories(item.spec, names)) for item in self.entries]
        return replace(self, entries=entries)


def add_categories(spec: PostSpec, names: Sequence[str]) -> PostSpec:
    """The post with ``names`` added to its categories (``notify --category``)."""
    return replace(spec, categories=clean_categories([*spec.categories, *names]))


def clean_categories(names: Sequence[str]) -> tuple[str, ...]:
    kept: dict[str, str] = {}
    for name in names:
        name = one_line(str(name))[:100]
        if name and name.casefold() not in _IGNORED_CATEGORIES:
            kept.setdefault(name.casefold(), name)
    return tuple(kept.values())[:MAX_CATEGORIES]


# -- fetching ----------------------------------------------------------------------------


def _parse(fetched: Fetched) -> Mapping[str, Any]:
    if fetched.content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        parsed = jsonfeed.parse(fetched.content)
        if parsed is not None:
            return parsed
    headers = {"content-type": fetched.content_type} if fetched.content_type else {}
    if fetched.web_url:
        headers["content-location"] = fetched.web_url  # the base for relative links
    # A stream, never the bytes: feedparser would take short bytes for a path to open.
    # It copes with a wrong Content-Type (text/html, text/plain) and with a charset that
    # is not the document's by itself (tests/posts/test_feed_http.py).
    return feedparser.parse(io.BytesIO(fetched.content), response_headers=headers)


def read_feed(
    location: str, *, language: str = "en", timezone: str = "UTC", _followed_from: str = ""
) -> Feed:
    """The feed at ``location`` (a URL or a file); ``language`` and ``timezone`` (the
    site's) word the date that titles an untitled entry."""
    fetched = fetch(location)
    if not fetched.content.strip():
        raise SourceError(f"{location} is empty, not an RSS or Atom feed")
    parsed = _parse(fetched)
    if not parsed.get("entries") and not parsed.get("version"):
        if looks_like_html(fetched):
            advertised = advertised_feed(fetched)
            if advertised and not _followed_from:
                return read_feed(
                    advertised, language=language, timezone=timezone, _followed_from=location
                )
            raise SourceError(
                f"{location} is a web page, not an RSS or Atom feed, and it names none "
                '(<link rel="alternate" type="application/rss+xml" href=...>)'
            )
        if fetched.content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"{", b"[")):
            raise SourceError(f"{location} is JSON but no JSON Feed, nor an RSS or Atom feed")
        reason = parsed.get("bozo_exception") or "no feed elements"
        raise SourceError(f"{location} is not an RSS or Atom feed: {one_line(str(reason))}")
    feed = _entries(fetched, parsed, language=language, timezone=timezone)
    if parsed["entries"] and not feed.entries:
        count = len(parsed["entries"])
        which = "its only entry" if count == 1 else f"none of its {count} entries"
        verb = "cannot" if count == 1 else "can"
        raise SourceError(f"{location}: {which} {verb} be announced ({feed.skipped[0].reason})")
    return replace(feed, followed_from=_followed_from)


# -- entries -----------------------------------------------------------------------------


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _fallback_base(fetched: Fetched, parsed: Mapping[str, Any]) -> str:
    """Where relative links point when no ``xml:base`` said: the address the feed came
    from, else the feed's own ``<link>`` (a file on disk has no web address of its own)."""
    if fetched.web_url:
        return fetched.web_url
    own = _text(parsed.get("feed", {}).get("link")).strip()
    return own if identity.is_web_url(own) else ""


def _link(entry: Mapping[str, Any], base: str) -> tuple[str, str]:
    """(absolute link, "") or ("", why there is none)."""
    raw = _text(entry.get("link")).strip()
    # FeedBurner and its kin rewrite every link to go through them (feedproxy.google.com/
    # ~r/...) and keep the post's own address in feedburner:origLink.
    original = _text(entry.get("feedburner_origlink")).strip()
    if identity.is_web_url(original):
        raw = original
    if not raw:
        return "", "it has no link"
    link = urljoin(base, raw) if base else raw
    try:
        host = urlsplit(link).hostname
    except ValueError:
        host = None
    if len(link) > MAX_LINK:
        return "", f"its link is longer than {MAX_LINK} characters"
    if not identity.is_web_url(link) or not host:
        if not base and not identity.is_web_url(raw):
            return "", f"its link {raw!r} is relative and the feed has no address to resolve it"
        return "", f"its link {raw!r} is not a web address"
    return link, ""


def _published(entry: Mapping[str, Any]) -> datetime | None:
    """When the entry was published, else last updated; feedparser's reading, or ours
    where it read nothing (``feeddates``: no zone, month names in other languages)."""
    for name in ("published", "updated"):
        raw = _text(entry.get(name))
        parsed_time = entry.get(name + "_parsed")
        if parsed_time:
            try:
                found = datetime.fromtimestamp(calendar.timegm(parsed_time), UTC)
            except (OverflowError, ValueError, OSError, TypeError):  # a year it let through
                continue
            return feeddates.corrected(raw, found)
        if raw and (found_here := feeddates.parse(raw)) is not None:
            return found_here
    return None


def _is_plain(detail: object) -> bool:
    return isinstance(detail, Mapping) and detail.get("type") == "text/plain"


def _summary(entry: Mapping[str, Any], title: str, base: str) -> tuple[summaries.Excerpt, str]:
    """The excerpt (from the summary, else the content) and the content's markup."""
    contents = [c for c in entry.get("content") or [] if isinstance(c, Mapping)]
    content = next((c for c in contents if not _is_plain(c)), contents[0] if contents else {})
    content_value = _text(content.get("value"))
    found = summaries.excerpt(
        _text(entry.get("summary")), base=base, plain=_is_plain(entry.get("summary_detail"))
    )
    if not summaries.is_usable(found, title) and content_value:
        found = summaries.excerpt(content_value, base=base, plain=_is_plain(content))
    return found, content_value


def _image(entry: Mapping[str, Any], content: str, base: str) -> str:
    """media:content/thumbnail, an image enclosure, itunes:image (or JSON Feed's image,
    Hashnode's cover), else the content's first."""
    candidates: list[Mapping[str, Any]] = []
    for media in entry.get("media_content") or []:
        kind = _text(media.get("type")) or _text(media.get("medium"))
        if kind.startswith("image") or _text(media.get("url")).lower().endswith(_IMAGE_SUFFIXES):
            candidates.append(media)
    candidates += entry.get("media_thumbnail") or []
    for link in entry.get("links") or []:
        if link.get("rel") == "enclosure" and _text(link.get("type")).startswith("image/"):
            candidates.append({"url": link.get("href")})
    image = entry.get("image")
    if isinstance(image, Mapping):
        candidates.append({"url": image.get("href")})
    cover = _text(entry.get("hashnode_coverimage"))  # Hashnode's own cover image element
    if cover:
        candidates.append({"url": cover})
    for candidate in candidates:
        url = urljoin(base, _text(candidate.get("url")).strip())
        width, height = candidate.get("width"), candidate.get("height")
        if identity.is_web_url(url) and not summaries.is_decorative(url, width, height):
            return url
    return summaries.first_image(content or _text(entry.get("summary")), base=base)


def _categories(entry: Mapping[str, Any]) -> tuple[str, ...]:
    names = []
    for tag in entry.get("tags") or []:
        if isinstance(tag, Mapping):
            names.append(summaries.plain_text(_text(tag.get("term")) or _text(tag.get("label"))))
    return clean_categories(names)


def _title(
    entry: Mapping[str, Any],
    text: str,
    published: datetime | None,
    link: str,
    *,
    language: str = "en",
    timezone: str = "UTC",
    placeholders: frozenset[str] | set[str] = frozenset(),
) -> str:
    raw = _text(entry.get("title"))
    title = raw if _is_plain(entry.get("title_detail")) else summaries.plain_text(raw)
    title = one_line(title)
    if title and title.casefold() not in placeholders:
        return _shortened(title)
    # Untitled (micro.blog, Scripting News): the start of the text, else the date.
    if text:
        return summaries.title_from_text(text)
    return format_date(published, language, timezone) or _shortened(link)


def _shortened(title: str) -> str:
    if len(title) <= MAX_TITLE:
        return title
    space = title.rfind(" ", 0, MAX_TITLE)
    return title[: space if space > MAX_TITLE // 2 else MAX_TITLE].rstrip(" ,;:") + "\u2026"


def _entries(fetched: Fetched, parsed: Mapping[str, Any], *, language: str, timezone: str) -> Feed:
    base = _fallback_base(fetched, parsed)
    found: list[tuple[Mapping[str, Any], str]] = []
    skipped = []
    for position, entry in enumerate(parsed.get("entries") or [], start=1):
        link, reason = _link(entry, base)
        if reason:
            label = one_line(summaries.plain_text(_text(entry.get("title")))) or f"entry {position}"
            skipped.append(Skipped(label, reason))
        else:
            found.append((entry, link))
    shared = Counter(identity.normalise_link(link) for _, link in found)
    # A GUID that several entries with different links share (the site's address, "0",
    # a template's constant) names none of them: those entries are known by their link.
    guid_links: dict[str, set[str]] = {}
    for entry, link in found:
        guid = identity.normalise_key(_text(entry.get("id")).strip())
        guid_links.setdefault(guid, set()).add(identity.normalise_link(link))
    useless = {guid for guid, links in guid_links.items() if guid and len(links) > 1}
    generator = _text(parsed.get("feed", {}).get("generator")).lower()
    placeholders = _PLACEHOLDER_TITLES | (_TUMBLR_TITLES if "tumblr" in generator else set())
    dated: list[tuple[datetime | None, int, FeedItem]] = []
    taken: set[str] = set()
    for position, (entry, link) in enumerate(found):
        published = _published(entry)
        excerpt, content = _summary(entry, _text(entry.get("title")), link)
        title = _title(
            entry,
            excerpt.text,
            published,
            link,
            language=language,
            timezone=timezone,
            placeholders=placeholders,
        )
        guid = _text(entry.get("id")).strip()
        if identity.normalise_key(guid) in useless:
            guid = ""
        elif len(guid) > MAX_LINK:
            guid = "sha256:" + hashlib.sha256(guid.encode()).hexdigest()
        key = identity.entry_key(
            guid, link, title, link_is_shared=shared[identity.normalise_link(link)] > 1
        )
        # The same post twice: one GUID, or (a feed merged from two sources, a proxy that
        # gave its copy a GUID of its own) one link under one title.
        twin = f"{identity.normalise_link(link)} {title}"
        if key in taken or twin in taken:
            skipped.append(Skipped(title, "the same entry as another one in the feed"))
            continue
        taken.update((key, twin))
        spec = PostSpec(
            key=key,
            title=title,
            url=link,
            summary=excerpt.text,
            body_html=excerpt.html,
            published_at=published,
            categories=_categories(entry),
            image_url=image if len(image := _image(entry, content, link)) <= 2000 else "",
        )
        # How the entry was written before keys were normalised: ``entry.id or link``.
        legacy = guid or _text(entry.get("link")).strip()
        alias = identity.move_alias(link, title)
        # Path and date: the same post when its GUID and its title changed together (not
        # for a link several entries share: a home page, a podcast's one page).
        is_shared = shared[identity.normalise_link(link)] > 1
        dated_alias = identity.dated_alias(link, published) if published and not is_shared else ""
        keys = tuple(dict.fromkeys(k for k in (key, legacy, alias, dated_alias) if k))
        fallback = (identity.title_key(title),)
        record = tuple(k for k in (key, alias, dated_alias, *fallback) if k)
        item = FeedItem(spec, keys, record, fallback)
        dated.append((published, -position, item))
    # Oldest first: by date where every entry has one, else feeds list the newest first.
    if all(published for published, _, _ in dated):
        dated.sort(key=lambda item: (item[0], item[1]))
    else:
        dated.sort(key=lambda item: item[1])
    return Feed(fetched.identity, [item for _, _, item in dated], skipped)
