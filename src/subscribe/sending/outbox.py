"""The sender of transactional email inside a long-running process (`serve`).

A sign-up or a confirmation writes its email to the ledger in its own transaction, then
wakes the outbox (``send_soon``): one sending pass over the due transactional rows, on a
few pooled, pipelined connections; the response does not wait for it. Requests that
arrive while a pass runs do not start their own: the running pass goes round once more,
so a burst of sign-ups shares a few passes. At shutdown ``close`` lets the pass finish
what is in flight.
``run_forever`` polls as the fallback: rows written by other processes (`subscribe add`),
and rows a pass could not send because the relay was down, go out within ``poll`` seconds
of it coming back; a killed process's rows are taken over by the next pass.

The connections stay open from pass to pass (``SenderPool``), so a burst of sign-ups goes
out over a few connections rather than a few per pass; they are closed after a minute idle,
before a relay's own idle timeout would.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.engine import Engine

from subscribe.config import Settings
from subscribe.errors import DeliveryError
from subscribe.readers.tokens import Tokens

from .notifier import Notifier
from .sender import Envelope, NextEnvelope, Sender, SenderFactory
from .transactional import message_pass

logger = logging.getLogger(__name__)
POLL_SECONDS = 5.0
IDLE_SECONDS = 60.0


class SenderPool:
    """Senders handed out to a pass and taken back, connections open, at its end."""

    def __init__(self, factory: SenderFactory) -> None:
        self._factory = factory
        self._idle: list[Sender] = []
        self._last_used = time.monotonic()
        # Only while someone will close them later (``Outbox.run_forever``): a flush
        # without the loop closes its connections at the end of its pass.
        self.keeping = False

    def sender(self) -> Sender:
        return _Lent(self, self._idle.pop() if self._idle else self._factory())

    def give_back(self, sender: Sender) -> None:
        self._idle.append(sender)
        self._last_used = time.monotonic()

    async def close_idle(self, after: float) -> None:
        if self._idle and time.monotonic() - self._last_used >= after:
            await self.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for sender in idle:
            await sender.close()


class _Lent:
    """A pooled sender: closing it gives it back to the pool with its connection open."""

    def __init__(self, pool: SenderPool, sender: Sender) -> None:
        self._pool = pool
        self._sender = sender

    async def send(self, envelope: Envelope, then: NextEnvelope | None = None) -> None:
        await self._sender.send(envelope, then)

    async def close(self) -> None:
        # Only a clean connection goes back; one a pass left mid-transaction is closed.
        if self._pool.keeping and getattr(self._sender, "reusable", False):
            self._pool.give_back(self._sender)
        else:
            await self._sender.close()


class Outbox:
    def __init__(
        self, engine: Engine, settings: Settings, *, sender_factory: SenderFactory, tokens: Tokens
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._senders = SenderPool(sender_factory)
        self._tokens = tokens
        # One future per caller that asked for a pass not begun yet; the next pass takes
        # them all and settles them when it ends. A caller waits for one pass, never for
        # the whole run of passes a busy site keeps going: during a long burst, waiting for
        # the task would keep every request's task (and its ~100 objects) alive until the
        # burst ended, a heap that grows with the burst and full collections that grow
        # with it.
        self._asked: list[asyncio.Future[None]] = []
        # Set once this process announced a post (the publish webhook): from then on its
        # passes, and the poll's, send post deliveries too, so a deferred one is retried.
        self._posts = False
        self._task: asyncio.Task[None] | None = None
        self._pass: Notifier | None = None  # the pass running now, for ``close`` to stop
        self._closing = False

    async def send_soon(self) -> None:
        """After a response that queued an email. With ``run_forever`` going (`serve`) the
        loop's next pass sends it and nobody waits: a request held until the pass ends
        would keep its task, middleware and request objects alive, and in a burst (where
        passes last seconds) that is a heap growing with the burst and every garbage
        collection walking it. With no loop (an app driven without its lifespan: tests,
        an embedding) the response's own pass sends it."""
        if self._senders.keeping:
            self.wake()
        else:
            await self.flush()

    async def flush(self, *, posts: bool = False) -> None:
        """Send what is due now, and return once a pass that began after this call ends.
        Never raises: a relay that is down leaves the rows queued for the next poll."""
        await asyncio.shield(self.wake(posts=posts))

    def wake(self, *, posts: bool = False) -> asyncio.Future[None]:
        """Ask for a pass (the running one's next round) without waiting for it; the
        future is done when that pass ends."""
        self._posts = self._posts or posts
        asked = asyncio.get_running_loop().create_future()
        if self._closing:  # shutting down: the rows wait for the next start
            asked.set_result(None)
            return asked
        self._asked.append(asked)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._passes())
        return asked

    async def _passes(self) -> None:
        while self._asked and not self._closing:
            asked, self._asked = self._asked, []
            self._pass = message_pass(
                self._engine,
                self._settings,
                sender_factory=self._senders.sender,
                tokens=self._tokens,
                posts=self._posts,
            )
            try:
                await self._pass.run()
            except asyncio.CancelledError:  # cut off: nobody waits for a pass now
                self._answer_everyone(asked)
                raise
            except DeliveryError as exc:
                # Ids and counts only in logs: they are kept longer than the list.
                logger.warning("transactional email stays queued: %s", exc)
            except Exception:  # a bug, or the database away: the next poll tries again
                logger.exception("transactional email pass failed; retrying at the next poll")
            else:
                _settle(asked)
                continue
            finally:
                self._pass = None
            # No more rounds until the next poll: whoever asked meanwhile is answered too.
            self._answer_everyone(asked)
            return
        self._answer_everyone([])  # closing: their rows wait for the next start

    def _answer_everyone(self, asked: list[asyncio.Future[None]]) -> None:
        """Settle ``asked`` and every later ask: no pass of this task will come for them."""
        asked, self._asked = asked + self._asked, []
        _settle(asked)

    async def close(self, timeout: float) -> None:
        """Stop sending at a message boundary, for a shutdown (SIGTERM, a deploy).

        The pass in progress finishes the messages in flight and records them, hands the
        rest back as they were, and no pass starts again. A pass cut off in the middle of
        an SMTP exchange would leave its rows claimed, unrecorded, and the next start
        would send them again. After ``timeout`` it is cut off all the same (a relay that
        stopped answering): that is a hard kill's case, at most one repeat per connection.
        """
        self._closing = True
        if self._pass is not None:
            self._pass.request_stop()
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=timeout)
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def run_forever(self, poll: float = POLL_SECONDS) -> None:
        self._senders.keeping = True
        try:
            while True:
                await self.flush()
                await asyncio.sleep(poll)
                await self._senders.close_idle(IDLE_SECONDS)
        finally:
            self._senders.keeping = False
            await self._senders.close()


def _settle(asked: list[asyncio.Future[None]]) -> None:
    for future in asked:
        if not future.done():
            future.set_result(None)
