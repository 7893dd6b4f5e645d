"""Getting a feed's bytes: over HTTP(S) as a feed reader asks for them, or from a file; and
the feed a web page advertises, for a blog's address given instead of its feed's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx
import lxml.html
from lxml import etree

from subscribe.errors import SourceError

from . import identity

_FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/rdf+xml"})
_JSON_FEED_TYPES = frozenset({"application/feed+json", "application/json"})


@dataclass(frozen=True, slots=True)
class Fetched:
    identity: str
    content: bytes
    web_url: str  # where it came from over HTTP(S), after redirects; "" for a file
    content_type: str


def _request_headers() -> dict[str, str]:
    """Who asks and for what: hosts behind a bot filter (Cloudflare in front of Medium,
    Substack, many WordPress sites) refuse httpx's default ``python-httpx`` agent."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("subscribe")
    except PackageNotFoundError:
        ours = "dev"
    return {
        "User-Agent": f"subscribe/{ours} (newsletter feed reader)",
        "Accept": (
            "application/rss+xml, application/atom+xml, application/feed+json, "
            "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
        ),
    }


def fetch(location: str) -> Fetched:
    if identity.is_web_url(location):
        try:
            response = httpx.get(
                location, headers=_request_headers(), timeout=20, follow_redirects=True
            )
            response.raise_for_status()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise SourceError(f"cannot fetch the feed {location}: {exc}") from None
        content_type = response.headers.get("content-type", "")
        return Fetched(location, response.content, str(response.url), content_type)
    path = Path(location).expanduser()
    try:
        return Fetched(str(path.resolve()), path.read_bytes(), "", "")
    except OSError as exc:
        raise SourceError(f"cannot read the feed {location}: {exc.strerror}") from None


def advertised_feed(fetched: Fetched) -> str:
    """The feed a web page names in ``<link rel="alternate" type="application/rss+xml">``."""
    try:
        page = lxml.html.document_fromstring(fetched.content)
    except (etree.ParserError, ValueError):
        return ""
    named = []
    for link in page.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").lower().split(";")[0].strip()
        href = (link.get("href") or "").strip()
        if "alternate" in rel and href and (kind in _FEED_TYPES or kind in _JSON_FEED_TYPES):
            named.append((kind in _JSON_FEED_TYPES, href))  # RSS or Atom first
    if not named:
        return ""
    href = min(named, key=lambda found: found[0])[1]
    if fetched.web_url:
        return urljoin(fetched.web_url, href)
    if identity.is_web_url(href):
        return href
    return str(Path(fetched.identity).parent / href)


def looks_like_html(fetched: Fetched) -> bool:
    head = fetched.content[:2048].lstrip().lower()
    return "html" in fetched.content_type or head.startswith((b"<!doctype html", b"<html"))
