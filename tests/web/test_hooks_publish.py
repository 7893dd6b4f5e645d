"""POST /hooks/publish: authenticated by the webhook secret, a post announced once, sent by
the in-process sender; against a real `serve` (uvicorn, lifespan and all) and the ASGI app,
a real SMTP server and a SQLite file."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from conftest import make_settings
from mailserver import SMTPServer
from sqlmodel import Session
from webserver import asgi_client, open_app, running_server, wait_for

from subscribe.config import Settings
from subscribe.db import store
from subscribe.db.models import Post, PostCategory, utcnow
from subscribe.posts.publish import sign
from subscribe.readers import subscribers
from subscribe.web import create_app

pytestmark = pytest.mark.anyio

SECRET = "hook-secret-0123456789abcdef"
READERS = ["ann@example.org", "bob@example.org"]
GENERIC = {
    "title": "Hooked",
    "url": "https://blog.example/hooked",
    "summary": "Sent by the publish hook.",
    "categories": ["Python", "Release"],
    "image": "https://blog.example/hooked.jpg",
}
GHOST = {
    "post": {
        "current": {
            "id": "65f0c0ffee",
            "title": "A Ghost post",
            "url": "https://blog.example/ghost-post/",
            "custom_excerpt": None,
            "excerpt": "What Ghost says the post is about.",
            "feature_image": "https://blog.example/content/images/ghost.png",
            "tags": [{"name": "News"}, {"name": "Ghost"}],
            "published_at": "2026-11-30T09:00:00.000Z",
            "html": "<p>" + "long post body " * 20000 + "</p>",  # Ghost sends it all: ~300 KB
        },
        "previous": {"status": "draft"},
    }
}


def hook_settings(sqlite_url: str, smtp: SMTPServer, **overrides: object) -> Settings:
    settings = make_settings(sqlite_url, smtp, webhook_secret=SECRET, **overrides)
    engine = store.open_store(settings.database_url)
    with Session(engine) as session:
        for address in READERS:
            subscribers.add(session, settings, email=address, confirmed=True, now=utcnow())
    engine.dispose()
    return settings


def posts_in(settings: Settings) -> list[tuple[str, str, list[str]]]:
    engine = store.open_store(settings.database_url)
    with Session(engine) as session:
        rows = session.execute(sa.select(Post.id, Post.title, Post.image_url)).all()
        found = []
        for post_id, title, image in rows:
            query = (
                sa.select(PostCategory.category)
                .where(PostCategory.post_id == post_id)
                .order_by(PostCategory.position)
            )
            found.append((title, image, list(session.execute(query).scalars())))
    engine.dispose()
    return found


def bearer(secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_a_post_is_announced_once_and_sent_by_serve(
    sqlite_url: str, smtp_server: SMTPServer
) -> None:
    settings = hook_settings(sqlite_url, smtp_server)

    def make_app(base_url: str) -> object:
        return create_app(settings.model_copy(update={"base_url": base_url}))

    with running_server(make_app) as base_url:  # type: ignore[arg-type]
        first = httpx.post(f"{base_url}/hooks/publish", json=GENERIC, headers=bearer())
        assert first.status_code == 202, first.text
        assert first.json()["posts"] == [
            {"title": "Hooked", "url": GENERIC["url"], "new": True, "queued": 2}
        ]
        wait_for(lambda: len(smtp_server.messages) == 2, what="the post to both readers")
        again = httpx.post(f"{base_url}/hooks/publish", json=GENERIC, headers=bearer())
        assert again.status_code == 200 and again.json()["status"] == "already announced"
        forged = httpx.post(
            f"{base_url}/hooks/publish",
            json={**GENERIC, "url": "https://blog.example/forged"},
            headers=bearer("not-the-secret"),
        )
        assert forged.status_code == 401 and forged.headers["www-authenticate"] == "Bearer"
    assert sorted(r for m in smtp_server.messages for r in m.rcpt_tos) == READERS
    assert posts_in(settings) == [("Hooked", GENERIC["image"], ["Python", "Release"])]
    email = smtp_server.messages[0].message()
    assert str(email["Subject"]) == "Hooked"
    assert GENERIC["image"] in email.get_body(("html",)).get_content()  # type: ignore[union-attr]


@pytest.fixture
async def hook(sqlite_url: str, smtp_server: SMTPServer) -> AsyncIterator[httpx.AsyncClient]:
    with open_app(hook_settings(sqlite_url, smtp_server)) as app:
        async with asgi_client(app) as client:
            yield client
        await app.state.web.outbox.flush()  # let a pass a 202 started finish


async def test_ghost_payload_with_hmac_signature(
    hook: httpx.AsyncClient, sqlite_url: str, smtp_server: SMTPServer
) -> None:
    body = json.dumps(GHOST).encode()
    assert len(body) > 16 * 1024  # more than the forms may send
    headers = {"X-Subscribe-Signature": sign(SECRET, body), "Content-Type": "application/json"}
    answer = await hook.post("/hooks/publish", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    settings = make_settings(sqlite_url)
    assert posts_in(settings) == [("A Ghost post", GHOST["post"]["current"]["feature_image"],
                                   ["News", "Ghost"])]  # fmt: skip


async def test_ghost_own_signature_is_accepted(hook: httpx.AsyncClient, sqlite_url: str) -> None:
    import hashlib
    import hmac

    body = json.dumps(GHOST).encode()
    stamp = "1764590000000"
    digest = hmac.new(SECRET.encode(), body + stamp.encode(), hashlib.sha256).hexdigest()
    forged = {"X-Ghost-Signature": f"sha256={digest}, t=1764590000001"}
    answer = await hook.post("/hooks/publish", content=body, headers=forged)
    assert answer.status_code == 401  # the timestamp is signed too
    headers = {"X-Ghost-Signature": f"sha256={digest}, t={stamp}"}
    answer = await hook.post("/hooks/publish", content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    assert [title for title, _, _ in posts_in(make_settings(sqlite_url))] == ["A Ghost post"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {SECRET}"},
        {"X-Subscribe-Signature": "sha256=" + "0" * 64},
        {"X-Subscribe-Signature": sign(SECRET, b"another body")},
        {"X-Subscribe-Signature": "sha256=ünicode".encode()},
        {"X-Ghost-Signature": "sha256=, t="},
    ],
    ids=[
        "none",
        "wrong-bearer",
        "basic",
        "zero-hmac",
        "hmac-of-other-body",
        "non-ascii",
        "empty-ghost",
    ],
)
async def test_forged_calls_are_401_and_change_nothing(
    hook: httpx.AsyncClient, sqlite_url: str, headers: dict[str, str | bytes]
) -> None:
    answer = await hook.post("/hooks/publish", json=GENERIC, headers=headers)
    assert answer.status_code == 401
    assert posts_in(make_settings(sqlite_url)) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"url": "https://blog.example/x"}).encode(), "no 'title'"),
        (json.dumps({"title": "T", "url": "javascript:alert(1)"}).encode(), "http"),
        (
            json.dumps({"title": "T", "url": "https://b.example/", "categories": "x"}).encode(),
            "list",
        ),
        (json.dumps({"post": {"previous": {}}}).encode(), "post.current"),
        (json.dumps({"title": "T\r\nBcc: x@evil", "url": "ftp://x"}).encode(), "http"),
    ],
)
async def test_malformed_bodies_are_400_with_one_line(
    hook: httpx.AsyncClient, sqlite_url: str, body: bytes, message: str
) -> None:
    answer = await hook.post("/hooks/publish", content=body, headers=bearer())
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert message in error and "\n" not in error
    assert posts_in(make_settings(sqlite_url)) == []


async def test_no_secret_configured_is_404(sqlite_url: str, smtp_server: SMTPServer) -> None:
    with open_app(make_settings(sqlite_url, smtp_server)) as app:
        async with asgi_client(app) as client:
            answer = await client.post("/hooks/publish", json=GENERIC, headers=bearer(""))
    assert answer.status_code == 404


FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Blog</title><link>https://blog.example/</link>
{items}
</channel></rss>"""
ITEM = (
    "<item><title>{t}</title><link>https://blog.example/{t}</link><guid>{t}</guid>"
    "<pubDate>Mon, 0{d} Nov 2026 10:00:00 +0000</pubDate><category>Feedcat</category></item>"
)


async def test_feed_check_announces_what_is_new_once(
    sqlite_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_text(FEED.format(items=ITEM.format(t="one", d=1)))
    settings = hook_settings(sqlite_url, smtp_server, feed_url=str(feed), feed_max_new=1)
    with open_app(settings) as app:
        async with asgi_client(app) as client:
            first = await client.post("/hooks/publish", json={"feed": True}, headers=bearer())
            assert first.status_code == 202 and first.json()["posts"][0]["title"] == "one"
            again = await client.post("/hooks/publish", json={"feed": True}, headers=bearer())
            assert again.status_code == 200 and again.json()["status"] == "nothing new"
            items = "".join(
                ITEM.format(t=t, d=d) for t, d in [("one", 1), ("two", 2), ("three", 3)]
            )
            feed.write_text(FEED.format(items=items))
            capped = await client.post("/hooks/publish", json={"feed": True}, headers=bearer())
            assert [p["title"] for p in capped.json()["posts"]] == ["three"]  # the cap: 1
        await app.state.web.outbox.flush()
    assert sorted(title for title, _, _ in posts_in(settings)) == ["one", "three"]
    assert wait_for(lambda: len(smtp_server.messages) == 4, what="two posts to two readers")


async def test_feed_check_without_a_feed_is_422(sqlite_url: str, smtp_server: SMTPServer) -> None:
    with open_app(hook_settings(sqlite_url, smtp_server)) as app:
        async with asgi_client(app) as client:
            answer = await client.post("/hooks/publish", json={"feed": True}, headers=bearer())
    assert answer.status_code == 422 and "SUBSCRIBE_FEED_URL" in answer.json()["error"]


async def test_a_ghost_post_is_not_announced_again_by_its_feed(
    sqlite_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    """Ghost's RSS names a post by its id (the GUID): the hook keys the post by it too."""
    current = GHOST["post"]["current"]
    feed = tmp_path / "feed.xml"
    feed.write_text(
        FEED.format(
            items=f"<item><title>{current['title']}</title><link>{current['url']}</link>"
            f'<guid isPermaLink="false">{current["id"]}</guid></item>'
        )
    )
    settings = hook_settings(sqlite_url, smtp_server, feed_url=str(feed))
    with open_app(settings) as app:
        async with asgi_client(app) as client:
            hooked = await client.post("/hooks/publish", json=GHOST, headers=bearer())
            assert hooked.status_code == 202
            again = await client.post("/hooks/publish", json={"feed": True}, headers=bearer())
            assert again.status_code == 200 and again.json()["status"] == "already announced"
        await app.state.web.outbox.flush()
    assert len(posts_in(settings)) == 1
    assert sorted(r for m in smtp_server.messages for r in m.rcpt_tos) == READERS
