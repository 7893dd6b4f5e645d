"""The outbox's passes: a response that queued an email never waits for them in `serve`,
and whoever flushes waits for one pass, never for a burst.

Every sign-up's response used to wait, after answering, for the pass sending its email.
On keep-alive connections the next request runs while the previous one still waits, and
in a burst the passes last seconds, so every request of a burst stayed alive until it
ended: a heap growing ~100 objects per sign-up, and garbage collections of up to a third
of a second with every request waiting (measured with bench/signup.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from subscribe.errors import DeliveryError
from subscribe.sending import outbox as outbox_module
from subscribe.sending.outbox import Outbox

pytestmark = pytest.mark.anyio
PASS_SECONDS = 0.01


class _Passes:
    """Stands for ``message_pass``: counts passes, each taking PASS_SECONDS, or less when
    asked to stop; ``stopped`` counts those."""

    def __init__(self, fail: type[Exception] | None = None) -> None:
        self.count = 0
        self.stopped = 0
        self.fail = fail

    def __call__(self, *_args: Any, **_kwargs: Any) -> _Pass:
        return _Pass(self)


class _Pass:
    def __init__(self, passes: _Passes) -> None:
        self._passes = passes
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        self._passes.count += 1
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=PASS_SECONDS)
            self._passes.stopped += 1
        except TimeoutError:
            pass
        if self._passes.fail is not None:
            raise self._passes.fail("the relay is away")


def _outbox(monkeypatch: pytest.MonkeyPatch, passes: _Passes) -> Outbox:
    monkeypatch.setattr(outbox_module, "message_pass", passes)
    return Outbox(None, None, sender_factory=None, tokens=None)  # type: ignore[arg-type]


async def test_a_flush_during_a_burst_returns_after_the_next_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes = _Passes()
    outbox = _outbox(monkeypatch, passes)
    bursting = True

    async def burst() -> None:  # other requests keep asking, every millisecond
        while bursting:
            outbox.wake()
            await asyncio.sleep(0.001)

    asker = asyncio.create_task(burst())
    await asyncio.sleep(PASS_SECONDS * 3.5)  # in the middle of a pass
    began = passes.count
    await asyncio.wait_for(outbox.flush(), timeout=2)  # before: until the burst ended
    ended = passes.count
    bursting = False
    await asker
    # The pass running when it asked, then the one begun after it (and, by the time the
    # caller runs again, perhaps the start of the next): not the whole burst.
    assert began >= 3 and 1 <= ended - began <= 2
    await outbox.flush()  # the burst over, the passes stop once nobody asks
    idle = passes.count
    await asyncio.sleep(PASS_SECONDS * 5)
    assert passes.count == idle


@pytest.mark.parametrize("failure", [DeliveryError, RuntimeError])
async def test_a_failed_pass_answers_everyone_waiting_and_the_next_ask_starts_again(
    monkeypatch: pytest.MonkeyPatch, failure: type[Exception]
) -> None:
    passes = _Passes(fail=failure)
    outbox = _outbox(monkeypatch, passes)
    first = asyncio.create_task(outbox.flush())
    await asyncio.sleep(0)
    second = asyncio.create_task(outbox.flush())  # asked during the pass that fails
    await asyncio.wait_for(asyncio.gather(first, second), timeout=5)
    assert passes.count == 1  # no round after a failure: the next poll tries again
    passes.fail = None
    await asyncio.wait_for(outbox.flush(), timeout=5)
    assert passes.count == 2


async def test_a_cancelled_flush_leaves_the_pass_to_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes = _Passes()
    outbox = _outbox(monkeypatch, passes)
    leaving = asyncio.create_task(outbox.flush())
    staying = asyncio.create_task(outbox.flush())
    await asyncio.sleep(0)
    leaving.cancel()  # a client gone mid-wait
    await asyncio.wait_for(staying, timeout=5)
    assert leaving.cancelled() and passes.count == 1


async def test_with_the_loop_running_a_response_does_not_wait_for_the_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes = _Passes()
    outbox = _outbox(monkeypatch, passes)
    loop = asyncio.create_task(outbox.run_forever(poll=60))
    await asyncio.sleep(PASS_SECONDS * 2)  # its first pass is over
    assert passes.count == 1
    await asyncio.wait_for(outbox.send_soon(), timeout=PASS_SECONDS / 2)  # no pass waited
    await asyncio.sleep(PASS_SECONDS * 2)
    assert passes.count == 2  # the loop's pass sent it, long before the next poll
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)


async def test_without_the_loop_a_response_sends_its_email_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes = _Passes()
    outbox = _outbox(monkeypatch, passes)
    await outbox.send_soon()  # an app driven without its lifespan: nobody else would
    assert passes.count == 1


async def test_close_stops_the_pass_at_a_message_boundary_and_starts_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes = _Passes()
    outbox = _outbox(monkeypatch, passes)
    waiting = asyncio.create_task(outbox.flush())
    await asyncio.sleep(0)
    again = outbox.wake()  # asked during the pass: would go round once more
    await asyncio.wait_for(outbox.close(timeout=5), timeout=PASS_SECONDS / 2)
    assert passes.count == 1 and passes.stopped == 1  # asked to stop, not cut off
    await asyncio.wait_for(waiting, timeout=1)
    assert again.done()  # answered: its row waits for the next start
    assert outbox.wake().done() and passes.count == 1  # nothing starts after close
