"""The tables: subscribers, posts and their categories, one delivery per (post, subscriber),
seen feed entries, and suppressed (erased) addresses. Timestamps are timezone-aware UTC.

A delivery is claimable exactly when ``due_at`` is set, and held by a sender exactly when
``lease_until`` is set: the sending loop then walks two small indexes instead of filtering
a million rows by status.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Store UTC, hand back aware datetimes (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for its first attempt
    SENDING = "sending"  # claimed by a sender holding a lease
    SENT = "sent"  # the relay answered 250 to the end of data
    DEFERRED = "deferred"  # a 4xx answer; due again later
    AMBIGUOUS = "ambiguous"  # the connection broke after DATA began; re-sent at most once
    FAILED = "failed"  # a 5xx answer, or deferred past its lifetime
    SKIPPED = "skipped"  # the subscriber left before their turn came


class MessageKind(enum.StrEnum):
    """What a delivery carries: a post, or a transactional email (no post)."""

    POST = "post"
    CONFIRM = "confirm"  # "please confirm": goes to a pending reader
    WELCOME = "welcome"  # after confirming: goes to a confirmed reader
    DIGEST = "digest"  # the posts of a day or a week, one email per reader and period
    ADDRESS_CHANGE = "address_change"  # "confirm your new address": to the address asked for


class Cadence(enum.StrEnum):
    """How often a reader hears from us."""

    POST = "post"  # one email per post, as it is announced
    DAILY = "daily"  # one digest a day, at SUBSCRIBE_DIGEST_HOUR
    WEEKLY = "weekly"  # one digest a week, on SUBSCRIBE_DIGEST_WEEKDAY
    PAUSED = "paused"  # nothing until they come back


DIGEST_CADENCES = (Cadence.DAILY.value, Cadence.WEEKLY.value)


# Who may still receive each kind when its turn comes; anyone else's delivery is skipped.
RECEIVER_STATUS = {
    MessageKind.POST: "confirmed",
    MessageKind.CONFIRM: "pending",
    MessageKind.WELCOME: "confirmed",
    MessageKind.DIGEST: "confirmed",
    MessageKind.ADDRESS_CHANGE: "confirmed",
}


FINAL_DELIVERY_STATES = frozenset(
    {DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED}
)


def _time(*, nullable: bool = True, index: bool = False) -> object:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class Subscriber(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320)  # as typed, domain lowercased
    email_key: str = Field(max_length=320, unique=True)  # casefolded: one row per address
    name: str = Field(default="", max_length=200)
    status: SubscriberStatus = Field(
        default=SubscriberStatus.PENDING, sa_type=sa.String(16), index=True
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    confirmed_at: datetime | None = _time()  # type: ignore[assignment]
    unsubscribed_at: datetime | None = _time()  # type: ignore[assignment]
    # Consent record: where and how the address came in (GDPR art. 7(1) asks us to show it).
    consent_source: str = Field(default="", max_length=200)
    consent_ip: str = Field(default="", max_length=64)
    consent_user_agent: str = Field(default="", max_length=400)
    consent_at: datetime | None = _time()  # type: ignore[assignment]
    # Confirmation-email throttle: at most one per 10 minutes and a few per day.
    confirmation_sent_at: datetime | None = _time()  # type: ignore[assignment]
    confirmation_day: str = Field(default="", max_length=10)
    confirmations_that_day: int = 0
    # Bounces, judged by their reason (``refusals``): counted ones decay after 30 days
    # or a successful delivery; ``bounce_counted_at`` is when the last counted one was sent.
    bounce_count: int = 0
    bounce_counted_at: datetime | None = _time()  # type: ignore[assignment]
    last_bounce_at: datetime | None = _time()  # type: ignore[assignment]
    last_bounce_reason: str = Field(
        default="", max_length=32, sa_column_kwargs={"server_default": ""}
    )
    complained_at: datetime | None = _time()  # type: ignore[assignment]
    cadence: Cadence = Field(
        default=Cadence.POST, sa_type=sa.String(16), sa_column_kwargs={"server_default": "post"}
    )
    # The digest watermark as a change of cadence sets it: posts up to this id are dealt
    # with for this reader (sent one by one, or passed over while paused). A digest moves
    # the watermark by its own row (``digest_through``): ``deliveries.digest_watermark``.
    digest_after: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # An address the reader asked to move to, waiting for its confirmation link.
    pending_email: str = Field(default="", max_length=320, sa_column_kwargs={"server_default": ""})
    # The reader's language (a BCP 47 tag: de, pt-BR), chosen at sign-up or on the
    # preferences page; "" for readers from before languages: the site's default.
    language: str = Field(default="", max_length=35, sa_column_kwargs={"server_default": ""})


class SubscriberCategory(SQLModel, table=True):
    """A category a reader chose, one row each: no row means every category. Choosing a
    post's readers is then one join in the INSERT ... SELECT that queues its deliveries."""

    __tablename__ = "subscriber_category"

    subscriber_id: int = Field(foreign_key="subscriber.id", ondelete="CASCADE", primary_key=True)
    category: str = Field(max_length=200, primary_key=True)


class Post(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=2000, unique=True)  # feed GUID or URL
    title: str = Field(max_length=500)
    url: str = Field(max_length=2000)
    summary: str = Field(default="")
    body_html: str = Field(default="")
    published_at: datetime | None = _time()  # type: ignore[assignment]
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    image_url: str = Field(default="", max_length=2000)  # the feed's image for the post


class PostCategory(SQLModel, table=True):
    """A category of a post, one row each, so that choosing the readers of a post by
    category is a join in SQL (``post_category.category = reader's choice``)."""

    __tablename__ = "post_category"

    post_id: int = Field(foreign_key="post.id", ondelete="CASCADE", primary_key=True)
    category: str = Field(max_length=200, primary_key=True, index=True)
    position: int = 0  # the order the source gave


class Delivery(SQLModel, table=True):
    # Two partial indexes too, on due_at and lease_until: see declare_partial_indexes.
    __table_args__ = (
        sa.UniqueConstraint("post_id", "subscriber_id"),
        # One digest per reader and period, however often `digest` runs; NULL (every other
        # kind) never collides.
        sa.Index("uq_delivery_period", "kind", "period", "subscriber_id", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    # None for a transactional email (``kind`` says which): unique (post, reader) holds
    # for posts only, since NULLs never collide.
    post_id: int | None = Field(default=None, foreign_key="post.id", ondelete="CASCADE")
    kind: MessageKind = Field(default=MessageKind.POST, sa_type=sa.String(16))
    subscriber_id: int = Field(foreign_key="subscriber.id", ondelete="CASCADE", index=True)
    status: DeliveryStatus = Field(default=DeliveryStatus.QUEUED, sa_type=sa.String(16))
    attempts: int = 0
    # Attempts that broke after DATA began: the relay may hold a copy, so one re-send at most.
    ambiguous_count: int = 0
    due_at: datetime | None = _time()  # type: ignore[assignment]
    lease_until: datetime | None = _time()  # type: ignore[assignment]
    claimed_by: str = Field(default="", max_length=200)  # "host:pid:run" of the lease holder
    last_error: str = Field(default="", max_length=1000)
    message_id: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    sent_at: datetime | None = _time()  # type: ignore[assignment]
    # Digests only: the period ("daily:2026-12-08", "weekly:2026-12-07") and the posts it
    # lists (ids after ``digest_after`` up to ``digest_through``), fixed when it is queued so
    # that a re-send after a kill is the same email.
    period: str | None = Field(default=None, max_length=40)
    digest_after: int | None = None
    digest_through: int | None = None


class FeedEntry(SQLModel, table=True):
    """An entry of a feed that has been announced or deliberately passed over."""

    __table_args__ = (sa.UniqueConstraint("feed", "entry_key"),)

    id: int | None = Field(default=None, primary_key=True)
    feed: str = Field(max_length=2000)
    entry_key: str = Field(max_length=2000)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Suppression(SQLModel, table=True):
    """A keyed hash of an erased address: import cannot quietly re-add someone who left."""

    id: int | None = Field(default=None, primary_key=True)
    address_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class RateEvent(SQLModel, table=True):
    """One hit against a rate limit, kept in the database so limits hold across processes."""

    id: int | None = Field(default=None, primary_key=True)
    bucket: str = Field(max_length=200, index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True)


class WebhookEvent(SQLModel, table=True):
    """A relay's webhook event already applied (SNS MessageId, Mailgun event id, Postmark
    ID, SendGrid sg_event_id), or a Mailgun signing token already seen: providers retry and
    repeat, and each event must act once, each signature be accepted once."""

    __tablename__ = "webhook_event"

    provider: str = Field(max_length=32, primary_key=True)  # "ses", "mailgun-token"...
    event_id: str = Field(max_length=200, primary_key=True)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


# The Core tables, for set-based statements (enqueue, claim, record) that skip the ORM.
subscriber_table: sa.Table = Subscriber.__table__  # type: ignore[attr-defined]
post_table: sa.Table = Post.__table__  # type: ignore[attr-defined]
post_category_table: sa.Table = PostCategory.__table__  # type: ignore[attr-defined]
subscriber_category_table: sa.Table = SubscriberCategory.__table__  # type: ignore[attr-defined]
delivery_table: sa.Table = Delivery.__table__  # type: ignore[attr-defined]
webhook_event_table: sa.Table = WebhookEvent.__table__  # type: ignore[attr-defined]


def declare_partial_indexes() -> None:
    """Add the delivery table's partial indexes to the metadata (for Alembic).

    Only waiting (``due_at``) or held (``lease_until``) rows are indexed, so the million
    finished ones cost the claim and the ledger writes nothing. Migration 0003 creates them;
    they are declared apart because a dialect option makes SQLAlchemy import that dialect,
    and PostgreSQL's costs every command ~50 ms to load, SQLite-only ones included.
    """
    if any(index.name == "ix_delivery_due_at" for index in delivery_table.indexes):
        return
    conditions = {
        "ix_delivery_due_at": ("due_at", "due_at IS NOT NULL"),
        "ix_delivery_lease_until": ("lease_until", "lease_until IS NOT NULL"),
        # Transactional mail only: the loop in `serve` claims it past a queued million.
        "ix_delivery_message_due": ("due_at", "due_at IS NOT NULL AND kind <> 'post'"),
    }
    for name, (column, where) in conditions.items():
        condition = sa.text(where)
        sa.Index(name, delivery_table.c[column], sqlite_where=condition, postgresql_where=condition)
    # A reader's latest digest, whose digest_through is part of their watermark (0008).
    digests = sa.text("kind = 'digest'")
    d = delivery_table.c
    sa.Index(
        "ix_delivery_digest_through",
        d.subscriber_id,
        d.digest_through,
        sqlite_where=digests,
        postgresql_where=digests,
    )
