"""Transactional email on the ledger: sending passes over confirmations and welcomes only,
and one email straight to the relay for `send-test` (which records nothing)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from subscribe.config import Settings
from subscribe.mail.transactional import Message
from subscribe.readers.tokens import Tokens

from .notifier import Notifier
from .report import RunReport
from .sender import Envelope, SenderFactory

# Transactional mail comes a few at a time: a handful of connections carries a sign-up burst.
MESSAGE_CONNECTIONS = 4


async def send(settings: Settings, sender_factory: SenderFactory, message: Message) -> bytes:
    """One email on a connection of its own, outside the ledger (`send-test`)."""
    sender = sender_factory()
    try:
        await sender.send(Envelope(settings.mail_from_address, message.to, message.data))
    finally:
        await sender.close()
    return message.data


def message_pass(
    engine: Engine,
    settings: Settings,
    *,
    sender_factory: SenderFactory,
    tokens: Tokens,
    connections: int | None = None,
    posts: bool = False,
) -> Notifier:
    """One pass over the transactional emails that are due, ready to ``run()``; posts are
    left to their runs unless ``posts`` (a `serve` that took a publish webhook sends the
    post too). Its ``run()`` raises ``DeliveryError`` when the relay cannot be reached:
    the rows stay queued."""
    default = settings.smtp_connections
    return Notifier(
        engine,
        settings,
        sender_factory=sender_factory,
        tokens=tokens,
        connections=connections or (default if posts else min(default, MESSAGE_CONNECTIONS)),
        messages_only=not posts,
    )


async def deliver_due_messages(
    engine: Engine,
    settings: Settings,
    *,
    sender_factory: SenderFactory,
    tokens: Tokens,
    connections: int | None = None,
    posts: bool = False,
) -> RunReport:
    """Run one ``message_pass``."""
    notifier = message_pass(
        engine,
        settings,
        sender_factory=sender_factory,
        tokens=tokens,
        connections=connections,
        posts=posts,
    )
    return await notifier.run()
