"""Mailgun webhooks: ``{"signature": {...}, "event-data": {...}}``, signed with HMAC.

The signature is HMAC-SHA256, keyed with the webhook signing key, of ``timestamp`` followed
by ``token``. A timestamp more than 15 minutes away is refused (a captured request goes
stale), and each token is accepted once (``Batch.nonce``): a fresh capture cannot be
replayed either.

Events: ``failed`` with ``severity`` ``permanent`` (judged by its reason) or ``temporary``
(Mailgun retries by itself, like our own deferrals: nothing counted); ``complained``;
``unsubscribed``. Mailgun's own ``reason`` is evidence: ``esp-block`` is Mailgun refusing
us, ``suppress-complaint``/``suppress-unsubscribe`` mean the reader left through Mailgun.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from subscribe.bounces.mime import verp_tokens
from subscribe.errors import HookRefused
from subscribe.refusals import Reason

from .events import (
    Batch,
    EventKind,
    HookEvent,
    angle_id,
    event_id,
    judged,
    load_json,
    mapping,
    text,
)

MAX_AGE = timedelta(minutes=15)

_LEFT = {"suppress-complaint": EventKind.COMPLAINT, "suppress-unsubscribe": EventKind.UNSUBSCRIBE}
_EVENTS = {"complained": EventKind.COMPLAINT, "unsubscribed": EventKind.UNSUBSCRIBE}


class MailgunReceiver:
    provider = "mailgun"

    def __init__(
        self, signing_key: str, *, bounce_address: str, clock: Callable[[], datetime]
    ) -> None:
        self._key = signing_key.encode()
        self._bounce_address = bounce_address
        self._clock = clock

    def read(self, body: bytes, headers: Mapping[str, str]) -> Batch:
        data = load_json(body)
        signature = data.get("signature") if isinstance(data, dict) else None
        if not isinstance(signature, dict):
            raise HookRefused("The Mailgun signature is missing.")
        timestamp, token = text(signature, "timestamp"), text(signature, "token")
        expected = hmac.new(self._key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
        if not (token and hmac.compare_digest(expected, text(signature, "signature"))):
            raise HookRefused("The Mailgun signature does not verify.")
        try:
            signed_at = datetime.fromtimestamp(float(timestamp), tz=UTC)
        except (ValueError, OverflowError, OSError):
            raise HookRefused("The Mailgun timestamp is not a time.") from None
        if abs(self._clock() - signed_at) > MAX_AGE:
            raise HookRefused("The Mailgun signature is stale.")
        event = mapping(data.get("event-data"), "The Mailgun event-data")
        found = self._event(event)
        return Batch([found] if found else [], nonce=token[:200])

    def _event(self, event: Mapping[str, Any]) -> HookEvent | None:
        name = text(event, "event")
        identity = event_id(text(event, "id"), "The Mailgun event")
        address = text(event, "recipient")
        message = event.get("message")
        message_headers = message.get("headers") if isinstance(message, dict) else None
        message_headers = message_headers if isinstance(message_headers, dict) else {}
        echoed = [text(message_headers, "from"), text(event, "envelope-sender")]
        envelope = event.get("envelope")
        if isinstance(envelope, dict):
            echoed.append(text(envelope, "sender"))
        found: dict[str, Any] = {
            "message_id": angle_id(text(message_headers, "message-id")),
            "verp_tokens": tuple(verp_tokens(echoed, self._bounce_address)),
        }
        if name in _EVENTS:
            return HookEvent(identity, _EVENTS[name], address, **found)
        if name != "failed":
            return None  # delivered, opened, accepted...
        reason = text(event, "reason")
        if reason in _LEFT:
            return HookEvent(identity, _LEFT[reason], address, **found)
        if text(event, "severity") != "permanent":
            return None  # Mailgun retries; a final failure comes as "permanent"
        status = event.get("delivery-status")
        status = status if isinstance(status, dict) else {}
        words = " ".join(
            w
            for w in (text(status, "code"), text(status, "message"), text(status, "description"))
            if w
        )
        if reason == "esp-block":
            judgement = judged("", words, otherwise=Reason.BLOCKED, about_sender=True)
        else:
            judgement = judged(text(status, "enhanced-code"), words)
        return HookEvent(
            identity, EventKind.BOUNCE, address, reason=judgement, detail=words[:1000], **found
        )
