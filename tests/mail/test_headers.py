"""Header folding: RFC 5322 line lengths and RFC 2047 encoded words, for every kind of
title and name a real list holds, each decoded back to what it said."""

from __future__ import annotations

import email.policy
import re
from email import message_from_bytes
from email.header import decode_header, make_header
from email.utils import parseaddr

import pytest

from subscribe.mail.headers import address_header, encode_header

ENCODED_WORD = re.compile(rb"=\?[^?]+\?[bBqQ]\?[^?]*\?=")

TITLES = [
    "Hello",
    "A title of seventy-one characters that is long enough to fold somewhere",
    "Why I moved my blog from WordPress to a static site generator after ten years",
    "x" * 74,
    "y" * 120,  # one word longer than a line: encoded, not a 120-character line
    "Supercalifragilisticexpialidocious-and-other-very-long-hyphenated-words-in-a-title",
    "Café, crème brûlée et déjà-vu: notes from a week in Lyon",
    "Ünïcödé " * 12,
    "日本語のタイトルはとても長くなることがあります、そしてそれは折り返されるべきです",
    "Emoji 🎉🎉🎉 in the middle of a fairly long title that needs folding 🚀",
    "Tabs\tand\nnewlines\r\nbecome spaces",
    "Ends with a space ",
    "=?utf-8?q?looks_encoded?= but is not",
    'Quotes "inside" and (parens) and <angles>',
    "Ελληνικά και русский текст вместе с English words in one subject line",
]
NAMES = [
    "Ada",
    "Ada Lovelace",
    "Lovelace, Ada",
    'Ada "The Countess" Lovelace',
    "Zoë Ångström",
    "😀" * 200,
    "A" * 150,
    "Jean-Baptiste Emmanuel Zorg the Third of the House of Very Long Names Indeed",
    "山田 太郎",
    "back\\slash",
]


def _lines(raw: bytes) -> list[bytes]:
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    return raw[:-2].split(b"\r\n")


def _check_folding(raw: bytes, name: str) -> None:
    lines = _lines(raw)
    assert lines[0].startswith(name.encode() + b": ")
    assert lines[0][len(name) + 2 :].strip(), f"nothing on the first line: {raw!r}"
    for line in lines:
        assert len(line) <= 78, f"{len(line)}: {line!r}"
    for line in lines[1:]:
        assert line.startswith(b" ")
    for word in ENCODED_WORD.findall(raw):
        assert len(word) <= 75, word


def _parsed(header: bytes) -> email.message.EmailMessage:
    message = message_from_bytes(header + b"\r\nbody\r\n", policy=email.policy.strict)
    assert isinstance(message, email.message.EmailMessage)
    return message


@pytest.mark.parametrize("title", TITLES)
def test_subjects_fold_within_the_limits_and_decode_back(title: str) -> None:
    raw = encode_header("Subject", title)
    _check_folding(raw, "Subject")
    expected = " ".join(title.split())
    assert _parsed(raw)["Subject"] == expected


@pytest.mark.parametrize("name", NAMES)
def test_display_names_fold_within_the_limits_and_decode_back(name: str) -> None:
    raw = address_header("To", name, "reader@example.org")
    _check_folding(raw, "To")
    [address] = _parsed(raw)["To"].addresses
    assert address.addr_spec == "reader@example.org"
    # RFC 2047 6.2: the space between two encoded words is not text. The email package's
    # address parser keeps it (mail clients do not), so the phrase is decoded by the book.
    phrase, addr_spec = parseaddr(raw.decode("ascii").replace("\r\n", "")[len("To: ") :])
    assert addr_spec == "reader@example.org"
    assert str(make_header(decode_header(phrase))) == name


def test_the_usual_name_is_written_as_it_is() -> None:
    assert address_header("To", "Ada Lovelace", "ada@example.org") == (
        b"To: Ada Lovelace <ada@example.org>\r\n"
    )
    assert address_header("To", "", "ada@example.org") == b"To: ada@example.org\r\n"
