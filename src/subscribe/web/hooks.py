"""``POST /hooks/bounces/{provider}``: the relays' bounce and complaint webhooks.

Thin: the receiver for the provider verifies and reads the call, ``apply_batch`` acts on
it (``bounces.hooks``). A provider whose secret is unset has no receiver: 404, as if the
route were not there. Refusals are 401 and change nothing, unreadable bodies 400; a
provider that gets a 2xx stops retrying, so 200 means every event is applied or known.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from subscribe.bounces.hooks import HookRun, apply_batch

from .context import Ctx, now

router = APIRouter()

# SendGrid batches up to a few hundred events, SES notifications carry the headers: far
# more than the forms' cap, still bounded.
MAX_HOOK_BODY_BYTES = 1024 * 1024


@router.post("/hooks/bounces/{provider}", max_body_size=MAX_HOOK_BODY_BYTES)
async def bounce_hook(provider: str, request: Request, context: Ctx) -> JSONResponse:
    receiver = context.hooks.get(provider)
    if receiver is None:
        raise HTTPException(404)
    body = await request.body()
    headers = {name.lower(): value for name, value in request.headers.items()}

    def receive() -> HookRun:
        # Blocking (a certificate fetch, the database): off the event loop.
        batch = receiver.read(body, headers)
        return apply_batch(
            context.engine, context.tokens, provider=provider, batch=batch, now=now()
        )

    run = await run_in_threadpool(receive)
    bounces = run.bounces
    return JSONResponse(
        {
            "ok": True,
            "applied": run.applied,
            "repeated": run.repeated,
            "unmatched": run.unmatched,
            "bounced": len(bounces.newly_bounced),
            "counted": bounces.counted,
            "ignored": bounces.ignored,
            "complaints": len(bounces.complaints),
            "unsubscribed": len(run.unsubscribed),
        }
    )
