"""Single emails: confirmation, welcome and test messages, rendered in full and sent at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jinja2

from .addresses import to_ascii
from .config import Settings
from .models import Post, Subscriber
from .render import MessageBuilder, Recipient, make_environment, message_id
from .sender import Envelope, SenderFactory
from .tokens import Tokens


def site_context(settings: Settings) -> dict[str, Any]:
    return {
        "site_name": settings.site_name,
        "site_url": settings.site_url,
        "base_url": settings.base_url,
    }


def unsubscribe_url(settings: Settings, tokens: Tokens, subscriber: Subscriber) -> str:
    assert subscriber.id is not None
    token = tokens.unsubscribe_token(subscriber.id, subscriber.email_key)
    return f"{settings.base_url}/unsubscribe/{token}"


def confirm_url(settings: Settings, tokens: Tokens, subscriber: Subscriber) -> str:
    assert subscriber.id is not None
    return (
        f"{settings.base_url}/confirm/{tokens.confirm_token(subscriber.id, subscriber.email_key)}"
    )


async def _send_one(
    settings: Settings,
    sender_factory: SenderFactory,
    *,
    template: str,
    context: Mapping[str, Any],
    subscriber: Subscriber,
    unsubscribe: str,
    kind: str,
    env: jinja2.Environment | None = None,
) -> bytes:
    builder = MessageBuilder(
        settings,
        env or make_environment(settings.templates_dir),
        template,
        context,
        list_headers=bool(unsubscribe),
        splice=False,
    )
    recipient = Recipient(
        email=to_ascii(subscriber.email),
        name=subscriber.name,
        unsubscribe_url=unsubscribe,
        message_id=message_id(
            settings.mail_domain, post_key=kind, subscriber_id=subscriber.id or 0
        ),
    )
    message = builder.build(recipient)
    sender = sender_factory()
    try:
        await sender.send(Envelope(settings.mail_from_address, recipient.email, message))
    finally:
        await sender.close()
    return message


async def send_confirmation(
    settings: Settings, sender_factory: SenderFactory, tokens: Tokens, subscriber: Subscriber
) -> bytes:
    context = {**site_context(settings), "confirm_url": confirm_url(settings, tokens, subscriber)}
    return await _send_one(
        settings,
        sender_factory,
        template="email/confirm",
        context=context,
        subscriber=subscriber,
        unsubscribe="",
        kind=f"confirm:{subscriber.confirmation_sent_at}",
    )


async def send_welcome(
    settings: Settings,
    sender_factory: SenderFactory,
    tokens: Tokens,
    subscriber: Subscriber,
    latest_posts: Sequence[Post],
) -> bytes:
    context = {
        **site_context(settings),
        "latest_posts": [{"title": p.title, "url": p.url} for p in latest_posts],
    }
    return await _send_one(
        settings,
        sender_factory,
        template="email/welcome",
        context=context,
        subscriber=subscriber,
        unsubscribe=unsubscribe_url(settings, tokens, subscriber),
        kind="welcome",
    )
