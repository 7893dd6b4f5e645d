"""Sign-ups written in batches: the per-client limit, duplicates within a batch, addresses
already known, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import make_settings
from pgserver import PostgresServer
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from subscribe.config import Settings
from subscribe.db import store
from subscribe.db.models import Delivery, Subscriber
from subscribe.db.ratelimit import Limit
from subscribe.readers.addresses import normalize
from subscribe.readers.signups import SignupQueue, SignupRequest, SignupResult, sign_up_batch
from subscribe.readers.subscribers import Consent

pytestmark = pytest.mark.usefixtures("cli_env")

LIMIT = Limit("subscribe-ip", 3, timedelta(minutes=1))


def request(email: str, client: str = "198.51.100.7") -> SignupRequest:
    return SignupRequest(normalize(email), "Reader", Consent("web", client, "test"), client)


def clock() -> datetime:
    return datetime.now(UTC)


def confirmations(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.exec(select(Subscriber.email, Delivery.kind).join(Delivery)).all()
    counts: dict[str, int] = {}
    for email, kind in rows:
        assert kind == "confirm"
        counts[email] = counts.get(email, 0) + 1
    return counts


def test_a_batch_applies_the_limit_in_order_and_stores_each_address_once(
    engine: Engine, settings: Settings
) -> None:
    batch = [
        request("ann@example.org"),
        request("ANN@example.org"),  # a double click: the same reader, no second email
        request("ben@example.org"),
        request("cat@example.org"),  # the fourth from this client in a minute
        request("dan@example.org", client="203.0.113.9"),
    ]
    results = sign_up_batch(engine, settings, batch, limit=LIMIT, now=clock)
    assert results == [
        SignupResult(confirmation_due=True),
        SignupResult(confirmation_due=False),
        SignupResult(confirmation_due=True),
        SignupResult(limited=True),
        SignupResult(confirmation_due=True),
    ]
    assert confirmations(engine) == {
        "ann@example.org": 1,
        "ben@example.org": 1,
        "dan@example.org": 1,
    }
    with Session(engine) as session:
        ann = session.exec(select(Subscriber).where(Subscriber.email == "ann@example.org")).one()
    assert (ann.status, ann.consent_ip, ann.confirmations_that_day) == (
        "pending",
        "198.51.100.7",
        1,
    )
    assert ann.confirmation_sent_at is not None


def test_a_known_address_takes_the_ordinary_use_case(engine: Engine, settings: Settings) -> None:
    off = Limit("subscribe-ip", 0, timedelta(minutes=1))
    assert sign_up_batch(engine, settings, [request("eve@example.org")], limit=off, now=clock)
    # Again at once: the cooldown holds, nothing more is queued, the answer is the same.
    again = sign_up_batch(engine, settings, [request("eve@example.org")], limit=off, now=clock)
    assert again == [SignupResult(confirmation_due=False)]
    assert confirmations(engine) == {"eve@example.org": 1}


def test_the_queue_answers_every_request_and_reports_a_failed_batch(
    engine: Engine, settings: Settings
) -> None:
    calls: list[int] = []

    def write(requests: list[SignupRequest]) -> list[SignupResult]:
        calls.append(len(requests))
        if any(r.address.key.startswith("boom") for r in requests):
            raise RuntimeError("database is away")
        return sign_up_batch(engine, settings, requests, limit=LIMIT, now=clock)

    signups = SignupQueue(write)
    try:
        futures = [signups.submit(request(f"r{n}@example.org", f"192.0.2.{n}")) for n in range(20)]
        assert all(f.result(timeout=30).confirmation_due for f in futures)
        failed = signups.submit(request("boom@example.org"))
        assert isinstance(failed.exception(timeout=30), RuntimeError)
    finally:
        signups.close()
    assert sum(calls) == 21 and len(confirmations(engine)) == 20


def test_a_failing_statement_in_a_pipelined_batch_stores_none_of_it(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """PostgreSQL sends a batch's readers in one pipeline: a statement that fails in the
    middle (a value too long for its column) is a SQLAlchemy error, and the whole batch
    rolls back: nobody of it is stored or queued."""
    url = postgres.create_database(f"pipeline_{os.getpid()}_{secrets.token_hex(4)}")
    settings = make_settings(url)
    engine = store.open_store(url)
    try:
        batch = [request(f"p{n}@example.org", f"192.0.2.{n}") for n in range(5)]
        batch[3] = replace(batch[3], language="x" * 40)  # subscriber.language holds 35
        with pytest.raises(sa.exc.DBAPIError):
            sign_up_batch(engine, settings, batch, limit=LIMIT, now=clock)
        assert confirmations(engine) == {}
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM rateevent").scalar() == 0
        # The connection went back to the pool usable: the next batch goes through.
        batch[3] = replace(batch[3], language="pl")
        results = sign_up_batch(engine, settings, batch, limit=LIMIT, now=clock)
        assert all(result.confirmation_due for result in results)
        assert len(confirmations(engine)) == 5
    finally:
        engine.dispose()
