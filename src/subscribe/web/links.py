"""The pages behind the links in our emails: confirm a subscription, unsubscribe.

A GET only shows a button: mail scanners and link previewers follow every link, and must
not subscribe or unsubscribe anyone. Only the POST acts, and doing it twice is harmless.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.concurrency import run_in_threadpool

from subscribe.db.models import SubscriberStatus
from subscribe.errors import N_, TokenExpired, TokenInvalid
from subscribe.mail.translations import locale
from subscribe.readers import subscribers
from subscribe.readers.subscribers import Consent, SignupOutcome
from subscribe.readers.tokens import TokenSubject

from .context import Ctx, WebContext, now
from .forms import read_fields

router = APIRouter()


def _duration(seconds: int, language: str) -> str:
    """``7 days``, ``7 Tage``, ``7 dni``: whole units, rounded down (36 hours: 1 day), as
    Babel spells them."""
    from babel.dates import format_timedelta

    sizes = (("day", 86400), ("hour", 3600), ("minute", 60))
    unit, size = next(((u, n) for u, n in sizes if seconds >= n), ("second", 1))
    whole = timedelta(seconds=seconds // size * size)
    return format_timedelta(
        whole,
        granularity=unit,
        threshold=1e9,
        format="long",
        locale=locale(language),
        add_direction=False,
    )


def _expired(context: WebContext, token: str, subject: object) -> Response:
    """410 with a button for a fresh link; the token goes back to us, not an address."""
    language = context.language_of(subject) if isinstance(subject, TokenSubject) else ""
    language = context.pages.language(language)
    return context.pages.render(
        "expired",
        status=410,
        language=language,
        token=token,
        max_age=_duration(context.settings.confirm_max_age, language),
    )


# -- confirm ------------------------------------------------------------------------------


def _renew(context: WebContext, subject: TokenSubject, consent: Consent) -> SignupOutcome:
    with context.write_session() as session:
        return subscribers.renew_confirmation(
            session, context.settings, subject=subject, consent=consent, now=now()
        )


# Registered before /confirm/{token}, which would otherwise take "resend" for a token.
@router.post("/confirm/resend")
async def resend_confirmation(
    request: Request, background: BackgroundTasks, context: Ctx
) -> Response:
    fields = await read_fields(request)
    try:
        subject = context.tokens.read_confirm(fields.get("token", ""))
    except TokenExpired as exc:
        if not isinstance(exc.subject, TokenSubject):
            raise TokenInvalid(N_("This link is not valid.")) from None
        subject = exc.subject
    client_ip = await run_in_threadpool(context.check_signup_rate, request)
    consent = Consent(
        source="confirm-resend", ip=client_ip, user_agent=request.headers.get("user-agent", "")
    )
    outcome = await run_in_threadpool(_renew, context, subject, consent)
    if outcome.confirmation_due:
        background.add_task(context.outbox.send_soon)
        state = "sent"
    elif outcome.subscriber.status == SubscriberStatus.CONFIRMED:
        state = "confirmed"
    else:
        state = "recent"  # the cooldown: a link went out a few minutes ago
    return context.pages.render(
        "resent",
        language=context.reader_language(outcome.subscriber),
        state=state,
    )


@router.get("/confirm/{token}")
def confirm_page(token: str, context: Ctx) -> Response:
    try:
        subject = context.tokens.read_confirm(token)  # tell a bad link now, before the button
    except TokenExpired as exc:
        return _expired(context, token, exc.subject)
    return context.pages.render("confirm", language=context.language_of(subject))


@router.post("/confirm/{token}")
def confirm(token: str, background: BackgroundTasks, context: Ctx) -> Response:
    try:
        subject = context.tokens.read_confirm(token)
    except TokenExpired as exc:
        return _expired(context, token, exc.subject)
    with context.write_session() as session:
        subscriber, first_time = subscribers.confirm(session, subject=subject, now=now())
    if first_time:
        background.add_task(context.outbox.send_soon)  # the welcome, queued with the confirmation
    return context.pages.render(
        "confirmed",
        language=context.reader_language(subscriber),
        first_time=first_time,
        subscribed=subscriber.status == SubscriberStatus.CONFIRMED,
    )


# -- unsubscribe --------------------------------------------------------------------------


@router.get("/unsubscribe/{token}")
def unsubscribe_page(token: str, context: Ctx) -> Response:
    subject = context.tokens.read_unsubscribe(token)
    return context.pages.render(
        "unsubscribe",
        language=context.language_of(subject),
        preferences_token=context.tokens.preferences_token_of(subject),
    )


@router.post("/unsubscribe/{token}")
def unsubscribe(token: str, context: Ctx) -> Response:
    """Unsubscribe at once, and answer 200 (no redirect: RFC 8058 clients do not follow one).

    The body is not read: RFC 8058's ``List-Unsubscribe=One-Click`` arrives urlencoded or
    multipart depending on the mail provider, and our own button sends nothing; the signed
    token alone says who leaves. No cookie or CSRF token either: providers send neither.
    """
    subject = context.tokens.read_unsubscribe(token)
    with context.write_session() as session:
        subscriber = subscribers.unsubscribe_by_token(session, subject=subject, now=now())
    # Only the token's holder sees this page, so showing the address leaks nothing.
    language = context.reader_language(subscriber)
    return context.pages.render("unsubscribed", language=language, email=subscriber.email)
