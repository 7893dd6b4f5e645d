"""The publish webhook's use case: who may call it, what a payload says, and announcing it.

Three payloads are understood:

* generic JSON: ``{"title", "url", "summary"?, "categories"?, "image"?, "id"?}``, for a
  static site's deploy step or a WordPress webhook plugin;
* Ghost's ``post.published`` webhook: ``{"post": {"current": {"title", "url",
  "custom_excerpt" | "excerpt", "feature_image", "tags": [{"name"}], "published_at"}}}``;
* ``{"feed": true}``: read ``SUBSCRIBE_FEED_URL`` now, as ``notify --feed`` would (with its
  ``SUBSCRIBE_FEED_MAX_NEW`` cap).

Announcing goes through ``campaign.notify``, the same use case as the CLI's, so a post
announced twice (a retried webhook, the hook and cron's feed run) is announced once: the
post's key (``id``, else its URL) is what makes it the same post. Sending is the caller's
(the web process wakes its in-process sender); nothing here knows of HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from subscribe.config import Settings
from subscribe.content import PostSpec, one_line
from subscribe.errors import SourceError
from subscribe.sending.report import RunReport

from . import campaign
from .announce import Announcement
from .feeds import Feed, clean_categories, read_feed
from .markdown import require_url

SIGNATURE_PREFIX = "sha256="
MAX_SUMMARY = 2000  # characters of excerpt in the email; the post itself is a click away


def authenticated(
    secret: str, *, authorization: str, signature: str, body: bytes, ghost_signature: str = ""
) -> bool:
    """``Authorization: Bearer SECRET``, ``X-Subscribe-Signature: sha256=HEX`` (HMAC-SHA256
    of the raw body under the secret), or Ghost's own ``X-Ghost-Signature: sha256=HEX,
    t=MILLISECONDS`` (HMAC of the body followed by t), so a Ghost webhook given the secret
    can call us directly. All compared in constant time. A replayed call can only name a
    post again, which is announced once."""
    if not secret:
        return False
    key = secret.encode("utf-8")
    scheme, _, token = authorization.strip().partition(" ")
    bearer = scheme.lower() == "bearer" and bool(token)
    if bearer and hmac.compare_digest(token.strip().encode("utf-8"), key):
        return True
    if _hmac_matches(key, body, signature):
        return True
    parts = dict(p.strip().partition("=")[::2] for p in ghost_signature.split(","))
    stamp = parts.get("t", "")
    return stamp.isdigit() and _hmac_matches(
        key, body + stamp.encode(), parts.get("sha256", ""), bare=True
    )


def _hmac_matches(key: bytes, message: bytes, offered: str, *, bare: bool = False) -> bool:
    offered = offered.strip()
    if not bare:
        if not offered.lower().startswith(SIGNATURE_PREFIX):
            return False
        offered = offered[len(SIGNATURE_PREFIX) :]
    if not offered:
        return False
    expected = hmac.new(key, message, hashlib.sha256).hexdigest().encode()
    # Non-hex (or non-ASCII) input simply fails the comparison, never raises.
    return hmac.compare_digest(offered.lower().encode("utf-8", "replace"), expected)


def sign(secret: str, body: bytes) -> str:
    """The ``X-Subscribe-Signature`` value a caller sends (documented for callers, tested)."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """What a payload asks: one post, or a look at the feed."""

    spec: PostSpec | None = None
    feed: bool = False


def parse_payload(body: bytes) -> PublishRequest:
    """The request a payload makes; ``SourceError`` (one line) for one we cannot use."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SourceError("the body must be a JSON object")
    if data.get("feed") is True:
        return PublishRequest(feed=True)
    post = data.get("post")
    if isinstance(post, dict):
        current = post.get("current")
        if not isinstance(current, dict):
            raise SourceError("a Ghost payload needs post.current (a post.published webhook)")
        return PublishRequest(spec=_ghost_spec(current))
    return PublishRequest(spec=_generic_spec(data))


def _text(data: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise SourceError(f"the payload has no {name!r}")
        return ""
    if not isinstance(value, str | int):
        raise SourceError(f"{name!r} must be a string")
    return str(value).strip()


def _image(value: str, name: str) -> str:
    return require_url(value, name) if value else ""


def _names(value: object, name: str, *, key: str | None = None) -> tuple[str, ...]:
    """A list of strings (or of objects with ``key``), cleaned like a feed's categories."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SourceError(f"{name!r} must be a list")
    names = []
    for item in value:
        if key is not None and isinstance(item, dict):
            item = item.get(key)
        if not isinstance(item, str):
            raise SourceError(f"{name!r} must be a list of names")
        names.append(item)
    return clean_categories(names)


def _spec(
    title: str, url: str, summary: str, categories: tuple[str, ...], image: str, key: str
) -> PostSpec:
    title = one_line(title)
    if not title:
        raise SourceError("the payload has no 'title'")
    url = require_url(url, "'url'")
    return PostSpec(
        key=key or url,
        title=title[:300],
        url=url,
        summary=summary[:MAX_SUMMARY],
        categories=categories,
        image_url=image,
    )


def _generic_spec(data: Mapping[str, Any]) -> PostSpec:
    return _spec(
        _text(data, "title", required=True),
        _text(data, "url", required=True),
        _text(data, "summary"),
        _names(data.get("categories"), "categories"),
        _image(_text(data, "image"), "'image'"),
        _text(data, "id"),
    )


def _ghost_spec(current: Mapping[str, Any]) -> PostSpec:
    """Ghost's post, keyed by its id, which is also the GUID of the post in Ghost's RSS
    feed: the hook and a cron `notify --feed` run name the same post."""
    spec = _spec(
        _text(current, "title", required=True),
        _text(current, "url", required=True),
        _text(current, "custom_excerpt") or _text(current, "excerpt"),
        _names(current.get("tags"), "tags", key="name"),
        _image(_text(current, "feature_image"), "'feature_image'"),
        _text(current, "id"),
    )
    published = _text(current, "published_at")
    if published:
        try:
            when = datetime.fromisoformat(published.replace("Z", "+00:00"))
        except ValueError:
            raise SourceError(f"published_at {published!r} is not an ISO date") from None
        spec = replace(spec, published_at=when if when.tzinfo else when.replace(tzinfo=UTC))
    return spec


@dataclass(frozen=True, slots=True)
class Published:
    """One post the request named, read while its session was open."""

    title: str
    url: str
    is_new: bool  # False: announced before, nothing more was queued
    enqueued: int


@dataclass(slots=True)
class PublishOutcome:
    posts: list[Published] = field(default_factory=list)

    @property
    def new(self) -> list[Published]:
        return [p for p in self.posts if p.is_new]


def publish(
    engine: Engine,
    settings: Settings,
    request: PublishRequest,
    *,
    now: Callable[[], datetime],
    load_feed: Callable[..., Feed] = read_feed,
) -> PublishOutcome:
    """Store what the request announces (idempotent by post key). Blocking: database and,
    for ``feed``, the network; the caller runs it in a thread and then wakes its sender."""
    outcome = PublishOutcome()

    def seen(item: Announcement) -> None:
        post = item.post
        outcome.posts.append(Published(post.title, post.url, item.is_new, item.enqueued))

    if request.feed:
        if not settings.feed_url:
            raise SourceError("SUBSCRIBE_FEED_URL is not set: there is no feed to check")
        feed = load_feed(settings.feed_url, language=settings.language, timezone=settings.timezone)
        campaign.notify(
            engine,
            feed=feed,
            max_new=settings.feed_max_new,
            now=now,
            on_announced=seen,
            send=RunReport,
        )
    else:
        assert request.spec is not None
        campaign.notify(engine, specs=[request.spec], now=now, on_announced=seen, send=RunReport)
    return outcome
