"""Single emails: confirmation and welcome messages, rendered in full (no per-post layout)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from subscribe.config import Settings
from subscribe.db.models import Post, Subscriber
from subscribe.readers import languages
from subscribe.readers.addresses import address_key, to_ascii
from subscribe.readers.tokens import Tokens

from .render import MessageBuilder, Recipient, make_environment, message_id


def site_context(settings: Settings) -> dict[str, Any]:
    return {
        "site_name": settings.site_name,
        "site_url": settings.site_url,
        "base_url": settings.base_url,
    }


@dataclass(frozen=True, slots=True)
class Addressee:
    """The reader a transactional email goes to: what the ledger's claim returns."""

    subscriber_id: int
    email: str
    email_key: str
    name: str
    language: str = ""  # as stored: "" is the site's default

    @classmethod
    def of(cls, subscriber: Subscriber) -> Addressee:
        assert subscriber.id is not None
        return cls(
            subscriber.id,
            subscriber.email,
            subscriber.email_key,
            subscriber.name,
            subscriber.language,
        )


def unsubscribe_url(settings: Settings, tokens: Tokens, reader: Addressee) -> str:
    token = tokens.unsubscribe_token(reader.subscriber_id, reader.email_key)
    return f"{settings.base_url}/unsubscribe/{token}"


def preferences_url(settings: Settings, tokens: Tokens, reader: Addressee) -> str:
    token = tokens.preferences_token(reader.subscriber_id, reader.email_key)
    return f"{settings.base_url}/preferences/{token}"


def confirm_url(settings: Settings, tokens: Tokens, reader: Addressee) -> str:
    token = tokens.confirm_token(reader.subscriber_id, reader.email_key)
    return f"{settings.base_url}/confirm/{token}"


@dataclass(frozen=True, slots=True)
class Message:
    """One whole email, the address it goes to, and its Message-ID."""

    to: str
    data: bytes
    message_id: str = ""


class Transactional:
    """Builds confirmation and welcome emails, rendered in full (the confirm link differs
    per reader, so there is no per-post layout to splice), each in its reader's language;
    templates compiled once per language."""

    def __init__(self, settings: Settings, tokens: Tokens) -> None:
        self._settings = settings
        self._tokens = tokens

    def _build(
        self, template: str, context: Mapping[str, Any], reader: Addressee, *, key: str
    ) -> Message:
        """``key`` names the email (``confirm:DELIVERY_ID``): the same key, the same
        Message-ID, so a rare re-send after a kill is recognisable as one."""
        language = languages.of_reader(self._settings, reader.language)
        env = make_environment(self._settings.templates_dir, language)
        unsubscribe = context.get("unsubscribe_url", "")
        builder = MessageBuilder(
            self._settings,
            env,
            template,
            {**site_context(self._settings), **context},
            list_headers=bool(unsubscribe),
            splice=False,
        )
        mid = message_id(
            self._settings.mail_domain, post_key=key, subscriber_id=reader.subscriber_id
        )
        preferences = str(context.get("preferences_url", ""))
        recipient = Recipient(
            to_ascii(reader.email), reader.name, str(unsubscribe), mid, preferences
        )
        return Message(recipient.email, builder.build(recipient), mid)

    def confirmation(self, reader: Addressee, *, key: str) -> Message:
        url = confirm_url(self._settings, self._tokens, reader)
        return self._build("email/confirm", {"confirm_url": url}, reader, key=key)

    def address_change(self, reader: Addressee, new_address: str, *, key: str) -> Message:
        """To the address a reader asked to move to: its link moves them once followed."""
        token = self._tokens.address_token(reader.subscriber_id, address_key(new_address))
        context = {
            "confirm_url": f"{self._settings.base_url}/preferences/address/{token}",
            "old_email": reader.email,
        }
        moving = Addressee(
            reader.subscriber_id,
            new_address,
            address_key(new_address),
            reader.name,
            reader.language,
        )
        return self._build("email/address_change", context, moving, key=key)

    def welcome(self, reader: Addressee, latest_posts: Sequence[Post], *, key: str) -> Message:
        context = {
            "latest_posts": [{"title": p.title, "url": p.url} for p in latest_posts],
            "unsubscribe_url": unsubscribe_url(self._settings, self._tokens, reader),
            "preferences_url": preferences_url(self._settings, self._tokens, reader),
        }
        return self._build("email/welcome", context, reader, key=key)
