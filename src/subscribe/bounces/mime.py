"""Reading bounce messages: MIME walking and the small text helpers the parsers share.

The parts of a report are walked without descending into enclosed messages; header values
are decoded and unfolded to one line; addresses are found with a bounded, linear pattern.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections.abc import Iterable, Iterator
from email import message_from_bytes
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

DIAGNOSTIC_MAX = 300

_LINE_BACK = 200  # characters looked back for the start of a line

_ENCLOSED_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})

_ENCLOSED_HEADER_TYPES = frozenset({"text/rfc822-headers", "message/global-headers"})

# Bounded, un-nested quantifiers and a lookbehind anchoring the start of a run keep the
# search linear on hostile input; ``normalize_address`` trims what this lets through.
ADDRESS_PATTERN = re.compile(
    r"(?<![A-Za-z0-9!#$%&'*+/=?^_`{|}~.-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}"
    r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}(?![A-Za-z0-9-])"
)


# One address of RFC 6533's ``utf-8`` type: any characters but space, brackets and a second @.
_ONE_UTF8_ADDRESS = re.compile(r"[^\s<>@;,]{1,64}@[^\s<>@;,]{1,255}")


def line_start(text: str, pos: int) -> int:
    """Start of the line holding ``pos``, looking back at most ``_LINE_BACK`` characters."""
    floor = max(0, pos - _LINE_BACK)
    newline = text.rfind("\n", floor, pos)
    return newline + 1 if newline >= 0 else floor


def original_headers(parts: list[Message]) -> list[Message]:
    """Header blocks of the original message enclosed in the report, in order of appearance."""
    found: list[Message] = []
    for part in parts:
        ctype = part.get_content_type()
        if ctype in _ENCLOSED_MESSAGE_TYPES:
            found.append(_enclosed_message(part))
        elif ctype in _ENCLOSED_HEADER_TYPES:
            # message/global-headers is parsed as an enclosed message, text/rfc822-headers not
            encoded = _encoded_enclosure(part)
            text = encoded.decode("utf-8", "replace") if encoded is not None else ""
            if encoded is None:
                payload = part.get_payload()
                inner = payload[0] if isinstance(payload, list) and payload else None
                text = headers_text(inner) if isinstance(inner, Message) else part_text(part)
            found.append(HeaderParser(policy=compat32).parsestr(_lf(text).lstrip()))
    return found


def _enclosed_message(part: Message) -> Message:
    encoded = _encoded_enclosure(part)
    if encoded is not None:
        return message_from_bytes(encoded.lstrip(), policy=compat32)
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    data = part.get_payload(decode=True)
    return message_from_bytes(data.lstrip() if isinstance(data, bytes) else b"", policy=compat32)


def _encoded_enclosure(part: Message) -> bytes | None:
    """The decoded bytes of a ``message/*`` part sent base64 or quoted-printable encoded.

    RFC 2046 forbids encoding those parts, and gateways and feedback loops do it anyway; the
    parser then reads the encoded text as if it were the message. ``None`` when the part is
    not encoded (or is not a ``message/*`` part at all).
    """
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if cte not in ("base64", "quoted-printable") or part.get_content_maintype() != "message":
        return None
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else [payload]
    raw = "\n".join(b.as_string() if isinstance(b, Message) else str(b) for b in blocks).encode(
        "ascii", "replace"
    )
    if cte == "quoted-printable":
        return quopri.decodestring(raw)
    try:
        return base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", raw) + b"==")
    except (binascii.Error, ValueError):
        return None


def report_parts(msg: Message) -> Iterator[Message]:
    """The message and its parts, not descending into enclosed messages or DSN blocks."""
    yield msg
    if msg.get_content_maintype() == "message":
        return
    payload = msg.get_payload()
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                yield from report_parts(sub)


def is_report_text(part: Message) -> bool:
    return part.get_content_maintype() == "text" and (
        part.get_content_type() not in _ENCLOSED_HEADER_TYPES
    )


def part_text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        payload = part.get_payload()
        return _lf(payload) if isinstance(payload, str) else ""
    charset = part.get_content_charset() or "utf-8"
    for encoding in (charset, "utf-8"):
        try:
            return _lf(data.decode(encoding))
        except (LookupError, UnicodeDecodeError):
            continue
    return _lf(data.decode("latin-1"))


def delivery_status_text(part: Message) -> str:
    """A delivery-status part as text, whether the parser split it into blocks or not."""
    encoded = _encoded_enclosure(part)
    if encoded is not None:
        return _lf(encoded.decode(part.get_content_charset() or "utf-8", "replace"))
    payload = part.get_payload()
    if not isinstance(payload, list):
        return part_text(part)
    texts: list[str] = []
    for block in (b for b in payload if isinstance(b, Message)):
        # raw values: compat32 turns 8-bit ones into replacement characters
        texts.append("\n".join(f"{name}: {_one_line(str(v))}" for name, v in block.raw_items()))
        # A message/global-delivery-status part is parsed as one enclosed message: its first
        # block is the headers, the per-recipient blocks are that message's body.
        body = block.get_payload(decode=True) if not block.is_multipart() else None
        if isinstance(body, bytes) and body.strip():
            texts.append(_lf(body.decode("utf-8", "replace")))
    return _undo_surrogates("\n\n".join(texts))


def _undo_surrogates(text: str) -> str:
    """8-bit UTF-8 (an SMTPUTF8 report) as the parser leaves it, escaped bytes, made text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def field_blocks(text: str) -> list[dict[str, str]]:
    """Split DSN text into blocks of ``name: value`` fields (names lowercased, unfolded)."""
    blocks: list[dict[str, str]] = []
    for chunk in re.split(r"\n[ \t]*\n", _lf(text)):
        fields: dict[str, str] = {}
        name: str | None = None
        for line in chunk.split("\n"):
            if line[:1] in (" ", "\t") and name is not None:
                fields[name] = f"{fields[name]} {line.strip()}"
                continue
            key, sep, value = line.partition(":")
            key = key.strip().lower()
            name = key if sep and key and " " not in key and key not in fields else None
            if name is not None:
                fields[name] = value.strip()
        if fields:
            blocks.append({k: _one_line(v) for k, v in fields.items()})
    return blocks


def headers_text(msg: Message) -> str:
    return "\n".join(f"{name}: {_one_line(str(value))}" for name, value in msg.items())


def decoded_header(msg: Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return _one_line(str(make_header(decode_header(str(value)))))
    except (LookupError, ValueError, MessageError):  # unknown charset, bad encoded-word
        return _one_line(str(value))


def addresses_in(value: str) -> list[str]:
    return [m.group(0) for m in ADDRESS_PATTERN.finditer(value)]


def address_from_field(value: str) -> str:
    """``rfc822; <Alice@Example.ORG>`` -> ``Alice@example.org``; '' when there is none."""
    kind, sep, rest = value.partition(";")
    whole = rest.strip().strip("<>")
    if sep and kind.strip().lower() == "utf-8" and _ONE_UTF8_ADDRESS.fullmatch(whole):
        return normalize_address(whole)  # RFC 6533: an internationalised address, as written
    match = ADDRESS_PATTERN.search(rest if sep else value)
    return normalize_address(match.group(0)) if match else ""


def normalize_address(text: str) -> str:
    """Normalise one address: quotes and dots trimmed off the local part, domain lowercased."""
    local, sep, domain = text.strip().strip("<>").rpartition("@")
    local = local.strip("'.")
    if not (sep and local and domain):
        return ""
    return f"{local}@{domain.lower()}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def diagnostic_line(text: str) -> str:
    return _one_line(text)[:DIAGNOSTIC_MAX]


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def verp_tokens(haystacks: Iterable[str], bounce_address: str) -> list[str]:
    """The TOKEN of each ``<local>+TOKEN@<domain>`` built on the bounce address, in order."""
    local, sep, domain = bounce_address.strip().strip("<>").rpartition("@")
    if not (sep and local and domain):
        return []
    pattern = re.compile(
        r"(?<![\w.+=-])"
        + re.escape(local)
        + r"\+([A-Za-z0-9._-]{1,200})@"
        + re.escape(domain)
        + r"(?![\w-]|\.[A-Za-z0-9])",
        re.IGNORECASE,
    )
    tokens = (m.group(1) for text in haystacks for m in pattern.finditer(text))
    return list(dict.fromkeys(tokens))
