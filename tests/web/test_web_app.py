"""The app as a whole: health check, security headers, error pages, the dev mailbox,
template overrides."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from conftest import make_settings
from fastapi import FastAPI
from mailserver import SMTPServer
from webserver import asgi_client, open_app

from subscribe.config import Settings
from subscribe.devmail import DevMailbox, start_dev_mailbox
from subscribe.errors import ConfigError
from subscribe.web import create_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def sqlite_settings(sqlite_url: str, smtp_server: SMTPServer) -> Settings:
    """For what does not depend on the database backend."""
    return make_settings(sqlite_url, smtp_server)


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.text == "ok"


async def test_healthz_when_the_database_is_gone(app: FastAPI) -> None:
    # Swap in an engine whose database cannot be reached (nothing listens on port 1).
    context = app.state.web
    working = context.engine
    context.engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        async with asgi_client(app) as client:
            response = await client.get("/healthz")
    finally:
        context.engine.dispose()
        context.engine = working
    assert response.status_code == 503
    assert response.text == "database unavailable"


async def test_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp  # falls back to 'none': no script runs
    assert "form-action 'self' http://testserver https://blog.example" in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cache-control"] == "no-store"

    token_page = await client.get("/unsubscribe/whatever")
    assert token_page.headers["referrer-policy"] == "no-referrer"
    assert token_page.headers["x-robots-tag"] == "noindex"


async def test_error_pages_are_plain(client: httpx.AsyncClient) -> None:
    missing = await client.get("/no/such/page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "Page not found" in missing.text
    wrong_method = await client.put("/subscribe")
    assert wrong_method.status_code == 405
    assert "<h1>" in wrong_method.text and "Traceback" not in wrong_method.text
    as_json = await client.get("/no/such/page", headers={"Accept": "application/json"})
    assert as_json.json() == {"ok": False, "message": "There is no page at this address."}


def test_no_api_docs(sqlite_settings: Settings) -> None:
    with open_app(sqlite_settings) as app:
        paths = {getattr(route, "path", "") for route in app.routes}
    assert not paths & {"/docs", "/redoc", "/openapi.json"}


def test_refuses_to_start_without_a_secret_key(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url, secret_key=None)
    with pytest.raises(ConfigError, match="SUBSCRIBE_SECRET_KEY"):
        create_app(settings)


async def test_site_templates_override_the_shipped_ones(
    sqlite_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    override = tmp_path / "site-templates" / "web"
    override.mkdir(parents=True)
    (override / "subscribe.html").write_text(
        '{% extends "web/_layout.html" %}{% block title %}Join{% endblock %}'
        "{% block content %}<h1>Join {{ site_name }} today</h1>{% endblock %}"
    )
    settings = make_settings(
        sqlite_url, smtp_server, templates_dir=str(tmp_path / "site-templates")
    )
    with open_app(settings) as app:
        async with asgi_client(app) as client:
            page = (await client.get("/")).text
            confirm = (await client.get("/confirm/bad")).text
    assert "<h1>Join Test Blog today</h1>" in page
    assert "This link does not work" in confirm  # the others stay as shipped


# -- the dev mailbox ----------------------------------------------------------------------


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[DevMailbox]:
    box = start_dev_mailbox(tmp_path / "mailbox")
    yield box
    box.stop()


async def test_dev_mailbox_is_absent_by_default(client: httpx.AsyncClient) -> None:
    assert (await client.get("/dev/mailbox")).status_code == 404
    assert (await client.get("/dev/mailbox/1-000001.eml")).status_code == 404


async def test_dev_mailbox_shows_what_the_app_sent(sqlite_url: str, mailbox: DevMailbox) -> None:
    settings = make_settings(sqlite_url, smtp_port=mailbox.port)
    with open_app(settings, dev_mailbox=mailbox.folder) as app:
        async with asgi_client(app) as client:
            empty = await client.get("/dev/mailbox")
            assert "No messages yet" in empty.text
            await client.post("/subscribe", data={"email": "first@example.org"})
            time.sleep(0.01)  # names start with the arrival time: keep the order certain
            await client.post("/subscribe", data={"email": "second@example.org"})
            listing = await client.get("/dev/mailbox")
            names = [path.name for path in sorted(mailbox.messages(), reverse=True)]
            shown = await client.get(f"/dev/mailbox/{names[0]}")
            form = await client.get("/")

    assert listing.status_code == 200
    assert listing.text.index("second@example.org") < listing.text.index("first@example.org")
    assert "Confirm your subscription to Test Blog" in listing.text
    page = shown.text
    assert shown.status_code == 200
    assert '<th scope="row">To</th><td>second@example.org</td>' in page
    assert '<iframe sandbox srcdoc="' in page  # HTML part: no scripts, no same-origin rights
    assert "&lt;!DOCTYPE html&gt;" in page  # escaped into the attribute, not live markup
    assert '<a href="http://testserver/confirm/' in page  # the link, to follow from here
    assert "Development mode" in form.text


@pytest.mark.parametrize(
    "name",
    [
        "..%2F..%2Fetc%2Fpasswd",
        "%2E%2E%2Fsubscribe.db",
        "..",
        "1-000001.eml.bak",
        "x.eml",
        "1-000001.eml%00",
        "999-000001.eml",  # well-formed, but no such message
    ],
)
async def test_dev_mailbox_refuses_other_files(
    sqlite_url: str, mailbox: DevMailbox, name: str
) -> None:
    settings = make_settings(sqlite_url, smtp_port=mailbox.port)
    (mailbox.folder.parent / "secret.eml").write_text("Subject: secret\n\nnot for you\n")
    with open_app(settings, dev_mailbox=mailbox.folder) as app:
        async with asgi_client(app) as client:
            response = await client.get(f"/dev/mailbox/{name}")
    assert response.status_code == 404
    assert "secret" not in response.text
