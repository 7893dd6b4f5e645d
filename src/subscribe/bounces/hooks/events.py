"""What a relay's webhook says, once verified: events in one shape for every provider.

Each provider module reads its own JSON into ``HookEvent``s; ``apply`` acts on them the same
way for all. A bounce's reason comes from the same rules as a bounce message's
(``refusals``), with the provider's own classification as further evidence.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from subscribe.errors import HookInvalid
from subscribe.refusals import Action, Reason, action_for, reason_for

EVENT_ID_MAX = 200  # webhook_event.event_id


class EventKind(enum.StrEnum):
    BOUNCE = "bounce"  # judged by its reason: remove, count or ignore
    COMPLAINT = "complaint"  # "this is spam": unsubscribed at once, like an ARF report
    UNSUBSCRIBE = "unsubscribe"  # the reader left through the provider's own link


@dataclass(frozen=True, slots=True)
class HookEvent:
    event_id: str  # the provider's id: an event with a known id is not applied again
    kind: EventKind
    address: str
    reason: Reason = Reason.UNDETERMINED  # bounces only
    detail: str = ""  # the diagnostic, kept on the delivery
    message_id: str | None = None  # our Message-ID, where the provider echoes it
    verp_tokens: tuple[str, ...] = ()  # from our VERP return path, where echoed


@dataclass(frozen=True, slots=True)
class Batch:
    """One verified call: its events, and a one-time value (Mailgun's token) to refuse
    when seen again."""

    events: list[HookEvent] = field(default_factory=list)
    nonce: str | None = None


def judged(
    status: str,
    text: str,
    *,
    otherwise: Reason = Reason.UNDETERMINED,
    about_sender: bool = False,
) -> Reason:
    """The reason for a provider's bounce: the words and codes first, as for a bounce
    message; ``otherwise`` when they say nothing we know (the provider's type); and with
    ``about_sender`` (SES ContentRejected, SendGrid ``blocked``: the provider says the
    refusal is about the sender) never a reason that would act on the reader."""
    found = reason_for(status, text) if (status or text) else Reason.UNDETERMINED
    if found == Reason.UNDETERMINED:
        found = otherwise
    if about_sender and action_for(found) != Action.IGNORE:
        assert action_for(otherwise) == Action.IGNORE
        return otherwise
    return found


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HookInvalid("The request body is not valid JSON.") from None


def text(data: Mapping[str, Any], key: str) -> str:
    """A field as text, whatever JSON type it came as ('' when absent)."""
    value = data.get(key)
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()


def mapping(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise HookInvalid(f"{what} is not a JSON object.")
    return data


def event_id(value: str, what: str) -> str:
    if not value or len(value) > EVENT_ID_MAX:
        raise HookInvalid(f"{what} has no usable event id.")
    return value


def angle_id(value: str) -> str | None:
    """A Message-ID as we store it, ``<...>``; providers may drop the brackets."""
    value = value.strip()
    if not value or len(value) > 250 or any(c.isspace() for c in value):
        return None
    return value if value.startswith("<") else f"<{value}>"
