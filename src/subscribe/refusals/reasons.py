"""Why a recipient bounced, and what that does to the reader: remove, count or ignore.

The reasons, their actions, and what status and reply codes alone say. ``diagnosis`` reads
a reason from a bounce's words first and falls back on these codes.

Each reason has exactly one action (``ACTIONS``):

- ``remove``: the address itself is gone (user unknown, host unknown, a closed account);
- ``count``: the reader's side may be temporarily wrong (mailbox full, suspended, expired,
  system trouble, undetermined); counts decay (see ``handling``);
- ``ignore``: the refusal is about the sender or the message; reported to the admin.
"""

from __future__ import annotations

import enum
import re
from datetime import timedelta

# An enhanced status code, class.subject.detail, as ``evidence`` finds them.
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


# A counted bounce is forgotten once this long passes without another (``handling``).
BOUNCE_WINDOW = timedelta(days=30)


class Reason(enum.StrEnum):
    USER_UNKNOWN = "user_unknown"
    HOST_UNKNOWN = "host_unknown"
    DISABLED = "disabled"  # closed, deleted, long inactive: the address is gone
    MAILBOX_FULL = "mailbox_full"
    SUSPENDED = "suspended"  # disabled or suspended for now
    EXPIRED = "expired"  # delivery time exceeded
    SYSTEM_ERROR = "system_error"  # the receiving system or the network in between
    UNDETERMINED = "undetermined"
    BLOCKED = "blocked"  # IP or domain reputation, blocklists
    SPAM = "spam"  # spam verdicts and other refusals of the content
    POLICY = "policy"
    AUTHENTICATION = "authentication"  # SPF, DKIM, DMARC
    NO_PTR = "no_ptr"
    RATE_LIMITED = "rate_limited"  # rate limits, too many connections, greylisting
    TOO_BIG = "too_big"
    TLS_REQUIRED = "tls_required"
    RELAYING_DENIED = "relaying_denied"


class Action(enum.StrEnum):
    REMOVE = "remove"
    COUNT = "count"
    IGNORE = "ignore"


ACTIONS: dict[Reason, Action] = {
    Reason.USER_UNKNOWN: Action.REMOVE,
    Reason.HOST_UNKNOWN: Action.REMOVE,
    Reason.DISABLED: Action.REMOVE,
    Reason.MAILBOX_FULL: Action.COUNT,
    Reason.SUSPENDED: Action.COUNT,
    Reason.EXPIRED: Action.COUNT,
    Reason.SYSTEM_ERROR: Action.COUNT,
    Reason.UNDETERMINED: Action.COUNT,
    **{
        reason: Action.IGNORE
        for reason in (
            Reason.BLOCKED,
            Reason.SPAM,
            Reason.POLICY,
            Reason.AUTHENTICATION,
            Reason.NO_PTR,
            Reason.RATE_LIMITED,
            Reason.TOO_BIG,
            Reason.TLS_REQUIRED,
            Reason.RELAYING_DENIED,
        )
    },
}


def action_for(reason: Reason) -> Action:
    return ACTIONS[reason]


# Enhanced status "subject.detail" -> reason, for when the words say nothing we know.
# A vague X.0.0, X.1.0, X.2.0... is left undetermined: it says "something went wrong".
_BY_STATUS: dict[str, Reason] = {
    "1.1": Reason.USER_UNKNOWN,
    "1.2": Reason.HOST_UNKNOWN,
    "1.3": Reason.USER_UNKNOWN,
    "1.6": Reason.DISABLED,
    "1.7": Reason.POLICY,
    "1.8": Reason.POLICY,
    "1.10": Reason.USER_UNKNOWN,
    "2.1": Reason.SUSPENDED,
    "2.2": Reason.MAILBOX_FULL,
    "2.3": Reason.TOO_BIG,
    "2.4": Reason.SYSTEM_ERROR,
    "3.1": Reason.SYSTEM_ERROR,
    "3.2": Reason.SYSTEM_ERROR,
    "3.3": Reason.SYSTEM_ERROR,
    "3.4": Reason.TOO_BIG,
    "3.5": Reason.SYSTEM_ERROR,
    "4.1": Reason.SYSTEM_ERROR,
    "4.2": Reason.SYSTEM_ERROR,
    "4.3": Reason.SYSTEM_ERROR,
    "4.4": Reason.SYSTEM_ERROR,
    "4.5": Reason.RATE_LIMITED,
    "4.6": Reason.SYSTEM_ERROR,
    "4.7": Reason.EXPIRED,
    "5.3": Reason.RATE_LIMITED,  # too many recipients
    "7.5": Reason.AUTHENTICATION,
    "7.7": Reason.AUTHENTICATION,
    "7.8": Reason.AUTHENTICATION,
    "7.9": Reason.AUTHENTICATION,
    "7.10": Reason.TLS_REQUIRED,
    "7.11": Reason.TLS_REQUIRED,
    "7.13": Reason.SUSPENDED,
    "7.17": Reason.DISABLED,
    "7.18": Reason.HOST_UNKNOWN,
    "7.25": Reason.NO_PTR,
    "7.28": Reason.RATE_LIMITED,
    "7.30": Reason.TLS_REQUIRED,
    "7.64": Reason.RELAYING_DENIED,
    "7.501": Reason.SPAM,
    "7.503": Reason.SPAM,
    "7.606": Reason.BLOCKED,
    "7.511": Reason.BLOCKED,
    "7.708": Reason.BLOCKED,
}
_AUTH_DETAILS = frozenset({"20", "21", "22", "23", "24", "26", "29", "509", "510", "515", "57"})

# A bare reply code, the weakest sign of all.
BY_REPLY: dict[str, Reason] = {
    "421": Reason.RATE_LIMITED,
    "450": Reason.SYSTEM_ERROR,
    "451": Reason.SYSTEM_ERROR,
    "452": Reason.SYSTEM_ERROR,
    "552": Reason.MAILBOX_FULL,
}


def by_status(status: str) -> Reason | None:
    match = _STATUS.fullmatch(status)
    if match is None:
        return None
    subject, detail = match.group(2), match.group(3)
    if subject == "7" and detail in _AUTH_DETAILS:
        return Reason.AUTHENTICATION
    found = _BY_STATUS.get(f"{subject}.{detail}")
    if found is None and subject in ("6", "7") and detail != "0":
        return Reason.SPAM if subject == "6" else Reason.POLICY
    return found


def first_status(text: str) -> str:
    match = _STATUS.search(text)
    return match.group(0) if match else ""
