"""Sending passes: one over what is due now (`notify`, `resume`), or pass after pass (`worker`)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from subscribe.config import Settings
from subscribe.db.models import utcnow
from subscribe.errors import DeliveryError, RelayUnavailable
from subscribe.readers.tokens import Tokens

from . import leases
from .leases import Owner
from .notifier import Notifier, ProgressCallback
from .report import RunReport
from .sender import SenderFactory

T = TypeVar("T")


def run_sending(main: Coroutine[Any, Any, T]) -> T:
    """Run a sending loop on uvloop where it is installed (Linux, macOS): the loop's own
    work (polling, callbacks, socket reads and writes) is a third of a sending process's
    time per message on the standard loop, and uvloop does it in C."""
    try:
        import uvloop
    except ImportError:  # Windows: the standard loop
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


@contextmanager
def _stop_signals(on_stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT/SIGTERM ask for a clean stop: messages in flight finish, the rest go back."""
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, on_stop)
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests): the default handling stays
    try:
        yield
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


def send_due(
    engine: Engine,
    settings: Settings,
    *,
    sender_factory: SenderFactory,
    tokens: Tokens,
    on_progress: ProgressCallback | None = None,
) -> RunReport:
    """One sending pass over what is due now."""
    notifier = Notifier(
        engine, settings, sender_factory=sender_factory, tokens=tokens, on_progress=on_progress
    )

    async def run() -> RunReport:
        with _stop_signals(notifier.request_stop):
            return await notifier.run()

    return run_sending(run())


def run_worker(
    engine: Engine,
    settings: Settings,
    *,
    sender_factory: SenderFactory,
    tokens: Tokens,
    until_idle: bool,
    on_report: Callable[[RunReport], None],
    on_relay_error: Callable[[DeliveryError], None],
    on_database_error: Callable[[Exception], None] = lambda exc: None,
    poll_seconds: float = 5.0,
    before_pass: Callable[[], object] | None = None,
) -> None:
    """Pass after pass until stopped (or, with ``until_idle``, until a pass finds nothing).

    Several workers, on one machine or many, share the queue safely: claims never overlap.
    An unreachable relay, or a database that goes away (a PostgreSQL restart), pauses a
    long-running worker instead of ending it; once the database answers again, what this
    worker held when it lost it is queued again at once (a message the relay had accepted
    then may go twice, at most one per connection, with the same Message-ID).
    ``before_pass`` runs (in a thread) before each pass: `worker` queues digests there.
    """
    owner = Owner.this_process()

    async def run() -> None:
        stopped = asyncio.Event()
        current: list[Notifier] = []

        def stop() -> None:
            stopped.set()
            for notifier in current:
                notifier.request_stop()

        with _stop_signals(stop):
            while not stopped.is_set():
                notifier = Notifier(
                    engine, settings, sender_factory=sender_factory, tokens=tokens, owner=owner
                )
                current[:] = [notifier]
                try:
                    if before_pass is not None:
                        await asyncio.to_thread(before_pass)
                    report = await notifier.run()
                except RelayUnavailable as exc:
                    if until_idle:
                        raise
                    on_relay_error(exc)
                    await _sleep_unless(stopped, settings.relay_down_timeout)
                    continue
                except Exception as exc:
                    if not _lost_database(engine, exc):
                        raise
                    on_database_error(exc)
                    await _regain_database(engine, owner, stopped, poll_seconds)
                    continue
                if report.processed or report.stopped:
                    on_report(report)
                if report.stopped == "daily limit reached" or (until_idle and not report.processed):
                    return
                if not report.processed:
                    await _sleep_unless(stopped, poll_seconds)

    run_sending(run())


def _lost_database(engine: Engine, exc: Exception) -> bool:
    """The database went away (or cannot be reached): SQLAlchemy's wrapped errors, and the
    driver's own from the ledger's raw group commits."""
    if isinstance(exc, sa.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(
            exc, sa.exc.OperationalError | sa.exc.InterfaceError
        )
    driver = engine.dialect.loaded_dbapi
    return isinstance(exc, driver.OperationalError | driver.InterfaceError)


async def _regain_database(
    engine: Engine, owner: Owner, stopped: asyncio.Event, poll_seconds: float
) -> None:
    """Wait for the database, then hand back what this worker held when it went away."""
    while not stopped.is_set():
        await _sleep_unless(stopped, poll_seconds)
        try:
            await asyncio.to_thread(leases.requeue_held, engine, owner=owner, now=utcnow())
            return
        except sa.exc.DBAPIError:
            continue


async def _sleep_unless(stopped: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(stopped.wait(), timeout=seconds)
