"""Parse bounce messages: who bounced, how hard, and which delivery the bounce answers.

This module only reads mail; deciding what a bounce does to a subscriber is the store's job.

How a message is read:

1. It is parsed with the stdlib ``email`` package (``compat32`` policy, the most tolerant of
   broken input). The parts of the *report* are walked without descending into enclosed
   messages (``message/*``, ``text/rfc822-headers``): those hold the original message, whose
   headers are kept aside for the VERP tokens and the original Message-ID.
2. A ``message/delivery-status`` part (RFC 3464) is authoritative. Each per-recipient block
   gives the address (Original-Recipient, else Final-Recipient), Action, Status and
   Diagnostic-Code. ``delivered``/``relayed``/``expanded``/``delayed`` are not bounces (a
   delay says the mail is still being tried); a 4.x.x status is soft, 5.x.x hard. A vague
   ``X.0.0`` status is refined by a more specific code of the same class in the diagnostic.
3. Without a DSN part the message must first look like a bounce (a mail-system sender such as
   MAILER-DAEMON, an ``X-Failed-Recipients`` header, a well-known bounce phrase, or a bounce
   subject with a null return path) and must not be an auto-reply. The human-readable text,
   cut where the copy of the original message begins, is searched for addresses, and the
   text following each address for evidence: an enhanced status code, else a 3-digit SMTP
   reply code, else a phrase ("user unknown" is hard, "mailbox full" is soft), else, for
   mail systems that give no code at all, the words the reason rules know. Delay warnings
   are not bounces.
4. Anything uncertain yields no recipient rather than a guess: a false hard bounce would
   unsubscribe a real reader. A message with no bounced recipient is not a bounce (``None``);
   neither is a complaint (an ARF feedback report, read by ``complaints``).
5. Each recipient gets a reason (``diagnosis``) from its diagnostic, status and reply code,
   and so an action: remove, count or ignore (``reasons``).

VERP tokens are the ``TOKEN`` of any ``<local>+TOKEN@<domain>`` address built on the bounce
address, found in the bounce's headers, its report text or the original's headers. They are
returned as found; verifying their signature is the caller's job.

``parse_bounce`` never raises on malformed input: hostile or truncated mail is ``None``.

Here: the public API, the DSN path and the Message-ID lookup. The text path is ``text``,
the evidence rules ``evidence``, MIME and text helpers (VERP tokens too) ``mime``.
"""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from pathlib import Path

from subscribe.refusals import reason_for

from .complaints import is_complaint
from .evidence import (
    BouncedRecipient,
    BounceKind,
    about_our_return_path,
    find_evidence,
    find_status,
    kind_of_class,
    unique_by_address,
)
from .mime import (
    DIAGNOSTIC_MAX,
    address_from_field,
    decoded_header,
    delivery_status_text,
    diagnostic_line,
    field_blocks,
    headers_text,
    is_report_text,
    original_headers,
    part_text,
    report_parts,
    verp_tokens,
)
from .text import before_original, text_recipients

__all__ = [
    "DIAGNOSTIC_MAX",
    "BounceKind",
    "BounceReport",
    "BouncedRecipient",
    "iter_maildir",
    "iter_mbox",
    "parse_bounce",
]


_DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_NOT_FAILED_ACTIONS = frozenset({"delivered", "relayed", "expanded", "delayed"})

_TEXT_MAX = 100_000  # characters of a report's human-readable text that are read

_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
_QUOTED_MESSAGE_ID = re.compile(r"^[ \t>]*Message-ID:[ \t]*(<[^<>\s]{1,250}>)", re.I | re.M)


@dataclass(frozen=True, slots=True)
class BounceReport:
    verp_tokens: list[str]  # TOKEN of each <bounce-local>+TOKEN@<bounce-domain> found
    recipients: list[BouncedRecipient]
    message_id: str | None  # Message-ID of the original message, angle brackets included


def parse_bounce(raw: bytes, *, bounce_address: str = "") -> BounceReport | None:
    """Read one raw message; ``None`` when it is not recognisably a bounce.

    Auto-replies, replies from readers, spam and garbage are all ``None``; so is a delivery
    report whose recipients were all delivered. ``bounce_address`` (``bounces@example.org``)
    enables VERP token extraction. Never raises on malformed input.
    """
    try:
        return _parse(bytes(raw), bounce_address)
    except Exception:  # the email package can fail in many ways on hostile input
        return None


def iter_mbox(path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield ``(key, raw message)`` for each message of an mbox file, without changing it."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"No such mbox file: {path}")
    box = mailbox.mbox(path, create=False)
    try:
        for key in box.iterkeys():
            yield str(key), box.get_bytes(key)
    finally:
        box.close()


def iter_maildir(path: Path) -> Iterator[tuple[str, bytes]]:
    """Yield ``(key, raw message)`` from a Maildir's ``new/`` and ``cur/``, moving nothing."""
    if not Path(path).is_dir():
        raise FileNotFoundError(f"No such Maildir: {path}")
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in box.iterkeys():
        try:
            raw = box.get_bytes(key)
        except (KeyError, FileNotFoundError):  # taken away by another reader meanwhile
            continue
        yield key, raw


# --- the two paths -------------------------------------------------------------------------


def _parse(raw: bytes, bounce_address: str) -> BounceReport | None:
    if not raw.strip():
        return None
    # Saved or pasted messages often start with blank lines, which would end the headers
    # before they begin.
    msg = message_from_bytes(raw.lstrip(b"\r\n"), policy=compat32)
    if is_complaint(msg):  # "this is spam" is read by ``complaints``, never as a bounce
        return None
    parts = list(report_parts(msg))
    originals = original_headers(parts)
    # Real report text is a few kilobytes; the bound keeps a hostile message's cost flat.
    text = "\n".join(part_text(p) for p in parts if is_report_text(p))[:_TEXT_MAX]
    dsn_text = "\n\n".join(
        delivery_status_text(p) for p in parts if p.get_content_type() in _DSN_TYPES
    )

    recipients = _dsn_recipients(dsn_text, before_original(text)) if dsn_text else None
    if recipients is None:
        recipients = text_recipients(msg, text, originals, bounce_address)
    if not recipients:
        return None
    recipients = about_our_return_path(recipients, bounce_address)
    haystacks = [headers_text(msg), dsn_text, text, *(headers_text(h) for h in originals)]
    return BounceReport(
        verp_tokens=verp_tokens(haystacks, bounce_address),
        recipients=recipients,
        message_id=_original_message_id(originals, text),
    )


def _dsn_recipients(dsn_text: str, report_text: str) -> list[BouncedRecipient] | None:
    """Bounced recipients of an RFC 3464 report; ``None`` when it has no recipient blocks.

    ``report_text``, the human-readable part, helps find the reason only when one recipient
    failed: with several, nothing says which of them a sentence is about.
    """
    blocks = [
        b
        for b in field_blocks(dsn_text)
        if {"final-recipient", "original-recipient", "action", "status"} & b.keys()
    ]
    if not blocks:
        return None
    failing = [b for b in blocks if _action(b) not in _NOT_FAILED_ACTIONS]
    more_text = report_text if len(failing) == 1 else ""
    found = (_dsn_recipient(block, more_text) for block in blocks)
    return unique_by_address([r for r in found if r is not None])


def _action(fields: dict[str, str]) -> str:
    return fields.get("action", "").split("(")[0].strip().lower()


def _dsn_recipient(fields: dict[str, str], more_text: str) -> BouncedRecipient | None:
    action = _action(fields)
    full_diagnostic = fields.get("diagnostic-code", "")
    diagnostic = diagnostic_line(full_diagnostic)
    status = _dsn_status(fields.get("status", ""), diagnostic)
    kind = _dsn_kind(action, status, f"{fields.get('status', '')} {diagnostic}")
    if kind is None:
        return None
    address = ""
    for name in ("original-recipient", "final-recipient", "x-actual-recipient"):
        address = address_from_field(fields.get(name, ""))
        if address:
            break
    words = f"{full_diagnostic} {fields.get('x-supplementary-info', '')}"
    reason = reason_for(status, words, more_text=more_text)
    return BouncedRecipient(address, kind, status, diagnostic, reason)


def _dsn_status(status_field: str, diagnostic: str) -> str:
    status = find_status(status_field, classes="245")
    detail = find_status(diagnostic)
    if not status:
        return detail
    if detail and status.endswith(".0.0") and detail[0] == status[0]:
        return detail
    return status


def _dsn_kind(action: str, status: str, evidence: str) -> BounceKind | None:
    if action in _NOT_FAILED_ACTIONS:  # still being tried, or delivered: not a bounce
        return None
    if status:
        return kind_of_class(status[0])
    if action != "failed":
        return None  # neither an action nor a status to go by
    found = find_evidence(evidence)
    return found.kind if found else None


# --- VERP tokens and the original message --------------------------------------------------


def _original_message_id(originals: list[Message], text: str) -> str | None:
    for headers in originals:
        value = decoded_header(headers, "Message-ID")
        match = _MESSAGE_ID.search(value)
        if match:
            return match.group(0)
    quoted = _QUOTED_MESSAGE_ID.search(text)
    return quoted.group(1) if quoted else None
