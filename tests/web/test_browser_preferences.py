"""The preferences page in Debian's Chromium: choose a digest and topics, save, take the
unsubscribe page's "fewer emails", move to a new address through its confirmation email.
Each page is photographed at 375 px and 1280 px, and none may scroll sideways on a phone."""

from __future__ import annotations

import re
from pathlib import Path

from browsertools import PHONE, Camera, MailboxApp, browser, mailbox, open_message, phone_page  # noqa: F401
from playwright.sync_api import Browser
from sqlmodel import Session
from webserver import running_server, wait_for

from subscribe.db import store
from subscribe.db.models import utcnow
from subscribe.devmail import DevMailbox
from subscribe.readers import preferences, subscribers
from subscribe.readers.tokens import tokens_for

CATEGORIES = "Python,Rust,A rather long category name that must wrap on a phone screen"


def test_preferences_in_a_browser(browser: Browser, mailbox: DevMailbox, sqlite_url: str) -> None:  # noqa: F811
    make_app = MailboxApp(mailbox, sqlite_url, categories=CATEGORIES)
    apps = make_app.apps

    with running_server(make_app) as base_url:
        settings = apps[0].state.web.settings
        engine = apps[0].state.web.engine
        # A write beside the running server's: take the write lock up front, as use cases do.
        with store.write_session(engine) as session:
            reader = subscribers.add(
                session, settings, email="reader@example.org", confirmed=True, now=utcnow()
            ).subscriber
            assert reader.id is not None
            token = tokens_for(settings).preferences_token(reader.id, reader.email_key)
            unsubscribe = tokens_for(settings).unsubscribe_token(reader.id, reader.email_key)
        context, page, csp = phone_page(browser)
        camera = Camera(page)

        page.goto(f"{base_url}/preferences/{token}")
        camera.shoot("p1-preferences")
        assert page.get_by_label("Every post, as it comes out").is_checked()
        page.get_by_role("textbox", name="Name").fill("Pat Reader")
        page.get_by_label("A daily digest").check()
        page.get_by_label("Python", exact=True).check()
        page.get_by_role("button", name="Save").click()
        page.get_by_role("status").wait_for()
        assert "Saved." in page.get_by_role("status").inner_text()
        camera.shoot("p2-saved")
        assert page.get_by_label("A daily digest").is_checked()
        assert page.get_by_label("Python", exact=True).is_checked()

        page.goto(f"{base_url}/unsubscribe/{unsubscribe}")
        camera.shoot("p3-unsubscribe-offers-fewer")
        page.get_by_role("button", name="Fewer emails: a weekly digest").click()
        page.get_by_role("status").wait_for()
        assert page.get_by_label("A weekly digest").is_checked()
        assert page.get_by_label("Python", exact=True).is_checked()  # "fewer" keeps the topics

        page.get_by_label("New email address").fill("new.home@example.org")
        page.get_by_role("button", name="Save").click()
        page.get_by_role("status").wait_for()
        camera.shoot("p4-address-asked")
        wait_for(lambda: len(mailbox.messages()) == 1, what="the address confirmation")
        with Session(engine) as session:  # nothing moves before the link is followed
            assert store.subscriber_by_key(session, email_key="reader@example.org") is not None
        open_message(page, base_url, "Confirm your new address for Test Blog")
        page.locator("ul.links a[href*='/preferences/address/']").first.click()
        page.get_by_role("heading", name="Confirm your new address").wait_for()
        camera.shoot("p5-address-confirm")
        page.get_by_role("button", name="Yes, use this address").click()
        page.get_by_role("status").wait_for()
        camera.shoot("p6-address-moved")
        assert re.search(r"new\.home@example\.org", page.content())
        context.close()

    with Session(engine) as session:
        moved = store.subscriber_by_key(session, email_key="new.home@example.org")
        assert moved is not None and moved.name == "Pat Reader"
        assert moved.cadence == "weekly"
        assert moved.id is not None
        assert preferences.categories_of(session, moved.id) == ["Python"]
    assert csp == []
    assert len(camera.taken) == 6
    assert Path(camera.folder / "p1-preferences-phone.png").exists()
