"""``POST /hooks/publish``: a blog says a post went live; we announce it and send it.

Off (404) unless ``SUBSCRIBE_WEBHOOK_SECRET`` is set. The caller proves it knows the secret
with ``Authorization: Bearer SECRET``, ``X-Subscribe-Signature: sha256=HEX`` (HMAC of
the raw body) or Ghost's ``X-Ghost-Signature``; anything else is 401 and changes nothing.
The answer is 202 once the post is stored with its deliveries: the in-process sender
(``Outbox``) sends them after the response, and its poll retries what the relay
deferred. The same post again is 200 with nothing new queued. Every refusal is JSON
with a one-line ``error``.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from subscribe.errors import SourceError
from subscribe.posts.publish import authenticated, parse_payload, publish

from .context import Ctx, now

router = APIRouter()

# Ghost sends the whole post (HTML, Lexical and more) in its payload.
MAX_HOOK_BYTES = 4 * 1024 * 1024


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


@router.post("/hooks/publish", max_body_size=MAX_HOOK_BYTES)
async def publish_hook(request: Request, ctx: Ctx) -> JSONResponse:
    secret = ctx.settings.webhook_secret.get_secret_value()
    if not secret:
        return _error(404, "There is no page at this address.")
    body = await request.body()
    if not authenticated(
        secret,
        authorization=request.headers.get("authorization", ""),
        signature=request.headers.get("x-subscribe-signature", ""),
        ghost_signature=request.headers.get("x-ghost-signature", ""),
        body=body,
    ):
        return _error(401, "missing or wrong credentials for this hook")
    try:
        payload = parse_payload(body)
    except SourceError as exc:
        return _error(400, str(exc))
    try:
        outcome = await asyncio.to_thread(publish, ctx.engine, ctx.settings, payload, now=now)
    except SourceError as exc:  # the feed is unset or cannot be read: the site's to fix
        return _error(422, str(exc))
    posts = [
        {"title": p.title, "url": p.url, "new": p.is_new, "queued": p.enqueued}
        for p in outcome.posts
    ]
    if outcome.posts:
        # Also for a post announced before: what a relay outage left queued goes now.
        ctx.outbox.wake(posts=True)
    if outcome.new:
        return JSONResponse({"status": "accepted", "posts": posts}, status_code=202)
    status = "already announced" if posts else "nothing new"
    return JSONResponse({"status": status, "posts": posts}, status_code=200)
