"""Single emails: confirmations, welcomes and address changes, in each reader's language."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
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


# Compiled builders, kept for the process: `serve` makes a pass (and a Transactional) per
# sign-up or so, and a compile costs a few full renders. Keyed by the settings object
# (held in the value, so its id is not reused) and what every reader's email shows.
BUILDERS_KEPT = 64
_BUILDERS: dict[tuple[Hashable, ...], tuple[Settings, MessageBuilder]] = {}


class Transactional:
    """Builds confirmation, welcome and address-change emails, each in its reader's
    language. Confirmations and welcomes are compiled once per language (and, for a
    welcome, per list of latest posts) and spliced per reader like a post, the confirm
    link being one of the spliced fields: a burst of sign-ups costs tens of microseconds
    an email, not a full render each."""

    def __init__(self, settings: Settings, tokens: Tokens) -> None:
        self._settings = settings
        self._tokens = tokens

    def _builder(
        self,
        template: str,
        language: str,
        shared: Mapping[str, Any],
        *,
        list_headers: bool,
        splice: bool,
    ) -> MessageBuilder:
        def make() -> MessageBuilder:
            env = make_environment(self._settings.templates_dir, language)
            context = {**site_context(self._settings), **shared}
            return MessageBuilder(
                self._settings, env, template, context, list_headers=list_headers, splice=splice
            )

        if not splice:
            return make()
        key = (id(self._settings), template, language, repr(sorted(shared.items())))
        found = _BUILDERS.get(key)
        if found is None or found[0] is not self._settings:
            if len(_BUILDERS) >= BUILDERS_KEPT:
                _BUILDERS.clear()
            found = _BUILDERS[key] = (self._settings, make())
        return found[1]

    def _build(
        self,
        template: str,
        reader: Addressee,
        *,
        key: str,
        shared: Mapping[str, Any] | None = None,
        links: Mapping[str, str],
        splice: bool = True,
    ) -> Message:
        """``links`` are the reader's own (``confirm_url``, ``unsubscribe_url``,
        ``preferences_url``); ``shared`` what every reader's email of this kind shows.
        ``key`` names the email (``confirm:DELIVERY_ID``): the same key, the same
        Message-ID, so a rare re-send after a kill is recognisable as one."""
        language = languages.of_reader(self._settings, reader.language)
        unsubscribe = links.get("unsubscribe_url", "")
        builder = self._builder(
            template, language, shared or {}, list_headers=bool(unsubscribe), splice=splice
        )
        mid = message_id(
            self._settings.mail_domain, post_key=key, subscriber_id=reader.subscriber_id
        )
        recipient = Recipient(
            to_ascii(reader.email),
            reader.name,
            unsubscribe,
            mid,
            links.get("preferences_url", ""),
            links.get("confirm_url", ""),
        )
        return Message(recipient.email, builder.build(recipient), mid)

    def confirmation(self, reader: Addressee, *, key: str) -> Message:
        url = confirm_url(self._settings, self._tokens, reader)
        return self._build("email/confirm", reader, key=key, links={"confirm_url": url})

    def address_change(self, reader: Addressee, new_address: str, *, key: str) -> Message:
        """To the address a reader asked to move to: its link moves them once followed."""
        token = self._tokens.address_token(reader.subscriber_id, address_key(new_address))
        moving = Addressee(
            reader.subscriber_id,
            new_address,
            address_key(new_address),
            reader.name,
            reader.language,
        )
        # It shows the reader's old address, so it is rendered for them alone, in full
        # (a compile would cost more than it saves: readers rarely move).
        return self._build(
            "email/address_change",
            moving,
            key=key,
            shared={"old_email": reader.email},
            links={"confirm_url": f"{self._settings.base_url}/preferences/address/{token}"},
            splice=False,
        )

    def welcome(self, reader: Addressee, latest_posts: Sequence[Post], *, key: str) -> Message:
        links = {
            "unsubscribe_url": unsubscribe_url(self._settings, self._tokens, reader),
            "preferences_url": preferences_url(self._settings, self._tokens, reader),
        }
        latest = [{"title": p.title, "url": p.url} for p in latest_posts]
        return self._build(
            "email/welcome", reader, key=key, shared={"latest_posts": latest}, links=links
        )
