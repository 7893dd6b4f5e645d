"""The visitor's language through the web: chosen at sign-up (field, ?lang=, the
browser's Accept-Language, the site's), stored with the reader, and used for every
later email and page; changed on the preferences page. On SQLite and PostgreSQL."""

from __future__ import annotations

import html

import catalogs
import httpx
import pytest
from mailserver import SMTPServer
from sqlalchemy.engine import Engine
from webserver import find_subscriber, link_in, path_of

from subscribe.config import SHIPPED_LANGUAGES
from subscribe.mail.environment import SHIPPED_TEMPLATES, make_environment
from subscribe.mail.translations import translations

pytestmark = pytest.mark.anyio


def _language_of(engine: Engine, email: str) -> str:
    reader = find_subscriber(engine, email)
    assert reader is not None
    return reader.language


@pytest.mark.parametrize(
    ("data", "params", "headers", "expected", "words"),
    [
        ({"language": "pl"}, {}, {"accept-language": "de"}, "pl", "Potwierdź"),
        ({}, {"lang": "fr"}, {"accept-language": "de"}, "fr", "Confirme"),
        ({}, {}, {"accept-language": "es-MX,es;q=0.9,en;q=0.5"}, "es", "Confirma"),
        ({}, {}, {"accept-language": "pt-PT"}, "pt-BR", "Confirme"),
        ({}, {}, {"accept-language": "ja"}, "", "Confirm your subscription"),
        ({"language": "xx"}, {}, {"accept-language": "de-AT"}, "de", "Bestätig"),
    ],
    ids=["field", "query", "accept-language", "nearest", "site-default", "unknown-field"],
)
async def test_sign_up_stores_the_language_and_the_confirmation_speaks_it(
    client: httpx.AsyncClient,
    engine: Engine,
    smtp_server: SMTPServer,
    data: dict[str, str],
    params: dict[str, str],
    headers: dict[str, str],
    expected: str,
    words: str,
) -> None:
    email = "lang.reader@example.org"
    page = await client.post(
        "/subscribe", data={"email": email, **data}, params=params, headers=headers
    )
    shown = expected or "en"  # asked for none on offer: stored as "", the site's
    assert page.status_code == 200
    assert f'<html lang="{shown}"' in page.text
    assert page.headers["content-language"] == shown
    assert "Accept-Language" in page.headers["vary"]
    assert _language_of(engine, email) == expected
    [confirmation] = smtp_server.messages
    message = confirmation.message()
    assert message["Content-Language"] == shown
    assert words in str(message["Subject"]) + message.get_body(("html",)).get_content()


async def test_the_form_page_is_in_the_asked_language_and_sends_it_back(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/", params={"lang": "de"}, headers={"accept-language": "fr"})
    assert '<html lang="de"' in page.text and "E-Mail" in page.text
    assert '<input type="hidden" name="language" value="de">' in page.text
    browser = await client.get("/", headers={"accept-language": "pl;q=0.9, fr;q=1"})
    assert '<html lang="fr"' in browser.text
    assert 'name="language"' not in browser.text  # each visitor's browser decides
    embed = await client.get("/embed.txt", params={"lang": "es"})
    assert 'name="language" value="es"' in embed.text and "Suscr" in embed.text
    generic = await client.get("/embed.txt", headers={"accept-language": "de"})
    assert 'name="language"' not in generic.text
    # Pasted for every visitor: in the site's language, not the admin's browser's.
    assert "E-Mail" not in generic.text and "Email address" in generic.text


async def test_every_later_page_and_email_follows_the_stored_language(
    client: httpx.AsyncClient, engine: Engine, smtp_server: SMTPServer
) -> None:
    email = "polish.reader@example.org"
    await client.post("/subscribe", data={"email": email, "language": "pl"})
    confirm_url = link_in(smtp_server.messages[0].message(), "/confirm/")
    # The reader's browser says English; the pages behind their links stay Polish.
    english = {"accept-language": "en"}
    confirm_page = await client.get(path_of(confirm_url), headers=english)
    assert '<html lang="pl"' in confirm_page.text
    confirmed = await client.post(path_of(confirm_url), headers=english)
    assert '<html lang="pl"' in confirmed.text
    welcome = smtp_server.messages[1].message()
    assert welcome["Content-Language"] == "pl"
    unsubscribe_url = link_in(welcome, "/unsubscribe/")
    preferences_url = link_in(welcome, "/preferences/")
    for url in (unsubscribe_url, preferences_url):
        page = await client.get(path_of(url), headers=english)
        assert page.status_code == 200 and '<html lang="pl"' in page.text
    # The preferences page offers every language, each named in itself; saving switches.
    page = await client.get(path_of(preferences_url))
    assert '<option value="pl" lang="pl" selected>Polski</option>' in page.text
    assert '<option value="de" lang="de">Deutsch</option>' in page.text
    saved = await client.post(
        path_of(preferences_url), data={"name": "", "cadence": "post", "language": "de"}
    )
    assert '<html lang="de"' in saved.text and _language_of(engine, email) == "de"
    crafted = await client.post(
        path_of(preferences_url), data={"name": "", "cadence": "post", "language": "<x>"}
    )
    assert crafted.status_code == 200 and _language_of(engine, email) == "de"  # ignored
    refused = await client.post(
        path_of(preferences_url), data={"cadence": "hourly"}, headers=english
    )
    assert refused.status_code == 400 and '<html lang="de"' in refused.text
    assert _in("de", "Please choose again: one of your choices is not on offer.") in refused.text
    gone = await client.post(path_of(unsubscribe_url))
    assert '<html lang="de"' in gone.text


def _in(language: str, message: str) -> str:
    """A message of ours as the page shows it in ``language`` (HTML-escaped)."""
    translated = translations(None, language).gettext(message)
    assert translated != message
    return html.escape(translated, quote=False)


async def test_errors_speak_the_visitors_language(client: httpx.AsyncClient) -> None:
    german = {"accept-language": "de"}
    invalid = await client.post("/subscribe", data={"email": "not-an-address"}, headers=german)
    assert invalid.status_code == 422 and '<html lang="de"' in invalid.text
    assert _in("de", "That is not a valid email address.") in invalid.text
    # The form's own language wins over the browser's, for its errors too.
    polish_form = await client.post(
        "/subscribe", data={"email": "nope", "language": "pl"}, headers=german
    )
    assert _in("pl", "That is not a valid email address.") in polish_form.text
    bad_link = await client.get("/confirm/tampered", headers=german)
    assert bad_link.status_code == 400
    assert _in("de", "This confirmation link is not valid.") in bad_link.text
    missing = await client.get("/nowhere", headers={"accept-language": "fr"})
    assert missing.status_code == 404 and _in("fr", "Page not found") in missing.text
    json = await client.post(
        "/subscribe",
        json={"email": "json.reader@example.org", "language": "es"},
        headers={"accept": "application/json"},
    )
    assert json.json()["ok"] and "json.reader@example.org" in json.json()["message"]
    assert "Check your inbox" not in json.json()["message"]
    refused = await client.post(
        "/subscribe", json={"email": "nope"}, headers={"accept-language": "pl"}
    )
    assert refused.status_code == 422 and "valid email address" not in refused.json()["message"]


def _page_context(variant: int) -> dict[str, object]:
    """Every variable any page names, with the branches of ``variant`` taken (0 or 1)."""
    on = bool(variant)
    return {
        "site_name": "Test Blog",
        "site_url": "https://blog.example",
        "base_url": "https://news.example",
        "dev_mailbox": on,
        "languages": [("en", "English"), ("pl", "Polski")],
        "language_field": "pl" if on else "",
        "email": "reader@example.org",
        "name": "Zoë",
        "error": "Bad" if on else "",
        "choices": {
            "cadence": on,
            "cadences": [("post", "Every post, as it comes out")],
            "chosen_cadence": "post",
            "categories": ["Python"] if on else [],
            "chosen_categories": [],
        },
        "saved": on,
        "address_change_sent": on,
        "pending_email": "new@example.org" if on else "",
        "moved": on,
        "subscribed": on,
        "first_time": on,
        "state": "sent" if on else "confirmed",
        "token": "t",
        "max_age": "7 dni",
        "preferences_token": "p",
        "title": "Title",
        "message": "Message",
        "offer_signup": on,
        "snippet": "<form></form>",
        "messages": [{"name": "a.eml", "subject": "", "to": "r@example.org", "date": "d"}] * 2
        if on
        else [],
        "summary": {"subject": ""},
        "links": ["https://news.example/x"] if on else [],
        "html": "<p>x</p>" if on else "",
        "text": "x" if on else "",
        "message_headers": [("Subject", "x")],
    }


@pytest.mark.parametrize("variant", [0, 1])
@pytest.mark.parametrize("language", SHIPPED_LANGUAGES)
def test_every_page_renders_in_every_language(language: str, variant: int) -> None:
    """Each page of templates/web, every branch, in each language: a translation that
    breaks a template (a placeholder it does not pass) fails here."""
    env = make_environment(None, language)
    pages = sorted(p.stem for p in (SHIPPED_TEMPLATES / "web").glob("[!_]*.html"))
    assert len(pages) >= 15
    for page in pages:
        html = env.get_template(f"web/{page}.html").render(_page_context(variant))
        if page != "embed":  # a fragment for the blog's own page
            assert f'<html lang="{language}" dir="ltr">' in html, page
        if language != "en":
            left = catalogs.english_left(language, html)
            assert left == [], f"{page}: English left"
