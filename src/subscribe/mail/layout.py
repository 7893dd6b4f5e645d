"""A message as bytes with holes: static pieces quoted-printable-encoded once per post, and
slots that each reader's fields fill in one join."""

from __future__ import annotations

import binascii
import html as html_lib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from markupsafe import escape

from .wire import END_OF_DATA, dot_stuff

FIELDS = ("name", "email", "unsubscribe_url", "preferences_url", "confirm_url")


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def unescaped(markup: bytes) -> str:
    return html_lib.unescape(markup.decode("utf-8"))


def qp(text: str) -> bytes:
    encoded = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True)
    return encoded.replace(b"\n", b"\r\n")


SOFT_BREAK = b"=\r\n"


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str  # wire form (punycode domain)
    name: str
    unsubscribe_url: str
    message_id: str
    preferences_url: str = ""
    confirm_url: str = ""  # a confirmation's own link: spliced like the others


class Layout:
    """Bytes with holes: static pieces, and named slots filled per recipient in one join."""

    def __init__(self, pieces: list[bytes | str]) -> None:
        merged: list[bytes | str] = []
        for piece in pieces:  # adjacent static pieces become one
            if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
                merged[-1] += piece
            else:
                merged.append(piece)
        self._pieces = [piece if isinstance(piece, bytes) else b"" for piece in merged]
        self._slots = [
            (index, piece) for index, piece in enumerate(merged) if isinstance(piece, str)
        ]

    def map_static(self, transform: Callable[[bytes], bytes]) -> Layout:
        """The same slots, each static piece transformed (DKIM's canonical form)."""
        mapped = Layout([])
        mapped._pieces = [transform(piece) for piece in self._pieces]
        mapped._slots = self._slots
        return mapped

    def for_smtp(self) -> Layout:
        """The same layout with its static pieces dot-stuffed and the end-of-data line
        added: filled with stuffed values, it is the DATA wire form. Valid because every
        piece starts a line (a slot's value always ends in CRLF)."""
        wire = Layout([])
        wire._pieces = [dot_stuff(piece) for piece in self._pieces] + [END_OF_DATA]
        wire._slots = self._slots
        return wire

    def fill(self, values: Mapping[str, bytes]) -> bytes:
        pieces = self._pieces.copy()
        for index, name in self._slots:
            pieces[index] = values[name]
        return b"".join(pieces)


def part_pieces(rendered: str, markers: Mapping[str, str], slot_prefix: str) -> list[bytes | str]:
    """One body part, quoted-printable: encoded static text, and a slot (``prefix`` +
    field name) wherever a marker was; each static piece before a slot ends in a soft line
    break, so the field starts on a line of its own."""
    pattern = re.compile("|".join(re.escape(m) for m in markers.values()))
    by_marker = {marker: field for field, marker in markers.items()}
    pieces: list[bytes | str] = []
    position = 0
    for match in pattern.finditer(rendered):
        pieces.append(_with_soft_break(qp(rendered[position : match.start()])))
        pieces.append(slot_prefix + by_marker[match.group()])
        position = match.end()
    pieces.append(qp(rendered[position:]))
    return pieces


_QP_FIELD_LINE = 72  # characters per line of a plain field; QP allows 76 with the '='
_HTML_SPECIAL = frozenset("<>&'\"")


def _qp_field(text: str) -> bytes:
    """A per-recipient value, quoted-printable, ending in a soft line break.

    Most values (addresses, tokens in URLs, plain names) are printable ASCII without '=',
    which QP leaves as they are: those only get soft line breaks, without b2a_qp's cost.
    """
    if text.isascii() and text.isprintable() and "=" not in text and not text.endswith(" "):
        raw = text.encode("ascii")
        if len(raw) <= _QP_FIELD_LINE:
            return raw + SOFT_BREAK
        lines = [raw[i : i + _QP_FIELD_LINE] for i in range(0, len(raw), _QP_FIELD_LINE)]
        return SOFT_BREAK.join(lines) + SOFT_BREAK
    return _with_soft_break(qp(text))


def _with_soft_break(encoded: bytes) -> bytes:
    """``encoded`` + '=' CRLF, keeping every line within QP's 76 characters: a full last
    line is split first, never inside an =XX escape."""
    head, separator, last = encoded.rpartition(b"\r\n")
    if len(last) >= 76:
        cut = 73
        while b"=" in last[cut - 2 : cut]:
            cut -= 1
        last = last[:cut] + SOFT_BREAK + last[cut:]
    return head + separator + last + SOFT_BREAK


def field_values(recipient: Recipient, *, stuffed: bool = False) -> dict[str, bytes]:
    """The per-recipient fields, quoted-printable, for both parts: ``text.`` and ``html.``
    slots (HTML-escaped there, which most addresses and URLs do not need); ``stuffed``:
    dot-stuffed for the wire form (each value starts a line)."""
    values = {}
    for field in FIELDS:
        value: str = getattr(recipient, field)
        if not value:
            values["text." + field] = values["html." + field] = SOFT_BREAK
            continue
        encoded = _qp_field(value)
        if stuffed:
            encoded = dot_stuff(encoded)
        values["text." + field] = encoded
        if not _HTML_SPECIAL.isdisjoint(value):
            encoded = _qp_field(str(escape(value)))
            if stuffed:
                encoded = dot_stuff(encoded)
        values["html." + field] = encoded
    return values
