"""Render emails: one Jinja2 environment, templates compiled once per post, bytes per recipient.

Every message is ``multipart/alternative`` (text + HTML, quoted-printable, CSS inlined).
Building an ``EmailMessage`` per recipient costs ~3 ms, so a post is rendered once with
placeholder markers where the per-recipient fields go; the rendered parts are split at the
markers and quoted-printable-encoded once, and each recipient's message is the encoded
pieces joined with that recipient's own fields, each behind a soft line break (``=``CRLF),
which decoders drop. At compile time the result for a sample recipient is compared with a
plain full render; a template that transforms the fields (``name|upper``...) falls back to
rendering per recipient, slower but identical.
"""

from __future__ import annotations

import binascii
import hashlib
import html as html_lib
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email import policy
from email.utils import formataddr, formatdate
from pathlib import Path
from typing import Any

import css_inline
import jinja2
from markupsafe import escape

from .config import Settings

SHIPPED_TEMPLATES = Path(__file__).parent / "templates"
FIELDS = ("name", "email", "unsubscribe_url")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_ADDRESS_SPECIALS = frozenset('()<>@,:;.\\"[]')  # email.utils' specials: a quoted name
_HEADER_POLICY = policy.SMTP


def make_environment(templates_dir: Path | None) -> jinja2.Environment:
    """Site templates first, then the shipped ones; HTML autoescaped; typos fail loudly."""
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir:
        loaders.append(jinja2.FileSystemLoader(str(templates_dir)))
    loaders.append(jinja2.FileSystemLoader(str(SHIPPED_TEMPLATES)))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml"),
            default_for_string=False,
            default=False,
        ),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def one_line(value: str) -> str:
    """Header-safe text: control characters (CR, LF...) become spaces, runs collapse."""
    if value.isprintable() and "  " not in value and value == value.strip():
        return value  # the usual case, without the regex and the split
    return " ".join(_CONTROL.sub(" ", value).split())


def encode_header(name: str, value: str) -> bytes:
    """``Name: value`` CRLF, RFC 2047-encoded only where the value needs it."""
    header = _HEADER_POLICY.header_factory(name, one_line(value))
    return header.fold(policy=_HEADER_POLICY).encode("ascii")


def address_header(field: str, display_name: str, address: str) -> bytes:
    """``To: Name <address>`` CRLF: specials quoted, non-ASCII names RFC 2047-encoded."""
    display_name = one_line(display_name)
    if not display_name:
        return f"{field}: {address}\r\n".encode("ascii")
    if display_name.isascii() and _ADDRESS_SPECIALS.isdisjoint(display_name):
        # What formataddr writes for a name that needs no quoting, without its checks.
        return f"{field}: {display_name} <{address}>\r\n".encode("ascii")
    if display_name.isascii():
        text = formataddr((display_name, address))
    else:
        text = formataddr((display_name, address), charset="utf-8").replace("\n", "\r\n")
    return f"{field}: {text}\r\n".encode("ascii")


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _unescaped(markup: bytes) -> str:
    return html_lib.unescape(markup.decode("utf-8"))


def _qp(text: str) -> bytes:
    encoded = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True)
    return encoded.replace(b"\n", b"\r\n")


_SOFT_BREAK = b"=\r\n"


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str  # wire form (punycode domain)
    name: str
    unsubscribe_url: str
    message_id: str


@dataclass(frozen=True, slots=True)
class RenderedParts:
    subject: str
    text: str
    html: str


class _Layout:
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

    def for_smtp(self) -> _Layout:
        """The same layout with its static pieces dot-stuffed and the end-of-data line
        added: filled with stuffed values, it is the DATA wire form. Valid because every
        piece starts a line (a slot's value always ends in CRLF)."""
        wire = _Layout([])
        wire._pieces = [_stuffed(piece) for piece in self._pieces] + [_END_OF_DATA]
        wire._slots = self._slots
        return wire

    def fill(self, values: Mapping[str, bytes]) -> bytes:
        pieces = self._pieces.copy()
        for index, name in self._slots:
            pieces[index] = values[name]
        return b"".join(pieces)


def _part_pieces(rendered: str, markers: Mapping[str, str], slot_prefix: str) -> list[bytes | str]:
    """One body part, quoted-printable: encoded static text, and a slot (``prefix`` +
    field name) wherever a marker was; each static piece before a slot ends in a soft line
    break, so the field starts on a line of its own."""
    pattern = re.compile("|".join(re.escape(m) for m in markers.values()))
    by_marker = {marker: field for field, marker in markers.items()}
    pieces: list[bytes | str] = []
    position = 0
    for match in pattern.finditer(rendered):
        pieces.append(_with_soft_break(_qp(rendered[position : match.start()])))
        pieces.append(slot_prefix + by_marker[match.group()])
        position = match.end()
    pieces.append(_qp(rendered[position:]))
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
            return raw + _SOFT_BREAK
        lines = [raw[i : i + _QP_FIELD_LINE] for i in range(0, len(raw), _QP_FIELD_LINE)]
        return _SOFT_BREAK.join(lines) + _SOFT_BREAK
    return _with_soft_break(_qp(text))


def _with_soft_break(encoded: bytes) -> bytes:
    """``encoded`` + '=' CRLF, keeping every line within QP's 76 characters: a full last
    line is split first, never inside an =XX escape."""
    head, separator, last = encoded.rpartition(b"\r\n")
    if len(last) >= 76:
        cut = 73
        while b"=" in last[cut - 2 : cut]:
            cut -= 1
        last = last[:cut] + _SOFT_BREAK + last[cut:]
    return head + separator + last + _SOFT_BREAK


def _field_values(recipient: Recipient, *, stuffed: bool = False) -> dict[str, bytes]:
    """The per-recipient fields, quoted-printable, for both parts: ``text.`` and ``html.``
    slots (HTML-escaped there, which most addresses and URLs do not need); ``stuffed``:
    dot-stuffed for the wire form (each value starts a line)."""
    values = {}
    for field in FIELDS:
        value: str = getattr(recipient, field)
        if not value:
            values["text." + field] = values["html." + field] = _SOFT_BREAK
            continue
        encoded = _qp_field(value)
        if stuffed:
            encoded = _stuffed(encoded)
        values["text." + field] = encoded
        if not _HTML_SPECIAL.isdisjoint(value):
            encoded = _qp_field(str(escape(value)))
            if stuffed:
                encoded = _stuffed(encoded)
        values["html." + field] = encoded
    return values


# The subject, and the whole message as a layout: plain, and in DATA's wire form.
_Compiled = tuple[str, _Layout, _Layout]


class MessageBuilder:
    """Everything about one message kind for one post that does not depend on the reader."""

    def __init__(
        self,
        settings: Settings,
        env: jinja2.Environment,
        template: str,
        context: Mapping[str, Any],
        *,
        list_headers: bool = True,
        splice: bool = True,
    ) -> None:
        self._settings = settings
        self._list_headers = list_headers
        self._splice = splice
        self._subject_cache: tuple[str, bytes] | None = None
        self._template = template
        self._context = dict(context)
        self._subject_t = env.get_template(f"{template}.subject.txt")
        self._text_t = env.get_template(f"{template}.txt")
        self._html_t = env.get_template(f"{template}.html")
        self._boundary = "=_subscribe_" + secrets.token_hex(12)  # '=_' never occurs in QP
        self._from = encode_header("From", settings.mail_from)
        self._variants: dict[bool, _Compiled | None] = {}
        self._date_second = -1
        self._date = b""
        list_id = encode_header("List-Id", settings.list_id) if list_headers else b""
        self._common_headers = (
            list_id
            + b"MIME-Version: 1.0\r\n"
            + f'Content-Type: multipart/alternative; boundary="{self._boundary}"\r\n'.encode()
        )
        self._text_head = (
            f"--{self._boundary}\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode()
        self._html_head = (
            f"\r\n--{self._boundary}\r\n"
            'Content-Type: text/html; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode()
        self._tail = f"\r\n--{self._boundary}--\r\n".encode()

    # -- rendering -----------------------------------------------------------------------

    def render(self, recipient: Recipient) -> RenderedParts:
        """A plain full render for one reader (previews, the compile-time check)."""
        context = {
            **self._context,
            "subscriber": {"name": recipient.name, "email": recipient.email},
            "unsubscribe_url": recipient.unsubscribe_url,
        }
        html = css_inline.inline(self._html_t.render(context))
        return RenderedParts(
            subject=one_line(self._subject_t.render(context)),
            text=self._text_t.render(context),
            html=html,
        )

    def _compile(self, has_name: bool) -> _Compiled | None:
        tag = secrets.token_hex(4)
        markers = {field: f"zq{tag}{field.replace('_', '')}zq" for field in FIELDS}
        sample = Recipient(
            email=markers["email"],
            name=markers["name"] if has_name else "",
            unsubscribe_url=markers["unsubscribe_url"],
            message_id="",
        )
        parts = self.render(sample)
        if any(marker in parts.subject for marker in markers.values()):
            return None  # a per-reader subject: render each message in full
        text = _part_pieces(parts.text, markers, "text.")
        html = _part_pieces(parts.html, markers, "html.")
        probe = Recipient(
            email="probe.reader@example.org",
            name='Probe <&> "O\'Reader"' if has_name else "",
            unsubscribe_url="https://example.org/unsubscribe/probe-token?x=1&y=2",
            message_id="",
        )
        expected = self.render(probe)
        values = _field_values(probe)
        spliced_text = binascii.a2b_qp(_Layout(text).fill(values))
        spliced_html = binascii.a2b_qp(_Layout(html).fill(values))
        # css-inline re-serialises the page, so an entity may be spelled differently
        # (&#39; or '): compare HTML by what it says, text byte for byte.
        if spliced_text != _crlf(expected.text) or _unescaped(spliced_html) != _unescaped(
            _crlf(expected.html)
        ):
            return None
        layout = _Layout(self._message_pieces(parts.subject, text, html))
        return parts.subject, layout, layout.for_smtp()

    def _message_pieces(
        self, subject: str, text: list[bytes | str], html: list[bytes | str]
    ) -> list[bytes | str]:
        """The whole message: headers (per-reader ones as slots), then both parts."""
        return [
            self._from,
            "to",
            self._subject_header(subject),
            "date",
            "message_id",
            "unsubscribe",
            self._common_headers,
            b"\r\n",
            self._text_head,
            *text,
            self._html_head,
            *html,
            self._tail,
        ]

    def _variant(self, has_name: bool) -> _Compiled | None:
        if not self._splice:
            return None
        if has_name not in self._variants:
            self._variants[has_name] = self._compile(has_name)
        return self._variants[has_name]

    # -- per recipient -------------------------------------------------------------------

    def _date_header(self) -> bytes:
        now = int(time.time())
        if now != self._date_second:
            self._date_second = now
            self._date = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
        return self._date

    def build(self, recipient: Recipient) -> bytes:
        """The whole message, CRLF line endings, not yet dot-stuffed for SMTP."""
        compiled = self._variant(bool(recipient.name))
        if compiled is not None:
            return compiled[1].fill(self._values(recipient, _field_values(recipient)))
        return self._full_message(recipient)

    def build_wire(self, recipient: Recipient) -> bytes:
        """The whole message as DATA sends it: dot-stuffed, ending in the lone dot line."""
        compiled = self._variant(bool(recipient.name))
        if compiled is None:
            return smtp_data(self._full_message(recipient))
        # Headers never start a line with '.' (names, or folding whitespace): only the
        # body fields need stuffing.
        return compiled[2].fill(self._values(recipient, _field_values(recipient, stuffed=True)))

    def _values(self, recipient: Recipient, fields: dict[str, bytes]) -> dict[str, bytes]:
        fields["to"] = address_header("To", recipient.name, recipient.email)
        fields["date"] = self._date_header()
        fields["message_id"] = f"Message-ID: {recipient.message_id}\r\n".encode()
        fields["unsubscribe"] = self._unsubscribe_headers(recipient.unsubscribe_url)
        return fields

    def _full_message(self, recipient: Recipient) -> bytes:
        """A message rendered in full for this reader (templates that transform fields)."""
        parts = self.render(recipient)
        pieces = self._message_pieces(parts.subject, [_qp(parts.text)], [_qp(parts.html)])
        return _Layout(pieces).fill(self._values(recipient, {}))

    def _unsubscribe_headers(self, url: str) -> bytes:
        # Written by hand: the email package would RFC 2047-encode a long value, and mail
        # providers do not read an encoded-word as a URL (one-click would silently break).
        if not self._list_headers:
            return b""
        value = f"<{url}>"
        if self._settings.unsubscribe_mailto:
            value += f", <mailto:{self._settings.unsubscribe_mailto}?subject=unsubscribe>"
        return (
            f"List-Unsubscribe: {value}\r\n".encode()
            + b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        )

    def _subject_header(self, subject: str) -> bytes:
        cached = self._subject_cache
        if cached and cached[0] == subject:
            return cached[1]
        encoded = encode_header("Subject", subject)
        self._subject_cache = (subject, encoded)
        return encoded


def message_id(domain: str, *, post_key: str, subscriber_id: int) -> str:
    """The same for the same post and reader, so a rare re-send is recognisable as one.
    ``domain`` is the sender's (``Settings.mail_domain``)."""
    digest = hashlib.blake2s(f"{post_key}\0{subscriber_id}".encode(), digest_size=6).hexdigest()
    return f"<{subscriber_id}.{digest}@{domain}>"


def smtp_data(message: bytes) -> bytes:
    """Dot-stuff a CRLF message for DATA and add the terminator."""
    stuffed = _stuffed(message)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + _END_OF_DATA


def smtp_unstuff(wire: bytes) -> bytes:
    """The inverse of ``smtp_data`` (for messages rendered straight to the wire form)."""
    message = wire.removesuffix(_END_OF_DATA).replace(b"\r\n..", b"\r\n.")
    return message[1:] if message.startswith(b"..") else message


_END_OF_DATA = b".\r\n"


def _stuffed(text: bytes) -> bytes:
    """Dot-stuffing of bytes that start a line: every line-leading '.' doubled. Scanning
    10 KB for CRLF '.' costs ~10 us, so messages are stuffed piece by piece at compile
    time, and per recipient only the short fields; '.' is searched first (memchr)."""
    if b"." not in text or (text[:1] != b"." and b"\n." not in text):
        return text
    stuffed = text.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


BuilderFactory = Callable[[str, Mapping[str, Any]], MessageBuilder]
