"""SendGrid's Signed Event Webhook: a JSON array of events, signed with ECDSA P-256.

``X-Twilio-Email-Event-Webhook-Signature`` is a base64 DER ECDSA signature (SHA256) of the
``X-Twilio-Email-Event-Webhook-Timestamp`` header followed by the raw body, verified with
the public key SendGrid shows when signing is turned on (base64 DER, or PEM).

Events: ``bounce`` (``type`` ``bounce``, judged by its status and reason, or ``blocked``:
a refusal about the sender, never held against the reader), ``dropped`` (SendGrid did not
send: its reason says why), ``spamreport``, ``unsubscribe`` and ``group_unsubscribe``;
``deferred``, ``delivered``, opens and clicks change nothing.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from subscribe.errors import ConfigError, HookInvalid, HookRefused
from subscribe.refusals import Reason

from .events import Batch, EventKind, HookEvent, angle_id, event_id, judged, load_json, text

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"

_LEFT = {
    "spamreport": EventKind.COMPLAINT,
    "unsubscribe": EventKind.UNSUBSCRIBE,
    "group_unsubscribe": EventKind.UNSUBSCRIBE,
}
# A dropped event's reason, when it says the reader left through SendGrid.
_DROPPED_LEFT = {
    "unsubscribed address": EventKind.UNSUBSCRIBE,
    "spam reporting address": EventKind.COMPLAINT,
}
_DROPPED_READER = frozenset({"bounced address", "invalid"})
# bounce_classification, SendGrid's own grouping: used when the words say nothing we know.
_CLASSES = {
    "invalid address": Reason.USER_UNKNOWN,
    "mailbox unavailable": Reason.SUSPENDED,
    "technical": Reason.SYSTEM_ERROR,
    "content": Reason.SPAM,
    "reputation": Reason.BLOCKED,
    "frequency or volume": Reason.RATE_LIMITED,
}


def load_public_key(value: str) -> ec.EllipticCurvePublicKey:
    """The verification key from settings; a one-line ``ConfigError`` when it is not one."""
    try:
        if "BEGIN PUBLIC KEY" in value:
            key = serialization.load_pem_public_key(value.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode("".join(value.split())))
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError(
            "SUBSCRIBE_SENDGRID_PUBLIC_KEY: not an ECDSA public key (base64 DER or PEM)"
        )
    return key


class SendGridReceiver:
    provider = "sendgrid"

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self._key = public_key

    def read(self, body: bytes, headers: Mapping[str, str]) -> Batch:
        try:
            signature = base64.b64decode(headers.get(SIGNATURE_HEADER, ""), validate=True)
            signed = headers.get(TIMESTAMP_HEADER, "").encode() + body
            self._key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            raise HookRefused("The SendGrid signature does not verify.") from None
        events = load_json(body)
        if not isinstance(events, list):
            raise HookInvalid("SendGrid sends a JSON array of events.")
        found = (_event(e) for e in events if isinstance(e, dict))
        return Batch([e for e in found if e is not None])


def _event(event: Mapping[str, Any]) -> HookEvent | None:
    name = text(event, "event")
    address = text(event, "email")
    found: dict[str, Any] = {"message_id": angle_id(text(event, "smtp-id"))}
    kind = _LEFT.get(name)
    if name == "dropped":
        why = text(event, "reason").lower()
        kind = _DROPPED_LEFT.get(why)
        if kind is None:
            # Not sent because of the address's past, or because of our message or account
            # (SMTPAPI header, spam content, quota): the latter never count.
            about_sender = None if why in _DROPPED_READER else Reason.POLICY
            return _bounce(event, address, found, about_sender=about_sender)
    if kind is not None:
        return HookEvent(_id(event), kind, address, **found)
    if name == "bounce":
        blocked = text(event, "type") == "blocked"
        return _bounce(event, address, found, about_sender=Reason.BLOCKED if blocked else None)
    return None


def _bounce(
    event: Mapping[str, Any],
    address: str,
    found: dict[str, Any],
    *,
    about_sender: Reason | None,
) -> HookEvent:
    words = text(event, "reason")
    status = text(event, "status")
    if about_sender is not None:
        reason = judged(status, words, otherwise=about_sender, about_sender=True)
    else:
        otherwise = _CLASSES.get(text(event, "bounce_classification").lower(), Reason.UNDETERMINED)
        reason = judged(status, words, otherwise=otherwise)
    return HookEvent(
        _id(event), EventKind.BOUNCE, address, reason=reason, detail=words[:1000], **found
    )


def _id(event: Mapping[str, Any]) -> str:
    return event_id(text(event, "sg_event_id"), "A SendGrid event")
