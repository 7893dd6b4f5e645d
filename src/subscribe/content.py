"""The values every layer shares: what a post is, and header-safe text.

``PostSpec`` is made by ``posts`` (flags, Markdown, feeds), rendered by ``mail`` and stored
by ``db``; it lives below all three so none of them imports another for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class PostSpec:
    key: str  # feed GUID or URL: what makes "the same post"
    title: str
    url: str
    summary: str = ""  # text: paragraphs separated by a blank line
    # Trusted HTML for the HTML part: our own Markdown rendering, or a feed entry's excerpt
    # after sanitising (posts.summaries).
    body_html: str = ""
    published_at: datetime | None = None
    categories: tuple[str, ...] = ()
    image_url: str = ""  # absolute http(s), or empty


def one_line(value: str) -> str:
    """Header-safe text: control characters (CR, LF...) become spaces, runs collapse."""
    if value.isprintable() and "  " not in value and value == value.strip():
        return value  # the usual case, without the regex and the split
    return " ".join(_CONTROL.sub(" ", value).split())
