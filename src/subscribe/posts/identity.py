"""What makes two feed entries "the same post", so that a moved blog announces nothing again.

A blog that moves from http to https, drops ``www.``, gains a trailing slash or has its
links decorated with ``utm_*`` parameters still publishes the same entries. An entry's key
is its GUID, else its link, both *normalised* (scheme, ``www.``, default port, trailing
slash, fragment and tracking parameters dropped, the path's %XX escapes decoded); two
entries of one feed with the same normalised link are told apart by their title.

Databases written before this module hold the raw GUID or link (``entry.id or link``), so
the stored keys are normalised the same way when a run compares; and every entry is also
recorded under a *move alias* (its path and title, without the host), which lets a move
to a new domain match the entries seen before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

# Query parameters that only say where a click came from, never which page it is.
_TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "hsa_", "__hs", "_hs")
_TRACKING = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "ref_src",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "rb_clickid",
        "s_cid",
        "mkt_tok",
    }
)
_FROM_FEED = frozenset({"source", "ref", "src", "from", "via"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(name: str, value: str) -> bool:
    lowered = name.lower()
    if lowered in _TRACKING or lowered.startswith(_TRACKING_PREFIXES):
        return True
    # Medium appends ?source=rss----<id>---4 to every link of its feeds; others ?ref=rss,
    # ?src=feed or ?from=rss.
    return lowered in _FROM_FEED and value.lower().startswith(("rss", "feed", "atom"))


def is_web_url(value: str) -> bool:
    return value.lower().startswith(("http://", "https://"))


def normalise_link(url: str, *, keep_host: bool = True) -> str:
    """``https://www.Blog.example:443/a/?utm_source=x&b=1#c`` -> ``blog.example/a?b=1``.

    Not a URL to open (the scheme is gone): a key to compare. ``keep_host=False`` gives
    the path and query alone, for the move alias.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a malformed port or IPv6 literal: compare it as written
        return url.strip()
    host = (parts.hostname or "").lower().removeprefix("www.")
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    # Percent-encoded or not (``/caf%C3%A9``, ``/café``): engines and their updates differ.
    path = unquote(parts.path).rstrip("/")
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not _is_tracking(name, value)
    ]
    normalised = (host if keep_host else "") + path
    if query:
        normalised += "?" + urlencode(sorted(query))
    return normalised


def normalise_key(key: str) -> str:
    """A stored or fresh key in comparable form: URLs normalised, anything else as is."""
    return normalise_link(key) if is_web_url(key) else key


def entry_key(guid: str, link: str, title: str, *, link_is_shared: bool) -> str:
    """The key an entry is stored under: its GUID, else its link (plus the title when
    another entry of the feed has the same normalised link)."""
    if guid:
        return normalise_key(guid)
    key = normalise_link(link)
    return f"{key} {title}" if link_is_shared else key


def move_alias(link: str, title: str) -> str:
    """The entry's path and title, host left out: what survives a move to a new domain."""
    return f"moved:{normalise_link(link, keep_host=False)} {title}"


def dated_alias(link: str, published: datetime) -> str:
    """The entry's path and the second it was published: what survives a new GUID and an
    edited title at once (host left out, as in the move alias)."""
    stamp = published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"at:{normalise_link(link, keep_host=False)} {stamp}"


def title_key(title: str) -> str:
    """The entry's title alone, case and spacing aside: compared only when nothing else of
    a feed matches (a blog re-published by a new engine, every GUID and link new)."""
    return "title:" + " ".join(title.casefold().split())


def expand_seen(stored: Iterable[str]) -> set[str]:
    """The keys stored for a feed, in both their written and their normalised forms."""
    seen = set(stored)
    seen.update(normalise_key(key) for key in list(seen))
    # Keys normalised before paths were decoded kept their %XX escapes.
    seen.update(unquote(key) for key in list(seen) if "%" in key)
    return seen


def same_feed(a: str, b: str) -> bool:
    """Whether two feed locations name one feed (``http://www.x/feed/``, ``https://x/feed``)."""
    if is_web_url(a) and is_web_url(b):
        return normalise_link(a) == normalise_link(b)
    return a == b
