"""Feeds in the shapes real engines write them (tests/posts/feeds/, written for these tests):
what each entry becomes, and what is not a feed."""

from __future__ import annotations

from pathlib import Path

import pytest

from subscribe.content import PostSpec
from subscribe.errors import SourceError
from subscribe.posts.feeds import Feed, read_feed

FEEDS = Path(__file__).parent / "feeds"


def feed(name: str) -> Feed:
    return read_feed(str(FEEDS / name))


def newest(name: str) -> PostSpec:
    return feed(name).entries[-1].spec


def test_wordpress_summary_tail_categories_and_image() -> None:
    post = newest("wordpress.xml")
    assert post.title == "Moving from Jekyll to Pelican"
    # "Pelican</a>, and": no space before the comma; the "Read more »" and "[…]" tails gone.
    assert post.summary == (
        "I tried Pelican, and after a week I kept it. Here is why the move took an afternoon …"
    )
    assert post.categories == ("Static sites", "Python")
    # The first real image of the content (the 1x1 pixel is not one).
    assert post.image_url.endswith("/pelican-1024x576.jpg")
    assert post.published_at is not None and post.published_at.isoformat().startswith("2026-12-01")
    # WordPress' default category says nothing.
    assert feed("wordpress.xml").entries[0].spec.categories == ()


def test_ghost_media_content_and_substack_image_enclosure() -> None:
    ghost = newest("ghost.xml")
    assert ghost.image_url == "https://journal.blog.example/content/images/2026/11/ridge.jpg"
    assert ghost.summary == "What the weather did, and what we did about it."
    assert ghost.categories == ("Travel", "Mountains")
    substack = newest("substack.xml")
    assert substack.image_url == "https://substackcdn.example/image/fetch/w_1200/compound.png"
    assert substack.summary == "A subtitle that says what the issue is about"


def test_medium_content_only_without_its_tracker_and_footer() -> None:
    post = newest("medium.xml")
    assert post.summary == (
        "Friday evening, an empty repository.\n\nSaturday\n\nThe first version worked by lunch."
    )
    assert "stat?event" not in post.body_html and "<img" not in post.body_html
    assert post.image_url == "https://cdn-images.medium.example/max/1024/1*abc.jpeg"


def test_blogger_atom_read_more_and_a_thumbnail_too_small_to_show() -> None:
    post = newest("blogger.xml")
    assert post.summary == "Mix, wait, fold, bake.\n\nThat is all of it."
    assert post.categories == ("baking", "bread")
    # The 72 px thumbnail is an icon: the content's 320 px image heads the email instead.
    assert post.image_url.endswith("/s320/loaf.jpg")


def test_hugo_code_blocks_left_out() -> None:
    post = newest("hugo.xml")
    assert (
        post.summary
        == "Three lines in ~/.bashrc and the history is kept.\n\nThat is the whole trick."
    )
    assert "histappend" not in post.body_html
    assert "<code>~/.bashrc</code>" in post.body_html


def test_jekyll_feed_relative_links_against_xml_base() -> None:
    post = newest("jekyll.xml")
    assert post.image_url == "https://lab.blog.example/assets/thermometer-thumb.jpg"
    assert post.categories == ("hardware", "measurement")
    assert post.summary == "It reads two degrees high."


def test_hexo_summary_cut_inside_a_tag() -> None:
    post = newest("hexo.xml")
    assert "<cod" not in post.summary and "&lt;" not in post.body_html
    assert post.summary == "Open the file and iterate over it with for, then strip the …"


def test_podcast_episode_image_and_keywords() -> None:
    post = newest("podcast.xml")
    assert post.image_url == "https://nightshift.podcast.example/ep42.jpg"  # not the show's cover
    assert post.categories == ("ops", "pager", "sleep")
    assert post.url == "https://nightshift.podcast.example/episodes/42"


def test_untitled_entries_are_announced_with_a_made_up_title() -> None:
    titles = [item.spec.title for item in feed("microblog.xml").entries]
    assert titles == ["A longer post with a title", "Finally fixed the bike.", "November 29, 2026"]
    photo = feed("microblog.xml").entries[-1].spec
    assert photo.image_url == "https://june.micro.example/uploads/2026/sunset.jpg"
    scripting = [item.spec.title for item in feed("scripting.xml").entries]
    assert scripting == [
        "Another one, earlier in the day.",
        "Here is a thought worth linking, in one line.",
    ]


def test_github_releases_relative_links_resolved_against_the_feeds_own_link() -> None:
    entries = feed("github-releases.xml").entries
    assert [item.spec.url for item in entries] == [
        "https://github.com/tinytools/squash/releases/tag/v1.2.0",
        "https://github.com/tinytools/squash/releases/tag/v1.3.0",
    ]
    newest_release = entries[-1].spec
    assert 'href="https://github.com/tinytools/squash/pull/88"' in newest_release.body_html
    assert newest_release.image_url == ""  # the 30 px avatar is not the post's image


def test_xml_base_and_rss_1() -> None:
    post = newest("xml-base.xml")
    assert post.url == "https://docs.blog.example/journal/entries/relative-everything.html"
    assert 'href="https://docs.blog.example/journal/notes/base.html"' in post.body_html
    rdf = newest("rss1.rdf")
    assert (rdf.title, rdf.categories) == ("Why RDF never left", ("formats",))


def test_double_escaped_html_is_unescaped_once() -> None:
    post = newest("double-escaped.xml")
    assert post.title == "Escaped twice & shown raw"
    assert post.summary == "Some bold words & more."
    assert post.body_html == "<p>Some <strong>bold</strong> words &amp; more.</p>"


def test_cjk_text_gets_no_spaces() -> None:
    post = newest("cjk.xml")
    assert post.summary == "在Vue中，我们可以用组合式写法组织代码。这样更清楚。\n\n第二段。"
    assert post.categories == ("前端",)


def test_a_moved_feed_gives_its_entries_the_same_keys() -> None:
    before = {item.spec.title: item.spec.key for item in feed("moved-before.xml").entries}
    after = {item.spec.title: item.spec.key for item in feed("moved-after.xml").entries}
    assert before == {title: after[title] for title in before}
    domain = {item.spec.title: item.keys for item in feed("moved-domain.xml").entries}
    moved = {item.spec.title: item.record for item in feed("moved-after.xml").entries}
    for title, record in moved.items():
        assert set(record) & set(domain[title])  # the move alias: path and title


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.xml", "is empty, not an RSS or Atom feed"),
        ("garbage.txt", "is not an RSS or Atom feed"),
        ("not-a-feed.html", "is a web page, not an RSS or Atom feed, and it names none"),
        ("not-a-feed.json", "is JSON but no JSON Feed, nor an RSS or Atom feed"),
        ("no-links.xml", "none of its 2 entries can be announced (it has no link)"),
    ],
)
def test_what_is_not_a_feed_is_an_error(name: str, message: str) -> None:
    with pytest.raises(SourceError) as raised:
        feed(name)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_page_that_advertises_its_feed_is_followed() -> None:
    followed = feed("blog-home.html")
    assert followed.followed_from.endswith("blog-home.html")
    assert followed.identity == str((FEEDS / "wordpress.xml").resolve())
    assert followed.entries[-1].spec.title == "Moving from Jekyll to Pelican"


def test_relative_link_without_any_base_is_skipped_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(
        '<rss version="2.0"><channel><title>t</title>'
        "<item><title>Good</title><link>https://b.example.org/good</link></item>"
        "<item><title>Lost</title><link>/relative/only</link></item>"
        "<item><title>Linkless</title></item></channel></rss>"
    )
    read = read_feed(str(path))
    assert [item.spec.title for item in read.entries] == ["Good"]
    assert [(s.entry, s.reason) for s in read.skipped] == [
        ("Lost", "its link '/relative/only' is relative and the feed has no address to resolve it"),
        ("Linkless", "it has no link"),
    ]


def test_an_unusable_summary_gives_way_to_the_content(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        "<channel><title>t</title><link>https://b.example.org/</link>"
        "<item><title>Only a tail</title><link>https://b.example.org/a</link>"
        "<description>[&amp;#8230;]</description>"
        "<content:encoded>&lt;p&gt;The real &lt;em&gt;text&lt;/em&gt;.&lt;/p&gt;</content:encoded>"
        "</item><item><link>https://b.example.org/bare</link></item></channel></rss>"
    )
    entries = read_feed(str(path)).entries
    assert [item.spec.summary for item in entries] == ["", "The real text."]  # oldest first
    assert entries[1].spec.body_html == "<p>The real <em>text</em>.</p>"
    # Untitled, no text and no date: the link is all there is to call it.
    assert entries[0].spec.title == "https://b.example.org/bare"
