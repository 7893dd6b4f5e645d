"""The public side of signing up: the form, the embeddable snippet and ``POST /subscribe``
(stored through ``readers.signups``: one writer thread, sign-ups in batches).

``POST /subscribe`` answers with the same page, status and bytes (the address aside)
whether the address is new, pending, confirmed or unsubscribed: the confirmation email
goes out in the background after the response, and only when the use case says one is due.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from subscribe.db.models import Cadence
from subscribe.errors import N_, InvalidAddress, InvalidChoice, RateLimited, SubscribeError
from subscribe.readers import languages, preferences, subscribers
from subscribe.readers.addresses import normalize
from subscribe.readers.signups import SignupRequest, SignupResult
from subscribe.readers.subscribers import Consent

from .clientip import limit_key
from .context import TOO_MANY_REQUESTS, Ctx, WebContext
from .forms import last_values, read_field_lists, wants_json
from .handlers import domain_error_response, http_error_response
from .pages import REQUEST_LANGUAGE
from .preferences import CADENCE_LABELS, choices_context

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


def _site_categories(context: WebContext) -> list[str]:
    with Session(context.engine) as session:
        return preferences.site_categories(session, context.settings)


async def _choices(
    context: WebContext, lists: dict[str, list[str]]
) -> tuple[Cadence, tuple[str, ...]] | None:
    """What the form chose (InvalidChoice for what is not on offer); the site's categories
    are read (from the database, unless configured) only when some were ticked."""
    ticked = "categories" in context.settings.form_choice_set and lists.get("categories")
    categories = await run_in_threadpool(_site_categories, context) if ticked else []
    return preferences.signup_choices(
        context.settings, lists, offered_categories=lambda: categories
    )


def _form_choices(
    context: WebContext, lists: dict[str, list[str]] | None = None
) -> dict[str, Any] | None:
    """What the form offers (SUBSCRIBE_FORM_CHOICES), with what was chosen; None: nothing."""
    offered = context.settings.form_choice_set
    if not offered:
        return None
    lists = lists or {}
    with Session(context.engine) as session:
        choices = choices_context(
            session,
            context.settings,
            cadence="cadence" in offered,
            categories="categories" in offered,
            chosen_cadence=(lists.get("cadence") or [Cadence.POST.value])[-1],
            chosen_categories=lists.get("categories", []),
        )
    choices["cadences"] = [(v, label) for v, label in CADENCE_LABELS if v != Cadence.PAUSED]
    return choices


async def _sign_up(
    context: WebContext, request: Request, lists: dict[str, list[str]]
) -> tuple[str, SignupResult | None]:
    """The address and choice checks, then the sign-up through the batch writer (which
    also applies the per-client limit: RateLimited).

    Returns the address to show (normalised from what was typed, never read back from the
    database, where its case may differ) and the result (None for a bot).
    """
    fields = last_values(lists)
    client_ip = context.client_ip(request)
    address = normalize(fields.get("email", ""))  # an invalid address answers the same, bot or not
    if fields.get(HONEYPOT_FIELD, "").strip():
        logger.info("honeypot filled: signup from %s ignored", client_ip)
        return address.display, None
    subscribers.check_domain(context.settings, address)
    # Checked before the address is looked at: the same answer whoever it belongs to.
    choices = await _choices(context, lists)
    signup = SignupRequest(
        address=address,
        name=fields.get("name", ""),
        consent=_consent(request, fields, client_ip),
        rate_key=limit_key(client_ip),
        choices=choices,
        language=_language(context, fields),
    )
    result = await asyncio.wrap_future(context.signups.submit(signup))
    if result.limited:
        raise RateLimited(TOO_MANY_REQUESTS)
    return address.display, result


def _language(context: WebContext, fields: dict[str, str]) -> str:
    """The language a sign-up asked for: the form's ``language`` field when it names one
    on offer (a form asked for with ``?lang=`` sends it), else the request's; "" for
    none (stored so: the reader follows the site's default)."""
    field = fields.get("language", "")
    return languages.asked(context.settings, field=field) or REQUEST_LANGUAGE.get()


CHECK_INBOX = N_(
    "Check your inbox: unless it is already subscribed, %(email)s will get an email "
    "with a link to confirm within a few minutes."
)


def _check_inbox(
    context: WebContext, request: Request, email: str, fields: dict[str, str]
) -> Response:
    language = _language(context, fields)
    if wants_json(request):
        message = context.pages.gettext(CHECK_INBOX, language) % {"email": email}
        return JSONResponse({"ok": True, "message": message})
    return context.pages.render("check_inbox", language=language, email=email)


def _invalid(
    context: WebContext,
    request: Request,
    lists: dict[str, list[str]],
    exc: InvalidAddress | InvalidChoice,
) -> Response:
    fields = last_values(lists)
    language = _language(context, fields)
    message = context.pages.gettext(exc.public, language)
    if wants_json(request):
        # The admin's English detail too, for whoever wires a blog's script to us.
        return JSONResponse({"ok": False, "message": message, "detail": str(exc)}, 422)
    # The form again, with what was typed and chosen (autoescaped) and what is wrong.
    return context.pages.render(
        "subscribe",
        status=422,
        language=language,
        error=message,
        email=fields.get("email", ""),
        name=fields.get("name", ""),
        choices=_form_choices(context, lists),
        language_field=language if fields.get("language") else "",
    )


def cors_headers(context: WebContext, request: Request) -> dict[str, str]:
    """Let the blog's own pages read our answer to a ``fetch``; nobody else's."""
    origin = request.headers.get("origin", "")
    headers = {"Vary": "Origin"}
    if context.site_origin and origin.lower() == context.site_origin:
        headers["Access-Control-Allow-Origin"] = origin
    return headers


@router.get("/")
def subscribe_page(request: Request, context: Ctx) -> Response:
    return context.pages.render(
        "subscribe",
        error="",
        email="",
        name="",
        choices=_form_choices(context),
        language_field=_asked_language(context, request),
    )


def _asked_language(context: WebContext, request: Request) -> str:
    """The language a form page was asked for with ``?lang=``, which its form sends back
    (a multilingual blog's form per language); "" otherwise, so that each visitor's own
    browser decides when they sign up."""
    asked = request.query_params.get("lang", "")
    return (languages.on_offer(asked, context.settings.languages) or "") if asked else ""


def _embed(context: WebContext, request: Request) -> str:
    """The snippet in the language asked for, else the site's: it is pasted into the
    blog for every visitor, whatever the language of the admin's own browser."""
    asked = _asked_language(context, request)
    return context.pages.html(
        "embed",
        language=asked or context.settings.language,
        choices=_form_choices(context),
        language_field=asked,
    )


@router.get("/embed")
def embed_page(request: Request, context: Ctx) -> Response:
    """The code a blog pastes into its sidebar, shown as text to copy (and previewed)."""
    return context.pages.render("embed_page", snippet=_embed(context, request))


@router.get("/embed.txt")
def embed_snippet(request: Request, context: Ctx) -> Response:
    """The same code, raw, for scripts."""
    return PlainTextResponse(_embed(context, request))


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
    lists: dict[str, list[str]] = {}
    try:
        lists = await read_field_lists(request)
        # The answer, errors included, is in the language the form asked for.
        REQUEST_LANGUAGE.set(_language(context, last_values(lists)))
        shown, outcome = await _sign_up(context, request, lists)
        if outcome is not None and outcome.confirmation_due:
            background.add_task(context.outbox.send_soon)
        response = _check_inbox(context, request, shown, last_values(lists))
    except (InvalidAddress, InvalidChoice) as exc:
        response = _invalid(context, request, lists, exc)
    except SubscribeError as exc:
        response = domain_error_response(request, exc)
    except StarletteHTTPException as exc:
        response = http_error_response(request, exc)
    # Errors too: a fetch from the blog must be able to read why it failed.
    response.headers.update(cors_headers(context, request))
    return response
