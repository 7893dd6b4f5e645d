"""Header lines as the wire wants them: folded, RFC 2047-encoded only where needed, never a
traceback for a strange name."""

from __future__ import annotations

import hashlib
from email import policy
from email.utils import formataddr

from subscribe.content import one_line

_ADDRESS_SPECIALS = frozenset('()<>@,:;.\\"[]')  # email.utils' specials: a quoted name
_HEADER_POLICY = policy.SMTP


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


def message_id(domain: str, *, post_key: str, subscriber_id: int) -> str:
    """The same for the same post and reader, so a rare re-send is recognisable as one.
    ``domain`` is the sender's (``Settings.mail_domain``)."""
    digest = hashlib.blake2s(f"{post_key}\0{subscriber_id}".encode(), digest_size=6).hexdigest()
    return f"<{subscriber_id}.{digest}@{domain}>"
