"""The links in our emails: double opt-in, replays, bad and expired tokens, one-click unsubscribe.

Through HTTP against the app with a real SMTP server, on SQLite and PostgreSQL; one test
runs the whole double opt-in over a real uvicorn server.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from conftest import make_settings
from fastapi import FastAPI
from itsdangerous import TimestampSigner
from mailserver import SMTPServer
from sqlalchemy.engine import Engine
from sqlmodel import Session
from webserver import (
    find_subscriber,
    link_in,
    path_of,
    running_server,
    text_of,
    wait_for,
)

from subscribe.config import Settings
from subscribe.db.models import Subscriber, SubscriberStatus
from subscribe.readers import subscribers
from subscribe.readers.tokens import Tokens
from subscribe.web import create_app

pytestmark = pytest.mark.anyio


def now() -> datetime:
    return datetime.now(UTC)


def confirmed_reader(engine: Engine, settings: Settings, email: str) -> Subscriber:
    with Session(engine) as session:
        outcome = subscribers.add(session, settings, email=email, confirmed=True, now=now())
        return outcome.subscriber


def status_of(engine: Engine, email: str) -> SubscriberStatus:
    subscriber = find_subscriber(engine, email)
    assert subscriber is not None
    return subscriber.status


def expired_confirm_token(
    tokens: Tokens, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A genuine confirm token, signed eight days ago (links last seven)."""
    assert subscriber.id is not None
    signed_at = int(time.time()) - 8 * 24 * 3600
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: signed_at)
        return tokens.confirm_token(subscriber.id, subscriber.email_key)


async def test_double_opt_in(
    client: httpx.AsyncClient, engine: Engine, smtp_server: SMTPServer
) -> None:
    await client.post("/subscribe", data={"email": "opt.in@example.org", "name": "Opt In"})
    [confirmation] = smtp_server.messages
    confirm_url = link_in(confirmation.message(), "/confirm/")

    # A mail scanner (or the reader) opening the link changes nothing.
    page = await client.get(path_of(confirm_url))
    assert page.status_code == 200
    assert "Test Blog" in page.text and '<form method="post">' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert status_of(engine, "opt.in@example.org") == SubscriberStatus.PENDING
    assert len(smtp_server.messages) == 1

    confirmed = await client.post(path_of(confirm_url))
    assert confirmed.status_code == 200
    assert "You are subscribed" in confirmed.text
    assert status_of(engine, "opt.in@example.org") == SubscriberStatus.CONFIRMED

    [_, welcome] = smtp_server.messages
    message = welcome.message()
    assert welcome.rcpt_tos == ["opt.in@example.org"]
    assert message["Subject"] == "Welcome to Test Blog"
    unsubscribe_url = link_in(message, "/unsubscribe/")
    assert message["List-Unsubscribe"] == f"<{unsubscribe_url}>"


async def test_replaying_confirm_is_harmless(
    client: httpx.AsyncClient, engine: Engine, smtp_server: SMTPServer
) -> None:
    await client.post("/subscribe", data={"email": "replay@example.org"})
    confirm_path = path_of(link_in(smtp_server.messages[0].message(), "/confirm/"))
    first = await client.post(confirm_path)
    second = await client.post(confirm_path)
    assert first.status_code == second.status_code == 200
    assert "You are already subscribed" in second.text
    assert status_of(engine, "replay@example.org") == SubscriberStatus.CONFIRMED
    assert len(smtp_server.messages) == 2  # one confirmation, one welcome: no second welcome


async def test_old_confirm_link_cannot_undo_an_unsubscribe(
    client: httpx.AsyncClient, engine: Engine, smtp_server: SMTPServer
) -> None:
    await client.post("/subscribe", data={"email": "left@example.org"})
    confirm_path = path_of(link_in(smtp_server.messages[0].message(), "/confirm/"))
    await client.post(confirm_path)
    unsubscribe_path = path_of(link_in(smtp_server.messages[1].message(), "/unsubscribe/"))
    await client.post(unsubscribe_path)
    again = await client.post(confirm_path)
    assert again.status_code == 200
    assert "no longer needed" in again.text
    assert status_of(engine, "left@example.org") == SubscriberStatus.UNSUBSCRIBED


@pytest.mark.parametrize("route", ["/confirm/", "/unsubscribe/"])
async def test_tampered_tokens(
    client: httpx.AsyncClient,
    engine: Engine,
    settings: Settings,
    tokens: Tokens,
    route: str,
) -> None:
    reader = confirmed_reader(engine, settings, "tamper@example.org")
    assert reader.id is not None
    if route == "/confirm/":
        good = tokens.confirm_token(reader.id, reader.email_key)
        wrong_purpose = tokens.unsubscribe_token(reader.id, reader.email_key)
    else:
        good = tokens.unsubscribe_token(reader.id, reader.email_key)
        wrong_purpose = tokens.confirm_token(reader.id, reader.email_key)
    flipped = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    for token in (flipped, wrong_purpose, "not-a-token", good + "x"):
        for method in ("GET", "POST"):
            response = await client.request(method, route + token)
            assert response.status_code == 400, (method, token)
            assert "This link does not work" in response.text
            assert "Traceback" not in response.text
            assert response.headers["referrer-policy"] == "no-referrer"
    assert status_of(engine, "tamper@example.org") == SubscriberStatus.CONFIRMED


async def test_token_for_an_erased_subscriber(
    client: httpx.AsyncClient, engine: Engine, settings: Settings, tokens: Tokens
) -> None:
    reader = confirmed_reader(engine, settings, "erased@example.org")
    assert reader.id is not None
    token = tokens.unsubscribe_token(reader.id, reader.email_key)
    with Session(engine) as session:
        subscribers.remove(session, settings, email="erased@example.org", now=now())
    response = await client.post(f"/unsubscribe/{token}")
    assert response.status_code == 400
    assert "not valid any more" in response.text


async def test_expired_confirm_link_offers_a_new_one(
    client: httpx.AsyncClient,
    engine: Engine,
    tokens: Tokens,
    smtp_server: SMTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await client.post("/subscribe", data={"email": "late@example.org"})
    assert len(smtp_server.messages) == 1
    subscriber = find_subscriber(engine, "late@example.org")
    assert subscriber is not None
    token = expired_confirm_token(tokens, subscriber, monkeypatch)

    for method in ("GET", "POST"):
        response = await client.request(method, f"/confirm/{token}")
        assert response.status_code == 410
        assert "This link has expired" in response.text
        assert 'action="http://testserver/confirm/resend"' in response.text
        assert f'name="token" value="{token}"' in response.text
        assert "late@example.org" not in response.text  # the address is never asked or shown
    assert status_of(engine, "late@example.org") == SubscriberStatus.PENDING

    # Within the cooldown of the first email: no second one.
    response = await client.post("/confirm/resend", data={"token": token})
    assert response.status_code == 200 and "a few minutes ago" in response.text
    assert len(smtp_server.messages) == 1

    # Later on, a fresh link goes to the stored address, and it works.
    with engine.begin() as connection:
        connection.execute(
            sa.update(Subscriber)
            .where(Subscriber.id == subscriber.id)  # type: ignore[arg-type]
            .values(confirmation_sent_at=now() - timedelta(minutes=11))
        )
    response = await client.post("/confirm/resend", data={"token": token})
    assert response.status_code == 200 and "new link" in response.text
    [_, renewed] = smtp_server.messages
    assert renewed.rcpt_tos == ["late@example.org"]
    fresh = await client.post(path_of(link_in(renewed.message(), "/confirm/")))
    assert fresh.status_code == 200
    assert status_of(engine, "late@example.org") == SubscriberStatus.CONFIRMED


async def test_resend_refuses_a_forged_token(
    client: httpx.AsyncClient, smtp_server: SMTPServer
) -> None:
    response = await client.post("/confirm/resend", data={"token": "1.forged.token"})
    assert response.status_code == 400
    assert smtp_server.messages == []


def _multipart(boundary: str) -> bytes:
    return (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{boundary}--\r\n"
    ).encode()


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
async def test_one_click_unsubscribe(
    client: httpx.AsyncClient, engine: Engine, settings: Settings, tokens: Tokens, encoding: str
) -> None:
    reader = confirmed_reader(engine, settings, "oneclick@example.org")
    assert reader.id is not None
    path = f"/unsubscribe/{tokens.unsubscribe_token(reader.id, reader.email_key)}"

    page = await client.get(path)
    assert page.status_code == 200 and "Unsubscribe" in page.text
    assert status_of(engine, "oneclick@example.org") == SubscriberStatus.CONFIRMED

    # What a mail provider sends (RFC 8058): no cookie, no CSRF token, no Referer.
    if encoding == "urlencoded":
        body = b"List-Unsubscribe=One-Click"
        content_type = "application/x-www-form-urlencoded"
    else:
        body = _multipart("provider-boundary-7")
        content_type = "multipart/form-data; boundary=provider-boundary-7"
    response = await client.post(path, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200
    assert "location" not in response.headers
    assert status_of(engine, "oneclick@example.org") == SubscriberStatus.UNSUBSCRIBED

    again = await client.post(path, content=body, headers={"Content-Type": content_type})
    assert again.status_code == 200  # replays are harmless too


async def test_unsubscribed_page_offers_resubscribe(
    client: httpx.AsyncClient,
    engine: Engine,
    settings: Settings,
    tokens: Tokens,
    smtp_server: SMTPServer,
) -> None:
    reader = confirmed_reader(engine, settings, "Back.Again@example.org")
    assert reader.id is not None
    response = await client.post(
        f"/unsubscribe/{tokens.unsubscribe_token(reader.id, reader.email_key)}"
    )
    assert response.status_code == 200
    page = response.text
    assert "You are unsubscribed" in page
    assert 'action="http://testserver/subscribe"' in page
    assert 'name="email" value="Back.Again@example.org"' in page
    assert response.headers["referrer-policy"] == "no-referrer"  # the token stays with us

    # The form's button: back to pending, with a fresh confirmation (never straight back).
    again = await client.post(
        "/subscribe", data={"email": "Back.Again@example.org", "source": "resubscribe"}
    )
    assert again.status_code == 200
    subscriber = find_subscriber(engine, "back.again@example.org")
    assert subscriber is not None
    assert subscriber.status == SubscriberStatus.PENDING
    assert subscriber.consent_source == "resubscribe"
    [confirmation] = smtp_server.messages
    assert "/confirm/" in text_of(confirmation.message())


def test_double_opt_in_over_uvicorn(database_url: str, smtp_server: SMTPServer) -> None:
    """The same journey through a real socket: emails arrive after the response."""
    engines: list[Engine] = []

    def make_app(base_url: str) -> FastAPI:
        settings = make_settings(database_url, smtp_server, base_url=base_url)
        app = create_app(settings)
        engines.append(app.state.web.engine)
        return app

    with running_server(make_app) as base_url, httpx.Client(base_url=base_url) as http:
        response = http.post("/subscribe", data={"email": "socket@example.org"})
        assert response.status_code == 200
        wait_for(lambda: len(smtp_server.messages) == 1, what="the confirmation email")
        confirm_url = link_in(smtp_server.messages[0].message(), "/confirm/")
        assert confirm_url.startswith(base_url)
        assert http.get(confirm_url).status_code == 200
        assert http.post(confirm_url).status_code == 200
        wait_for(lambda: len(smtp_server.messages) == 2, what="the welcome email")
        unsubscribe_url = link_in(smtp_server.messages[1].message(), "/unsubscribe/")
        one_click = http.post(unsubscribe_url, data={"List-Unsubscribe": "One-Click"})
        assert one_click.status_code == 200
        assert status_of(engines[0], "socket@example.org") == SubscriberStatus.UNSUBSCRIBED
        assert http.get("/healthz").text == "ok"
    assert smtp_server.messages[1].rcpt_tos == ["socket@example.org"]
