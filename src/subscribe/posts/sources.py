"""Where a post comes from: CLI flags, a Markdown file with front matter (``markdown``), or
an RSS/Atom feed (``feeds``)."""

from __future__ import annotations

from subscribe.content import PostSpec, one_line
from subscribe.errors import SourceError

from .feeds import Feed, FeedItem, add_categories, read_feed
from .markdown import from_markdown, require_url

__all__ = ["Feed", "FeedItem", "add_categories", "from_flags", "from_markdown", "read_feed"]


def from_flags(*, title: str, url: str, summary: str = "") -> PostSpec:
    title = one_line(title)
    if not title:
        raise SourceError("the post needs a --title")
    url = require_url(url, "--url")
    return PostSpec(key=url, title=title, url=url, summary=summary.strip())
