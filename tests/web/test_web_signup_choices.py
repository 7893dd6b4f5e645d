"""Cadence and categories on the subscribe form, ``/embed`` and the JSON endpoint
(SUBSCRIBE_FORM_CHOICES), over HTTP on SQLite and PostgreSQL: stored for a new or pending
reader through the batch writer and its fallback, never for a confirmed one, and an
unknown choice answered alike whoever the address belongs to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from conftest import make_settings
from mailserver import SMTPServer
from sqlalchemy.engine import Engine
from sqlmodel import Session
from webserver import anonymise, asgi_client, find_subscriber, open_app

from subscribe.config import Settings
from subscribe.db.models import Post
from subscribe.readers import preferences, subscribers
from subscribe.readers.subscribers import Consent

pytestmark = pytest.mark.anyio


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def settings(database_url: str, smtp_server: SMTPServer) -> Settings:
    return make_settings(
        database_url, smtp_server, form_choices="cadence,categories", categories="Python,Rust"
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    with open_app(settings) as app:
        async with asgi_client(app) as client:
            yield client


def _choices_of(engine: Engine, email: str) -> tuple[str, list[str], int]:
    reader = find_subscriber(engine, email)
    assert reader is not None and reader.id is not None
    with Session(engine) as session:
        return reader.cadence, preferences.categories_of(session, reader.id), reader.digest_after


def _a_post(engine: Engine) -> int:
    with Session(engine) as session:
        post = Post(key="k1", title="First", url="https://blog.example/1")
        session.add(post)
        session.commit()
        assert post.id is not None
        return post.id


async def test_the_form_and_the_snippet_offer_the_choices(client: httpx.AsyncClient) -> None:
    for path in ("/", "/embed.txt"):
        page = (await client.get(path)).text
        assert 'name="cadence" value="daily"' in page and 'value="weekly"' in page
        assert 'name="cadence" value="post" checked' in page
        assert 'value="paused"' not in page  # no pausing before the first email
        assert 'name="categories" value="Python"' in page and 'value="Rust"' in page


async def test_off_by_default(database_url: str, smtp_server: SMTPServer, engine: Engine) -> None:
    settings = make_settings(database_url, smtp_server, categories="Python")
    with open_app(settings) as app:
        async with asgi_client(app) as client:
            assert 'name="cadence"' not in (await client.get("/")).text
            assert 'name="categories"' not in (await client.get("/embed.txt")).text
            # Fields the form does not offer are ignored, not stored.
            data = {"email": "off@example.org", "cadence": "daily", "categories": "Python"}
            assert (await client.post("/subscribe", data=data)).status_code == 200
    assert _choices_of(engine, "off@example.org")[:2] == ("post", [])


async def test_a_new_reader_keeps_what_they_chose(
    client: httpx.AsyncClient, engine: Engine, smtp_server: SMTPServer
) -> None:
    latest = _a_post(engine)
    form = {"email": "new@example.org", "cadence": "daily", "categories": ["python", "Rust"]}
    response = await client.post("/subscribe", data=form)
    assert response.status_code == 200 and "Check your inbox" in response.text
    # The site's spelling, and the watermark at the latest post: the first digest lists
    # only what comes after the sign-up.
    assert _choices_of(engine, "new@example.org") == ("daily", ["Python", "Rust"], latest)
    fetched = await client.post(
        "/subscribe",
        json={"email": "fetch@example.org", "cadence": "weekly", "categories": "Rust"},
    )
    assert fetched.status_code == 200 and fetched.json()["ok"] is True
    assert _choices_of(engine, "fetch@example.org")[:2] == ("weekly", ["Rust"])
    plain = await client.post("/subscribe", data={"email": "plain@example.org"})
    assert plain.status_code == 200
    assert _choices_of(engine, "plain@example.org")[:2] == ("post", [])


async def test_a_pending_reader_changes_them_a_confirmed_one_does_not(
    client: httpx.AsyncClient, engine: Engine, settings: Settings
) -> None:
    with Session(engine) as session:
        subscribers.request_subscription(
            session, settings, email="pending@example.org", consent=Consent(), now=now()
        )
        subscribers.add(session, settings, email="kept@example.org", confirmed=True, now=now())
    for email in ("pending@example.org", "kept@example.org"):
        data = {"email": email, "cadence": "weekly", "categories": "Python"}
        assert (await client.post("/subscribe", data=data)).status_code == 200
    assert _choices_of(engine, "pending@example.org")[:2] == ("weekly", ["Python"])
    # Someone else typing a confirmed address cannot narrow or slow their email.
    assert _choices_of(engine, "kept@example.org")[:2] == ("post", [])


async def test_an_unknown_choice_answers_alike_and_stores_nothing(
    client: httpx.AsyncClient, engine: Engine, settings: Settings, smtp_server: SMTPServer
) -> None:
    addresses = {
        "new": "state1@example.org",
        "pending": "state2@example.org",
        "confirmed": "state3@example.org",
        "unsubscribed": "state4@example.org",
    }
    with Session(engine) as session:
        subscribers.request_subscription(
            session, settings, email=addresses["pending"], consent=Consent(), now=now()
        )
        for email in (addresses["confirmed"], addresses["unsubscribed"]):
            subscribers.add(session, settings, email=email, confirmed=True, now=now())
        subscribers.unsubscribe_address(session, email=addresses["unsubscribed"], now=now())
    for bad, said in (({"cadence": "hourly"}, "not on offer"), ({"cadence": "paused"}, "")):
        pages = set()
        for email in addresses.values():
            response = await client.post("/subscribe", data={"email": email, **bad})
            assert response.status_code == 422 and "Please choose again" in response.text
            assert said in response.text
            pages.add((response.status_code, anonymise(response.content, email)))
        assert len(pages) == 1, f"{bad} answered differently by address state"
    pages = set()
    for email in addresses.values():
        data = {"email": email, "categories": ["Python", "<b>Nope</b>"]}
        response = await client.post("/subscribe", data=data)
        assert response.status_code == 422 and "not on offer" in response.text
        assert "<b>Nope" not in response.text  # never echoed unescaped
        assert 'value="Python" checked' in response.text  # what was ticked stays ticked
        pages.add(anonymise(response.content, email))
        json = await client.post("/subscribe", json=data)
        assert json.status_code == 422 and "not on offer" in json.json()["message"]
        assert "unknown category '<b>Nope</b>'" in json.json()["detail"]
    assert len(pages) == 1
    assert find_subscriber(engine, addresses["new"]) is None
    assert _choices_of(engine, addresses["pending"])[:2] == ("post", [])
    assert smtp_server.messages == []
