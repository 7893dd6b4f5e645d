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


@pytest.mark.parametrize(
    ("name", "count", "title", "url"),
    [
        ("tumblr.xml", 2, "A heron at the canal, in ten lines.", "https://inkling-sketches.tumblr.example/post/733210000000000001/a-heron-at-the-canal-in-ten-lines"),
        ("squarespace.xml", 2, "Glaze tests, round three", "https://www.ferncliffpottery.example/journal/glaze-tests-round-three"),
        ("wordpress-com.xml", 2, "Anemones at low tide", "https://tidepoolnotes.wordpress.example/2026/12/01/anemones-at-low-tide/"),
        ("feedburner.xml", 2, "Grafting season", "https://orchardlog.example.net/2026/11/grafting-season.html?utm_source=feedburner&utm_medium=feed&utm_campaign=Feed%3A+OrchardLog"),
        ("youtube.xml", 2, "Flattening a warped board by hand", "https://www.youtube.example/watch?v=Q1w2E3r4T5y"),
        ("mastodon.xml", 2, "New post on the blog: why the allotment shed has a green roof now.", "https://toot.social.example/@rowan/113570000000000001"),
        ("writefreely.xml", 2, "On keeping a paper diary", "https://write.as.example/slownotes/on-keeping-a-paper-diary"),
        ("bearblog.xml", 2, "Fewer tabs", "https://quietdesk.bearblog.example/less-tabs/"),
        ("atom-xhtml.xml", 2, "Dry-stone walls & why they stand", "https://terrace.field.example/posts/dry-stone/"),
        ("devto.xml", 1, "Why my tests got 4x faster", "https://dev.to.example/priya_k/why-my-tests-got-4x-faster-2b9k"),
        ("hashnode.xml", 1, "Retiring our cron server", "https://lamplight.hashnode.example/retiring-our-cron-server"),
        ("drupal.xml", 2, "Winter market opening hours", "https://parish.drupal.example/node/731"),
        ("astro.xml", 2, "Islands, explained with a ferry timetable", "https://starboard.site.example/blog/islands/"),
        ("pelican.xml", 2, "Boiling points at altitude", "https://kettlelogic.example.net/boiling-points-at-altitude.html"),
        ("wix.xml", 2, "Breathing before the class starts", "https://www.harbouryoga.example/post/breathing-before-the-class-starts"),
        ("buttondown.xml", 2, "Issue 48: risograph season", "https://buttondown.example/themargin/archive/issue-48-risograph-season/"),
        ("blogger-rss.xml", 2, "Rye, and why it sticks", "https://flourandwater.blogspot.example/2026/12/rye-and-why-it-sticks.html"),
        ("json-feed-1.0.json", 3, "First snow", "https://pocketweather.blog.example/2026/12/01/first-snow/"),
        ("json-feed-1.1.json", 2, "Version 3", "https://tiny.releases.example/2026/v3/"),
        ("json-feed.json", 1, "Hi", "https://j.blog.example/1"),
    ],
)  # fmt: skip
def test_more_engines_newest_entry(name: str, count: int, title: str, url: str) -> None:
    read = feed(name)
    assert (len(read.entries), read.skipped) == (count, [])
    assert (read.entries[-1].spec.title, read.entries[-1].spec.url) == (title, url)


def test_feedburner_links_are_the_posts_own() -> None:
    keys = [item.spec.key for item in feed("feedburner.xml").entries]
    assert keys == [
        "orchardlog.example.net/2026/11/pruning.html",
        "orchardlog.example.net/2026/11/grafting-season.html",
    ]
    post = newest("feedburner.xml")
    assert "feedproxy" not in post.url and "feedburner" not in post.body_html
    # PST is eight hours behind UTC.
    assert post.published_at is not None and post.published_at.hour == 15


def test_youtube_mastodon_tumblr_wix_images_and_text() -> None:
    video = newest("youtube.xml")
    assert video.image_url == "https://i1.ytimg.example/vi/Q1w2E3r4T5y/hqdefault.jpg"
    assert video.summary.startswith("Winding sticks, a jack plane and twenty minutes.")
    toot = newest("mastodon.xml")
    assert toot.image_url == "https://files.social.example/media_attachments/files/roof.jpg"
    assert toot.categories == ("gardening",)
    assert feed("mastodon.xml").entries[0].spec.title == "Frost on the leeks this morning"
    # Tumblr's "Photo" is no title; a real one that happens to be a sentence is kept.
    assert newest("tumblr.xml").image_url.endswith("/heron.jpg")
    assert feed("tumblr.xml").entries[0].spec.title.startswith("Three pens")
    assert newest("wix.xml").image_url.startswith("https://static.wixstatic.example/media/")
    assert newest("hashnode.xml").image_url == "https://cdn.hashnode.example/res/cron-cover.png"


def test_wordpress_com_guids_html_entities_and_the_avatar() -> None:
    post = newest("wordpress-com.xml")
    assert post.key == "tidepoolnotes.wordpress.example?p=412"
    assert post.summary == (
        "The tide went out further than the tables said\u00a0\u2014 and the anemones were "
        "everywhere."
    )
    assert post.categories == ("anemones",)  # "Uncategorized" says nothing
    assert post.image_url == "https://tidepoolnotes.files.wordpress.example/2026/12/anemone.jpg"


def test_atom_xhtml_title_summary_and_relative_image() -> None:
    post = newest("atom-xhtml.xml")
    assert post.summary == "No mortar, only friction and gravity."
    assert "<strong>friction</strong>" in post.body_html
    assert post.image_url == "https://terrace.field.example/posts/dry-stone/wall.jpg"


_ENCODED = [
    ("rss091-cp1252.xml", "Espresso \u2013 the long way round"),
    ("rss092-latin1.xml", "Les f\u00e8ves d'hiver"),
    ("cp1252-as-utf8.xml", "Caf\u00e9 \u201cnotes\u201d"),
    ("bom.xml", "\u00dcber Umlaute"),
    ("undeclared-entities.xml", "Caf\u00e9 chairs \u2014 repaired"),
]
_ENCODED_SUMMARIES = [
    "Grind, tamp, wait\u00a0\u2026 and \u00bd a cup spilled.",
    "Sem\u00e9es en novembre, r\u00e9colt\u00e9es en mai.",
    "Cr\u00e8me br\u00fbl\u00e9e \u2013 twice.",
    "\u00c4rger mit \u00d6l.",
    "Glue, clamps\u00a0& a week\u2026",
]


@pytest.mark.parametrize(
    ("name", "title", "summary"),
    [(*named, summary) for named, summary in zip(_ENCODED, _ENCODED_SUMMARIES, strict=True)],
)
def test_encodings_and_entities(name: str, title: str, summary: str) -> None:
    """Windows-1252 and ISO-8859-1, declared or not, a BOM, HTML entities XML lacks."""
    post = newest(name)
    assert (post.title, post.summary) == (title, summary)


def test_rss_091_without_guids_or_dates_keeps_the_feeds_order() -> None:
    entries = feed("rss091-cp1252.xml").entries
    assert [item.spec.published_at for item in entries] == [None, None]
    assert [item.spec.key for item in entries] == [
        "almanac.cafe.example/archives/000211.html",
        "almanac.cafe.example/archives/000212.html",
    ]


def test_dates_as_blogs_write_them() -> None:
    entries = feed("odd-dates.xml").entries
    found = {item.spec.title: item.spec.published_at for item in entries}
    assert {title: f"{date:%Y-%m-%d %H:%M}" for title, date in found.items() if date} == {
        "Named zone": "2026-11-23 14:00",  # EST
        "Two-digit year": "2026-11-24 16:00",  # PDT
        "No zone": "2026-11-25 09:00",  # taken for UTC
        "ISO without seconds": "2026-11-26 08:00",
        "German month": "2026-11-27 08:00",
        "French month": "2026-11-28 08:00",
        "Zone feedparser does not know": "2026-11-29 08:00",  # CET
        "Written out": "2026-11-30 00:00",
        "Spanish, December": "2026-12-01 09:00",
    }
    assert [item.spec.title for item in entries][-1] == "Spanish, December"  # oldest first


def test_json_feed_1_0_and_1_1() -> None:
    entries = feed("json-feed-1.0.json").entries
    assert [item.spec.key for item in entries] == ["1033", "1040", "1045"]  # numeric ids
    snow = entries[-1].spec
    assert snow.summary == "Two centimetres on the balcony rail."
    assert snow.image_url == "https://pocketweather.blog.example/img/snow.jpg"
    assert snow.categories == ("winter", "snow")
    assert entries[1].spec.title == "Fog until noon."  # untitled: its first sentence
    assert entries[0].spec.url == "https://met.office.example/winter-outlook"  # external_url
    v3 = newest("json-feed-1.1.json")
    assert v3.image_url == "https://tiny.releases.example/img/v3.png"
    assert v3.published_at is not None and v3.published_at.day == 30  # published, not modified


def test_blogger_atom_and_rss_give_one_post_one_key() -> None:
    atom = {item.spec.title: item.spec.key for item in feed("blogger.xml").entries}
    rss = {item.spec.title: item.spec.key for item in feed("blogger-rss.xml").entries}
    assert atom["A loaf in four steps"] == rss["A loaf in four steps"]


def test_an_untitled_entry_is_titled_by_its_date_in_the_sites_language(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(
        '<rss version="2.0"><channel><title>t</title>'
        "<item><link>https://b.example.org/photo</link>"
        "<pubDate>Mon, 30 Nov 2026 23:30:00 +0000</pubDate></item></channel></rss>"
    )
    assert read_feed(str(path)).entries[0].spec.title == "November 30, 2026"
    german = read_feed(str(path), language="de", timezone="Europe/Berlin")
    assert german.entries[0].spec.title == "1. Dezember 2026"  # already December in Berlin
    assert read_feed(str(path), language="pl").entries[0].spec.title == "30 listopada 2026"


def test_duplicates_and_a_guid_every_entry_shares(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    item = "<item><title>{t}</title><link>https://b.example.org/{t}</link><guid>{g}</guid></item>"
    items = [("a", "https://b.example.org/"), ("b", "https://b.example.org/"), ("b", "x")]
    path.write_text(
        '<rss version="2.0"><channel><title>t</title>'
        + "".join(item.format(t=t, g=g) for t, g in items)
        + "</channel></rss>"
    )
    read = read_feed(str(path))
    # The site's address is no GUID; two entries at one link are told apart by title.
    assert [i.spec.key for i in read.entries] == ["b.example.org/b b", "b.example.org/a"]
    assert [(s.entry, s.reason) for s in read.skipped] == [
        ("b", "the same entry as another one in the feed")
    ]


@pytest.mark.parametrize(
    ("written", "utc"),
    [
        ("Sun, 29 Nov 2026 23:30:00 CET", "2026-11-29 22:30"),
        ("Sun, 29 Nov 2026 23:30:00 MET", "2026-11-29 22:30"),  # feedparser knows this one
        ("Sun, 29 Nov 2026 23:30:00 JST", "2026-11-29 14:30"),
        ("Sun, 29 Nov 2026 23:30:00 ACST", "2026-11-29 14:00"),
        ("Di., 1. Dez. 2026 08:00:00 +0100", "2026-12-01 07:00"),
        ("1 grudnia 2026", "2026-12-01 00:00"),
        ("30 décembre 2026", "2026-12-30 00:00"),
    ],
)
def test_a_date_in_a_zone_or_language_feedparser_misreads(
    tmp_path: Path, written: str, utc: str
) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(
        '<rss version="2.0"><channel><title>t</title><item><title>T</title>'
        f"<link>https://b.example.org/t</link><pubDate>{written}</pubDate></item>"
        "</channel></rss>",
        encoding="utf-8",
    )
    published = read_feed(str(path)).entries[0].spec.published_at
    assert published is not None and f"{published:%Y-%m-%d %H:%M}" == utc
