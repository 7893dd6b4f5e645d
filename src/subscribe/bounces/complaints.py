"""Complaints: a reader pressed "this is spam" and their provider's feedback loop told us.

RFC 5965 (ARF) reports are ``multipart/report; report-type=feedback-report`` with a
``message/feedback-report`` part (``Feedback-Type: abuse``) and the original message, or
its headers. Providers differ: Yahoo and most others send proper ARF; AOL and Comcast (and
Validity's feedback loops) redact the recipient; Microsoft's JMRP sends a plain message
from ``staff@hotmail.com`` with the original attached and the recipient in
``X-HmXmrOriginalRecipient``. Because the recipient is so often redacted, the reader is
found through what *we* put in the original: the signed unsubscribe link, the signed VERP
return path, or the Message-ID together with an address that is still visible.

A complaint is never a bounce: ``parse_bounce`` refuses these messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.policy import compat32

from .mime import (
    addresses_in,
    decoded_header,
    delivery_status_text,
    field_blocks,
    headers_text,
    normalize_address,
    original_headers,
    report_parts,
    verp_tokens,
)

_FEEDBACK_TYPES = frozenset({"message/feedback-report"})

# Feedback types that mean "stop mailing me". ``not-spam`` is the opposite, and
# ``auth-failure`` (RFC 6591) reports our DKIM/SPF, not a reader: neither unsubscribes.
_NOT_COMPLAINTS = frozenset({"not-spam", "auth-failure", "dkim", "spf"})

_JMRP_SENDERS = re.compile(r"^staff@(?:hotmail|outlook|live|msn)\.com$", re.IGNORECASE)
_JMRP_SUBJECT = re.compile(r"^\s*complaint about message from", re.IGNORECASE)

_UNSUBSCRIBE_LINK = re.compile(r"/unsubscribe/([A-Za-z0-9._-]{1,400})")
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")

# Where a report names the complaining recipient, unless it was redacted.
_RECIPIENT_FIELDS = ("original-rcpt-to", "removal-recipient")
_RECIPIENT_HEADERS = ("X-HmXmrOriginalRecipient", "X-Original-To", "To", "Delivered-To")


@dataclass(frozen=True, slots=True)
class Complaint:
    feedback_type: str  # "abuse", "fraud", "opt-out"...; "abuse" when the shape says so
    unsubscribe_tokens: list[str]  # from our List-Unsubscribe link in the original
    verp_tokens: list[str]  # from our VERP return path in the original
    message_id: str | None  # the original's Message-ID
    addresses: list[str]  # recipient addresses still visible in the report


def is_complaint(msg: Message) -> bool:
    """An ARF report (any feedback type) or a Microsoft JMRP report."""
    report_type = str(msg.get_param("report-type", "")).lower()
    if msg.get_content_type() == "multipart/report" and report_type == "feedback-report":
        return True
    if any(p.get_content_type() in _FEEDBACK_TYPES for p in report_parts(msg)):
        return True
    sender = normalize_address(next(iter(addresses_in(decoded_header(msg, "From"))), ""))
    return bool(_JMRP_SENDERS.match(sender)) or bool(
        _JMRP_SUBJECT.match(decoded_header(msg, "Subject"))
    )


def parse_complaint(raw: bytes, *, bounce_address: str = "") -> Complaint | None:
    """Read one raw message; ``None`` when it is not a complaint. Never raises."""
    try:
        return _parse(bytes(raw), bounce_address)
    except Exception:  # the email package can fail in many ways on hostile input
        return None


def _parse(raw: bytes, bounce_address: str) -> Complaint | None:
    if not raw.strip():
        return None
    # Saved or pasted messages often start with blank lines, which would end the headers
    # before they begin.
    msg = message_from_bytes(raw.lstrip(b"\r\n"), policy=compat32)
    if not is_complaint(msg):
        return None
    parts = list(report_parts(msg))
    report = "\n\n".join(
        delivery_status_text(p) for p in parts if p.get_content_type() in _FEEDBACK_TYPES
    )
    fields: dict[str, str] = {}
    for block in field_blocks(report):
        for name, value in block.items():
            fields.setdefault(name, value)
    feedback_type = fields.get("feedback-type", "abuse").strip().lower() or "abuse"
    if feedback_type in _NOT_COMPLAINTS:
        return None
    originals = original_headers(parts)
    headers = "\n".join(headers_text(h) for h in originals)
    addresses = [normalize_address(a) for name in _RECIPIENT_FIELDS for a in _in(fields, name)]
    for original in originals:
        for name in _RECIPIENT_HEADERS:
            addresses += map(normalize_address, addresses_in(decoded_header(original, name)))
    message_ids = (_MESSAGE_ID.search(decoded_header(h, "Message-ID")) for h in originals)
    return Complaint(
        feedback_type=feedback_type,
        unsubscribe_tokens=_unique(
            m.group(1)
            for h in originals
            for m in _UNSUBSCRIBE_LINK.finditer(decoded_header(h, "List-Unsubscribe"))
        ),
        verp_tokens=verp_tokens([headers], bounce_address),
        message_id=next((m.group(0) for m in message_ids if m), None),
        addresses=_unique(a for a in addresses if a and not _redacted(a)),
    )


def _in(fields: dict[str, str], name: str) -> list[str]:
    return addresses_in(fields.get(name, ""))


def _redacted(address: str) -> bool:
    # AOL writes "redacted@aol.com", others x-out the local part.
    local = address.rpartition("@")[0].lower()
    return local in {"redacted", "removed", "hidden"} or set(local) <= {"x", "*", "."}


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
