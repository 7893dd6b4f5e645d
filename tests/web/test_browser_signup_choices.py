"""The subscribe form with cadence and categories (SUBSCRIBE_FORM_CHOICES) in Debian's
Chromium at 375 px: choose a weekly digest and a topic, sign up, follow the confirmation;
the embed page with the choices in its snippet. No page may scroll sideways on a phone."""

from __future__ import annotations

from browsertools import PHONE, Camera, MailboxApp, browser, mailbox, open_message, phone_page  # noqa: F401
from playwright.sync_api import Browser
from sqlmodel import Session
from webserver import running_server, wait_for

from subscribe.db import store
from subscribe.devmail import DevMailbox
from subscribe.readers import preferences

CATEGORIES = "Python,Rust,A rather long category name that must wrap on a phone screen"


def test_signup_choices_in_a_browser(
    browser: Browser,  # noqa: F811
    mailbox: DevMailbox,  # noqa: F811
    sqlite_url: str,
) -> None:
    make_app = MailboxApp(
        mailbox, sqlite_url, categories=CATEGORIES, form_choices="cadence,categories"
    )
    apps = make_app.apps

    with running_server(make_app) as base_url:
        engine = apps[0].state.web.engine
        context, page, csp = phone_page(browser)
        camera = Camera(page)

        page.goto(f"{base_url}/")
        camera.shoot("c1-form-with-choices")
        assert page.get_by_label("Every post, as it comes out").is_checked()
        assert page.get_by_label("Pause all email for now").count() == 0
        page.get_by_role("textbox", name="Email address").fill("chooser@example.org")
        page.get_by_label("A weekly digest").check()
        page.get_by_label("Rust", exact=True).check()
        page.get_by_role("button", name="Subscribe").click()
        page.get_by_text("Check your inbox").wait_for()
        camera.shoot("c2-check-inbox")
        wait_for(lambda: len(mailbox.messages()) == 1, what="the confirmation")
        open_message(page, base_url, "Confirm your subscription to Test Blog")
        page.locator("ul.links a[href*='/confirm/']").first.click()
        page.get_by_role("button", name="Yes, subscribe me").click()
        page.get_by_role("heading", name="You are subscribed").wait_for()

        page.goto(f"{base_url}/embed")
        camera.shoot("c3-embed-with-choices")
        assert 'name="cadence" value="weekly"' in page.content()
        context.close()

    with Session(engine) as session:
        reader = store.subscriber_by_key(session, email_key="chooser@example.org")
        assert reader is not None and reader.id is not None
        assert reader.status == "confirmed" and reader.cadence == "weekly"
        assert preferences.categories_of(session, reader.id) == ["Rust"]
    assert csp == []
    assert len(camera.taken) == 3
