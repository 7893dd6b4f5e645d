"""Amazon SES bounce and complaint notifications, as SNS delivers them.

The SNS ``Message`` is the SES notification, JSON in a string: ``notificationType``
(identity notifications) or ``eventType`` (configuration-set event publishing) ``Bounce``,
``Complaint`` or ``Delivery``. SES's ``bounceType``/``bounceSubType`` are evidence next to
each recipient's status and diagnostic: ``NoEmail`` and ``Suppressed`` (SES already saw
the address bounce as invalid) mean the address is gone; ``ContentRejected`` and
``AttachmentRejected`` are about the message, never held against the reader.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from subscribe.bounces.mime import verp_tokens
from subscribe.errors import HookInvalid
from subscribe.refusals import Reason

from .events import Batch, EventKind, HookEvent, angle_id, event_id, judged, mapping, text
from .sns import SnsVerifier

# (bounceType, bounceSubType) -> the reason when SES's word settles it.
_SETTLED: dict[tuple[str, str], Reason] = {
    ("Permanent", "NoEmail"): Reason.USER_UNKNOWN,
    ("Permanent", "Suppressed"): Reason.USER_UNKNOWN,
    ("Transient", "MailboxFull"): Reason.MAILBOX_FULL,
}
# bounceSubType -> a refusal about the message: whatever the words, the reader is kept.
_ABOUT_SENDER: dict[str, Reason] = {
    "MessageTooLarge": Reason.TOO_BIG,
    "ContentRejected": Reason.SPAM,
    "AttachmentRejected": Reason.SPAM,
}
# When the words say nothing we know.
_OTHERWISE: dict[str, Reason] = {
    "Permanent": Reason.UNDETERMINED,
    "Transient": Reason.SYSTEM_ERROR,
    "Undetermined": Reason.UNDETERMINED,
}
_NOT_COMPLAINTS = frozenset({"not-spam"})


class SesReceiver:
    provider = "ses"

    def __init__(self, verifier: SnsVerifier, *, bounce_address: str) -> None:
        self._verifier = verifier
        self._bounce_address = bounce_address

    def read(self, body: bytes, headers: Mapping[str, str]) -> Batch:
        message = self._verifier.verified(body)
        kind = text(message, "Type")
        if kind == "SubscriptionConfirmation":
            self._verifier.confirm(message)
            return Batch()
        if kind == "UnsubscribeConfirmation":
            return Batch()  # the topic let us go: nothing to do but say so (200)
        sns_id = event_id(text(message, "MessageId"), "The SNS message")
        try:
            notification = mapping(json.loads(text(message, "Message")), "The SES notification")
        except ValueError:
            raise HookInvalid("The SNS Message is not an SES notification.") from None
        return Batch(self._events(sns_id, notification))

    def _events(self, sns_id: str, notification: Mapping[str, Any]) -> list[HookEvent]:
        kind = text(notification, "notificationType") or text(notification, "eventType")
        mail = notification.get("mail")
        mail = mail if isinstance(mail, dict) else {}
        common = mail.get("commonHeaders")
        message_id = angle_id(text(common, "messageId")) if isinstance(common, dict) else None
        headers = mail.get("headers")
        echoed = [text(mail, "source")] + [
            f"{text(h, 'name')}: {text(h, 'value')}"
            for h in (headers if isinstance(headers, list) else [])
            if isinstance(h, dict)
        ]
        found = {
            "message_id": message_id,
            "verp_tokens": tuple(verp_tokens(echoed, self._bounce_address)),
        }
        if kind == "Bounce":
            bounce = mapping(notification.get("bounce"), "The SES bounce")
            return [
                HookEvent(
                    f"{sns_id}/{number}",
                    EventKind.BOUNCE,
                    address,
                    reason=_reason(bounce, recipient),
                    detail=text(recipient, "diagnosticCode") or text(bounce, "bounceSubType"),
                    **found,
                )
                for number, (address, recipient) in enumerate(
                    _recipients(bounce, "bouncedRecipients")
                )
            ]
        if kind == "Complaint":
            complaint = mapping(notification.get("complaint"), "The SES complaint")
            if text(complaint, "complaintFeedbackType").lower() in _NOT_COMPLAINTS:
                return []
            return [
                HookEvent(f"{sns_id}/{number}", EventKind.COMPLAINT, address, **found)
                for number, (address, _) in enumerate(
                    _recipients(complaint, "complainedRecipients")
                )
            ]
        return []  # Delivery, Send, Open...: nothing to act on


def _recipients(section: Mapping[str, Any], key: str) -> list[tuple[str, Mapping[str, Any]]]:
    recipients = section.get(key)
    if not isinstance(recipients, list):
        raise HookInvalid(f"The SES notification has no {key}.")
    return [
        (text(r, "emailAddress"), r)
        for r in recipients
        if isinstance(r, dict) and text(r, "emailAddress")
    ]


def _reason(bounce: Mapping[str, Any], recipient: Mapping[str, Any]) -> Reason:
    kind, subtype = text(bounce, "bounceType"), text(bounce, "bounceSubType")
    settled = _SETTLED.get((kind, subtype))
    if settled is not None:
        return settled
    status, words = text(recipient, "status"), text(recipient, "diagnosticCode")
    if subtype in _ABOUT_SENDER:
        return judged(status, words, otherwise=_ABOUT_SENDER[subtype], about_sender=True)
    return judged(status, words, otherwise=_OTHERWISE.get(kind, Reason.UNDETERMINED))
