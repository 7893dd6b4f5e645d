"""The sender of transactional email inside a long-running process (`serve`).

A sign-up or a confirmation writes its email to the ledger in its own transaction, then
asks the outbox to ``flush``: one sending pass over the due transactional rows, on a few
pooled, pipelined connections. Requests that arrive while a pass runs do not start their
own: the running pass goes round once more, so a burst of sign-ups shares a few passes.
``run_forever`` polls as the fallback: rows written by other processes (`subscribe add`),
and rows a pass could not send because the relay was down, go out within ``poll`` seconds
of it coming back; a killed process's rows are taken over by the next pass.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.engine import Engine

from subscribe.config import Settings
from subscribe.errors import DeliveryError
from subscribe.readers.tokens import Tokens

from .sender import SenderFactory
from .transactional import deliver_due_messages

logger = logging.getLogger(__name__)
POLL_SECONDS = 5.0


class Outbox:
    def __init__(
        self, engine: Engine, settings: Settings, *, sender_factory: SenderFactory, tokens: Tokens
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._sender_factory = sender_factory
        self._tokens = tokens
        self._again = False
        self._task: asyncio.Task[None] | None = None

    async def flush(self) -> None:
        """Send what is due now, and return once a pass that began after this call ends.
        Never raises: a relay that is down leaves the rows queued for the next poll."""
        self._again = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._passes())
        await asyncio.shield(self._task)

    async def _passes(self) -> None:
        while self._again:
            self._again = False
            try:
                await deliver_due_messages(
                    self._engine,
                    self._settings,
                    sender_factory=self._sender_factory,
                    tokens=self._tokens,
                )
            except DeliveryError as exc:
                # Ids and counts only in logs: they are kept longer than the list.
                logger.warning("transactional email stays queued: %s", exc)
                return
            except Exception:  # a bug, or the database away: the next poll tries again
                logger.exception("transactional email pass failed; retrying at the next poll")
                return

    async def run_forever(self, poll: float = POLL_SECONDS) -> None:
        while True:
            await self.flush()
            await asyncio.sleep(poll)
