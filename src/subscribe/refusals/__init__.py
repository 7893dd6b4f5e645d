"""Why a recipient was refused, and what that does to the reader: remove, count or ignore.

Pure functions of a status code, a reply code and words, shared by everything that learns
of a refusal: a relay's 5xx while sending (``sending``), a bounce message or a provider's
webhook (``bounces``). It sits below both so that they judge one refusal the same way.
"""

from __future__ import annotations

from .diagnosis import WORDS_MAX, reason_for, reason_in_words
from .reasons import ACTIONS, BOUNCE_WINDOW, BY_REPLY, Action, Reason, action_for, by_status

__all__ = [
    "ACTIONS",
    "BOUNCE_WINDOW",
    "BY_REPLY",
    "WORDS_MAX",
    "Action",
    "Reason",
    "action_for",
    "by_status",
    "reason_for",
    "reason_for_reply",
    "reason_in_words",
]


def reason_for_reply(code: int, message: str) -> Reason:
    """The reason behind an SMTP reply the relay gave us (``550`` and ``5.7.1 ...``).

    Read like a bounce's diagnostic line, so that "550 5.7.1 blocked by Spamhaus" is about
    the sender and "550 5.1.1 user unknown" about the address, whichever way we hear it.
    """
    return reason_for("", f"{code} {message}")
