"""Checks worth a warning before a post goes out: links readers cannot open.

A post written on a laptop (``http://localhost:1313/...``, Hugo's dev server) or from a
template (``https://example.com/``) mails thousands of dead links. ``preview`` and
``--dry-run`` name them; sending is the author's call.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import lxml.html
from lxml import etree

from subscribe.content import PostSpec

_EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net")
# RFC 2606 / 6761 names that never reach a public web site.
_RESERVED_SUFFIXES = (".example", ".test", ".invalid", ".localhost", ".local")


def is_unreachable_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(_RESERVED_SUFFIXES):
        return True
    if host in _EXAMPLE_DOMAINS or host.endswith(tuple("." + d for d in _EXAMPLE_DOMAINS)):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified


def _linked(markup: str) -> list[str]:
    if not markup.strip():
        return []
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return []
    found = [element.get("href") or "" for element in root.iter("a")]
    return found + [element.get("src") or "" for element in root.iter("img")]


def unreachable_links(spec: PostSpec) -> list[str]:
    """The post's links (its URL, image, and those in its body) to local or example hosts."""
    found = []
    for url in [spec.url, spec.image_url, *_linked(spec.body_html)]:
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            continue
        if host and is_unreachable_host(host) and url not in found:
            found.append(url)
    return found
