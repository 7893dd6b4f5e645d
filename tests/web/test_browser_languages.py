"""The visitor's journey in each shipped language, in Chromium: the browser's own
language (its Accept-Language) picks the pages' language at sign-up, the reader keeps it
for the emails and the pages behind their links, and no English is left on any of them.
Screenshots go to ``tests/artifacts/LANGUAGE/``."""

from __future__ import annotations

import email.policy
from email import message_from_bytes
from typing import TYPE_CHECKING

import catalogs
import pytest
from browsertools import Camera, MailboxApp, browser, mailbox, phone_page  # noqa: F401
from webserver import running_server, wait_for

from subscribe.config import SHIPPED_LANGUAGES
from subscribe.devmail import DevMailbox

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# A browser set to each language, as its user would have it.
BROWSER_LOCALES = {"de": "de-DE", "fr": "fr-FR", "es": "es-ES", "pt-BR": "pt-BR", "pl": "pl-PL"}


def _check(page: Page, camera: Camera, name: str, language: str) -> None:
    camera.shoot(name)
    assert page.get_attribute("html", "lang") == language, name
    shown = page.inner_text("body") + page.title()
    assert catalogs.english_left(language, shown) == [], f"{name}: English left"


def _open_newest(page: Page, base_url: str, language: str, camera: Camera, name: str) -> None:
    page.goto(f"{base_url}/dev/mailbox")
    _check(page, camera, f"{name}-mailbox", language)
    page.locator("ul.messages a").first.click()
    page.wait_for_url("**/dev/mailbox/*.eml")
    _check(page, camera, name, language)


@pytest.mark.parametrize("language", sorted(set(SHIPPED_LANGUAGES) - {"en"}))
def test_visitor_journey_in_each_language(
    browser: Browser,  # noqa: F811
    mailbox: DevMailbox,  # noqa: F811
    sqlite_url: str,
    language: str,
) -> None:
    make_app = MailboxApp(mailbox, sqlite_url)

    with running_server(make_app) as base_url:
        context, page, csp_violations = phone_page(browser, locale=BROWSER_LOCALES[language])
        camera = Camera(page, language)

        page.goto(f"{base_url}/")
        _check(page, camera, "01-subscribe", language)
        page.locator("#email").fill("reader@example.org")
        page.locator("#name").fill("Zoë")
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{base_url}/subscribe")
        _check(page, camera, "02-check-inbox", language)

        wait_for(lambda: len(mailbox.messages()) == 1, what="the confirmation email")
        _open_newest(page, base_url, language, camera, "03-confirmation-email")
        page.locator("ul.links a[href*='/confirm/']").first.click()
        _check(page, camera, "04-confirm", language)
        page.locator("form button[type=submit]").click()
        page.wait_for_load_state()
        _check(page, camera, "05-confirmed", language)

        wait_for(lambda: len(mailbox.messages()) == 2, what="the welcome email")
        _open_newest(page, base_url, language, camera, "06-welcome-email")
        welcome = page.url
        page.locator("ul.links a[href*='/preferences/']").first.click()
        _check(page, camera, "07-preferences", language)
        page.goto(welcome)
        page.locator("ul.links a[href*='/unsubscribe/']").first.click()
        _check(page, camera, "08-unsubscribe", language)
        page.locator("form:not([action]) button[type=submit]").click()
        page.wait_for_load_state()
        _check(page, camera, "09-unsubscribed", language)

        page.goto(f"{base_url}/confirm/tampered-token")
        _check(page, camera, "10-bad-link", language)
        page.goto(f"{base_url}/nowhere")
        _check(page, camera, "11-not-found", language)
        context.close()

    for path in mailbox.messages():
        message = message_from_bytes(path.read_bytes(), policy=email.policy.strict)
        assert message["Content-Language"] == language
    assert csp_violations == []
