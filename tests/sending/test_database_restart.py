"""A `subscribe worker` against a PostgreSQL server that is restarted in the middle of a run."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import make_settings, require_service
from faultserver import FaultServer, announce_post, seed_subscribers, settings_env
from pgserver import postgres_available, start_postgres
from webserver import wait_for

from subscribe.db import store


@pytest.mark.timeout(180)
def test_a_worker_rides_out_a_postgresql_restart(tmp_path: Path) -> None:
    """PostgreSQL restarted in the middle of a run: the worker says so, waits, goes on;
    nobody is missed, and a duplicate is at most one per connection, same Message-ID."""
    require_service(postgres_available())
    connections, readers = 4, 600
    (tmp_path / "pg").mkdir()
    relay = FaultServer(pipelining=True).start()
    with start_postgres(tmp_path / "pg") as server:
        url = server.create_database("restart")
        engine = store.open_store(url)
        try:
            emails = seed_subscribers(engine, readers)
            announce_post(engine)
        finally:
            engine.dispose()
        relay.handler.dot_delay = 0.01  # ~1.5 s of sending: time to restart in the middle
        env = {
            **os.environ,
            **settings_env(make_settings(url, relay, smtp_connections=connections)),
        }
        worker = subprocess.Popen(WORKER, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: len(relay.handler.messages) > 50, timeout=30, what="sending")
            server.restart(down_seconds=2)
            wait_for(
                lambda: set(relay.handler.recipients()) >= set(emails),
                timeout=90,
                what="every reader after the restart",
            )
        finally:
            worker.send_signal(signal.SIGTERM)
            _, stderr = worker.communicate(timeout=30)
            relay.stop()
    assert "database unavailable, retrying" in stderr.decode()
    counts = Counter(relay.handler.recipients())
    assert set(counts) == set(emails)
    duplicated = {address: n for address, n in counts.items() if n > 1}
    assert sum(n - 1 for n in duplicated.values()) <= connections, duplicated
    ids: dict[str, set[str]] = {}
    for message in relay.handler.messages:
        (recipient,) = message.rcpt_tos
        if recipient in duplicated:
            parsed = email.message_from_bytes(message.data, policy=email.policy.default)
            ids.setdefault(recipient, set()).add(str(parsed["Message-ID"]))
    assert all(len(found) == 1 for found in ids.values()), ids


WORKER = [sys.executable, "-c", "from subscribe.cli import main; main()", "worker"]
