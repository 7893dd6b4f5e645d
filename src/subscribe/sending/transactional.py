"""Send one transactional email (confirmation, welcome) on a connection of its own."""

from __future__ import annotations

from collections.abc import Sequence

from subscribe.config import Settings
from subscribe.db.models import Post, Subscriber
from subscribe.mail import transactional
from subscribe.readers.tokens import Tokens

from .sender import Envelope, SenderFactory


async def send(
    settings: Settings, sender_factory: SenderFactory, message: transactional.Message
) -> bytes:
    sender = sender_factory()
    try:
        await sender.send(Envelope(settings.mail_from_address, message.to, message.data))
    finally:
        await sender.close()
    return message.data


async def send_confirmation(
    settings: Settings, sender_factory: SenderFactory, tokens: Tokens, subscriber: Subscriber
) -> bytes:
    return await send(
        settings, sender_factory, transactional.confirmation(settings, tokens, subscriber)
    )


async def send_welcome(
    settings: Settings,
    sender_factory: SenderFactory,
    tokens: Tokens,
    subscriber: Subscriber,
    latest_posts: Sequence[Post],
) -> bytes:
    message = transactional.welcome(settings, tokens, subscriber, latest_posts)
    return await send(settings, sender_factory, message)
