"""Entry keys that survive a blog's move, and match the keys older versions stored."""

from __future__ import annotations

import pytest

from subscribe.posts import identity


@pytest.mark.parametrize(
    "url",
    [
        "http://www.blog.example.org/2026/hello",
        "https://blog.example.org/2026/hello/",
        "https://Blog.Example.org:443/2026/hello/?utm_source=rss&utm_medium=rss",
        "https://blog.example.org/2026/hello?fbclid=abc#comments",
        "https://blog.example.org/2026/hello?gclid=1&mc_cid=2&mc_eid=3",
        "https://blog.example.org/2026/hello?source=rss----a1b2c3---4",
    ],
)
def test_moved_and_decorated_links_normalise_alike(url: str) -> None:
    assert identity.normalise_link(url) == "blog.example.org/2026/hello"


def test_what_names_a_page_is_kept() -> None:
    assert identity.normalise_link("https://blog.example.org/?p=12&utm_campaign=x") == (
        "blog.example.org?p=12"
    )
    assert identity.normalise_link("https://blog.example.org:8443/a?b=2&a=1") == (
        "blog.example.org:8443/a?a=1&b=2"
    )
    assert identity.normalise_link("https://blog.example.org/search?source=web") == (
        "blog.example.org/search?source=web"
    )


def test_keys_guid_first_then_link_with_title_as_tie_breaker() -> None:
    assert identity.entry_key("tag:blog,2026:1", "https://b/x", "T", link_is_shared=False) == (
        "tag:blog,2026:1"
    )
    # A permalink GUID moves with the site: normalised like a link.
    assert identity.entry_key("http://www.b.example/x/", "", "T", link_is_shared=False) == (
        "b.example/x"
    )
    assert identity.entry_key("", "https://b.example/", "One", link_is_shared=True) == (
        "b.example One"
    )


def test_stored_keys_are_compared_normalised() -> None:
    seen = identity.expand_seen(["http://www.b.example/x/", "urn:uuid:1"])
    assert {"b.example/x", "urn:uuid:1", "http://www.b.example/x/"} <= seen


def test_same_feed_under_another_spelling() -> None:
    assert identity.same_feed("http://www.b.example/feed/", "https://b.example/feed")
    assert not identity.same_feed("https://b.example/feed", "https://b.example/other")
    assert not identity.same_feed("/srv/feed.xml", "/srv/other.xml")


def test_percent_encoded_and_plain_paths_are_one_link() -> None:
    encoded = identity.normalise_link("https://blog.example.org/2026/caf%C3%A9-cr%c3%a8me/")
    assert encoded == identity.normalise_link("https://blog.example.org/2026/café-crème")
    assert encoded == "blog.example.org/2026/café-crème"
    # A key stored escaped (by the previous normalisation) still matches.
    assert encoded in identity.expand_seen(["blog.example.org/2026/caf%C3%A9-cr%C3%A8me"])
    assert "moved:/2026/café-crème Café" in identity.expand_seen(
        ["moved:/2026/caf%C3%A9-cr%C3%A8me Café"]
    )
