"""What the sending loop reads to make messages: post contents for the renderer, and the
envelopes of the rows it makes itself (confirmations, welcomes, address changes, digests).

They are made in the sending process: a welcome lists the latest posts and a digest a
reader's posts of the period, which only a process with the database can read (never the
render process). Each is spliced from a compiled layout like a post: confirmations and
welcomes one per language (``mail.transactional``), digests one per distinct list and
language (``mail.digests``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.db import store
from subscribe.db.models import (
    MessageKind,
    Post,
    UTCDateTime,
    post_category_table,
    post_table,
    subscriber_category_table,
    subscriber_table,
)
from subscribe.mail.digests import DigestFactory, DigestList
from subscribe.mail.envelopes import EnvelopeFactory, PostContent
from subscribe.mail.transactional import Addressee, Transactional
from subscribe.readers.tokens import Tokens

from . import ledger
from .ledger import Claimed
from .sender import Envelope

_TIME = UTCDateTime()


class MessageMaker:
    def __init__(self, engine: Engine, settings: Settings, tokens: Tokens) -> None:
        self._engine = engine
        self._emails = Transactional(settings, tokens)
        self._return_paths = EnvelopeFactory(settings, tokens)
        self._digests = DigestFactory(settings, self._return_paths)
        self._latest_posts: list[Post] | None = None  # loaded once a pass, on first use
        # Digest inputs: posts by id (with when they were announced), kept for the pass;
        # each batch's readers' lists, by delivery id.
        self._posts: dict[int, tuple[PostContent, datetime]] = {}
        self._lists: dict[int, DigestList] = {}
        self._loaded: tuple[int, int] | None = None  # the range of post ids in _posts

    async def prepare(self, claimed: Sequence[Claimed]) -> list[Claimed]:
        """Read what this batch's digests list; those left with nothing are marked
        skipped and left out of what is returned."""
        digests = [item for item in claimed if item.kind == MessageKind.DIGEST]
        if not digests:
            return list(claimed)
        empty = await asyncio.to_thread(self._load_digests, digests)
        return [item for item in claimed if item.delivery_id not in empty]

    async def envelope(self, item: Claimed) -> tuple[Envelope, str]:
        """The envelope and Message-ID of a claimed delivery made here. The Message-ID is
        keyed by the delivery (a digest: by its period), so a re-send after a kill carries
        the same one."""
        if item.kind == MessageKind.DIGEST:
            assert item.period is not None
            mail_from, to, wire, mid = self._digests.render(
                delivery_id=item.delivery_id,
                subscriber_id=item.subscriber_id,
                email=item.email,
                email_key=item.email_key,
                name=item.name,
                period=item.period,
                posts=self._lists.pop(item.delivery_id),
                language=item.language,
            )
            return Envelope.from_wire(mail_from, to, wire), mid
        reader = Addressee(item.subscriber_id, item.email, item.email_key, item.name, item.language)
        key = f"{item.kind}:{item.delivery_id}"
        if item.kind == MessageKind.WELCOME:
            if self._latest_posts is None:
                self._latest_posts = await asyncio.to_thread(self._load_latest_posts)
            message = self._emails.welcome(reader, self._latest_posts, key=key)
        elif item.kind == MessageKind.ADDRESS_CHANGE:
            message = self._emails.address_change(reader, item.pending_email, key=key)
        else:
            message = self._emails.confirmation(reader, key=key)
        mail_from = self._return_paths.return_path(item.delivery_id)
        return Envelope(mail_from, message.to, message.data), message.message_id

    def post_contents(self, post_ids: set[int]) -> list[PostContent]:
        """What the renderer needs of each post (a post deleted meanwhile is left out)."""
        with Session(self._engine) as session:
            posts = [p for pid in post_ids if (p := session.get(Post, pid)) is not None]
            return [PostContent.of(post) for post in posts]

    def _load_latest_posts(self) -> list[Post]:
        with Session(self._engine) as session:
            return list(store.latest_posts(session))

    # -- digests -------------------------------------------------------------------------

    def _load_digests(self, digests: Sequence[Claimed]) -> set[int]:
        """Each digest's posts, newest first, as the reader's categories choose them now;
        the ids of digests with none left, marked skipped. Worked out once per distinct
        list: readers of a period mostly share their range and choice."""
        ids = [item.subscriber_id for item in digests]
        low = min(item.digest_after or 0 for item in digests)
        high = max(item.digest_through or 0 for item in digests)
        with self._engine.connect() as connection:
            self._load_posts(connection, low, high)
            in_range = [created for pid, (_, created) in self._posts.items() if low < pid <= high]
            sc = subscriber_category_table.c
            s = subscriber_table.c
            chosen: dict[int, set[str]] = {}
            rows = connection.execute(
                sa.select(sc.subscriber_id, sc.category).where(sc.subscriber_id.in_(ids))
            )
            for subscriber_id, category in rows:
                chosen.setdefault(subscriber_id, set()).add(category)
            # Who joined after a post they might list (nobody gets what came out before
            # they joined): few readers, so the rest are not read at all.
            joined_at = sa.func.coalesce(s.confirmed_at, s.created_at)
            late = {}
            if in_range:
                # A second early: SQLite compares text, and times are not all written
                # alike ('09:00:00' and '09:00:00.000000'); _list compares exactly.
                earliest = sa.literal(min(in_range) - timedelta(seconds=1), UTCDateTime)
                late = dict(
                    connection.execute(
                        sa.select(s.id, joined_at).where(s.id.in_(ids), joined_at >= earliest)
                    ).all()
                )
        wanted = {reader: frozenset(names) for reader, names in chosen.items()}
        lists: dict[tuple[object, ...], DigestList | None] = {}
        empty = set()
        for item in digests:
            key = (
                item.digest_after or 0,
                item.digest_through or 0,
                wanted.get(item.subscriber_id),
                late.get(item.subscriber_id),
            )
            if key not in lists:
                lists[key] = self._list(*key)
            listed = lists[key]
            if listed is not None:
                self._lists[item.delivery_id] = listed
            else:
                empty.add(item.delivery_id)
        ledger.skip(self._engine, sorted(empty))
        return empty

    def _list(
        self, after: int, through: int, wanted: frozenset[str] | None, joined: object
    ) -> DigestList | None:
        """The posts after ``after`` up to ``through`` that ``wanted`` takes (None: every
        category), announced after ``joined`` (None: before them all); None if none."""
        since = _TIME.process_result_value(joined, self._engine.dialect)
        posts = [
            content
            for post_id, (content, created_at) in self._posts.items()
            if after < post_id <= through
            and (since is None or created_at > since)
            and (not wanted or not content.categories or not wanted.isdisjoint(content.categories))
        ]
        return DigestList.of(posts) if posts else None

    def _load_posts(self, connection: sa.Connection, low: int, high: int) -> None:
        if self._loaded is not None and self._loaded[0] <= low and high <= self._loaded[1]:
            return
        if self._loaded is not None:
            low, high = min(low, self._loaded[0]), max(high, self._loaded[1])
        self._loaded = (low, high)
        p = post_table.c
        query = sa.select(post_table).where(p.id > low, p.id <= high)
        categories: dict[int, list[str]] = {}
        pc = post_category_table.c
        for post_id, category in connection.execute(
            sa.select(pc.post_id, pc.category)
            .where(pc.post_id > low, pc.post_id <= high)
            .order_by(pc.post_id, pc.position)
        ):
            categories.setdefault(post_id, []).append(category)
        for row in connection.execute(query).mappings():
            if row["id"] in self._posts:
                continue
            content = PostContent(
                row["id"],
                row["key"],
                row["title"],
                row["url"],
                row["summary"],
                row["body_html"],
                row["published_at"],
                tuple(categories.get(row["id"], ())),
                row["image_url"],
            )
            self._posts[row["id"]] = (content, row["created_at"])
