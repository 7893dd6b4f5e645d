"""Postmark webhooks: JSON per event, authenticated by HTTP basic auth.

Postmark sends the username and password written into the webhook's URL in its settings
(``https://user:pass@example.org/hooks/bounces/postmark``); both are compared in constant
time. ``RecordType`` ``Bounce`` carries Postmark's ``Type`` (``HardBounce``, ``SoftBounce``,
``Transient``, ``DnsError``, ``SpamNotification``, ``Blocked``...), which is evidence next
to ``Details``/``Description``: a ``HardBounce`` is judged by its words ("user unknown"
removes), ``Blocked`` and content verdicts are about us. ``SpamComplaint`` is a complaint;
``SubscriptionChange`` with ``SuppressSending`` set by the reader is an unsubscribe.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

from subscribe.errors import HookRefused
from subscribe.refusals import Reason

from .events import Batch, EventKind, HookEvent, event_id, judged, load_json, mapping, text

# Type -> (reason when the words say nothing we know, about the sender whatever they say).
# Types absent here (AutoResponder, Subscribe, OpenRelayTest, ChallengeVerification,
# TemplateRenderingFailed, InboundError...) are not refusals of a reader.
_TYPES: dict[str, tuple[Reason, bool]] = {
    "HardBounce": (Reason.UNDETERMINED, False),
    "BadEmailAddress": (Reason.USER_UNKNOWN, False),
    "SoftBounce": (Reason.UNDETERMINED, False),
    "Transient": (Reason.SYSTEM_ERROR, False),
    "DnsError": (Reason.SYSTEM_ERROR, False),
    "ManuallyDeactivated": (Reason.UNDETERMINED, False),
    "Unknown": (Reason.UNDETERMINED, False),
    "SpamNotification": (Reason.SPAM, True),
    "VirusNotification": (Reason.SPAM, True),
    "Blocked": (Reason.BLOCKED, True),
    "DMARCPolicy": (Reason.AUTHENTICATION, True),
    "SMTPApiError": (Reason.POLICY, True),
}
_SETTLED = {"BadEmailAddress"}  # Postmark says the address itself is malformed or gone
_LEFT = {"SpamComplaint": EventKind.COMPLAINT, "Unsubscribe": EventKind.UNSUBSCRIBE}


class PostmarkReceiver:
    provider = "postmark"

    def __init__(self, username: str, password: str) -> None:
        self._credentials = f"{username}:{password}".encode()

    def read(self, body: bytes, headers: Mapping[str, str]) -> Batch:
        if not hmac.compare_digest(_credentials(headers), self._credentials):
            raise HookRefused("The Postmark credentials do not match.")
        record = mapping(load_json(body), "The Postmark webhook")
        found = _event(record)
        return Batch([found] if found else [])


def _credentials(headers: Mapping[str, str]) -> bytes:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return b""
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return b""


def _event(record: Mapping[str, Any]) -> HookEvent | None:
    kind = text(record, "RecordType")
    address = text(record, "Email") or text(record, "Recipient")
    if kind == "SpamComplaint":
        return HookEvent(f"complaint/{_record_id(record)}", EventKind.COMPLAINT, address)
    if kind == "SubscriptionChange":
        # Only the reader's own choice: Postmark also suppresses after hard bounces and
        # complaints, which arrive as their own records.
        if record.get("SuppressSending") is True and text(record, "SuppressionReason") in (
            "ManualSuppression",
        ):
            change = f"change/{text(record, 'MessageID')}/{text(record, 'ChangedAt')}"
            return HookEvent(
                event_id(change, "The Postmark change"), EventKind.UNSUBSCRIBE, address
            )
        return None
    if kind != "Bounce":
        return None
    bounce_type = text(record, "Type")
    if bounce_type in _LEFT:
        return HookEvent(f"bounce/{_record_id(record)}", _LEFT[bounce_type], address)
    if bounce_type not in _TYPES:
        return None
    otherwise, about_sender = _TYPES[bounce_type]
    words = " ".join(w for w in (text(record, "Details"), text(record, "Description")) if w)
    reason = (
        otherwise
        if bounce_type in _SETTLED
        else judged("", text(record, "Details"), otherwise=otherwise, about_sender=about_sender)
    )
    return HookEvent(
        f"bounce/{_record_id(record)}",
        EventKind.BOUNCE,
        address,
        reason=reason,
        detail=words[:1000],
    )


def _record_id(record: Mapping[str, Any]) -> str:
    return event_id(text(record, "ID"), "The Postmark record")
