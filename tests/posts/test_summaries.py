"""Excerpts as a reader should see them: text joined as a browser shows it, engine noise gone."""

from __future__ import annotations

import pytest

from subscribe.posts.summaries import excerpt, first_image, plain_text, title_from_text


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        # Inline tags add no space: the comma stays on its word.
        (
            '<p>I tried <a href="/t/pelican">Pelican</a>, and kept it.</p>',
            "I tried Pelican, and kept it.",
        ),
        # CJK text has no spaces between words, and none may be added around inline tags.
        ("<p>在<code>Vue</code>中使用<strong>组合式</strong>写法。</p>", "在Vue中使用组合式写法。"),
        # Paragraphs and line breaks stay paragraphs.
        ("<p>One</p><p>Two</p>", "One\n\nTwo"),
        ("line one<br>line two<br/><br/>line three", "line one\n\nline two\n\nline three"),
        ("<div>a<div>b</div>c</div>", "a\n\nb\n\nc"),
        # Code blocks (pre, Hugo's highlight div, Hexo's table) are left out; inline code stays.
        (
            "<p>Run <code>make</code>:</p><pre><code>make all</code></pre><p>Done.</p>",
            "Run make:\n\nDone.",
        ),
        ('<p>A</p><div class="highlight"><pre>x = 1</pre></div><p>B</p>', "A\n\nB"),
        ('<p>A</p><figure class="highlight js"><table><tr><td>x</td></tr></table></figure>', "A"),
        # Scripts, styles, images and hidden text are not text.
        ("<style>p{}</style><script>alert(1)</script><p>Shown</p>", "Shown"),
        ('<p>Shown<span style="display: none">hidden</span></p>', "Shown"),
        # Escaped twice by the feed's writer: undone once, not more.
        (
            "&lt;p&gt;Some &lt;em&gt;bold&lt;/em&gt; &amp;amp; more&lt;/p&gt;",
            "Some bold & more",
        ),
        # Cut inside a tag or an entity (Hexo): the broken end is dropped, an ellipsis says so.
        (
            "<p>Open the file with <code>for</code>, then the <cod",
            "Open the file with for, then the …",
        ),
        ("<p>Fish &am", "Fish"),
        # Engine tails.
        ("<p>An excerpt of the post [&#8230;]</p>", "An excerpt of the post"),
        ("<p>Some text.</p><p><a href='/p'>Read more &raquo;</a></p>", "Some text."),
        ("<p>Body. <a href='/p'>Continue reading <span>The Title</span> &rarr;</a></p>", "Body."),
        ("<p>Body text (more&hellip;)</p>", "Body text"),
        (
            "<p>Hi</p><p>The post <a href='x'>Hi</a> appeared first on <a href='y'>Blog</a>.</p>",
            "Hi",
        ),
        (
            "<p>Hi</p><p><a href='x'>Hi</a> was originally published in <a>Pub</a> on Medium.</p>",
            "Hi",
        ),
        # An author's own words that merely end like a tail stay.
        ("<p>You should read more</p>", "You should read more"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_excerpt_text(markup: str, text: str) -> None:
    assert excerpt(markup, base="https://blog.example.org/post/").text == text


def test_long_text_is_cut_at_a_word_and_cjk_at_the_limit() -> None:
    words = excerpt("<p>" + "word " * 300 + "</p>", limit=100).text
    assert len(words) <= 102 and words.endswith("word …")
    cjk = excerpt("<p>" + "汉字" * 300 + "</p>", limit=100).text
    assert cjk == "汉字" * 50 + "…"


def test_the_html_excerpt_keeps_links_and_emphasis_and_nothing_else() -> None:
    found = excerpt(
        '<p onclick="x()">See <a href="/docs" onclick="steal()">the <em>docs</em></a>'
        ' and <strong>this</strong>.<img src="https://t.example.org/pixel.gif" width="1">'
        '<a href="javascript:alert(1)">bad</a></p><script>alert(1)</script>'
        '<iframe src="https://ads.example.org/"></iframe><style>body{}</style>',
        base="https://blog.example.org/post/",
    )
    assert found.html == (
        '<p>See <a href="https://blog.example.org/docs" rel="noopener noreferrer">the </a>'
        '<a href="https://blog.example.org/docs" rel="noopener noreferrer"><em>docs</em></a>'
        " and <strong>this</strong>.bad</p>"
    )
    for gone in ("script", "style", "iframe", "img", "onclick", "javascript"):
        assert gone not in found.html


def test_plain_text_sources_keep_their_paragraphs() -> None:
    assert excerpt("One <b>not a tag</b>\n\nTwo", plain=True).text == "One <b>not a tag</b>\n\nTwo"


def test_plain_text_and_titles() -> None:
    assert plain_text("Caf&eacute; &amp; <b>code</b>") == "Café & code"
    assert plain_text("no markup") == "no markup"
    assert plain_text("Why I <em>read more</em>") == "Why I read more"  # a title keeps its words
    assert plain_text("Notes [&#8230;]") == "Notes […]"
    assert title_from_text("Fixed the bike. The chain was wrong.") == "Fixed the bike."
    long = title_from_text("word " * 40)
    assert long.endswith("…") and len(long) <= 81


def test_first_image_skips_trackers_icons_and_avatars() -> None:
    markup = (
        '<img src="https://stats.example.org/pixel.gif" width="1" height="1">'
        '<img src="https://s.w.org/images/core/emoji/15/72x72/1f600.png">'
        '<img src="/icon.png" width="32">'
        '<img src="https://secure.gravatar.com/avatar/abc">'
        '<img src="/uploads/photo.jpg" width="1200">'
    )
    assert first_image(markup, base="https://blog.example.org/p/") == (
        "https://blog.example.org/uploads/photo.jpg"
    )
    assert first_image("<p>no image</p>", base="https://blog.example.org/") == ""
