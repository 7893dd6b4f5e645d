"""The preferences page behind the link in every email footer: name, cadence, categories,
a new address. A GET shows the form and changes nothing; a POST saves and shows the same
page with a "saved" line. A new address is confirmed by a link sent to it (on the ledger)
before anything moves.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.db.models import Cadence, Subscriber
from subscribe.errors import N_
from subscribe.readers import preferences
from subscribe.readers.tokens import TokenSubject

from .context import Ctx, WebContext, now
from .forms import last_values, read_field_lists
from .pages import REQUEST_LANGUAGE

router = APIRouter()

# Catalog messages: the template shows each in the page's language.
CADENCE_LABELS = (
    (Cadence.POST.value, N_("Every post, as it comes out")),
    (Cadence.DAILY.value, N_("A daily digest")),
    (Cadence.WEEKLY.value, N_("A weekly digest")),
    (Cadence.PAUSED.value, N_("Pause all email for now")),
)


def choices_context(
    session: Session,
    settings: Settings,
    *,
    cadence: bool = True,
    categories: bool = True,
    chosen_cadence: str = Cadence.POST.value,
    chosen_categories: tuple[str, ...] | list[str] = (),
) -> dict[str, Any]:
    """What ``web/_choices.html`` shows (the subscribe form uses it too)."""
    return {
        "cadence": cadence,
        "cadences": CADENCE_LABELS,
        "chosen_cadence": chosen_cadence,
        "categories": preferences.site_categories(session, settings) if categories else [],
        "chosen_categories": list(chosen_categories),
    }


def _page(context: WebContext, session: Session, reader: Subscriber, **extra: Any) -> Response:
    assert reader.id is not None
    choices = choices_context(
        session,
        context.settings,
        chosen_cadence=reader.cadence,
        chosen_categories=preferences.categories_of(session, reader.id),
    )
    return context.pages.render(
        "preferences",
        language=context.reader_language(reader),
        name=reader.name,
        email=reader.email,
        pending_email=reader.pending_email,
        choices=choices,
        saved=extra.pop("saved", False),
        address_change_sent=extra.pop("address_change_sent", False),
    )


@router.get("/preferences/{token}")
def preferences_page(token: str, context: Ctx) -> Response:
    subject = context.tokens.read_preferences(token)
    with Session(context.engine) as session:
        reader = preferences.reader_for(session, subject)
        return _page(context, session, reader)


def _save(context: WebContext, subject: TokenSubject, fields: dict[str, list[str]]) -> Response:
    values = last_values(fields)
    with context.write_session() as session:
        reader = preferences.reader_for(session, subject)
        assert reader.id is not None
        cadence = preferences.parse_cadence(values.get("cadence", reader.cadence))
        if values.get("only") == "cadence":  # the unsubscribe page's "fewer emails"
            choices = preferences.Choices(
                reader.name, cadence, preferences.categories_of(session, reader.id)
            )
            new_email = ""
        else:
            choices = preferences.Choices(
                values.get("name", ""),
                cadence,
                fields.get("categories", []),
                language=values.get("language", ""),
            )
            new_email = values.get("email", "")
        saved = preferences.save(
            session, context.settings, reader, choices, new_email=new_email, now=now()
        )
        return _page(
            context, session, reader, saved=True, address_change_sent=saved.address_change_sent
        )


@router.post("/preferences/{token}")
async def save_preferences(
    token: str, request: Request, background: BackgroundTasks, context: Ctx
) -> Response:
    subject = context.tokens.read_preferences(token)
    # A choice refused or an address not valid is told in the reader's language too.
    REQUEST_LANGUAGE.set(await run_in_threadpool(context.language_of, subject))
    fields = await read_field_lists(request)
    response = await run_in_threadpool(_save, context, subject, fields)
    background.add_task(context.outbox.send_soon)  # an address confirmation, if one was queued
    return response


@router.get("/preferences/address/{token}")
def address_page(token: str, context: Ctx) -> Response:
    subject = context.tokens.read_address(token)  # a bad or old link says so now
    return context.pages.render(
        "address_confirm", language=context.language_of(subject), moved=False, email=""
    )


@router.post("/preferences/address/{token}")
def confirm_address(token: str, context: Ctx) -> Response:
    subject = context.tokens.read_address(token)
    with context.write_session() as session:
        reader = preferences.reader_for(session, subject, check_digest=False)
        reader = preferences.confirm_address(session, reader, digest=subject.digest)
        return context.pages.render(
            "address_confirm",
            language=context.reader_language(reader),
            moved=True,
            email=reader.email,
        )
