"""Parse bounce messages: who bounced, how hard, and which delivery the bounce answers.

This module only reads mail; deciding what a bounce does to a subscriber is the store's job.

How a message is read:

1. It is parsed with the stdlib ``email`` package (``compat32`` policy, the most tolerant of
   broken input). The parts of the *report* are walked without descending into enclosed
   messages (``message/*``, ``text/rfc822-headers``): those hold the original message, whose
   headers are kept aside for the VERP tokens and the original Message-ID.
2. A ``message/delivery-status`` part (RFC 3464) is authoritative. Each per-recipient block
   gives the address (Original-Recipient, else Final-Recipient), Action, Status and
   Diagnostic-Code. ``delivered``/``relayed``/``expanded`` are not bounces; ``delayed`` or a
   4.x.x status is soft; ``failed`` with a 5.x.x status is hard. A vague ``X.0.0`` status is
   refined by a more specific code of the same class in the diagnostic.
3. Without a DSN part the message must first look like a bounce (a mail-system sender such as
   MAILER-DAEMON, an ``X-Failed-Recipients`` header, a well-known bounce phrase, or a bounce
   subject with a null return path) and must not be an auto-reply. The human-readable text,
   cut where the copy of the original message begins, is searched for addresses, and the
   text following each address for evidence: an enhanced status code, else a 3-digit SMTP
   reply code, else a phrase ("user unknown" is hard, "mailbox full" is soft). Delay
   warnings are always soft.
4. Anything uncertain yields no recipient rather than a guess: a false hard bounce would
   unsubscribe a real reader. A message with no bounced recipient is not a bounce (``None``).

VERP tokens are the ``TOKEN`` of any ``<local>+TOKEN@<domain>`` address built on the bounce
address, found in the bounce's headers, its report text or the original's headers. They are
returned as found; verifying their signature is the caller's job.

``parse_bounce`` never raises on malformed input: hostile or truncated mail is ``None``.
"""

from __future__ import annotations

import enum
import mailbox
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path

__all__ = [
    "BounceKind",
    "BounceReport",
    "BouncedRecipient",
    "iter_maildir",
    "iter_mbox",
    "parse_bounce",
]

DIAGNOSTIC_MAX = 300
_CONTEXT_MAX = 1000  # characters of text after an address searched for its evidence
_CONTEXTS_MAX = 8  # occurrences of one address whose contexts are searched
_LINE_BACK = 200  # characters looked back for the start of a line

_DSN_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_ENCLOSED_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
_ENCLOSED_HEADER_TYPES = frozenset({"text/rfc822-headers", "message/global-headers"})
_NOT_BOUNCE_ACTIONS = frozenset({"delivered", "relayed", "expanded"})
_MAIL_SYSTEM_LOCALS = frozenset(
    {"mailer-daemon", "mailer_daemon", "mailerdaemon", "mail-daemon", "postmaster"}
)

# Bounded, un-nested quantifiers and a lookbehind anchoring the start of a run keep the
# search linear on hostile input; ``_address`` trims what this lets through.
_ADDRESS = re.compile(
    r"(?<![A-Za-z0-9!#$%&'*+/=?^_`{|}~.-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}"
    r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}(?![A-Za-z0-9-])"
)
# RFC 3463: class.subject.detail; subjects run 0-7. Not part of an IP address or a version.
_ENHANCED_STATUS = re.compile(r"(?<![\d.])([245])\.([0-7])\.(\d{1,3})(?![\d.])")
# A 3-digit reply code where an SMTP reply would put it, not a count of something.
_SMTP_CODE = re.compile(
    r"(?<![\w.:/-])([45]\d\d)(?=[-:]|\s|$)(?!\s*(?:bytes|characters|chars|octets|seconds|"
    r"minutes|hours|days|kb|mb)\b)",
    re.IGNORECASE | re.MULTILINE,
)
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
_QUOTED_MESSAGE_ID = re.compile(r"^[ \t>]*Message-ID:[ \t]*(<[^<>\s]{1,250}>)", re.I | re.M)

_HARD_PHRASES = re.compile(
    r"user unknown|unknown user|no such (?:user|recipient|mailbox|address)|"
    r"mailbox (?:unavailable|not found|does not exist)|does not exist|doesn'?t exist|"
    r"recipient not found|unknown recipient|invalid (?:recipient|mailbox|address)|"
    r"recipient address rejected|account (?:has been )?disabled|"
    r"doesn'?t have an? [\w.-]{1,100} account|"
    r"wasn'?t found at|couldn'?t be found|failed permanently|permanent (?:error|failure)",
    re.IGNORECASE,
)
_SOFT_PHRASES = re.compile(
    r"mailbox (?:is )?full|over quota|quota exceeded|exceeded (?:the )?storage|"
    r"insufficient (?:system )?storage|temporar(?:il)?y|try again later|delayed",
    re.IGNORECASE,
)
_DELAY_NOTICE = re.compile(
    r"has not yet been delivered|not been delivered yet|delivery (?:has been|is) delayed|"
    r"will (?:continue to )?(?:re)?try|still being retried|delayed mail|"
    r"warning: message \S{1,100} delayed|delivery status notification \(delay\)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undeliver|undelivered mail|mail delivery fail|delivery (?:status notification|"
    r"failure|failed|notification)|returned mail|failure notice|non[- ]?delivery|"
    r"delivery has failed|mail system error|warning: message \S{1,100} delayed|delayed mail)",
    re.IGNORECASE,
)
_BOUNCE_BODY = re.compile(
    r"this is the qmail-send program|created automatically by mail delivery software|"
    r"the following address\(es\) failed|delivery has failed to these recipients|"
    r"unable to deliver your message to the following address|"
    r"delivery to the following recipients? failed|this is the mail system at host|"
    r"your message (?:to \S{1,254} )?couldn'?t be delivered|i'?m afraid i wasn'?t able to deliver",
    re.IGNORECASE,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response)|"
    r"auto:|autoreply|away from (?:the )?office|on vacation|vacation reply)",
    re.IGNORECASE,
)
# Where the copy of the original message starts inside the human-readable text.
_ORIGINAL_STARTS = re.compile(
    r"^[ \t]*(?:-+[ \t]*(?:this is a copy of|below this line is a copy|original message|"
    r"forwarded message|the (?:header|body|headers) of|a copy of the original)"
    r"|original message headers:|(?:return-path|received|dkim-signature|message-id):)",
    re.IGNORECASE | re.MULTILINE,
)


class BounceKind(enum.StrEnum):
    HARD = "hard"
    SOFT = "soft"


@dataclass(frozen=True, slots=True)
class BouncedRecipient:
    address: str  # original/final recipient, domain lowercased; '' if unknown
    kind: BounceKind
    status: str  # enhanced status code such as "5.1.1"; '' if none found
    diagnostic: str  # one line, at most DIAGNOSTIC_MAX characters


@dataclass(frozen=True, slots=True)
class BounceReport:
    verp_tokens: list[str]  # TOKEN of each <bounce-local>+TOKEN@<bounce-domain> found
    recipients: list[BouncedRecipient]
    message_id: str | None  # Message-ID of the original message, angle brackets included


@dataclass(frozen=True, slots=True)
class _Evidence:
    kind: BounceKind
    status: str
    diagnostic: str


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
    msg = message_from_bytes(raw, policy=compat32)
    parts = list(_report_parts(msg))
    originals = _original_headers(parts)
    text = "\n".join(_part_text(p) for p in parts if _is_report_text(p))
    dsn_text = "\n\n".join(_dsn_text(p) for p in parts if p.get_content_type() in _DSN_TYPES)

    recipients = _dsn_recipients(dsn_text) if dsn_text else None
    if recipients is None:
        recipients = _text_recipients(msg, text, originals, bounce_address)
    if not recipients:
        return None
    haystacks = [_headers_text(msg), dsn_text, text, *(_headers_text(h) for h in originals)]
    return BounceReport(
        verp_tokens=_verp_tokens(haystacks, bounce_address),
        recipients=recipients,
        message_id=_original_message_id(originals, text),
    )


def _dsn_recipients(dsn_text: str) -> list[BouncedRecipient] | None:
    """Bounced recipients of an RFC 3464 report; ``None`` when it has no recipient blocks."""
    blocks = [
        b
        for b in _field_blocks(dsn_text)
        if {"final-recipient", "original-recipient", "action", "status"} & b.keys()
    ]
    if not blocks:
        return None
    found = (_dsn_recipient(block) for block in blocks)
    return _unique([r for r in found if r is not None])


def _dsn_recipient(fields: dict[str, str]) -> BouncedRecipient | None:
    action = fields.get("action", "").split("(")[0].strip().lower()
    diagnostic = _diagnostic(fields.get("diagnostic-code", ""))
    status = _dsn_status(fields.get("status", ""), diagnostic)
    kind = _dsn_kind(action, status, f"{fields.get('status', '')} {diagnostic}")
    if kind is None:
        return None
    address = ""
    for name in ("original-recipient", "final-recipient", "x-actual-recipient"):
        address = _address_from_field(fields.get(name, ""))
        if address:
            break
    return BouncedRecipient(address, kind, status, diagnostic)


def _dsn_status(status_field: str, diagnostic: str) -> str:
    status = _find_status(status_field, classes="245")
    detail = _find_status(diagnostic)
    if not status:
        return detail
    if detail and status.endswith(".0.0") and detail[0] == status[0]:
        return detail
    return status


def _dsn_kind(action: str, status: str, evidence: str) -> BounceKind | None:
    if action in _NOT_BOUNCE_ACTIONS:
        return None
    if action == "delayed":
        return BounceKind.SOFT
    if status:
        return _kind_of_class(status[0])
    if action != "failed":
        return None  # neither an action nor a status to go by
    found = _evidence(evidence)
    return found.kind if found else None


def _text_recipients(
    msg: Message, text: str, originals: list[Message], bounce_address: str
) -> list[BouncedRecipient]:
    """Heuristics for bounces without a DSN part: failed addresses and the evidence after them."""
    if not _looks_like_bounce(msg, text):
        return []
    if _is_auto_reply(msg) and not _from_mail_system(msg):
        return []
    report = _before_original(text)
    failed = [a for a in map(_address, _addresses_in(_header(msg, "X-Failed-Recipients"))) if a]
    contexts = _address_contexts(report, _excluded_addresses(msg, originals, bounce_address))
    candidates = failed or list(contexts) or [""]
    # Text anywhere in the report vouches for a recipient only when there is no one else it
    # could be about: the mail system listed the failed addresses, or there is one address.
    fallback = _evidence(report) if failed or len(candidates) == 1 else None
    by_key = {address.lower(): context for address, context in contexts.items()}
    delayed = bool(_DELAY_NOTICE.search(f"{_header(msg, 'Subject')}\n{report}"))
    recipients: list[BouncedRecipient] = []
    for address in candidates:
        found = _evidence(by_key.get(address.lower(), "")) or fallback
        if found is not None:
            recipients.append(_text_recipient(address, found, delayed))
    return _unique(recipients)


def _text_recipient(address: str, found: _Evidence, delayed: bool) -> BouncedRecipient:
    kind = BounceKind.SOFT if delayed else found.kind
    return BouncedRecipient(address, kind, found.status, found.diagnostic)


def _evidence(text: str) -> _Evidence | None:
    """The strongest sign of failure in ``text``: enhanced status, reply code, then phrases."""
    status = _status_match(text)
    if status:
        return _Evidence(_failure_kind(status.group(1)), status.group(0), _line_at(text, status))
    code = _SMTP_CODE.search(text)
    if code:
        return _Evidence(_failure_kind(code.group(1)[0]), "", _line_at(text, code))
    for pattern, kind in ((_SOFT_PHRASES, BounceKind.SOFT), (_HARD_PHRASES, BounceKind.HARD)):
        phrase = pattern.search(text)
        if phrase:
            return _Evidence(kind, "", _line_at(text, phrase))
    return None


def _kind_of_class(status_class: str) -> BounceKind | None:
    """5 is a permanent failure, 4 a transient one, anything else no failure at all."""
    return {"5": BounceKind.HARD, "4": BounceKind.SOFT}.get(status_class)


def _failure_kind(status_class: str) -> BounceKind:
    return BounceKind.HARD if status_class == "5" else BounceKind.SOFT


def _find_status(text: str, *, classes: str = "45") -> str:
    match = _status_match(text, classes=classes)
    return match.group(0) if match else ""


def _status_match(text: str, *, classes: str = "45") -> re.Match[str] | None:
    """The first enhanced status code of one of ``classes`` (failures by default)."""
    return next((m for m in _ENHANCED_STATUS.finditer(text) if m.group(1) in classes), None)


# --- is it a bounce at all? ----------------------------------------------------------------


def _looks_like_bounce(msg: Message, text: str) -> bool:
    """A mail-system sender or wording; a bounce subject alone needs a null return path too."""
    return (
        _from_mail_system(msg)
        or bool(_header(msg, "X-Failed-Recipients"))
        or bool(_BOUNCE_BODY.search(text))
        or (
            bool(_BOUNCE_SUBJECT.search(_header(msg, "Subject")))
            and _header(msg, "Return-Path").replace(" ", "") == "<>"
        )
    )


def _from_mail_system(msg: Message) -> bool:
    for name, address in getaddresses([_header(msg, "From"), _header(msg, "Sender")]):
        local = address.rpartition("@")[0] or address
        if local.lower() in _MAIL_SYSTEM_LOCALS:
            return True
        if re.search(r"mail delivery (?:system|subsystem)|mailer-daemon", name, re.I):
            return True
    return False


def _is_auto_reply(msg: Message) -> bool:
    auto_submitted = _header(msg, "Auto-Submitted").strip().lower()
    precedence = _header(msg, "Precedence").strip().lower()
    return (
        auto_submitted.startswith("auto-replied")
        or precedence == "auto_reply"
        or any(_header(msg, h) for h in ("X-Autoreply", "X-Autorespond"))
        or bool(_AUTO_REPLY_SUBJECT.search(_header(msg, "Subject")))
    )


# --- text heuristics -----------------------------------------------------------------------


def _before_original(text: str) -> str:
    start = _ORIGINAL_STARTS.search(text)
    return text[: start.start()] if start else text


def _address_contexts(text: str, excluded: set[str]) -> dict[str, str]:
    """Map each address in ``text`` (as first written) to the text following its occurrences.

    Addresses compare case-insensitively. A context starts at the beginning of the line
    holding the address (codes may precede it: ``550 5.1.1 <a@example.com>: unknown``) and
    ends where the line of another address begins.
    """
    hits = [
        (m.start(), address, address.lower())
        for m in _ADDRESS.finditer(text)
        if (address := _address(m.group(0)))
        and address.lower() not in excluded
        and not _is_system(address.lower())
    ]
    written: dict[str, str] = {}
    contexts: dict[str, list[str]] = {}
    next_other = len(text)  # where the next hit of a different address begins
    for index in range(len(hits) - 1, -1, -1):
        start, address, key = hits[index]
        if index + 1 < len(hits) and hits[index + 1][2] != key:
            next_other = _line_start(text, hits[index + 1][0])
        written[key] = address
        end = max(min(next_other, start + _CONTEXT_MAX), start)
        contexts.setdefault(key, []).append(text[_line_start(text, start) : end])
    ordered = dict.fromkeys(key for _, _, key in hits)
    return {written[key]: "\n".join(reversed(contexts[key][-_CONTEXTS_MAX:])) for key in ordered}


def _line_start(text: str, pos: int) -> int:
    """Start of the line holding ``pos``, looking back at most ``_LINE_BACK`` characters."""
    floor = max(0, pos - _LINE_BACK)
    newline = text.rfind("\n", floor, pos)
    return newline + 1 if newline >= 0 else floor


def _excluded_addresses(msg: Message, originals: list[Message], bounce_address: str) -> set[str]:
    """Addresses that cannot be the bounced recipient: the bounce's own and our sender's."""
    values = [_header(msg, h) for h in ("From", "To", "Sender", "Reply-To", "Return-Path")]
    for original in originals:
        values += [_header(original, h) for h in ("From", "Sender", "Return-Path")]
    excluded = {_address(a).lower() for a in _addresses_in(", ".join(values))}
    if bounce_address:
        excluded.add(_address(bounce_address).lower())
    bounce_local, _, bounce_domain = bounce_address.lower().rpartition("@")
    if bounce_local:
        excluded |= {
            a
            for a in excluded
            if a.startswith(bounce_local + "+") and a.endswith("@" + bounce_domain)
        }
    return {a for a in excluded if a}


def _is_system(address: str) -> bool:
    return address.rpartition("@")[0] in _MAIL_SYSTEM_LOCALS


def _line_at(text: str, match: re.Match[str]) -> str:
    limit = match.end() + DIAGNOSTIC_MAX
    newline = text.find("\n", match.end(), limit)
    return _diagnostic(text[_line_start(text, match.start()) : newline if newline >= 0 else limit])


# --- VERP tokens and the original message --------------------------------------------------


def _verp_tokens(haystacks: Iterable[str], bounce_address: str) -> list[str]:
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


def _original_message_id(originals: list[Message], text: str) -> str | None:
    for headers in originals:
        value = _header(headers, "Message-ID")
        match = _MESSAGE_ID.search(value)
        if match:
            return match.group(0)
    quoted = _QUOTED_MESSAGE_ID.search(text)
    return quoted.group(1) if quoted else None


def _original_headers(parts: list[Message]) -> list[Message]:
    """Header blocks of the original message enclosed in the report, in order of appearance."""
    found: list[Message] = []
    for part in parts:
        ctype = part.get_content_type()
        if ctype in _ENCLOSED_MESSAGE_TYPES:
            found.append(_enclosed_message(part))
        elif ctype in _ENCLOSED_HEADER_TYPES:
            found.append(HeaderParser(policy=compat32).parsestr(_part_text(part).lstrip()))
    return found


def _enclosed_message(part: Message) -> Message:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    data = part.get_payload(decode=True)
    return message_from_bytes(data.lstrip() if isinstance(data, bytes) else b"", policy=compat32)


# --- MIME helpers --------------------------------------------------------------------------


def _report_parts(msg: Message) -> Iterator[Message]:
    """The message and its parts, not descending into enclosed messages or DSN blocks."""
    yield msg
    if msg.get_content_maintype() == "message":
        return
    payload = msg.get_payload()
    if isinstance(payload, list):
        for sub in payload:
            if isinstance(sub, Message):
                yield from _report_parts(sub)


def _is_report_text(part: Message) -> bool:
    return part.get_content_maintype() == "text" and (
        part.get_content_type() not in _ENCLOSED_HEADER_TYPES
    )


def _part_text(part: Message) -> str:
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


def _dsn_text(part: Message) -> str:
    """A delivery-status part as text, whether the parser split it into blocks or not."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        return _part_text(part)
    blocks = (b for b in payload if isinstance(b, Message))
    return "\n\n".join(_headers_text(block) for block in blocks)


def _field_blocks(text: str) -> list[dict[str, str]]:
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


def _headers_text(msg: Message) -> str:
    return "\n".join(f"{name}: {_one_line(str(value))}" for name, value in msg.items())


def _header(msg: Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return _one_line(str(make_header(decode_header(str(value)))))
    except (LookupError, ValueError, MessageError):  # unknown charset, bad encoded-word
        return _one_line(str(value))


# --- small text helpers --------------------------------------------------------------------


def _addresses_in(value: str) -> list[str]:
    return [m.group(0) for m in _ADDRESS.finditer(value)]


def _address_from_field(value: str) -> str:
    """``rfc822; <Alice@Example.ORG>`` -> ``Alice@example.org``; '' when there is none."""
    _, sep, rest = value.partition(";")
    match = _ADDRESS.search(rest if sep else value)
    return _address(match.group(0)) if match else ""


def _address(text: str) -> str:
    """Normalise one address: quotes and dots trimmed off the local part, domain lowercased."""
    local, sep, domain = text.strip().strip("<>").rpartition("@")
    local = local.strip("'.")
    if not (sep and local and domain):
        return ""
    return f"{local}@{domain.lower()}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _diagnostic(text: str) -> str:
    return _one_line(text)[:DIAGNOSTIC_MAX]


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _unique(recipients: list[BouncedRecipient]) -> list[BouncedRecipient]:
    """One entry per address (the first), keeping order; unknown addresses are kept once."""
    seen: dict[str, BouncedRecipient] = {}
    for recipient in recipients:
        seen.setdefault(recipient.address.lower(), recipient)
    return list(seen.values())
