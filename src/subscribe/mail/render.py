"""Render emails: one Jinja2 environment per language, templates compiled once per post and
language, bytes per recipient.

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
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate, parseaddr
from typing import Any

import css_inline
import jinja2

from subscribe.config import Settings
from subscribe.content import one_line

from .dkim import Unsigned, body_hash, canonical_body, canonical_lines, split_message
from .dkim_keys import dkim_signer
from .environment import make_environment
from .headers import address_header, encode_header, message_id
from .layout import (
    FIELDS,
    Layout,
    Recipient,
    crlf,
    field_values,
    part_pieces,
    qp,
    unescaped,
)
from .wire import dot_stuff, smtp_data, smtp_unstuff

__all__ = [
    "BuilderFactory",
    "MessageBuilder",
    "Recipient",
    "RenderedParts",
    "make_environment",
    "message_id",
    "smtp_data",
    "smtp_unstuff",
]


@dataclass(frozen=True, slots=True)
class RenderedParts:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A post's message as layouts: the whole of it plain and in DATA's wire form, and
    for DKIM its header block and its body in canonical form (static pieces canonical
    once; the per-reader fields are canonicalised per message)."""

    subject: str
    message: Layout
    wire: Layout
    headers: Layout
    canonical_body: Layout


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
        self._signer = dkim_signer(settings)
        self._list_headers = list_headers
        self._splice = splice
        self._subject_cache: tuple[str, bytes] | None = None
        self._template = template
        self._context = dict(context)
        self._subject_t = env.get_template(f"{template}.subject.txt")
        self._text_t = env.get_template(f"{template}.txt")
        self._html_t = env.get_template(f"{template}.html")
        self._boundary = "=_subscribe_" + secrets.token_hex(12)  # '=_' never occurs in QP
        self._from = address_header("From", *parseaddr(settings.mail_from))
        self._variants: dict[bool, _Compiled | None] = {}
        self._date_second = -1
        self._date = b""
        list_id = address_header("List-Id", *parseaddr(settings.list_id)) if list_headers else b""
        # The environment's language (a BCP 47 tag, checked by config or the catalogs).
        language = str(env.globals.get("lang", "en"))
        self._common_headers = (
            list_id
            + f"Content-Language: {language}\r\n".encode("ascii")
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
            "preferences_url": recipient.preferences_url,
            "confirm_url": recipient.confirm_url,
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
            preferences_url=markers["preferences_url"],
            confirm_url=markers["confirm_url"],
        )
        parts = self.render(sample)
        if any(marker in parts.subject for marker in markers.values()):
            return None  # a per-reader subject: render each message in full
        text = part_pieces(parts.text, markers, "text.")
        html = part_pieces(parts.html, markers, "html.")
        probe = Recipient(
            email="probe.reader@example.org",
            name='Probe <&> "O\'Reader"' if has_name else "",
            unsubscribe_url="https://example.org/unsubscribe/probe-token?x=1&y=2",
            message_id="",
            preferences_url="https://example.org/preferences/probe-token?x=1&y=2",
            confirm_url="https://example.org/confirm/probe-token?x=1&y=2",
        )
        expected = self.render(probe)
        values = field_values(probe)
        spliced_text = binascii.a2b_qp(Layout(text).fill(values))
        spliced_html = binascii.a2b_qp(Layout(html).fill(values))
        # css-inline re-serialises the page, so an entity may be spelled differently
        # (&#39; or '): compare HTML by what it says, text byte for byte.
        if spliced_text != crlf(expected.text) or unescaped(spliced_html) != unescaped(
            crlf(expected.html)
        ):
            return None
        pieces = self._message_pieces(parts.subject, text, html)
        layout = Layout(pieces)
        end_of_headers = pieces.index(b"\r\n")
        compiled = _Compiled(
            parts.subject,
            layout,
            layout.for_smtp(),
            Layout(pieces[:end_of_headers]),
            Layout(pieces[end_of_headers + 1 :]).map_static(canonical_lines),
        )
        if self._signer is not None:
            # Canonical piece by piece equals canonical as a whole only if every piece is
            # whole lines: check it on the probe, else sign each message from its bytes.
            values = self._values(probe, field_values(probe))
            whole = split_message(layout.fill(values))[1]
            canonical = {name: canonical_lines(value) for name, value in values.items()}
            if body_hash(compiled.canonical_body.fill(canonical)) != body_hash(
                canonical_body(whole)
            ):
                return None
        return compiled

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
        if compiled is None:
            return self._signed(self._full_message(recipient))
        values = self._values(recipient, field_values(recipient))
        message = compiled.message.fill(values)
        if self._signer is None:
            return message
        return self._signer.header(self._prepare(compiled, values)) + message

    def build_wire(self, recipient: Recipient) -> bytes:
        """The whole message as DATA sends it: dot-stuffed, ending in the lone dot line."""
        wire, unsigned = self.wire_parts(recipient)
        if unsigned is None or self._signer is None:
            return wire
        return self._signer.header(unsigned) + wire

    def wire_parts(self, recipient: Recipient) -> tuple[bytes, Unsigned | None]:
        """The message in DATA's wire form without its DKIM-Signature fields, and what they
        sign (None with DKIM off): the signature goes in front, as it is, once made."""
        compiled = self._variant(bool(recipient.name))
        if compiled is None:
            message = self._full_message(recipient)
            unsigned = self._signer.prepare_message(message) if self._signer else None
            return smtp_data(message), unsigned
        # Headers never start a line with '.' (names, or folding whitespace): only the
        # body fields need stuffing.
        if self._signer is None:
            fields = field_values(recipient, stuffed=True)
            return compiled.wire.fill(self._values(recipient, fields)), None
        # Signed: the fields once, stuffed here (most need none: a search for '.').
        values = self._values(recipient, field_values(recipient))
        wire = compiled.wire.fill({name: dot_stuff(value) for name, value in values.items()})
        return wire, self._prepare(compiled, values)

    def _signed(self, message: bytes) -> bytes:
        return message if self._signer is None else self._signer.sign(message)

    def _prepare(self, compiled: _Compiled, values: dict[str, bytes]) -> Unsigned:
        """What a spliced message's signatures sign: the body hash from the canonical
        layout, so only the per-reader fields are canonicalised here."""
        assert self._signer is not None
        canonical = {name: canonical_lines(value) for name, value in values.items()}
        bh = body_hash(compiled.canonical_body.fill(canonical))
        return self._signer.prepare(compiled.headers.fill(values), bh)

    def _values(self, recipient: Recipient, fields: dict[str, bytes]) -> dict[str, bytes]:
        fields["to"] = address_header("To", recipient.name, recipient.email)
        fields["date"] = self._date_header()
        fields["message_id"] = f"Message-ID: {recipient.message_id}\r\n".encode()
        fields["unsubscribe"] = self._unsubscribe_headers(recipient.unsubscribe_url)
        return fields

    def _full_message(self, recipient: Recipient) -> bytes:
        """A message rendered in full for this reader (templates that transform fields)."""
        parts = self.render(recipient)
        pieces = self._message_pieces(parts.subject, [qp(parts.text)], [qp(parts.html)])
        return Layout(pieces).fill(self._values(recipient, {}))

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


BuilderFactory = Callable[[str, Mapping[str, Any]], MessageBuilder]
