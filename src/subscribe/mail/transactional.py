"""Single emails: confirmation and welcome messages, rendered in full (no per-post layout)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2

from subscribe.config import Settings
from subscribe.db.models import Post, Subscriber
from subscribe.readers.addresses import to_ascii
from subscribe.readers.tokens import Tokens

from .render import MessageBuilder, Recipient, make_environment, message_id


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


@dataclass(frozen=True, slots=True)
class Message:
    """One whole email and the address it goes to."""

    to: str
    data: bytes


def _build(
    settings: Settings,
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
    return Message(recipient.email, builder.build(recipient))


def confirmation(settings: Settings, tokens: Tokens, subscriber: Subscriber) -> Message:
    context = {**site_context(settings), "confirm_url": confirm_url(settings, tokens, subscriber)}
    return _build(
        settings,
        template="email/confirm",
        context=context,
        subscriber=subscriber,
        unsubscribe="",
        kind=f"confirm:{subscriber.confirmation_sent_at}",
    )


def welcome(
    settings: Settings, tokens: Tokens, subscriber: Subscriber, latest_posts: Sequence[Post]
) -> Message:
    context = {
        **site_context(settings),
        "latest_posts": [{"title": p.title, "url": p.url} for p in latest_posts],
    }
    return _build(
        settings,
        template="email/welcome",
        context=context,
        subscriber=subscriber,
        unsubscribe=unsubscribe_url(settings, tokens, subscriber),
        kind="welcome",
    )
