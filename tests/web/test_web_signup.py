"""The subscribe form, POST /subscribe (pages and JSON), the embeddable snippet.

Through HTTP against the app (httpx's ASGI transport) with a real SMTP server recording
what it receives, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

import httpx
import pytest
from conftest import make_settings, send_queued_emails
from mailserver import SMTPServer
from sqlalchemy.engine import Engine
from sqlmodel import Session
from webserver import (
    TEST_CLIENT_IP,
    anonymise,
    asgi_client,
    find_subscriber,
    link_in,
    open_app,
)

from subscribe.config import Settings
from subscribe.db.models import SubscriberStatus
from subscribe.readers import subscribers
from subscribe.readers.subscribers import Consent

pytestmark = pytest.mark.anyio

BLOG = "https://blog.example"  # the site_url of conftest's settings


def now() -> datetime:
    return datetime.now(UTC)


async def test_form_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert 'action="http://testserver/subscribe"' in page
    assert 'name="email"' in page and 'name="name"' in page
    assert 'name="website"' in page  # the honeypot
    assert "<script" not in page  # works without JavaScript
    assert 'name="viewport"' in page


async def test_subscribe_stores_consent_and_sends_confirmation(
    client: httpx.AsyncClient, engine: Engine, smtp_server: SMTPServer
) -> None:
    response = await client.post(
        "/subscribe",
        data={"email": "Reader@Example.ORG", "name": "Rea Der"},
        headers={"Referer": f"{BLOG}/2024/a-post/", "User-Agent": "TestBrowser/1.0"},
    )
    assert response.status_code == 200
    assert "Check your inbox" in response.text
    assert "Reader@example.org" in response.text  # as typed, domain lowercased

    subscriber = find_subscriber(engine, "reader@example.org")
    assert subscriber is not None
    assert subscriber.status == SubscriberStatus.PENDING
    assert subscriber.name == "Rea Der"
    assert subscriber.consent_ip == TEST_CLIENT_IP
    assert subscriber.consent_user_agent == "TestBrowser/1.0"
    assert subscriber.consent_source == f"{BLOG}/2024/a-post/"
    assert subscriber.consent_at is not None

    [received] = smtp_server.messages  # sent by the background task, after the response
    assert received.rcpt_tos == ["Reader@example.org"]
    message = received.message()
    assert message["Subject"] == "Confirm your subscription to Test Blog"
    assert "http://testserver/confirm/" in link_in(message, "/confirm/")


async def test_hidden_source_field_wins_over_referer(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    await client.post(
        "/subscribe",
        data={"email": "src@example.org", "source": "sidebar"},
        headers={"Referer": f"{BLOG}/"},
    )
    subscriber = find_subscriber(engine, "src@example.org")
    assert subscriber is not None and subscriber.consent_source == "sidebar"


def _prepare_states(engine: Engine, settings: Settings, addresses: dict[str, str]) -> None:
    """Put each address in its named state through the use cases ("new" stays unknown)."""
    with Session(engine) as session:
        for state, email in addresses.items():
            if state == "pending":
                subscribers.request_subscription(
                    session, settings, email=email, consent=Consent(), now=now()
                )
            elif state in ("confirmed", "unsubscribed", "bounced"):
                outcome = subscribers.add(session, settings, email=email, confirmed=True, now=now())
                if state == "unsubscribed":
                    subscribers.unsubscribe_address(session, email=email, now=now())
                elif state == "bounced":
                    outcome.subscriber.status = SubscriberStatus.BOUNCED
                    session.add(outcome.subscriber)
                    session.commit()


async def test_no_enumeration(
    client: httpx.AsyncClient, engine: Engine, settings: Settings, smtp_server: SMTPServer
) -> None:
    # Same length on purpose: then even Content-Length must match.
    addresses = {
        "new": "state1@example.org",
        "pending": "state2@example.org",
        "confirmed": "state3@example.org",
        "unsubscribed": "state4@example.org",
        "bounced": "state5@example.org",
    }
    _prepare_states(engine, settings, addresses)
    # The pending reader's confirmation went out minutes ago.
    await send_queued_emails(engine, settings)
    assert [m.rcpt_tos for m in smtp_server.messages] == [[addresses["pending"]]]
    smtp_server.messages.clear()

    pages = {}
    for state, email in addresses.items():
        response = await client.post("/subscribe", data={"email": email, "name": "Same Name"})
        pages[state] = (
            response.status_code,
            sorted(response.headers.items()),
            anonymise(response.content, email),
        )
    reference = pages["new"]
    for state, page in pages.items():
        assert page == reference, f"the answer for a {state} address differs from a new one"

    # JSON mode answers alike too.
    bodies = set()
    for email in addresses.values():
        response = await client.post(
            "/subscribe", data={"email": email}, headers={"Accept": "application/json"}
        )
        bodies.add((response.status_code, anonymise(response.content, email)))
    assert len(bodies) == 1

    # Behind the identical pages: no email for the confirmed reader, nor for the pending
    # one (its confirmation went out minutes ago), one for each of the others.
    recipients = sorted(rcpt for m in smtp_server.messages for rcpt in m.rcpt_tos)
    assert recipients == sorted(addresses[s] for s in ("new", "unsubscribed", "bounced"))


async def test_cooldown_sends_one_confirmation(
    client: httpx.AsyncClient, smtp_server: SMTPServer
) -> None:
    first = await client.post("/subscribe", data={"email": "twice@example.org"})
    second = await client.post("/subscribe", data={"email": "twice@example.org"})
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert len(smtp_server.messages) == 1


async def test_honeypot_stores_and_sends_nothing(
    client: httpx.AsyncClient, engine: Engine, smtp_server: SMTPServer
) -> None:
    human = await client.post("/subscribe", data={"email": "human@example.org"})
    bot = await client.post(
        "/subscribe", data={"email": "robot@example.org", "website": "http://spam.example"}
    )
    assert bot.status_code == human.status_code == 200
    assert sorted(bot.headers.items()) == sorted(human.headers.items())
    assert anonymise(bot.content, "robot@example.org") == anonymise(
        human.content, "human@example.org"
    )
    assert find_subscriber(engine, "robot@example.org") is None
    assert [m.rcpt_tos for m in smtp_server.messages] == [["human@example.org"]]


async def test_header_injection_through_name(
    client: httpx.AsyncClient, smtp_server: SMTPServer
) -> None:
    name = "Eve\r\nBcc: victim@example.net\r\nSubject: free money"
    response = await client.post("/subscribe", data={"email": "eve@example.org", "name": name})
    assert response.status_code == 200
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["eve@example.org"]
    message = received.message()
    assert message.get_all("Bcc") is None
    assert len(message.get_all("To") or []) == 1
    assert len(message.get_all("Subject") or []) == 1
    assert "free money" not in str(message["Subject"])
    assert message["To"].addresses[0].addr_spec == "eve@example.org"
    assert b"\r\nBcc:" not in received.data.split(b"\r\n\r\n", 1)[0]


async def test_invalid_address_keeps_what_was_typed_escaped(
    client: httpx.AsyncClient, engine: Engine, smtp_server: SMTPServer
) -> None:
    typed = '"><script>alert(1)</script>'
    response = await client.post("/subscribe", data={"email": typed, "name": "<b>Bo</b>"})
    assert response.status_code == 422
    page = response.text
    assert "not a valid email address" in page
    assert "<script>alert(1)</script>" not in page
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    assert 'value="&lt;b&gt;Bo&lt;/b&gt;"' in page
    assert smtp_server.messages == []


async def test_empty_address(client: httpx.AsyncClient) -> None:
    response = await client.post("/subscribe", data={"email": "  "})
    assert response.status_code == 422
    assert "Please enter an email address." in response.text


async def test_blocked_domain(database_url: str, smtp_server: SMTPServer, engine: Engine) -> None:
    settings = make_settings(database_url, smtp_server, blocked_domains="spam.example")
    with open_app(settings) as app:
        async with asgi_client(app) as client:
            response = await client.post("/subscribe", data={"email": "x@mail.spam.example"})
    assert response.status_code == 422
    assert "cannot subscribe" in response.text
    assert smtp_server.messages == []


async def test_json_mode(client: httpx.AsyncClient, smtp_server: SMTPServer) -> None:
    response = await client.post(
        "/subscribe",
        json={"email": "fetch@example.org", "name": "Fe Tch"},
        headers={"Origin": BLOG},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["ok"] is True and "fetch@example.org" in body["message"]
    assert response.headers["access-control-allow-origin"] == BLOG
    assert "Origin" in response.headers["vary"]

    # A form post that asks for JSON back.
    response = await client.post(
        "/subscribe", data={"email": "form@example.org"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 200 and response.json()["ok"] is True
    assert len(smtp_server.messages) == 2

    invalid = await client.post("/subscribe", json={"email": "nope"}, headers={"Origin": BLOG})
    assert invalid.status_code == 422
    assert invalid.json()["ok"] is False and "not a valid" in invalid.json()["message"]
    assert invalid.headers["access-control-allow-origin"] == BLOG  # readable by the blog

    broken = await client.post(
        "/subscribe", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["ok"] is False


async def test_cors_only_for_the_blog(client: httpx.AsyncClient) -> None:
    other = await client.post(
        "/subscribe", json={"email": "a@example.org"}, headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers

    preflight = await client.options(
        "/subscribe",
        headers={
            "Origin": BLOG,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == BLOG
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "Content-Type" in preflight.headers["access-control-allow-headers"]

    refused = await client.options(
        "/subscribe",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


async def test_oversized_and_unknown_bodies(client: httpx.AsyncClient) -> None:
    big = await client.post("/subscribe", data={"email": "a@example.org", "name": "x" * 20_000})
    assert big.status_code == 413
    odd = await client.post(
        "/subscribe", content=b"email=a@example.org", headers={"Content-Type": "text/plain"}
    )
    assert odd.status_code == 415


async def test_embed_snippet(client: httpx.AsyncClient) -> None:
    response = await client.get("/embed.txt")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    snippet = response.text
    assert snippet.lstrip().startswith("<!--")
    assert "<html" not in snippet and "<body" not in snippet  # a fragment to paste
    assert 'action="http://testserver/subscribe"' in snippet
    assert 'method="post"' in snippet
    assert 'name="email"' in snippet and 'name="website"' in snippet
    assert "Subscribe to Test Blog via Email" in snippet


async def test_the_embed_page_shows_the_snippet_as_text_to_copy(client: httpx.AsyncClient) -> None:
    page = await client.get("/embed")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    raw = (await client.get("/embed.txt")).text
    textarea = page.text.split("<textarea", 1)[1].split("</textarea>", 1)[0]
    assert "readonly" in textarea.split(">", 1)[0]
    assert html.unescape(textarea.split(">", 1)[1]) == raw  # escaped: shown, not run
    assert "&lt;form" in textarea and "http://testserver/embed.txt" in page.text


async def test_embedded_form_posts_like_the_page(
    client: httpx.AsyncClient, engine: Engine, smtp_server: SMTPServer
) -> None:
    # What a browser sends from the blog's sidebar: the snippet's fields, the blog's page
    # as Referer, and an Origin that is not ours (a plain form post needs no CORS).
    response = await client.post(
        "/subscribe",
        data={"email": "sidebar@example.org", "website": ""},
        headers={"Origin": BLOG, "Referer": f"{BLOG}/about/"},
    )
    assert response.status_code == 200
    subscriber = find_subscriber(engine, "sidebar@example.org")
    assert subscriber is not None and subscriber.consent_source == f"{BLOG}/about/"
    assert len(smtp_server.messages) == 1
