"""What a sending pass did: counts by outcome, its rate, and why it stopped early."""

from __future__ import annotations

from dataclasses import dataclass, field

from subscribe.db.models import DeliveryStatus

INTERRUPTED = "interrupted"


@dataclass
class RunReport:
    sent: int = 0
    skipped: int = 0
    deferred: int = 0
    failed: int = 0
    ambiguous: int = 0
    elapsed: float = 0.0
    stopped: str = ""  # why the run ended early, '' when it finished what was due
    # Confirmations and welcomes by outcome, apart: the figures above are the posts', so a
    # `notify` reports its post and not the sign-ups that went out in the same pass.
    messages: dict[str, int] = field(default_factory=dict)
    # Each post's outcomes: a pass sends whatever is due, an older post's backlog included,
    # and `notify` must not report that as its own post's figures.
    by_post: dict[int, dict[str, int]] = field(default_factory=dict)
    # Digests by outcome: counted in the figures above too, as list email.
    digests: dict[str, int] = field(default_factory=dict)

    def count(
        self, status: DeliveryStatus, *, post_id: int | None = None, digest: bool = False
    ) -> None:
        if digest:
            self.digests[status.value] = self.digests.get(status.value, 0) + 1
        elif post_id is None:
            self.messages[status.value] = self.messages.get(status.value, 0) + 1
            return
        else:
            per_post = self.by_post.setdefault(post_id, {})
            per_post[status.value] = per_post.get(status.value, 0) + 1
        if status == DeliveryStatus.SENT:
            self.sent += 1
        elif status == DeliveryStatus.DEFERRED:
            self.deferred += 1
        elif status == DeliveryStatus.FAILED:
            self.failed += 1
        elif status == DeliveryStatus.AMBIGUOUS:
            self.ambiguous += 1

    @property
    def interrupted(self) -> bool:
        """Stopped by a signal (Ctrl-C, SIGTERM) before it sent what was due."""
        return self.stopped == INTERRUPTED

    @property
    def processed(self) -> int:
        posts = self.sent + self.skipped + self.deferred + self.failed + self.ambiguous
        return posts + sum(self.messages.values())

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> str:
        return (
            f"sent {self.sent}, skipped {self.skipped}, deferred {self.deferred}, "
            f"failed {self.failed}"
            + (f", ambiguous {self.ambiguous}" if self.ambiguous else "")
            + f" in {self.elapsed:.1f} s ({self.rate:.0f} msg/s)"
            + self._digests_summary()
            + self._messages_summary()
        )

    def _digests_summary(self) -> str:
        if not self.digests:
            return ""
        counts = ", ".join(f"{status} {n}" for status, n in sorted(self.digests.items()))
        return f"; of them digests: {counts}"

    def _messages_summary(self) -> str:
        if not self.messages:
            return ""
        counts = ", ".join(f"{status} {n}" for status, n in sorted(self.messages.items()))
        return f"; confirmation and welcome emails: {counts}"
