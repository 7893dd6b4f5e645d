"""What a bounce says about one recipient: hard or soft, status code, diagnostic line.

Evidence is looked for in order of trust: an RFC 3463 enhanced status code, then a 3-digit
SMTP reply code where a reply would put it, then well-known phrases.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace

from subscribe.refusals import Action, Reason, action_for

from .mime import DIAGNOSTIC_MAX, diagnostic_line, line_start

# RFC 3463: class.subject.detail; subjects run 0-7. Not part of an IP address or a version.
_ENHANCED_STATUS = re.compile(r"(?<![\d.])([245])\.([0-7])\.(\d{1,3})(?![\d.])")

# A 3-digit reply code where an SMTP reply would put it, not a count of something.
_SMTP_CODE = re.compile(
    r"(?<![\w.:/-])([45]\d\d)(?=[-:]|\s|$)(?!\s*(?:bytes|characters|chars|octets|seconds|"
    r"minutes|hours|days|kb|mb)\b)",
    re.IGNORECASE | re.MULTILINE,
)

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


class BounceKind(enum.StrEnum):
    HARD = "hard"
    SOFT = "soft"


@dataclass(frozen=True, slots=True)
class BouncedRecipient:
    address: str  # original/final recipient, domain lowercased; '' if unknown
    kind: BounceKind
    status: str  # enhanced status code such as "5.1.1"; '' if none found
    diagnostic: str  # one line, at most DIAGNOSTIC_MAX characters
    reason: Reason = Reason.UNDETERMINED

    @property
    def action(self) -> Action:
        return action_for(self.reason)


@dataclass(frozen=True, slots=True)
class Evidence:
    kind: BounceKind
    status: str
    diagnostic: str


def find_evidence(text: str) -> Evidence | None:
    """The strongest sign of failure in ``text``: enhanced status, reply code, then phrases."""
    status = _status_match(text)
    if status:
        return Evidence(_failure_kind(status.group(1)), status.group(0), _line_at(text, status))
    code = _SMTP_CODE.search(text)
    if code:
        return Evidence(_failure_kind(code.group(1)[0]), "", _line_at(text, code))
    for pattern, kind in ((_SOFT_PHRASES, BounceKind.SOFT), (_HARD_PHRASES, BounceKind.HARD)):
        phrase = pattern.search(text)
        if phrase:
            return Evidence(kind, "", _line_at(text, phrase))
    return None


def has_permanent_code(text: str) -> bool:
    """An enhanced 5.x.x status or a 5xx reply code: a permanent failure, in so many words."""
    if _status_match(text, classes="5") is not None:
        return True
    return any(m.group(1)[0] == "5" for m in _SMTP_CODE.finditer(text))


def kind_of_class(status_class: str) -> BounceKind | None:
    """5 is a permanent failure, 4 a transient one, anything else no failure at all."""
    return {"5": BounceKind.HARD, "4": BounceKind.SOFT}.get(status_class)


def _failure_kind(status_class: str) -> BounceKind:
    return BounceKind.HARD if status_class == "5" else BounceKind.SOFT


def find_status(text: str, *, classes: str = "45") -> str:
    match = _status_match(text, classes=classes)
    return match.group(0) if match else ""


def _status_match(text: str, *, classes: str = "45") -> re.Match[str] | None:
    """The first enhanced status code of one of ``classes`` (failures by default)."""
    return next((m for m in _ENHANCED_STATUS.finditer(text) if m.group(1) in classes), None)


def _line_at(text: str, match: re.Match[str]) -> str:
    limit = match.end() + DIAGNOSTIC_MAX
    newline = text.find("\n", match.end(), limit)
    return diagnostic_line(
        text[line_start(text, match.start()) : newline if newline >= 0 else limit]
    )


def about_our_return_path(
    recipients: list[BouncedRecipient], bounce_address: str
) -> list[BouncedRecipient]:
    """A refusal whose diagnostic names our own return path (``bounces@`` or a VERP form of
    it) is about the sender: "550 5.1.1 <bounces+T@example.org>: User unknown" answered our
    MAIL FROM, never the reader's address. Such a removal becomes ``policy``."""
    local, sep, domain = bounce_address.strip().strip("<>").rpartition("@")
    if not (sep and local and domain):
        return recipients
    ours = re.compile(
        r"(?<![\w.+-])" + re.escape(local) + r"(?:\+[^\s<>@]{1,200})?@" + re.escape(domain),
        re.IGNORECASE,
    )
    return [
        replace(r, reason=Reason.POLICY)
        if action_for(r.reason) == Action.REMOVE and ours.search(r.diagnostic)
        else r
        for r in recipients
    ]


def unique_by_address(recipients: list[BouncedRecipient]) -> list[BouncedRecipient]:
    """One entry per address (the first), keeping order; unknown addresses are kept once."""
    seen: dict[str, BouncedRecipient] = {}
    for recipient in recipients:
        seen.setdefault(recipient.address.lower(), recipient)
    return list(seen.values())
