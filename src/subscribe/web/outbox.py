"""Emails the web sends, run as background tasks after the response has gone out.

The visitor's page never waits on SMTP (and its timing says nothing about the address).
A failure cannot reach the visitor any more, so it is logged; the confirmation slot stays
taken, and the visitor can ask again once the cooldown has passed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from subscribe.db.models import Post, Subscriber
from subscribe.errors import DeliveryError
from subscribe.sending import transactional

from .context import WebContext

logger = logging.getLogger(__name__)


async def send_confirmation(context: WebContext, subscriber: Subscriber) -> None:
    try:
        await transactional.send_confirmation(
            context.settings, context.sender_factory, context.tokens, subscriber
        )
    except DeliveryError as exc:
        # The subscriber id, not the address: logs are kept longer than the list.
        logger.warning("confirmation email for subscriber %s not sent: %s", subscriber.id, exc)


async def send_welcome(
    context: WebContext, subscriber: Subscriber, latest_posts: Sequence[Post]
) -> None:
    try:
        await transactional.send_welcome(
            context.settings, context.sender_factory, context.tokens, subscriber, latest_posts
        )
    except DeliveryError as exc:
        logger.warning("welcome email for subscriber %s not sent: %s", subscriber.id, exc)
