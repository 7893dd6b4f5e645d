"""Announcing a post: store it and enqueue one delivery per confirmed subscriber."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from subscribe.content import PostSpec
from subscribe.db import deliveries
from subscribe.db.models import Post, PostCategory
from subscribe.db.store import post_by_key
from subscribe.sending import ledger


@dataclass(frozen=True, slots=True)
class Announcement:
    post: Post
    enqueued: int
    is_new: bool  # False: the post was announced before, so this run resumes it


def register_post(session: Session, spec: PostSpec, *, now: datetime) -> Announcement:
    """Store the post and enqueue one delivery per confirmed subscriber, in one transaction.

    Idempotent by the post's key: announcing the same post again enqueues nothing, so a
    re-run only resumes what is left. Ordered with digests and cadence changes from
    before the post's id is taken until the commit (``deliveries.hold_watermarks``).
    """
    deliveries.hold_watermarks(session.connection())
    existing = post_by_key(session, key=spec.key)
    if existing is not None:
        return Announcement(existing, 0, False)
    post = Post(
        key=spec.key,
        title=spec.title,
        url=spec.url,
        summary=spec.summary,
        body_html=spec.body_html,
        published_at=spec.published_at,
        created_at=now,
        image_url=spec.image_url,
    )
    session.add(post)
    session.flush()
    assert post.id is not None
    session.add_all(
        PostCategory(post_id=post.id, category=name, position=position)
        for position, name in enumerate(spec.categories)
    )
    session.flush()  # the categories must be in the table the enqueue statement joins
    enqueued = ledger.enqueue(
        session.connection(), post_id=post.id, now=now, categorised=bool(spec.categories)
    )
    session.commit()
    session.refresh(post)
    return Announcement(post, enqueued, True)
