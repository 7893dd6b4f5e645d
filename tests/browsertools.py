"""Chromium through Playwright for the browser tests: the browser, the dev mailbox, and a
camera that photographs each page at phone and desktop widths and refuses sideways scroll."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import require_service
from webserver import screenshot_dir

from subscribe.devmail import DevMailbox, start_dev_mailbox

if TYPE_CHECKING:
    from fastapi import FastAPI
    from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

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


class MailboxApp:
    """The app a browser test serves (``running_server(make_app)``): sending to the dev
    mailbox, its links on the server's own address; each app made is kept in ``apps``."""

    def __init__(self, mailbox: DevMailbox, database_url: str, **overrides: object) -> None:
        self._mailbox = mailbox
        self._database_url = database_url
        self._overrides = overrides
        self.apps: list[FastAPI] = []

    def __call__(self, base_url: str) -> FastAPI:
        from conftest import make_settings

        from subscribe.web import create_app

        box = self._mailbox
        settings = make_settings(
            self._database_url,
            smtp_host=box.host,
            smtp_port=box.port,
            base_url=base_url,
            **self._overrides,
        )
        self.apps.append(create_app(settings, dev_mailbox=box.folder))
        return self.apps[-1]


def phone_page(
    browser: Browser, *, locale: str | None = None
) -> tuple[BrowserContext, Page, list[str]]:
    """A new context at phone size and its page, with the CSP violations the console
    reports collected in the list (which a test asserts empty at the end). ``locale``
    sets the browser's language (its Accept-Language)."""
    context = browser.new_context(viewport=PHONE, locale=locale)
    page = context.new_page()
    page.set_default_timeout(10_000)
    violations: list[str] = []
    page.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security" in msg.text else None,
    )
    return context, page, violations


class Camera:
    """Photographs the current page at both widths and checks the phone layout."""

    def __init__(self, page: Page, subfolder: str = "") -> None:
        self.page = page
        self.folder = screenshot_dir() / subfolder
        self.folder.mkdir(exist_ok=True)
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
