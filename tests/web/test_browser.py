"""The whole journey in a real browser: Debian's Chromium, driven by Playwright.

A real uvicorn server (SQLite) sends through the built-in dev mailbox; the browser
subscribes, reads the confirmation in /dev/mailbox, confirms, then unsubscribes from the
welcome email. Every page is photographed at phone and desktop widths into
``tests/artifacts/`` (git-ignored), and none may scroll sideways at 375 px.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from browsertools import PHONE, Camera, MailboxApp, browser, mailbox, open_message, phone_page  # noqa: F401
from itsdangerous import TimestampSigner
from sqlmodel import Session
from webserver import running_server, wait_for

from subscribe.db import store
from subscribe.db.models import SubscriberStatus
from subscribe.devmail import DevMailbox
from subscribe.readers.tokens import tokens_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def test_subscribe_confirm_unsubscribe_in_a_browser(
    browser: Browser,  # noqa: F811
    mailbox: DevMailbox,  # noqa: F811
    sqlite_url: str,
) -> None:
    make_app = MailboxApp(mailbox, sqlite_url)
    apps = make_app.apps

    with running_server(make_app) as base_url:
        context, page, csp_violations = phone_page(browser)
        camera = Camera(page)

        page.goto(f"{base_url}/")
        camera.shoot("01-subscribe")
        page.get_by_label("Email address").fill("reader@example.org")
        page.get_by_label("Name").fill("Browser Reader")
        page.get_by_role("button", name="Subscribe").click()
        page.get_by_role("heading", name="Check your inbox").wait_for()
        camera.shoot("02-check-inbox")

        wait_for(lambda: len(mailbox.messages()) == 1, what="the confirmation email")
        page.goto(f"{base_url}/dev/mailbox")
        camera.shoot("03-mailbox")
        open_message(page, base_url, "Confirm your subscription to Test Blog")
        camera.shoot("04-confirmation-email")

        page.locator("ul.links a[href*='/confirm/']").first.click()
        page.get_by_role("heading", name="Confirm your subscription").wait_for()
        camera.shoot("05-confirm")
        page.get_by_role("button", name="Yes, subscribe me").click()
        page.get_by_role("heading", name="You are subscribed").wait_for()
        camera.shoot("06-confirmed")

        wait_for(lambda: len(mailbox.messages()) == 2, what="the welcome email")
        open_message(page, base_url, "Welcome to Test Blog")
        camera.shoot("07-welcome-email")
        page.locator("ul.links a[href*='/unsubscribe/']").first.click()
        page.get_by_role("heading", name="Unsubscribe").wait_for()
        camera.shoot("08-unsubscribe")
        page.get_by_role("button", name="Unsubscribe").click()
        page.get_by_role("heading", name="You are unsubscribed").wait_for()
        camera.shoot("09-unsubscribed")

        # The pages a visitor meets when something is off.
        page.goto(f"{base_url}/")
        page.locator("form").evaluate(
            "form => { form.noValidate = true; }"
        )  # skip the browser's own check
        page.get_by_label("Email address").fill("someone@@example.org")
        page.get_by_role("button", name="Subscribe").click()
        page.get_by_role("alert").wait_for()
        camera.shoot("10-invalid-address")
        page.goto(f"{base_url}/confirm/tampered-token")
        camera.shoot("11-bad-link")
        settings = apps[0].state.web.settings
        signed_at = int(time.time()) - settings.confirm_max_age - 60
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(TimestampSigner, "get_timestamp", lambda self: signed_at)
            expired = tokens_for(settings).confirm_token(1, "reader@example.org")
        page.goto(f"{base_url}/confirm/{expired}")
        camera.shoot("12-expired-link")
        page.goto(f"{base_url}/embed")
        camera.shoot("13-embed")
        page.emulate_media(color_scheme="dark")  # the palette for readers in dark mode
        page.goto(f"{base_url}/")
        camera.shoot("14-subscribe-dark")
        page.emulate_media(color_scheme="light")

        engine = apps[0].state.web.engine
        with Session(engine) as session:
            reader = store.subscriber_by_key(session, email_key="reader@example.org")
            assert reader is not None
            assert reader.status == SubscriberStatus.UNSUBSCRIBED
            assert reader.name == "Browser Reader"
        context.close()

    assert csp_violations == []
    assert len(camera.taken) == 14
