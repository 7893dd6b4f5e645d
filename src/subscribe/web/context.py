"""What every route needs, built once by ``create_app`` and handed to routes as a dependency."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribe.bounces.hooks import Receiver
from subscribe.config import Settings
from subscribe.db import store
from subscribe.db.models import Subscriber
from subscribe.db.ratelimit import RateLimiter
from subscribe.errors import N_, RateLimited
from subscribe.readers import languages
from subscribe.readers.signups import SignupQueue
from subscribe.readers.tokens import Tokens, TokenSubject
from subscribe.sending.outbox import Outbox
from subscribe.sending.sender import SenderFactory

from .clientip import ClientIPResolver, limit_key
from .pages import Pages

TOO_MANY_REQUESTS = N_("Too many requests from your network. Please wait a minute and try again.")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class WebContext:
    settings: Settings
    engine: Engine
    tokens: Tokens
    pages: Pages
    sender_factory: SenderFactory
    outbox: Outbox  # sends the confirmations and welcomes the routes put on the ledger
    signup_limiter: RateLimiter
    signups: SignupQueue  # POST /subscribe's writer: sign-ups stored in batches
    client_ips: ClientIPResolver
    site_origin: str  # the blog's origin: the only one allowed to post JSON cross-origin
    dev_mailbox: Path | None
    hooks: dict[str, Receiver] = field(default_factory=dict)  # provider -> its webhook

    def client_ip(self, request: Request) -> str:
        peer = request.client.host if request.client else None
        return self.client_ips.resolve(peer, request.headers.getlist("x-forwarded-for"))

    def check_signup_rate(self, request: Request) -> str:
        """The client's address, once it has passed the per-client limit on requests that
        may send a confirmation email (else ``RateLimited``). Blocking: run it in a thread."""
        client_ip = self.client_ip(request)
        if not self.signup_limiter.hit(limit_key(client_ip), now=now()):
            raise RateLimited(TOO_MANY_REQUESTS)
        return client_ip

    def write_session(self) -> AbstractContextManager[Session]:
        return store.write_session(self.engine)

    def reader_language(self, reader: Subscriber) -> str:
        """The language of the pages behind a reader's links: their own, else the site's."""
        return languages.of_reader(self.settings, reader.language)

    def language_of(self, subject: TokenSubject) -> str:
        """The language of the reader a signed link names (their pages are in it)."""
        with Session(self.engine) as session:
            return languages.of_subscriber(session, self.settings, subject.subscriber_id)


def get_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.web
    return context


Ctx = Annotated[WebContext, Depends(get_context)]
