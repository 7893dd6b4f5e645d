"""The group commit on its own: batches, the shared future, errors, and closing.

A stand-in writer records what it is given (``GroupCommit`` takes any object with the
``OutcomeWriter.record`` signature); the real writer is exercised by every sending test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import datetime

import pytest

from subscribe.db.models import DeliveryStatus
from subscribe.sending.group_commit import GroupCommit
from subscribe.sending.ledger import Outcome

pytestmark = pytest.mark.timeout(30)


class _Writer:
    """Records batches; the first commit waits for ``release`` so that a batch piles up."""

    def __init__(self, *, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.release = threading.Event()
        self._fail = fail

    def record(self, outcomes: Sequence[Outcome], *, now: datetime) -> None:
        self.threads.add(threading.current_thread().name)
        if not self.batches:
            self.release.wait(10)
        self.batches.append([o.delivery_id for o in outcomes])
        if self._fail:
            raise RuntimeError("database is locked")


def _sent(delivery_id: int) -> Outcome:
    return Outcome(delivery_id, delivery_id, DeliveryStatus.SENT, message_id=f"<{delivery_id}@x>")


def test_outcomes_that_wait_for_a_commit_share_the_next_one() -> None:
    writer = _Writer()

    async def main() -> None:
        group = GroupCommit(writer)  # type: ignore[arg-type]
        first = asyncio.create_task(group.record(_sent(1)))
        await asyncio.sleep(0.05)  # the writer holds the first commit open
        rest = [asyncio.create_task(group.record(_sent(n))) for n in range(2, 6)]
        await asyncio.sleep(0.05)
        assert not first.done() and not any(task.done() for task in rest)
        writer.release.set()
        await asyncio.wait_for(asyncio.gather(first, *rest), 5)
        await group.close()

    asyncio.run(main())
    assert writer.batches == [[1], [2, 3, 4, 5]]
    assert writer.threads == {"subscribe-ledger"}  # never on the event loop's thread


def test_a_failed_commit_reaches_every_lane_of_its_batch() -> None:
    writer = _Writer(fail=True)
    writer.release.set()

    async def main() -> list[BaseException | None]:
        group = GroupCommit(writer)  # type: ignore[arg-type]
        results = await asyncio.gather(
            *(group.record(_sent(n)) for n in range(3)), return_exceptions=True
        )
        await group.close()
        return results

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) and "locked" in str(r) for r in results)


def test_close_commits_what_is_pending_and_stops_the_thread() -> None:
    writer = _Writer()
    writer.release.set()

    async def main() -> GroupCommit:
        group = GroupCommit(writer)  # type: ignore[arg-type]
        await group.record(_sent(1))
        await group.close()
        return group

    group = asyncio.run(main())
    assert writer.batches == [[1]]
    assert not group._thread.is_alive()
