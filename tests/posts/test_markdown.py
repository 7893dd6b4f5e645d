"""Markdown posts: a BOM, relative links, impossible dates and categories."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from clihelp import run, settings_env

from subscribe.config import Settings
from subscribe.errors import SourceError
from subscribe.posts.markdown import from_markdown

POST = textwrap.dedent(
    """\
    ---
    title: Relative links
    url: https://blog.example.org/2026/relative/
    date: 2026-11-20
    categories: [Python, Web]
    image: /images/cover.jpg
    ---
    See [the next post](../next/), [a section](#part-2), ![a chart](chart.png) and
    [elsewhere](https://other.example.net/x) or [mail](mailto:me@blog.example.org).
    """
)


def test_relative_links_and_images_are_resolved_against_the_post(tmp_path: Path) -> None:
    path = tmp_path / "post.md"
    path.write_text(POST, encoding="utf-8")
    spec = from_markdown(path)
    assert 'href="https://blog.example.org/2026/next/"' in spec.body_html
    assert 'href="https://blog.example.org/2026/relative/#part-2"' in spec.body_html
    assert 'src="https://blog.example.org/2026/relative/chart.png"' in spec.body_html
    assert 'href="https://other.example.net/x"' in spec.body_html
    assert 'href="mailto:me@blog.example.org"' in spec.body_html
    assert spec.categories == ("Python", "Web")
    assert spec.image_url == "https://blog.example.org/images/cover.jpg"
    assert spec.summary.startswith("See the next post, a section,")


def test_a_byte_order_mark_does_not_hide_the_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "post.md"
    path.write_bytes(b"\xef\xbb\xbf" + POST.replace("\n", "\r\n").encode("utf-8"))
    assert from_markdown(path).title == "Relative links"


@pytest.mark.parametrize(
    ("date", "message"),
    [
        ("2026-13-45", "the front matter date '2026-13-45' is not an ISO date (month must be"),
        ("2026-02-30", "the front matter date '2026-02-30' is not an ISO date (day is out of"),
        ("yesterday", "the front matter date 'yesterday' is not an ISO date"),
    ],
)
def test_an_impossible_date_is_a_one_line_error(tmp_path: Path, date: str, message: str) -> None:
    path = tmp_path / "post.md"
    path.write_text(POST.replace("date: 2026-11-20", f"date: {date}"), encoding="utf-8")
    with pytest.raises(SourceError) as raised:
        from_markdown(path)
    assert message in str(raised.value)


def test_the_cli_says_so_in_one_line(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_env(monkeypatch, settings)
    path = tmp_path / "post.md"
    path.write_text(POST.replace("date: 2026-11-20", "date: 2026-13-45"), encoding="utf-8")
    result = run("notify", "--post", str(path), "--dry-run")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert "is not an ISO date" in result.stderr


def test_dates_with_times_and_zones(tmp_path: Path) -> None:
    path = tmp_path / "post.md"
    path.write_text(POST.replace("2026-11-20", "2026-11-20 10:30:00+02:00"), encoding="utf-8")
    published = from_markdown(path).published_at
    assert published is not None and published.isoformat() == "2026-11-20T10:30:00+02:00"
