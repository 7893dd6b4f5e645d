"""The sending loop over the delivery ledger.

    claim (thread) -> render (inline or render process) -> bounded queue
        -> N lanes (one SMTP connection each) -> group commit (writer thread)

A producer claims due deliveries in batches and renders them; each lane sends one message
at a time on its own connection and waits until its outcome is committed before it sends
the next body (the next envelope may already be on its way, pipelined behind this body),
so a hard kill can repeat at most one accepted message per connection. The outcomes of
all lanes are committed together (``group_commit``), so the ledger costs one transaction
per handful of messages, not one per message. The database never blocks the event loop:
claims run in worker threads, commits in the writer thread.

A pass sends what was due when it started; deliveries deferred during the pass wait for
the next pass (``subscribe notify``/``resume`` again, or a ``worker`` that keeps polling).
Announcing a post is ``announce``; pacing and relay health are ``pacing``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from subscribe.config import Settings
from subscribe.db.models import DeliveryStatus, MessageKind, utcnow
from subscribe.errors import (
    AmbiguousDelivery,
    ConnectionDropped,
    PermanentDeliveryError,
    RelayUnavailable,
    TransientDeliveryError,
)
from subscribe.mail.envelopes import RenderedItem
from subscribe.readers.tokens import Tokens
from subscribe.refusals import reason_for_reply

from . import leases, ledger
from .group_commit import GroupCommit
from .leases import Owner
from .ledger import Claimed, Outcome
from .messages import MessageMaker
from .pacing import RateLimiter, RelayHealth, retry_delay
from .render_process import Renderer, make_renderer
from .report import INTERRUPTED, RunReport
from .sender import Envelope, NextEnvelope, Sender, SenderFactory

MAX_DROPS_PER_MESSAGE = 3
QUEUE_PER_LANE = 8
ProgressCallback = Callable[[int, int], None]  # (done, total)


@dataclass(slots=True)
class _Job:
    claimed: Claimed
    envelope: Envelope
    message_id: str


class Notifier:
    """Sends every delivery that is due, through ``connections`` lanes, and reports."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        sender_factory: SenderFactory,
        tokens: Tokens,
        connections: int | None = None,
        on_progress: ProgressCallback | None = None,
        owner: Owner | None = None,
        messages_only: bool = False,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._sender_factory = sender_factory
        self._tokens = tokens
        self._connections = connections or settings.smtp_connections
        self._on_progress = on_progress
        self.owner = owner or Owner.this_process()
        self._messages_only = messages_only  # transactional email only (the loop in `serve`)
        self._messages = MessageMaker(engine, settings, tokens)
        self._posts_known: set[int] = set()
        self._held: dict[int, Claimed] = {}
        self._stopping = False
        self._report = RunReport()
        self._done = 0
        self._total = 0
        self._health = RelayHealth(settings.relay_down_timeout, settings.connect_timeout)
        self._limiter = RateLimiter(settings.send_rate)

    def request_stop(self) -> None:
        """Finish the messages in flight, hand the rest back, and return (SIGTERM, Ctrl-C)."""
        self._stopping = True
        self._report.stopped = self._report.stopped or INTERRUPTED

    # -- one pass ---------------------------------------------------------------------------

    async def run(self) -> RunReport:
        """One pass over what is due now. Raises ``DeliveryError`` when the relay fails us."""
        started = time.monotonic()
        now = utcnow()
        await asyncio.to_thread(
            leases.take_over_abandoned, self._engine, now=now, host=self.owner.host
        )
        cutoff = utcnow()
        self._total = await asyncio.to_thread(
            ledger.count_due, self._engine, cutoff=cutoff, messages_only=self._messages_only
        )
        budget = await asyncio.to_thread(self._daily_budget, cutoff)
        renderer = make_renderer(self._settings, self._tokens, self._total)
        queue: asyncio.Queue[_Job | None] = asyncio.Queue(self._connections * QUEUE_PER_LANE)
        writer = ledger.OutcomeWriter(self._engine)
        recorder = GroupCommit(writer)
        lease_task = asyncio.create_task(self._renew_leases())
        lanes = [
            asyncio.create_task(self._lane(self._sender_factory(), queue, recorder))
            for _ in range(self._connections)
        ]
        producer = asyncio.create_task(self._produce(queue, renderer, cutoff, budget))
        error: BaseException | None = None
        try:
            results = await asyncio.gather(*lanes, return_exceptions=True)
            # Lanes end on the producer's end-of-work markers, or early on an error or a
            # stop request; then the producer may wait on a full queue: empty it (those
            # jobs stay held and are released below) so it can see the stop and finish.
            self._stopping = True
            while not queue.empty():
                queue.get_nowait()
            results += await asyncio.gather(producer, return_exceptions=True)
            error = next((r for r in results if isinstance(r, BaseException)), None)
        finally:
            self._stopping = True
            if not producer.done():
                producer.cancel()
            for lane in lanes:
                if not lane.done():
                    lane.cancel()
            renderer.close()
            await recorder.close()
            writer.close()
            lease_task.cancel()
            await asyncio.gather(lease_task, return_exceptions=True)
            # Whatever was claimed and not sent goes back as it was: same due time.
            await asyncio.to_thread(
                ledger.release, self._engine, list(self._held.values()), owner=self.owner
            )
            self._held.clear()
            self._report.elapsed = time.monotonic() - started
        if error is not None:
            raise error
        return self._report

    def _daily_budget(self, now: datetime) -> int | None:
        if not self._settings.daily_limit:
            return None
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return max(self._settings.daily_limit - ledger.sent_since(self._engine, since=day_start), 0)

    async def _produce(
        self,
        queue: asyncio.Queue[_Job | None],
        renderer: Renderer,
        cutoff: datetime,
        budget: int | None,
    ) -> None:
        try:
            while not self._stopping:
                limit = self._settings.batch_size
                if budget is not None:
                    # Claimed-but-unsent messages count against the day, so we never overshoot.
                    limit = min(limit, budget - self._report.sent - len(self._held))
                    if limit <= 0:
                        if not self._held:
                            self._report.stopped = "daily limit reached"
                            break
                        await asyncio.sleep(0.05)
                        continue
                claimed = await asyncio.to_thread(
                    ledger.claim,
                    self._engine,
                    owner=self.owner,
                    now=cutoff,
                    limit=limit,
                    lease_seconds=self._settings.lease_seconds,
                    messages_only=self._messages_only,
                )
                if not claimed:
                    break
                for item in claimed:
                    self._held[item.delivery_id] = item
                posts = [item for item in claimed if item.post_id is not None]
                if len(posts) < len(claimed):
                    messages = [item for item in claimed if item.post_id is None]
                    if not await self._queue_messages(queue, messages):
                        break
                await self._add_posts(renderer, {item.post_id for item in posts if item.post_id})
                await self._queue_rendered(queue, renderer, posts)
        finally:
            for _ in range(self._connections):
                await queue.put(None)  # room is there: lanes drain it, or run() empties it

    async def _queue_rendered(
        self, queue: asyncio.Queue[_Job | None], renderer: Renderer, claimed: list[Claimed]
    ) -> None:
        """Render in slices, up to ``renderer.ahead`` of them asked for at once (a render
        process works on the next while these are queued), and queue the jobs in order."""
        in_flight: deque[tuple[list[Claimed], asyncio.Future[list[RenderedItem]]]] = deque()
        try:
            for start in range(0, len(claimed), renderer.batch):
                part = claimed[start : start + renderer.batch]
                items = [c.render_item() for c in part]
                in_flight.append((part, asyncio.ensure_future(renderer.render(items))))
                if len(in_flight) < renderer.ahead:
                    continue
                if not await self._queue_slice(queue, *in_flight.popleft()):
                    return
            while in_flight:
                if not await self._queue_slice(queue, *in_flight.popleft()):
                    return
        finally:
            for _, rendering in in_flight:
                rendering.cancel()

    async def _queue_slice(
        self,
        queue: asyncio.Queue[_Job | None],
        part: list[Claimed],
        rendering: asyncio.Future[list[RenderedItem]],
    ) -> bool:
        """False when the run is stopping (the rest stays held and is released)."""
        for item, (mail_from, recipient, wire, mid) in zip(part, await rendering, strict=True):
            if self._stopping:
                return False
            await queue.put(_Job(item, Envelope.from_wire(mail_from, recipient, wire), mid))
        return not self._stopping

    async def _queue_messages(
        self, queue: asyncio.Queue[_Job | None], claimed: list[Claimed]
    ) -> bool:
        """Transactional mail and digests, made here (``messages``), queued in order; a
        digest left with nothing to list (posts deleted, categories changed) is skipped."""
        kept = await self._messages.prepare(claimed)
        for gone in {c.delivery_id for c in claimed} - {c.delivery_id for c in kept}:
            self._report.count(DeliveryStatus.SKIPPED, digest=True)
            del self._held[gone]
        for index, item in enumerate(kept):
            if self._stopping:
                return False
            envelope, mid = await self._messages.envelope(item)
            await queue.put(_Job(item, envelope, mid))
            if index % 8 == 7:  # in `serve`, requests wait for the loop: let them in
                await asyncio.sleep(0)
        return not self._stopping

    async def _add_posts(self, renderer: Renderer, post_ids: set[int]) -> None:
        missing = post_ids - self._posts_known
        if missing:
            for post in await asyncio.to_thread(self._messages.post_contents, missing):
                renderer.add_post(post)
                self._posts_known.add(post.id)

    async def _lane(
        self, sender: Sender, queue: asyncio.Queue[_Job | None], recorder: GroupCommit
    ) -> None:
        try:
            job = await queue.get()
            while job is not None and not self._stopping:
                following: _Job | None = None
                ended = False

                def take_following() -> Envelope | None:
                    # Called by the sender once this job's envelope is accepted, so a lane
                    # stuck on a bad message does not sit on the next one: the job after
                    # this, if it is already there, whose envelope a pipelining connection
                    # sends behind this body. Its own body still waits for this commit.
                    nonlocal following, ended
                    if following is None and not ended and not queue.empty():
                        following = queue.get_nowait()
                        ended = following is None  # the end-of-work marker
                    return following.envelope if following is not None else None

                try:
                    outcome = await self._deliver(sender, job, take_following)
                except _Stopped:
                    return  # the jobs stay held and go back to the queue untouched
                await recorder.record(outcome)
                del self._held[job.claimed.delivery_id]
                self._count(outcome, job.claimed)
                if ended:
                    return
                job = following if following is not None else await queue.get()
        except BaseException:
            self._stopping = True
            raise
        finally:
            await sender.close()

    async def _deliver(self, sender: Sender, job: _Job, then: NextEnvelope) -> Outcome:
        item = job.claimed
        drops = 0
        delivered_at_first_drop = 0
        while True:
            if self._limiter.active:
                await self._limiter.wait()
            attempt_started = time.monotonic()
            try:
                await sender.send(job.envelope, then)
            except RelayUnavailable as exc:
                # Nothing was sent: reconnect and try the same message again, with backoff.
                await asyncio.sleep(self._health.failed(exc, attempt_started))
                if self._stopping:
                    raise _Stopped() from None
                continue
            except ConnectionDropped as exc:
                # The relay took the connection and dropped it (or said 421) before the
                # message was in: reconnect and go on. If other messages get through
                # meanwhile, a message that keeps doing it is deferred, so it cannot stall
                # the run; if nothing gets through, the relay itself is down.
                if self._stopping:
                    raise _Stopped() from None
                drops += 1
                if drops == 1:
                    delivered_at_first_drop = self._health.answered
                if drops < MAX_DROPS_PER_MESSAGE:
                    continue
                if self._health.answered > delivered_at_first_drop:
                    return self._retry_later(
                        item, DeliveryStatus.DEFERRED, str(exc), job.message_id
                    )
                await asyncio.sleep(self._health.failed(exc, attempt_started))
                continue
            except TransientDeliveryError as exc:
                self._health.ok()
                return self._retry_later(item, DeliveryStatus.DEFERRED, str(exc), job.message_id)
            except PermanentDeliveryError as exc:
                self._health.ok()
                return Outcome(
                    item.delivery_id,
                    item.subscriber_id,
                    DeliveryStatus.FAILED,
                    error=str(exc),
                    message_id=job.message_id,
                    refusal=reason_for_reply(exc.code or 550, exc.reply),
                )
            except AmbiguousDelivery as exc:
                if item.ambiguous_count >= 1:
                    # Re-sent once already: stop here rather than risk a third copy.
                    return Outcome(
                        item.delivery_id,
                        item.subscriber_id,
                        DeliveryStatus.AMBIGUOUS,
                        error=str(exc),
                        message_id=job.message_id,
                    )
                return self._retry_later(item, DeliveryStatus.AMBIGUOUS, str(exc), job.message_id)
            self._health.ok()
            return Outcome(
                item.delivery_id, item.subscriber_id, DeliveryStatus.SENT, message_id=job.message_id
            )

    def _retry_later(self, item: Claimed, status: DeliveryStatus, error: str, mid: str) -> Outcome:
        now = utcnow()
        if now - item.created_at > timedelta(seconds=self._settings.retry_lifetime):
            return Outcome(
                item.delivery_id,
                item.subscriber_id,
                DeliveryStatus.FAILED,
                error=f"gave up after {item.attempts + 1} attempts: {error}",
                message_id=mid,
            )
        due = now + timedelta(seconds=retry_delay(self._settings.retry_delay, item.attempts))
        return Outcome(
            item.delivery_id, item.subscriber_id, status, error=error, message_id=mid, due_at=due
        )

    def _count(self, outcome: Outcome, claimed: Claimed) -> None:
        digest = claimed.kind == MessageKind.DIGEST.value
        self._report.count(outcome.status, post_id=claimed.post_id, digest=digest)
        self._done += 1
        if self._on_progress is not None:
            self._on_progress(self._done, self._total)

    async def _renew_leases(self) -> None:
        interval = self._settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            until = utcnow() + timedelta(seconds=self._settings.lease_seconds)
            await asyncio.to_thread(leases.renew_lease, self._engine, owner=self.owner, until=until)


class _Stopped(Exception):
    """A lane gave up its job because the run is stopping (internal, never escapes)."""
