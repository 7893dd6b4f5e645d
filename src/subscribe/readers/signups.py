"""Web sign-ups in batches: whoever asks while a batch is being written waits for the next
one, and each batch is one transaction (one hold of SQLite's write lock) for all of them.

A batch does, for each sign-up in turn: the per-client rate limit, then a new pending reader
(with the cadence they chose) with their confirmation slot taken and their confirmation
email on the ledger; the categories new readers chose follow in one statement. An address
already known (pending, confirmed, gone) takes the ordinary use case afterwards, in its own
transaction, so what it answers and sends is exactly ``request_subscription``'s.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from subscribe.config import Settings
from subscribe.db import ratelimit, store
from subscribe.db.models import Cadence
from subscribe.db.ratelimit import Limit
from subscribe.db.signups import NewReader, SignupStatements

from .addresses import Address
from .subscribers import Consent, clean_name, request_subscription

logger = logging.getLogger(__name__)
BATCH_LIMIT = 64  # sign-ups per transaction, at most


@dataclass(frozen=True, slots=True)
class SignupRequest:
    address: Address  # already normalised and allowed (blocked domains refused)
    name: str
    consent: Consent
    rate_key: str  # the client, as the per-client limit counts it
    # What the form chose (``preferences.signup_choices``, already checked); None: the
    # defaults. Only a new or pending reader takes it, as in ``request_subscription``.
    choices: tuple[Cadence, tuple[str, ...]] | None = None
    language: str = ""  # on offer (``languages.choose``); "": the site's default


@dataclass(frozen=True, slots=True)
class SignupResult:
    limited: bool = False  # over the per-client limit: nothing stored
    confirmation_due: bool = False  # a confirmation email is on the ledger


def _new_reader(request: SignupRequest) -> NewReader:
    consent = request.consent
    return NewReader(
        email=request.address.display,
        email_key=request.address.key,
        name=clean_name(request.name),
        source=consent.source[:200],
        ip=consent.ip[:64],
        user_agent=consent.user_agent[:400],
        cadence=(request.choices or (Cadence.POST, ()))[0].value,
        language=request.language,
    )


def sign_up_batch(
    engine: Engine,
    settings: Settings,
    requests: list[SignupRequest],
    *,
    limit: Limit,
    now: Callable[[], datetime],
) -> list[SignupResult]:
    """Store a batch of sign-ups; one result per request, in order."""
    at = now()
    results: list[SignupResult | None] = [None] * len(requests)
    known: list[int] = []
    cutoff = at - limit.window
    chosen: list[tuple[int, str]] = []  # (reader, category) of the new readers
    connection = engine.connect().execution_options(immediate=True)
    with connection, connection.begin():
        statements = SignupStatements(connection, now=at)
        hits = [True] * len(requests)
        if limit.count > 0:
            ratelimit.prune(connection, f"{limit.name}:", cutoff=cutoff)
            buckets = [f"{limit.name}:{request.rate_key}"[:200] for request in requests]
            hits = ratelimit.record_hits(
                connection, buckets, at=at, cutoff=cutoff, limit=limit.count
            )
        allowed = [index for index, hit in enumerate(hits) if hit]
        added = statements.new_readers([_new_reader(requests[index]) for index in allowed])
        for index, hit in enumerate(hits):
            if not hit:
                results[index] = SignupResult(limited=True)
        for index, subscriber_id in zip(allowed, added, strict=True):
            if subscriber_id is None:
                known.append(index)
            else:
                categories = (requests[index].choices or (Cadence.POST, ()))[1]
                chosen += ((subscriber_id, category) for category in categories)
                results[index] = SignupResult(confirmation_due=True)
        statements.add_categories(chosen)  # one executemany for the batch
    for index in known:
        request = requests[index]
        with store.write_session(engine) as session:
            outcome = request_subscription(
                session,
                settings,
                email=request.address.display,
                name=request.name,
                consent=request.consent,
                now=now(),
                choices=request.choices,
                language=request.language,
            )
        results[index] = SignupResult(confirmation_due=outcome.confirmation_due)
    return [result or SignupResult() for result in results]


class SignupQueue:
    """One writer thread taking sign-ups in batches; ``submit`` hands back a Future."""

    def __init__(self, write: Callable[[list[SignupRequest]], list[SignupResult]]) -> None:
        self._write = write
        self._waiting: queue.SimpleQueue[tuple[SignupRequest, Future[SignupResult]] | None]
        self._waiting = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="signup-writer", daemon=True)
        self._thread.start()

    def submit(self, request: SignupRequest) -> Future[SignupResult]:
        future: Future[SignupResult] = Future()
        self._waiting.put((request, future))
        return future

    def close(self) -> None:
        self._waiting.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._waiting.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < BATCH_LIMIT:
                try:
                    item = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._finish(batch)
            if stop:
                return

    def _finish(self, batch: list[tuple[SignupRequest, Future[SignupResult]]]) -> None:
        try:
            results = self._write([request for request, _ in batch])
        except Exception as exc:  # the database is away: every waiting request hears it
            logger.warning("a batch of %d sign-ups failed: %s", len(batch), exc)
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
