"""Group commit of a run's outcomes, from a writer thread of its own."""

from __future__ import annotations

import asyncio
import threading

from subscribe.db.models import utcnow

from . import ledger
from .ledger import Outcome


class GroupCommit:
    """Group commit: the outcomes of all lanes go to the ledger together, from a writer
    thread of its own that commits back to back while there is work.

    A lane's next body waits for its last outcome's commit, so the commit's latency is
    the lanes' idle time. Run from the event loop (``to_thread`` per batch), each commit
    also waited for the loop to notice the thread had finished before the next could
    start; here the writer takes the next batch at once, and the loop only resolves the
    one future that the lanes of a batch share.
    """

    def __init__(self, writer: ledger.OutcomeWriter) -> None:
        self._writer = writer
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()  # guards _pending, _committed and _closed
        self._pending: list[Outcome] = []
        self._committed: asyncio.Future[None] | None = None  # for the outcomes in _pending
        self._closed = False
        self._work = threading.Event()
        self._thread = threading.Thread(target=self._run, name="subscribe-ledger", daemon=True)
        self._thread.start()

    async def record(self, outcome: Outcome) -> None:
        with self._lock:
            self._pending.append(outcome)
            committed = self._committed
            if committed is None:
                committed = self._committed = self._loop.create_future()
                self._work.set()
        await committed

    async def close(self) -> None:
        """Commit what is pending, then stop the thread."""
        with self._lock:
            self._closed = True
            self._work.set()
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        while True:
            self._work.wait()
            with self._lock:
                self._work.clear()
                batch, committed = self._pending, self._committed
                self._pending, self._committed = [], None
                closed = self._closed
            if committed is not None:
                try:
                    self._writer.record(batch, now=utcnow())
                except Exception as exc:  # a database error: every waiting lane must hear it
                    self._loop.call_soon_threadsafe(_settle, committed, exc)
                else:
                    self._loop.call_soon_threadsafe(_settle, committed, None)
            elif closed:
                return


def _settle(committed: asyncio.Future[None], error: Exception | None) -> None:
    # A lane cancelled while waiting cancels the shared future: that happens only when the
    # whole run is torn down, and then nobody waits for the others either.
    if committed.done():
        return
    if error is None:
        committed.set_result(None)
    else:
        committed.set_exception(error)
