"""DATA's wire form: dot-stuffing (RFC 5321 4.5.2) and the end-of-data line."""

from __future__ import annotations

END_OF_DATA = b".\r\n"


def smtp_data(message: bytes) -> bytes:
    """Dot-stuff a CRLF message for DATA and add the terminator."""
    data = dot_stuff(message)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + END_OF_DATA


def smtp_unstuff(wire: bytes) -> bytes:
    """The inverse of ``smtp_data`` (for messages rendered straight to the wire form)."""
    message = wire.removesuffix(END_OF_DATA).replace(b"\r\n..", b"\r\n.")
    return message[1:] if message.startswith(b"..") else message


def dot_stuff(text: bytes) -> bytes:
    """Dot-stuffing of bytes that start a line: every line-leading '.' doubled. Scanning
    10 KB for CRLF '.' costs ~10 us, so messages are stuffed piece by piece at compile
    time, and per recipient only the short fields; '.' is searched first (memchr)."""
    if b"." not in text or (text[:1] != b"." and b"\n." not in text):
        return text
    stuffed = text.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed
