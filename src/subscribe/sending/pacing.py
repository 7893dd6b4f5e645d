"""Pacing and relay health for a sending run: evenly spaced send slots, and the backoff
that gives up on a relay that stays unreachable."""

from __future__ import annotations

import asyncio
import random
import time

from subscribe.errors import RelayUnavailable


class RateLimiter:
    """Evenly spaced send slots: SUBSCRIBE_SEND_RATE messages per second over all lanes."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self.active = self._interval > 0

    async def wait(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


class RelayHealth:
    """Backs off while the relay is unreachable and gives up before ``deadline`` seconds.

    Any success resets it. Giving up re-raises the last error so the run ends with a
    one-line reason; the deliveries in hand are released untouched.
    """

    def __init__(self, deadline: float, attempt_timeout: float) -> None:
        self._deadline = deadline
        self._attempt_timeout = attempt_timeout
        self._first_failure: float | None = None
        self._failures = 0
        self.answered = 0  # transactions the relay answered (250, 4xx or 5xx) in this run

    def ok(self) -> None:
        self.answered += 1
        self._first_failure = None
        self._failures = 0

    def failed(self, error: Exception, attempt_started: float) -> float:
        """Seconds to wait before the next attempt; re-raises ``error`` when it is time to
        give up. Time counts from the start of the first failed attempt, so that a relay
        that lets us wait for its greeting is given up on within the deadline too."""
        now = time.monotonic()
        if self._first_failure is None or attempt_started < self._first_failure:
            self._first_failure = attempt_started
        delay = 0.0 if self._failures == 0 else min(0.25 * 2 ** (self._failures - 1), 8.0)
        self._failures += 1
        if now - self._first_failure + delay + self._attempt_timeout > self._deadline:
            if isinstance(error, RelayUnavailable):
                raise error
            raise RelayUnavailable(f"the relay keeps closing the session: {error}") from None
        return delay


MAX_RETRY_DELAY = 3600.0


def retry_delay(base_seconds: float, attempts: int) -> float:
    """Seconds before a deferred delivery is due again: doubling per attempt, with jitter so
    a burst of 4xx answers does not come back as one burst, capped at an hour."""
    return min(base_seconds * 2**attempts * random.uniform(0.8, 1.2), MAX_RETRY_DELAY)
