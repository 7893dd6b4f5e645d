"""What the sending loop reads to make messages: post contents for the renderer, and the
envelopes of transactional rows (confirmations, welcomes).

They are made in the sending process, in full (a few milliseconds each): they are few, the
confirm link differs per reader so there is no layout to splice, and a welcome lists the
latest posts, which only a process with the database can read (never the render process).
"""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.db import store
from subscribe.db.models import MessageKind, Post
from subscribe.mail.envelopes import EnvelopeFactory, PostContent
from subscribe.mail.transactional import Addressee, Transactional
from subscribe.readers.tokens import Tokens

from .ledger import Claimed
from .sender import Envelope


class MessageMaker:
    def __init__(self, engine: Engine, settings: Settings, tokens: Tokens) -> None:
        self._engine = engine
        self._emails = Transactional(settings, tokens)
        self._return_paths = EnvelopeFactory(settings, tokens)
        self._latest_posts: list[Post] | None = None  # loaded once a pass, on first use

    async def envelope(self, item: Claimed) -> tuple[Envelope, str]:
        """The envelope and Message-ID of a claimed transactional delivery. The Message-ID
        is keyed by the delivery, so a re-send after a kill carries the same one."""
        reader = Addressee(item.subscriber_id, item.email, item.email_key, item.name)
        key = f"{item.kind}:{item.delivery_id}"
        if item.kind == MessageKind.WELCOME:
            if self._latest_posts is None:
                self._latest_posts = await asyncio.to_thread(self._load_latest_posts)
            message = self._emails.welcome(reader, self._latest_posts, key=key)
        else:
            message = self._emails.confirmation(reader, key=key)
        mail_from = self._return_paths.return_path(item.delivery_id)
        return Envelope(mail_from, message.to, message.data), message.message_id

    def post_contents(self, post_ids: set[int]) -> list[PostContent]:
        """What the renderer needs of each post (a post deleted meanwhile is left out)."""
        with Session(self._engine) as session:
            posts = [p for pid in post_ids if (p := session.get(Post, pid)) is not None]
            return [PostContent.of(post) for post in posts]

    def _load_latest_posts(self) -> list[Post]:
        with Session(self._engine) as session:
            return list(store.latest_posts(session))
