"""The public side of signing up: the form, the embeddable snippet and ``POST /subscribe``
(stored through ``readers.signups``: one writer thread, sign-ups in batches).

``POST /subscribe`` answers with the same page, status and bytes (the address aside)
whether the address is new, pending, confirmed or unsubscribed: the confirmation email
goes out in the background after the response, and only when the use case says one is due.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from subscribe.errors import InvalidAddress, RateLimited, SubscribeError
from subscribe.readers import subscribers
from subscribe.readers.addresses import normalize
from subscribe.readers.signups import SignupRequest, SignupResult
from subscribe.readers.subscribers import Consent

from .clientip import limit_key
from .context import TOO_MANY_REQUESTS, Ctx, WebContext
from .forms import read_fields, wants_json
from .handlers import domain_error_response, http_error_response

logger = logging.getLogger(__name__)
router = APIRouter()

# The honeypot: a text field people never see (moved off-screen, out of the tab order)
# and form-filling bots rarely leave empty. Named like a field a bot expects to fill.
HONEYPOT_FIELD = "website"


def _consent(request: Request, fields: dict[str, str], client_ip: str) -> Consent:
    # An explicit source (our resubscribe form, a site's own field) names the page best;
    # otherwise the page the form was on, as the browser reports it.
    source = fields.get("source", "").strip() or request.headers.get("referer", "") or "web"
    return Consent(source=source, ip=client_ip, user_agent=request.headers.get("user-agent", ""))


async def _sign_up(
    context: WebContext, request: Request, fields: dict[str, str]
) -> tuple[str, SignupResult | None]:
    """The address check, then the sign-up through the batch writer (which also applies
    the per-client limit: RateLimited).

    Returns the address to show (normalised from what was typed, never read back from the
    database, where its case may differ) and the result (None for a bot).
    """
    client_ip = context.client_ip(request)
    address = normalize(fields.get("email", ""))  # an invalid address answers the same, bot or not
    if fields.get(HONEYPOT_FIELD, "").strip():
        logger.info("honeypot filled: signup from %s ignored", client_ip)
        return address.display, None
    subscribers.check_domain(context.settings, address)
    signup = SignupRequest(
        address=address,
        name=fields.get("name", ""),
        consent=_consent(request, fields, client_ip),
        rate_key=limit_key(client_ip),
    )
    result = await asyncio.wrap_future(context.signups.submit(signup))
    if result.limited:
        raise RateLimited(TOO_MANY_REQUESTS)
    return address.display, result


def _check_inbox(context: WebContext, request: Request, email: str) -> Response:
    message = (
        f"Check your inbox: unless it is already subscribed, {email} will get an email "
        "with a link to confirm within a few minutes."
    )
    if wants_json(request):
        return JSONResponse({"ok": True, "message": message})
    return context.pages.render("check_inbox", email=email)


def _invalid(
    context: WebContext, request: Request, fields: dict[str, str], exc: InvalidAddress
) -> Response:
    if wants_json(request):
        return JSONResponse({"ok": False, "message": str(exc)}, 422)
    # The form again, with what was typed (autoescaped) and what is wrong with it.
    return context.pages.render(
        "subscribe",
        status=422,
        error=str(exc),
        email=fields.get("email", ""),
        name=fields.get("name", ""),
    )


def cors_headers(context: WebContext, request: Request) -> dict[str, str]:
    """Let the blog's own pages read our answer to a ``fetch``; nobody else's."""
    origin = request.headers.get("origin", "")
    headers = {"Vary": "Origin"}
    if context.site_origin and origin.lower() == context.site_origin:
        headers["Access-Control-Allow-Origin"] = origin
    return headers


@router.get("/")
def subscribe_page(context: Ctx) -> Response:
    return context.pages.render("subscribe", error="", email="", name="")


@router.get("/embed")
def embed_page(context: Ctx) -> Response:
    """The code a blog pastes into its sidebar, shown as text to copy (and previewed)."""
    return context.pages.render("embed_page", snippet=context.pages.html("embed"))


@router.get("/embed.txt")
def embed_snippet(context: Ctx) -> Response:
    """The same code, raw, for scripts."""
    return PlainTextResponse(context.pages.html("embed"))


@router.options("/subscribe")
def subscribe_preflight(request: Request, context: Ctx) -> Response:
    headers = cors_headers(context, request)
    if "Access-Control-Allow-Origin" not in headers:
        return Response("Cross-origin requests are only accepted from the blog.", 403, headers)
    headers |= {
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type, Accept",
        "Access-Control-Max-Age": "600",
    }
    return Response(status_code=204, headers=headers)


@router.post("/subscribe")
async def subscribe(request: Request, background: BackgroundTasks, context: Ctx) -> Response:
    fields: dict[str, str] = {}
    try:
        fields = await read_fields(request)
        shown, outcome = await _sign_up(context, request, fields)
        if outcome is not None and outcome.confirmation_due:
            background.add_task(context.outbox.flush)
        response = _check_inbox(context, request, shown)
    except InvalidAddress as exc:
        response = _invalid(context, request, fields, exc)
    except SubscribeError as exc:
        response = domain_error_response(request, exc)
    except StarletteHTTPException as exc:
        response = http_error_response(request, exc)
    # Errors too: a fetch from the blog must be able to read why it failed.
    response.headers.update(cors_headers(context, request))
    return response
