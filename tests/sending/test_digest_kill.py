"""Hard kills in the middle of `subscribe digest`: SIGKILLed while it sends, run again,
until a last run finishes. Every daily reader gets their digest of the period, and the only
duplicates are messages in flight at a kill (at most one per connection), with the same
Message-ID: the guarantee posts have (``test_kill``), for digests."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from conftest import make_settings
from faultserver import FaultServer, announce_post, seed_subscribers, settings_env

from subscribe.db import store
from subscribe.db.models import subscriber_table
from subscribe.sending import tallies

KILLS = 3
READERS = 1500
CONNECTIONS = 4
COMMAND = [sys.executable, "-c", "from subscribe.cli import main; main()", "digest"]


@pytest.fixture
def relay() -> Iterator[FaultServer]:
    server = FaultServer(pipelining=True).start()
    server.handler.dot_delay = 0.002
    yield server
    server.stop()


@pytest.mark.timeout(120)
def test_sigkill_during_a_digest_run_then_rerun_sends_each_reader_one_digest(
    database_url: str, relay: FaultServer
) -> None:
    settings = make_settings(database_url, relay, smtp_connections=CONNECTIONS)
    engine = store.open_store(database_url)
    try:
        emails = seed_subscribers(engine, READERS)
        with engine.begin() as connection:
            # Daily readers since before the post, which they get only in their digest.
            connection.execute(subscriber_table.update().values(cadence="daily"))
        post_id = announce_post(engine)
    finally:
        engine.dispose()
    env = {**os.environ, **settings_env(settings)}
    handler = relay.handler
    for _ in range(KILLS):
        before = len(handler.messages)
        process = subprocess.Popen(COMMAND, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while len(handler.messages) <= before + 20 and process.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            assert process.poll() is None, "the run ended before it could be killed"
            process.send_signal(signal.SIGKILL)
        finally:
            process.communicate(timeout=20)
        assert process.returncode == -signal.SIGKILL
        time.sleep(0.05)
    assert len(handler.messages) < READERS, "sending was too fast to be killed mid-way"
    handler.dot_delay = 0.0
    final = subprocess.run(COMMAND, env=env, capture_output=True, text=True, timeout=60)
    assert final.returncode == 0, final.stderr
    assert "queued for 0 readers" in final.stdout  # the period's digests were queued once

    counts = Counter(handler.recipients())
    assert sorted(counts) == emails  # nobody missed
    duplicated = {address: n for address, n in counts.items() if n > 1}
    assert sum(n - 1 for n in duplicated.values()) <= KILLS * CONNECTIONS, duplicated
    assert all(n == 2 for n in duplicated.values()), duplicated
    ids: dict[str, set[str]] = {}
    for message in handler.messages:
        (recipient,) = message.rcpt_tos
        parsed = email.message_from_bytes(message.data, policy=email.policy.default)
        assert "digest" in str(parsed.get_body(("plain",)).get_content())
        ids.setdefault(recipient, set()).add(str(parsed["Message-ID"]))
    assert all(len(found) == 1 for found in ids.values())  # one Message-ID per reader
    engine = store.open_store(database_url)
    try:
        periods = tallies.counts_by_period(engine)
        assert tallies.counts_by_post(engine, post_id=post_id) == {}  # never sent one by one
        with engine.connect() as connection:
            queued = connection.execute(sa.text("SELECT count(*) FROM delivery")).scalar_one()
    finally:
        engine.dispose()
    ((_, states),) = periods.items()
    assert states["sent"] == READERS and queued == READERS
