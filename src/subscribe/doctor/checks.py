"""What one check says, and the sample message the relay and DKIM checks use."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from subscribe.config import Settings
from subscribe.content import PostSpec
from subscribe.errors import SubscribeError
from subscribe.mail.envelopes import post_builder
from subscribe.mail.render import Recipient


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    status: Status
    topic: str  # what was checked: "spf", "starttls"...
    message: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> fix: {self.fix}" if self.fix and self.status != Status.OK else ""
        return f"{self.status.value:<4}  {self.topic}: {self.message}{fix}"


def ok(topic: str, message: str) -> Check:
    return Check(Status.OK, topic, message)


def warn(topic: str, message: str, fix: str) -> Check:
    return Check(Status.WARN, topic, message, fix)


def fail(topic: str, message: str, fix: str) -> Check:
    return Check(Status.FAIL, topic, message, fix)


SAMPLE_POST = PostSpec(
    key="subscribe-doctor-sample",
    title="A sample post from subscribe doctor",
    url="https://example.org/subscribe-doctor-sample",
    summary="\n\n".join(
        "This is the kind of email your readers get: a title, an excerpt of a few "
        "paragraphs, a link to the post and a one-click unsubscribe."
        for _ in range(12)
    ),
)


def render_sample(settings: Settings, to: str = "reader@example.org") -> bytes | None:
    """A new-post email as readers get it (signed when DKIM is on), about our usual size;
    None when the settings cannot make one (the settings checks say why)."""
    recipient = Recipient(
        email=to,
        name="Sample Reader",
        unsubscribe_url=f"{settings.base_url}/unsubscribe/sample-token-0123456789abcdefghijkl",
        message_id=f"<doctor.sample@{settings.mail_domain}>",
    )
    try:
        return post_builder(settings, SAMPLE_POST).build(recipient)
    except SubscribeError:
        return None
