"""One receiver per provider whose secret is set: the hooks that are on.

A receiver turns a call's raw body and headers into a verified ``Batch`` or raises
``HookRefused`` (the signature or credentials fail; nothing is changed) or ``HookInvalid``
(signed, but not what the provider sends). Keys are read once, at start-up, so that a bad
one stops ``serve`` with one line instead of refusing every call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from subscribe.config import Settings

from .events import Batch
from .mailgun import MailgunReceiver
from .postmark import PostmarkReceiver
from .sendgrid import SendGridReceiver, load_public_key
from .ses import SesReceiver
from .sns import Fetch, SnsVerifier, fetch_with_httpx

PROVIDERS = ("ses", "mailgun", "postmark", "sendgrid")


class Receiver(Protocol):
    provider: str

    def read(self, body: bytes, headers: Mapping[str, str]) -> Batch:
        """The verified events of one call (blocking: it may fetch a certificate)."""


def receivers_for(
    settings: Settings, *, clock: Callable[[], datetime], fetch: Fetch | None = None
) -> dict[str, Receiver]:
    """``fetch`` GETs SNS certificates and SubscribeURLs (httpx unless given)."""
    receivers: dict[str, Receiver] = {}
    if settings.ses_topic_arn_list:
        verifier = SnsVerifier(
            topic_arns=settings.ses_topic_arn_list,
            hosts=settings.ses_cert_host_list,
            fetch=fetch or fetch_with_httpx,
        )
        receivers["ses"] = SesReceiver(verifier, bounce_address=settings.bounce_address)
    if mailgun_key := settings.mailgun_signing_key.get_secret_value():
        receivers["mailgun"] = MailgunReceiver(
            mailgun_key, bounce_address=settings.bounce_address, clock=clock
        )
    if postmark_password := settings.postmark_password.get_secret_value():
        receivers["postmark"] = PostmarkReceiver(settings.postmark_username, postmark_password)
    if settings.sendgrid_public_key.strip():
        receivers["sendgrid"] = SendGridReceiver(load_public_key(settings.sendgrid_public_key))
    return receivers
