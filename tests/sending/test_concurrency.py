"""Several senders on one post, and taking over what a sender left behind.

Two senders at once (two threads in this process, or two `subscribe resume` processes) send
each message once: SQLite claims under BEGIN IMMEDIATE, PostgreSQL with FOR UPDATE SKIP
LOCKED. A delivery left ``sending`` is taken over at once when its holder ran on this host
and is gone, and otherwise only when its lease has run out.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import make_settings
from faultserver import FaultServer, announce_post, seed_subscribers, settings_env

from subscribe.config import Settings
from subscribe.db import store
from subscribe.db.models import utcnow
from subscribe.errors import ConfigError
from subscribe.readers.tokens import tokens_for
from subscribe.sending import leases, ledger, runs, tallies
from subscribe.sending.leases import Owner
from subscribe.sending.report import RunReport
from subscribe.sending.sender import smtp_sender_factory

pytestmark = pytest.mark.timeout(90)

D = ledger.delivery_table.c
S = ledger.subscriber_table.c


@pytest.fixture
def relay() -> Iterator[FaultServer]:
    server = FaultServer(pipelining=True).start()
    server.handler.dot_delay = 0.001  # both senders are still at it when the other claims
    yield server
    server.stop()


def _send(engine: sa.Engine, settings: Settings) -> RunReport:
    return runs.send_due(
        engine, settings, sender_factory=smtp_sender_factory(settings), tokens=tokens_for(settings)
    )


def _states(engine: sa.Engine, post_id: int) -> dict[str, int]:
    counts = tallies.counts_by_post(engine, post_id=post_id)[post_id]
    return {state: n for state, n in counts.items() if n}


# -- two senders at once ------------------------------------------------------------------------

READERS = 400


def test_two_senders_in_threads_send_each_message_once(
    database_url: str, relay: FaultServer
) -> None:
    # Small batches, so that the two claim turn about many times.
    settings = make_settings(database_url, relay, smtp_connections=2, batch_size=10)
    engines = [store.open_store(database_url) for _ in range(2)]
    try:
        emails = seed_subscribers(engines[0], READERS)
        post_id = announce_post(engines[0])
        start = threading.Barrier(2)
        reports: list[RunReport] = []
        errors: list[BaseException] = []

        def sender(engine: sa.Engine) -> None:
            try:
                start.wait(timeout=10)
                reports.append(_send(engine, settings))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=sender, args=(e,)) for e in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a sender hung"
        assert not errors, errors
        sent = sorted(r.sent for r in reports)
        print(f"\nthreads on {database_url.partition(':')[0]}: sent {sent}")
        assert sum(sent) == READERS
        assert sent[0] > 0, "one sender did everything: the test proved nothing"
        assert Counter(relay.handler.recipients()) == Counter(emails)
        assert _states(engines[0], post_id) == {"sent": READERS}
    finally:
        for engine in engines:
            engine.dispose()


def test_two_sender_processes_send_each_message_once(database_url: str, relay: FaultServer) -> None:
    settings = make_settings(database_url, relay, smtp_connections=2, batch_size=10)
    engine = store.open_store(database_url)
    try:
        emails = seed_subscribers(engine, READERS)
        post_id = announce_post(engine)
        env = {**os.environ, **settings_env(settings)}
        command = [sys.executable, "-c", "from subscribe.cli import main; main()", "resume"]
        processes = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=60) for p in processes]
        for process, (_, err) in zip(processes, outputs, strict=True):
            assert process.returncode == 0, err.decode()
        summaries = [out.decode().strip() for out, _ in outputs]
        print(f"\nprocesses on {database_url.partition(':')[0]}: {summaries}")
        assert Counter(relay.handler.recipients()) == Counter(emails)
        assert _states(engine, post_id) == {"sent": READERS}
    finally:
        engine.dispose()


# -- taking over a delivery left in `sending` ---------------------------------------------------

HOLDERS = 5


@pytest.fixture
def held(database_url: str, relay: FaultServer) -> Iterator[tuple[sa.Engine, Settings, int]]:
    """HOLDERS subscribers, one post, deliveries queued; a test then hands one to a holder."""
    settings = make_settings(database_url, relay)
    engine = store.open_store(database_url)
    seed_subscribers(engine, HOLDERS)
    post_id = announce_post(engine)
    yield engine, settings, post_id
    engine.dispose()


def _hold(engine: sa.Engine, address: str, *, owner: str, lease_until: datetime) -> None:
    """Leave ``address``'s delivery as a sender that claimed it and went quiet would."""
    with engine.begin() as connection:
        subscriber_id = connection.execute(sa.select(S.id).where(S.email == address)).scalar_one()
        connection.execute(
            ledger.delivery_table.update()
            .where(D.subscriber_id == subscriber_id)
            .values(status="sending", due_at=None, lease_until=lease_until, claimed_by=owner)
        )


def _row(engine: sa.Engine, address: str) -> sa.Row[tuple[str, str, datetime | None]]:
    query = (
        sa.select(D.status, D.claimed_by, D.lease_until)
        .join(ledger.subscriber_table, S.id == D.subscriber_id)
        .where(S.email == address)
    )
    with engine.connect() as connection:
        return connection.execute(query).one()


def _dead_process() -> tuple[int, str]:
    """The PID and start time of a process on this host that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = leases._process_start_ticks(child.pid)
    finally:
        child.kill()
        child.wait()
    assert started != "0"
    return child.pid, started


def test_a_claim_records_host_pid_start_time_and_run(
    held: tuple[sa.Engine, Settings, int],
) -> None:
    engine, settings, _ = held
    owner = Owner.this_process()
    now = utcnow()
    (claimed, *_) = ledger.claim(
        engine, owner=owner, now=now, limit=1, lease_seconds=settings.lease_seconds
    )
    status, claimed_by, lease_until = _row(engine, claimed.email)
    host, pid, started, run = claimed_by.split(":")
    assert (status, host, int(pid)) == ("sending", socket.gethostname(), os.getpid())
    assert started == leases._process_start_ticks(os.getpid()) and run == owner.run
    assert lease_until == now + timedelta(seconds=settings.lease_seconds)
    with pytest.raises(ConfigError, match="LEASE_SECONDS"):
        make_settings(settings.database_url, lease_seconds=61)  # a lease is at most 60 s


@pytest.mark.parametrize("holder", ["dead-pid", "reused-pid"])
def test_a_delivery_held_by_a_dead_process_on_this_host_is_taken_over_at_once(
    held: tuple[sa.Engine, Settings, int], relay: FaultServer, holder: str
) -> None:
    engine, settings, post_id = held
    target = "r00002@example.org"
    if holder == "dead-pid":
        pid, started = _dead_process()
    else:  # our own PID, but another start time: the PID was reused by a new process
        pid, started = os.getpid(), "1"
    owner = f"{socket.gethostname()}:{pid}:{started}:0badc0de"
    _hold(engine, target, owner=owner, lease_until=utcnow() + timedelta(seconds=55))

    report = _send(engine, settings)
    assert report.sent == HOLDERS
    assert _states(engine, post_id) == {"sent": HOLDERS}
    assert relay.handler.recipients().count(target) == 1


@pytest.mark.parametrize("holder", ["other-host", "live-sender-here"])
def test_a_live_lease_is_respected_until_it_expires(
    held: tuple[sa.Engine, Settings, int], relay: FaultServer, holder: str
) -> None:
    engine, settings, post_id = held
    target = "r00003@example.org"
    if holder == "other-host":  # its PID means nothing here: only the lease counts
        owner = "sender-2.example.net:4242:987654:cafe1234"
    else:  # another sender in this very process (alive), say a second worker thread
        owner = f"{Owner.this_process().__str__().rpartition(':')[0]}:feedf00d"
    lease_until = utcnow() + timedelta(seconds=55)
    _hold(engine, target, owner=owner, lease_until=lease_until)

    report = _send(engine, settings)
    assert report.sent == HOLDERS - 1
    assert target not in relay.handler.recipients()
    assert tuple(_row(engine, target)) == ("sending", owner, lease_until)
    assert _states(engine, post_id) == {"sent": HOLDERS - 1, "sending": 1}

    # The lease runs out (the holder died or lost touch): the next run takes it over.
    with engine.begin() as connection:
        connection.execute(
            ledger.delivery_table.update()
            .where(D.claimed_by == owner)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )
    report = _send(engine, settings)
    assert report.sent == 1
    assert relay.handler.recipients().count(target) == 1
    assert _states(engine, post_id) == {"sent": HOLDERS}
