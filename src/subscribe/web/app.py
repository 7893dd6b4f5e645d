"""``create_app(settings)``: the FastAPI application behind ``subscribe serve``.

Routes live in one module per job: ``signup`` (form, embed, POST /subscribe), ``links``
(confirm and unsubscribe pages), ``health``, ``hooks`` (the relays' bounce webhooks), and
``devmailbox`` in dev mode only. This module only wires them to what they share
(``WebContext``).
"""

from __future__ import annotations

import asyncio
import functools
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from subscribe.bounces.hooks import Fetch, receivers_for
from subscribe.config import Settings
from subscribe.db import store
from subscribe.db.checkpoints import Checkpointer
from subscribe.db.ratelimit import Limit, RateLimiter
from subscribe.readers.signups import SignupQueue, sign_up_batch
from subscribe.readers.tokens import tokens_for
from subscribe.sending.outbox import Outbox
from subscribe.sending.sender import SenderFactory, smtp_sender_factory

from . import devmailbox, handlers, health, hooks, hooks_publish, links, preferences, signup
from .clientip import ClientIPResolver, parse_networks
from .context import WebContext, now
from .forms import MAX_BODY_BYTES
from .headers import SecurityHeaders, content_security_policy, origin_of
from .pages import Pages, RequestLanguage

SIGNUP_WINDOW = timedelta(minutes=1)
CLOSE_GRACE_SECONDS = 5  # beyond the SMTP timeout, for a pass to finish at shutdown


def create_app(
    settings: Settings,
    *,
    dev_mailbox: Path | None = None,
    sender_factory: SenderFactory | None = None,
    sns_fetch: Fetch | None = None,
    long_running: bool = False,
) -> FastAPI:
    """``sns_fetch`` GETs SNS certificates and SubscribeURLs (httpx unless given: tests
    serve them from a local server, the URL checks unchanged). ``long_running``
    (`serve`): once started, everything loaded so far leaves the garbage collector's view,
    and SQLite's checkpoints move to a thread of their own (``db.checkpoints``)."""
    # Everything that can refuse a bad setting runs before the database is opened, so a
    # misconfigured start fails with one line and leaves no engine behind.
    tokens = tokens_for(settings)
    client_ips = ClientIPResolver(parse_networks(settings.trusted_proxy_list))
    pages = Pages(settings, dev_mailbox=bool(dev_mailbox))
    site_origin = origin_of(settings.site_url)
    hook_receivers = receivers_for(settings, clock=now, fetch=sns_fetch)
    engine = store.open_store(settings.database_url)
    sender_factory = sender_factory or smtp_sender_factory(settings)
    signup_limit = Limit("subscribe-ip", settings.subscribe_rate_limit, SIGNUP_WINDOW)
    context = WebContext(
        settings=settings,
        engine=engine,
        tokens=tokens,
        pages=pages,
        sender_factory=sender_factory,
        outbox=Outbox(engine, settings, sender_factory=sender_factory, tokens=tokens),
        signup_limiter=RateLimiter(engine, signup_limit),
        signups=SignupQueue(
            functools.partial(sign_up_batch, engine, settings, limit=signup_limit, now=now)
        ),
        client_ips=client_ips,
        site_origin=site_origin,
        dev_mailbox=dev_mailbox,
        hooks=hook_receivers,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The in-process sender: a response that queued an email wakes it (nobody waits
        # for it), and its poll sends the rest (other processes', what waited for the relay).
        sender = asyncio.create_task(context.outbox.run_forever())
        checkpointer = Checkpointer(engine) if long_running and store.is_sqlite(engine) else None
        if checkpointer is not None:
            checkpointer.start()
        if long_running:
            # ~180,000 objects are alive once FastAPI, SQLAlchemy and the templates are
            # loaded, and a full collection walks them all: ~40-100 ms with every request
            # waiting, the slowest sign-ups of a burst. None of them is garbage to find.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            # The pass in progress finishes what is in flight first: cut off, it would
            # leave sent confirmations unrecorded, to be sent again by the next start.
            await context.outbox.close(timeout=settings.smtp_timeout + CLOSE_GRACE_SECONDS)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            if checkpointer is not None:
                await asyncio.to_thread(checkpointer.stop)
            await asyncio.to_thread(context.signups.close)
            engine.dispose()

    # No generated API docs: this is a public site, not an API to explore.
    app = FastAPI(
        title=f"{settings.site_name} subscriptions",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
        # Forms here are a few fields: a bigger body is refused (413) before it is read.
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.web = context
    csp = content_security_policy([origin_of(settings.base_url), site_origin])
    app.add_middleware(SecurityHeaders, csp=csp)
    app.add_middleware(RequestLanguage, settings=settings)
    handlers.install(app)
    app.include_router(signup.router)
    app.include_router(links.router)
    app.include_router(preferences.router)
    app.include_router(health.router)
    app.include_router(hooks.router)
    app.include_router(hooks_publish.router)
    if dev_mailbox is not None:
        app.include_router(devmailbox.router)
    return app
