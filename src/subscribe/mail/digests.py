"""Digest emails: the posts of a day or a week for one reader, in one message.

Readers of a period mostly share their list (same watermark, same categories), so a
digest is compiled once per distinct list, like a post (``MessageBuilder``), and each
reader's message is spliced from it: a million digests cost about what a million copies
of one post cost. The builders of the lists seen most recently are kept; a list seen
once costs a compile (a few milliseconds), which only readers with unusual choices pay.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from subscribe.config import Settings

from .dates import format_date
from .envelopes import EnvelopeFactory, PostContent, post_context
from .render import MessageBuilder, make_environment, message_id
from .transactional import site_context

BUILDERS_KEPT = 256


@dataclass(frozen=True, slots=True)
class DigestList:
    """A list of posts as the digests of a batch share it: made once per distinct list,
    its sorted ids the key of its compiled layout (not worked out again per message)."""

    ids: tuple[int, ...]
    posts: tuple[PostContent, ...]

    @classmethod
    def of(cls, posts: Sequence[PostContent]) -> DigestList:
        return cls(tuple(sorted(post.id for post in posts)), tuple(posts))


def period_cadence(period: str) -> str:
    """'daily:2026-12-08' -> 'daily'."""
    return period.partition(":")[0]


def newest_first(posts: Sequence[PostContent]) -> list[PostContent]:
    def when(post: PostContent) -> tuple[float, int]:
        stamp = post.published_at.timestamp() if post.published_at is not None else 0.0
        return (stamp, post.id)

    return sorted(posts, key=when, reverse=True)


def digest_context(
    settings: Settings, period: str, posts: Sequence[PostContent], language: str = ""
) -> dict[str, object]:
    language = language or settings.language
    day = datetime.fromisoformat(period.partition(":")[2] or "1970-01-01")
    return {
        **site_context(settings),
        "digest": {
            "cadence": period_cadence(period),
            "date": format_date(day, language, settings.timezone),
            "posts": [
                post_context(settings, post, language)["post"] for post in newest_first(posts)
            ],
        },
    }


class DigestFactory:
    """Makes the digests of one run, sharing each distinct list's compiled layout."""

    def __init__(self, settings: Settings, envelopes: EnvelopeFactory) -> None:
        self._settings = settings
        self._envelopes = envelopes
        self._domain = settings.mail_domain  # a property that parses From: once, not per message
        self._builders: OrderedDict[tuple[str, str, tuple[int, ...]], MessageBuilder] = (
            OrderedDict()
        )
        self._last: tuple[str, str, DigestList, MessageBuilder] | None = None

    def _builder(self, period: str, posts: DigestList, language: str) -> MessageBuilder:
        last = self._last
        if last is not None and last[2] is posts and last[0] == period and last[1] == language:
            return last[3]  # most readers in a row share their list
        key = (period, language, posts.ids)
        builder = self._builders.get(key)
        if builder is None:
            context = digest_context(self._settings, period, posts.posts, language)
            env = make_environment(self._settings.templates_dir, language)
            builder = MessageBuilder(self._settings, env, "email/digest", context)
            self._builders[key] = builder
            if len(self._builders) > BUILDERS_KEPT:
                self._builders.popitem(last=False)
        else:
            self._builders.move_to_end(key)
        self._last = (period, language, posts, builder)
        return builder

    def render(
        self,
        *,
        delivery_id: int,
        subscriber_id: int,
        email: str,
        email_key: str,
        name: str,
        period: str,
        posts: DigestList,
        language: str = "",
    ) -> tuple[str, str, bytes, str]:
        """(return path, recipient, wire form, Message-ID): the Message-ID is keyed by the
        period, so the digest of a period has one, however often it is sent."""
        mid = message_id(self._domain, post_key=f"digest:{period}", subscriber_id=subscriber_id)
        recipient = self._envelopes.recipient(subscriber_id, email, email_key, name, mid)
        language = self._envelopes.language(language)
        wire = self._builder(period, posts, language).build_wire(recipient)
        return self._envelopes.return_path(delivery_id), recipient.email, wire, mid
