"""Feeds fetched over HTTP from a real server on 127.0.0.1: relative links against the
address the feed came from, redirects, a blog's home page that names its feed."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from webserver import plain_http_server

from subscribe.errors import SourceError
from subscribe.posts.feeds import Feed, read_feed

RELATIVE_FEED = b"""<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Releases</title><id>urn:releases</id>
<updated>2026-11-30T12:00:00Z</updated>
<entry><id>urn:release:2</id><title>v2.0</title><updated>2026-11-30T12:00:00Z</updated>
<link rel="alternate" href="releases/tag/v2.0"/>
<content type="html">&lt;p&gt;See &lt;a href="../docs/upgrade"&gt;upgrading&lt;/a&gt;.&lt;/p&gt;
&lt;img src="shots/v2.png" width="800"&gt;</content></entry>
</feed>"""

JSON_HOME_PAGE = b"""<!DOCTYPE html><html><head>
<link rel="alternate" type="application/feed+json" href="/json-feed">
<link rel="alternate" type="application/rss+xml" href="/utf8-as-text-xml">
</head><body>Both</body></html>"""

HOME_PAGE = b"""<!DOCTYPE html><html><head><title>Blog</title>
<link rel="alternate" type="application/atom+xml" title="Releases" href="/project/feed.atom">
</head><body>Hello</body></html>"""

FEEDS = Path(__file__).parent / "feeds"
# A UTF-8 feed without an XML declaration, as hand-written and some PHP feeds are.
UNDECLARED_UTF8 = (
    '<rss version="2.0"><channel><title>t</title><link>https://cafe.blog.example/</link>'
    "<item><title>Cr\u00e8me br\u00fbl\u00e9e</title><link>https://cafe.blog.example/c</link>"
    "</item></channel></rss>"
).encode()

ROUTES: dict[str, tuple[int, str, bytes]] = {
    # Feeds served with the wrong Content-Type, or a charset that is not the document's.
    "/latin1-as-html": (
        200,
        "text/html; charset=utf-8",
        (FEEDS / "rss092-latin1.xml").read_bytes(),
    ),
    "/cp1252-as-text": (200, "text/plain", (FEEDS / "rss091-cp1252.xml").read_bytes()),
    "/utf8-as-text-xml": (200, "text/xml", (FEEDS / "cjk.xml").read_bytes()),
    "/undeclared-utf8-as-html": (200, "text/html; charset=utf-8", UNDECLARED_UTF8),
    "/bom-as-octets": (200, "application/octet-stream", (FEEDS / "bom.xml").read_bytes()),
    "/json-feed": (200, "application/json", (FEEDS / "json-feed-1.1.json").read_bytes()),
    "/json-home/": (200, "text/html", JSON_HOME_PAGE),
    "/project/feed.atom": (200, "application/atom+xml", RELATIVE_FEED),
    "/home/": (200, "text/html; charset=utf-8", HOME_PAGE),
    "/plain/": (200, "text/html", b"<!DOCTYPE html><html><body>No feed here</body></html>"),
    "/empty.xml": (200, "application/rss+xml", b""),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/picky.xml":  # a bot filter: no feed for python-httpx
            agent = self.headers.get("User-Agent", "")
            ok = agent.startswith("subscribe/") and "rss+xml" in self.headers.get("Accept", "")
            body = (FEEDS / "bearblog.xml").read_bytes() if ok else b"Forbidden"
            self.send_response(200 if ok else 403)
            self.send_header("Content-Type", "application/atom+xml" if ok else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path == "/old-feed":  # moved permanently, as a blog's host does
            self.send_response(301)
            self.send_header("Location", "/project/feed.atom")
            self.end_headers()
            return
        status, kind, body = ROUTES.get(self.path, (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    with plain_http_server(_Handler) as base:
        yield base


def test_relative_links_resolve_against_the_fetched_address(web: str) -> None:
    [item] = read_feed(f"{web}/project/feed.atom").entries
    assert item.spec.url == f"{web}/project/releases/tag/v2.0"
    assert f'href="{web}/docs/upgrade"' in item.spec.body_html
    assert item.spec.image_url == f"{web}/project/shots/v2.png"


def test_after_a_redirect_the_final_address_is_the_base(web: str) -> None:
    read = read_feed(f"{web}/old-feed")
    assert read.identity == f"{web}/old-feed"  # seen entries stay recorded where they were
    assert read.entries[0].spec.url == f"{web}/project/releases/tag/v2.0"


def test_a_home_page_naming_its_feed_is_followed(web: str) -> None:
    read = read_feed(f"{web}/home/")
    assert read.followed_from == f"{web}/home/"
    assert read.identity == f"{web}/project/feed.atom"
    assert [item.spec.title for item in read.entries] == ["v2.0"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/plain/", "is a web page, not an RSS or Atom feed, and it names none"),
        ("/empty.xml", "is empty, not an RSS or Atom feed"),
        ("/missing.xml", "cannot fetch the feed"),
    ],
)
def test_what_the_server_sends_that_is_no_feed(web: str, path: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        read_feed(f"{web}{path}")


@pytest.mark.parametrize(
    ("path", "title"),
    [
        ("/latin1-as-html", "Les f\u00e8ves d'hiver"),
        ("/cp1252-as-text", "Espresso \u2013 the long way round"),
        ("/utf8-as-text-xml", "\u5728 Vue \u4e2d\u4f7f\u7528\u7ec4\u5408\u5f0f API"),
        ("/undeclared-utf8-as-html", "Cr\u00e8me br\u00fbl\u00e9e"),
        ("/bom-as-octets", "\u00dcber Umlaute"),
        ("/json-feed", "Version 3"),
    ],
)
def test_a_feed_served_as_the_wrong_type_is_read_as_what_it_is(
    web: str, path: str, title: str
) -> None:
    read = read_feed(f"{web}{path}")
    assert read.entries[-1].spec.title == title


def test_a_page_naming_a_json_feed_and_rss_is_followed_to_the_rss(web: str) -> None:
    read = read_feed(f"{web}/json-home/")
    assert read.identity == f"{web}/utf8-as-text-xml"


def test_the_request_names_us_and_asks_for_a_feed(web: str) -> None:
    assert newest_title(read_feed(f"{web}/picky.xml")) == "Fewer tabs"


def newest_title(read: Feed) -> str:
    return read.entries[-1].spec.title
