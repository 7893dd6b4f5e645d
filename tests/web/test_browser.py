"""The whole journey in a real browser: Debian's Chromium, driven by Playwright.

A real uvicorn server (SQLite) sends through the built-in dev mailbox; the browser
subscribes, reads the confirmation in /dev/mailbox, confirms, then unsubscribes from the
welcome email. Every page is photographed at phone and desktop widths into
``tests/artifacts/`` (git-ignored), and none may scroll sideways at 375 px.
"""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import make_settings, require_service
from fastapi import FastAPI
from itsdangerous import TimestampSigner
from sqlmodel import Session
from webserver import running_server, screenshot_dir, wait_for

from subscribe.db import store
from subscribe.db.models import SubscriberStatus
from subscribe.devmail import DevMailbox, start_dev_mailbox
from subscribe.readers.tokens import tokens_for
from subscribe.web import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE: ViewportSize = {"width": 375, "height": 740}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}


def _missing_browser() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_service(_missing_browser())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[DevMailbox]:
    box = start_dev_mailbox(tmp_path / "mailbox")
    yield box
    box.stop()


class Camera:
    """Photographs the current page at both widths and checks the phone layout."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.folder = screenshot_dir()
        self.taken: list[str] = []

    def shoot(self, name: str) -> None:
        page = self.page
        page.set_viewport_size(PHONE)
        page.screenshot(path=self.folder / f"{name}-phone.png", full_page=True)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= PHONE["width"], f"{name}: scrolls sideways at 375 px"
        page.set_viewport_size(DESKTOP)
        page.screenshot(path=self.folder / f"{name}-desktop.png", full_page=True)
        page.set_viewport_size(PHONE)
        self.taken.append(name)


def open_message(page: Page, base_url: str, subject: str) -> None:
    page.goto(f"{base_url}/dev/mailbox")
    page.get_by_role("link", name=subject).first.click()
    page.wait_for_url(re.compile(r"/dev/mailbox/.+\.eml$"))


def test_subscribe_confirm_unsubscribe_in_a_browser(
    browser: Browser, mailbox: DevMailbox, sqlite_url: str
) -> None:
    apps: list[FastAPI] = []

    def make_app(base_url: str) -> FastAPI:
        settings = make_settings(
            sqlite_url, smtp_host=mailbox.host, smtp_port=mailbox.port, base_url=base_url
        )
        apps.append(create_app(settings, dev_mailbox=mailbox.folder))
        return apps[-1]

    with running_server(make_app) as base_url:
        context = browser.new_context(viewport=PHONE)
        page = context.new_page()
        page.set_default_timeout(10_000)
        csp_violations: list[str] = []
        page.on(
            "console",
            lambda msg: csp_violations.append(msg.text) if "Content Security" in msg.text else None,
        )
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
