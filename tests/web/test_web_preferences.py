"""The preferences page over HTTP, on SQLite and PostgreSQL: a GET changes nothing, a POST
saves, bad tokens and unknown choices get a 4xx page."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.db import store
from subscribe.db.models import utcnow
from subscribe.readers import preferences, subscribers
from subscribe.readers.tokens import Tokens

pytestmark = pytest.mark.anyio


def _reader(engine: Engine, settings: Settings, tokens: Tokens) -> tuple[int, str]:
    with store.write_session(engine) as session:  # the app's loop may be writing too
        reader = subscribers.add(
            session, settings, email="pat@example.org", name="Pat", confirmed=True, now=utcnow()
        ).subscriber
        assert reader.id is not None
        return reader.id, tokens.preferences_token(reader.id, reader.email_key)


async def test_get_changes_nothing_and_post_saves(
    client: httpx.AsyncClient, engine: Engine, settings: Settings, tokens: Tokens
) -> None:
    reader_id, token = _reader(engine, settings, tokens)
    page = await client.get(f"/preferences/{token}?cadence=paused&name=Evil")
    assert page.status_code == 200 and "pat@example.org" in page.text and "Saved." not in page.text
    with Session(engine) as session:
        unchanged = subscribers.find(session, email="pat@example.org")
        assert unchanged.cadence == "post" and unchanged.name == "Pat"
    saved = await client.post(
        f"/preferences/{token}", data={"name": "Pat <b>", "cadence": "daily", "categories": []}
    )
    assert saved.status_code == 200 and "Saved." in saved.text
    assert "Pat &lt;b&gt;" in saved.text  # autoescaped
    with Session(engine) as session:
        changed = subscribers.find(session, email="pat@example.org")
        assert changed.cadence == "daily" and changed.name == "Pat <b>"
        assert preferences.categories_of(session, reader_id) == []


async def test_bad_tokens_and_unknown_choices_get_a_4xx_page(
    client: httpx.AsyncClient, engine: Engine, settings: Settings, tokens: Tokens
) -> None:
    reader_id, token = _reader(engine, settings, tokens)
    unsubscribe = tokens.unsubscribe_token(reader_id, "pat@example.org")
    assert (await client.get(f"/preferences/{unsubscribe}")).status_code == 400  # other purpose
    assert (await client.get("/preferences/tampered")).status_code == 400
    bad = await client.post(f"/preferences/{token}", data={"cadence": "hourly"})
    assert bad.status_code == 400 and "not on offer" in bad.text
    unknown = await client.post(f"/preferences/{token}", data={"categories": "Nope"})
    assert unknown.status_code == 400 and "not on offer" in unknown.text
