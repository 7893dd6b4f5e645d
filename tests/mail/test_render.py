"""The renderer: spliced per-recipient messages are the full render, byte for byte decoded."""

from __future__ import annotations

import email.policy
from email import message_from_bytes
from email.message import EmailMessage
from html import unescape
from pathlib import Path

import pytest
from conftest import make_settings

from subscribe.config import Settings
from subscribe.content import PostSpec
from subscribe.mail.envelopes import post_builder
from subscribe.mail.render import Recipient, make_environment, smtp_data, smtp_unstuff


@pytest.fixture
def plain_settings(sqlite_url: str) -> Settings:
    return make_settings(sqlite_url)


POST = PostSpec(
    key="https://blog.example/p",
    title="Ünïcode title that is long enough to need folding in the Subject header, surely",
    url="https://blog.example/p?a=1&b=2",
    summary="Line one.\nA line starting with a dot follows:\n.hidden\n" + "Long text. " * 200,
    body_html="<p>Body with <em>markup</em></p>\n<pre>.dot at line start</pre>",
)

RECIPIENTS = [
    Recipient("plain@example.org", "", "https://x.example/unsubscribe/abc", "<1.a@blog.example>"),
    Recipient("named@example.org", "Zoë <O'Brien> & co", "https://x.example/u/t?x=1&y=2", "<2@b>"),
    Recipient("dots@example.org", ".leading dot", "https://x.example/u/" + "Z" * 120, "<3@b>"),
    Recipient("quote@example.org", 'Say "hi"', "https://x.example/u/q", "<4@b>"),
]


def parse(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=email.policy.strict)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize("recipient", RECIPIENTS, ids=lambda r: r.email)
def test_spliced_message_equals_full_render(plain_settings: Settings, recipient: Recipient) -> None:
    builder = post_builder(plain_settings, POST)
    raw = builder.build(recipient)
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    message = parse(raw)
    full = builder.render(recipient)
    # Decoded parts keep the wire's CRLF; compare line by line with a plain full render.
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert text.splitlines() == full.text.splitlines()
    # css-inline may spell an entity differently (&#39; or '): compare what the HTML says.
    assert unescape(html).splitlines() == unescape(full.html).splitlines()
    assert message["Subject"] == POST.title
    assert message["Message-ID"] == recipient.message_id
    assert message["List-Unsubscribe"] == f"<{recipient.unsubscribe_url}>"
    assert message["To"].addresses[0].addr_spec == recipient.email
    assert message["To"].addresses[0].display_name == recipient.name


def test_splicing_is_used_for_the_stock_templates(plain_settings: Settings) -> None:
    builder = post_builder(plain_settings, POST)
    builder.build(RECIPIENTS[1])
    builder.build(RECIPIENTS[0])
    assert builder._variant(True) is not None and builder._variant(False) is not None


def test_templates_that_transform_fields_fall_back_to_full_render(
    sqlite_url: str, tmp_path: Path
) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "new_post.txt").write_text(
        "Hi {{ subscriber.name|upper }}! {{ post.title }}\n{{ unsubscribe_url }}\n"
    )
    settings = make_settings(sqlite_url, templates_dir=str(tmp_path))
    builder = post_builder(settings, POST)
    message = parse(builder.build(RECIPIENTS[1]))
    assert message.get_body(("plain",)).get_content().startswith("Hi ZOË <O'BRIEN> & CO!")
    assert builder._variant(True) is None


def test_template_override_and_autoescape_by_file_name(sqlite_url: str, tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "new_post.html").write_text(
        "<p>{{ post.title }}</p><p>{{ unsubscribe_url }}</p>"
    )
    (tmp_path / "email" / "new_post.subject.txt").write_text("[{{ site_name }}] {{ post.title }}")
    settings = make_settings(sqlite_url, templates_dir=str(tmp_path))
    hostile = PostSpec(key="k", title="<b>bold</b> & co", url="https://e.org/")
    message = parse(post_builder(settings, hostile).build(RECIPIENTS[0]))
    html = message.get_body(("html",)).get_content()
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in html
    assert message["Subject"] == "[Test Blog] <b>bold</b> & co"  # text templates stay raw
    env = make_environment(None)
    assert env.autoescape("email/new_post.html") is True  # type: ignore[operator]
    assert env.autoescape("email/new_post.txt") is False  # type: ignore[operator]
    assert env.autoescape("email/new_post.subject.txt") is False  # type: ignore[operator]


def test_undefined_template_variable_fails_loudly(sqlite_url: str, tmp_path: Path) -> None:
    import jinja2

    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "new_post.txt").write_text("{{ post.titel }}")
    settings = make_settings(sqlite_url, templates_dir=str(tmp_path))
    with pytest.raises(jinja2.UndefinedError):
        post_builder(settings, POST).build(RECIPIENTS[0])


def test_headers_cannot_be_injected(plain_settings: Settings) -> None:
    spec = PostSpec(key="k", title="Hi\r\nBcc: evil@example.org", url="https://e.org/")
    recipient = Recipient("a@example.org", "A\nBcc: evil@example.org", "https://e.org/u/t", "<m@b>")
    raw = post_builder(plain_settings, spec).build(recipient)
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert not any(line.startswith(b"Bcc") for line in header_block.split(b"\r\n"))
    assert parse(raw)["Bcc"] is None


def test_list_unsubscribe_is_never_encoded(sqlite_url: str) -> None:
    settings = make_settings(
        sqlite_url, base_url="https://newsletter.example.org/a/very/long/path/prefix"
    )
    recipient = Recipient(
        "a@example.org", "", settings.base_url + "/unsubscribe/" + "T" * 90, "<m@b>"
    )
    raw = post_builder(settings, POST).build(recipient)
    line = next(x for x in raw.split(b"\r\n") if x.startswith(b"List-Unsubscribe:"))
    assert line == f"List-Unsubscribe: <{recipient.unsubscribe_url}>".encode()


def test_mailto_unsubscribe_is_added_when_configured(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, unsubscribe_mailto="leave@blog.example")
    message = parse(post_builder(settings, POST).build(RECIPIENTS[0]))
    assert message["List-Unsubscribe"] == (
        f"<{RECIPIENTS[0].unsubscribe_url}>, <mailto:leave@blog.example?subject=unsubscribe>"
    )


def test_smtp_data_dot_stuffing() -> None:
    assert smtp_data(b".a\r\nb\r\n.c\r\n") == b"..a\r\nb\r\n..c\r\n.\r\n"
    assert smtp_data(b"no newline") == b"no newline\r\n.\r\n"


def test_shipped_templates_are_found_from_a_checkout() -> None:
    from subscribe.mail.environment import SHIPPED_TEMPLATES

    assert Path(__file__).resolve().parents[2] / "templates" == SHIPPED_TEMPLATES
    names = {p.name for p in (SHIPPED_TEMPLATES / "email").iterdir()}
    for kind in ("new_post", "confirm", "welcome"):
        assert {f"{kind}.subject.txt", f"{kind}.txt", f"{kind}.html"} <= names


def test_fields_round_trip_through_quoted_printable() -> None:
    import binascii
    import random

    from subscribe.mail.layout import _qp_field

    rng = random.Random(7)
    alphabet = "abcXYZ019 .=?&<>\"'@/:_-~é€\t"
    samples = ["", "plain", "x" * 200, "ends with space ", "a=b", "https://e.org/u/" + "T" * 150]
    samples += [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 180))) for _ in range(300)
    ]
    for value in samples:
        encoded = _qp_field(value)
        assert encoded.endswith(b"=\r\n")
        assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
        assert binascii.a2b_qp(encoded) == value.encode("utf-8"), value


WIRE_RECIPIENTS = [
    *RECIPIENTS,
    # Fields whose quoted-printable lines start with '.': at the start, and after a wrap.
    Recipient(
        "wrap@example.org", "." * 3 + "x" * 69 + ".after the wrap", "https://x.example/u/w", "<5@b>"
    ),
    Recipient("url@example.org", "", "https://x.example/u/" + "y" * 52 + ".z", "<6@b>"),
]


@pytest.mark.parametrize("recipient", WIRE_RECIPIENTS, ids=lambda r: r.email)
@pytest.mark.parametrize("spliced", [True, False], ids=["spliced", "full render"])
def test_wire_form_is_the_stuffed_message(
    plain_settings: Settings, recipient: Recipient, spliced: bool
) -> None:
    # build_wire stuffs the post's static pieces at compile time and only the fields per
    # reader: it must equal stuffing the whole message, and un-stuff back to it.
    builder = post_builder(plain_settings, POST)
    if not spliced:
        builder._splice = False
    plain = builder.build(recipient)
    wire = builder.build_wire(recipient)
    assert wire == smtp_data(plain)
    assert b"\r\n." in plain  # the post has lines that need stuffing
    assert smtp_unstuff(wire) == plain
