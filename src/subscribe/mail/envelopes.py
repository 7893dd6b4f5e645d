"""From claimed deliveries to envelopes: the per-reader part of sending a post.

For each claimed delivery: the Message-ID, the signed unsubscribe link, the VERP return
path and the message bytes from the post's compiled ``MessageBuilder``. This is pure
computation on data the ledger already returned (no database, no network), so it can run
in the sending process or in a render process beside it (``render_process``): what goes
in and out are plain tuples, cheap to pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from markupsafe import Markup
from sqlalchemy.orm import object_session

from subscribe.config import Settings
from subscribe.content import PostSpec
from subscribe.db.models import Post, PostCategory
from subscribe.readers import languages
from subscribe.readers.addresses import to_ascii
from subscribe.readers.tokens import Tokens

from .dates import format_date
from .dkim import Unsigned
from .dkim_keys import dkim_signer
from .render import MessageBuilder, Recipient, make_environment, message_id
from .transactional import site_context

# (delivery_id, post_id, subscriber_id, email, email_key, name, language as stored): what
# rendering needs of a claimed delivery.
RenderItem = tuple[int, int, int, str, str, str, str]
# (return path, recipient on the wire, message in DATA's wire form, Message-ID), in the
# items' order.
RenderedItem = tuple[str, str, bytes, str]


@dataclass(frozen=True, slots=True)
class PostContent:
    """What a post's emails are made of; picklable, unlike the ORM row."""

    id: int
    key: str
    title: str
    url: str
    summary: str
    body_html: str
    published_at: datetime | None
    categories: tuple[str, ...] = ()
    image_url: str = ""

    @classmethod
    def of(cls, post: Post) -> PostContent:
        """The post's content; its categories are read through the session that loaded it."""
        assert post.id is not None
        session = object_session(post)
        categories: tuple[str, ...] = ()
        if session is not None:
            query = (
                sa.select(PostCategory.category)
                .where(PostCategory.post_id == post.id)
                .order_by(PostCategory.position)
            )
            categories = tuple(session.execute(query).scalars())
        return cls(
            post.id,
            post.key,
            post.title,
            post.url,
            post.summary,
            post.body_html,
            post.published_at,
            categories,
            post.image_url,
        )


def post_context(
    settings: Settings, post: PostContent | PostSpec, language: str = ""
) -> dict[str, object]:
    return {
        **site_context(settings),
        "post": {
            "title": post.title,
            "url": post.url,
            "summary": post.summary,
            # Our own Markdown rendering (raw HTML escaped) or a feed excerpt sanitised by
            # posts.summaries: trusted markup either way.
            "body_html": Markup(post.body_html),
            "published_at": post.published_at,
            "date": format_date(
                post.published_at, language or settings.language, settings.timezone
            ),
            "categories": list(post.categories),
            "image_url": post.image_url,
        },
    }


def post_builder(
    settings: Settings, post: PostContent | PostSpec, language: str = ""
) -> MessageBuilder:
    """A post's emails in one language (the site's by default): compiled once, spliced
    per reader."""
    language = language or settings.language
    env = make_environment(settings.templates_dir, language)
    context = post_context(settings, post, language)
    return MessageBuilder(settings, env, "email/new_post", context)


class EnvelopeFactory:
    """Makes the envelopes of one run; each post is compiled once per language, on first
    use in that language."""

    def __init__(self, settings: Settings, tokens: Tokens) -> None:
        self._settings = settings
        self._tokens = tokens
        self.signer = dkim_signer(settings)
        self._posts: dict[int, PostContent] = {}
        self._builders: dict[tuple[int, str], tuple[MessageBuilder, str]] = {}
        self._languages: dict[str, str] = {}  # as stored -> as rendered
        # Parsed once: every message needs them.
        self._mail_from = settings.mail_from_address
        self._mail_domain = settings.mail_domain
        self._unsubscribe_base = f"{settings.base_url}/unsubscribe/"
        self._preferences_base = f"{settings.base_url}/preferences/"
        bounce = settings.bounce_address
        self._bounce_parts = bounce.rpartition("@") if bounce else None

    def add_post(self, post: PostContent) -> None:
        self._posts.setdefault(post.id, post)

    def language(self, stored: str) -> str:
        """The language a reader's emails are in (their own, else the site's)."""
        found = self._languages.get(stored)
        if found is None:
            found = self._languages[stored] = languages.of_reader(self._settings, stored)
        return found

    def _builder(self, post_id: int, stored_language: str) -> tuple[MessageBuilder, str]:
        key = (post_id, self.language(stored_language))
        found = self._builders.get(key)
        if found is None:
            post = self._posts[post_id]
            found = self._builders[key] = (post_builder(self._settings, post, key[1]), post.key)
        return found

    def render(self, items: list[RenderItem]) -> list[RenderedItem]:
        return [self.render_one(item) for item in items]

    def render_unsigned(
        self, items: list[RenderItem]
    ) -> list[tuple[RenderedItem, Unsigned | None]]:
        """The items rendered without their DKIM-Signature fields, and what those sign: the
        caller has the signatures made (in another process) and puts them in front."""
        return [self._render(item) for item in items]

    def render_one(self, item: RenderItem) -> RenderedItem:
        rendered, unsigned = self._render(item)
        if unsigned is None or self.signer is None:
            return rendered
        return_path, recipient, wire, mid = rendered
        return return_path, recipient, self.signer.header(unsigned) + wire, mid

    def _render(self, item: RenderItem) -> tuple[RenderedItem, Unsigned | None]:
        delivery_id, post_id, subscriber_id, email, email_key, name, language = item
        builder, post_key = self._builder(post_id, language)
        mid = message_id(self._mail_domain, post_key=post_key, subscriber_id=subscriber_id)
        recipient = self.recipient(subscriber_id, email, email_key, name, mid)
        wire, unsigned = builder.wire_parts(recipient)
        return (self.return_path(delivery_id), recipient.email, wire, mid), unsigned

    def recipient(
        self, subscriber_id: int, email: str, email_key: str, name: str, mid: str
    ) -> Recipient:
        """The reader's fields of a list email: both signed links in the footer."""
        tokens = self._tokens
        return Recipient(
            email=to_ascii(email),
            name=name,
            unsubscribe_url=self._unsubscribe_base
            + tokens.unsubscribe_token(subscriber_id, email_key),
            message_id=mid,
            preferences_url=self._preferences_base
            + tokens.preferences_token(subscriber_id, email_key),
        )

    def return_path(self, delivery_id: int) -> str:
        """VERP when a bounce address is set: bounces+TOKEN@domain names the delivery."""
        if self._bounce_parts is None:
            return self._mail_from
        local, _, domain = self._bounce_parts
        return f"{local}+{self._tokens.bounce_token(delivery_id)}@{domain}"
