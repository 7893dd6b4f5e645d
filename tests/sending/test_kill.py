"""Hard kills: `subscribe resume` is SIGKILLed at random moments while it sends, then run
again, until a last run finishes the post.

The guarantee under test: every confirmed subscriber gets the post, and the only duplicates
are messages the relay had accepted while the ledger had not yet recorded them, at most one
per SMTP connection in flight at each kill, carrying the same Message-ID as the first copy.

The moments come from ``random.Random(seed)``; the seed is printed (``pytest -s``) and can
be replayed with ``KILL_TEST_SEED=<seed>``. The figures go to ``tests/artifacts/kill_test.txt``.
"""

from __future__ import annotations

import bisect
import email
import email.policy
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import make_settings
from faultserver import FaultServer, announce_post, seed_subscribers, settings_env

from subscribe.db import store
from subscribe.sending import tallies

KILLS = 5
SUBSCRIBERS = 2000
CONNECTIONS = 4
DOT_DELAY = 0.002  # seconds the relay takes to answer each end of data
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
COMMAND = [sys.executable, "-c", "from subscribe.cli import main; main()", "resume"]


@pytest.fixture
def relay() -> Iterator[FaultServer]:
    server = FaultServer(pipelining=True).start()
    server.handler.dot_delay = DOT_DELAY
    yield server
    server.stop()


def _message_id(data: bytes) -> str:
    return str(email.message_from_bytes(data, policy=email.policy.default)["Message-ID"])


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


@pytest.mark.timeout(120)
def test_sigkill_at_random_moments_then_resume_sends_everyone_once(
    database_url: str, relay: FaultServer
) -> None:
    backend = database_url.partition(":")[0]
    seed = int(os.environ.get("KILL_TEST_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\nkill test seed {seed} (replay with KILL_TEST_SEED={seed})")
    rng = random.Random(seed)
    settings = make_settings(database_url, relay, smtp_connections=CONNECTIONS)
    engine = store.open_store(database_url)
    try:
        emails = seed_subscribers(engine, SUBSCRIBERS)
        post_id = announce_post(engine)
    finally:
        engine.dispose()
    env = {**os.environ, **settings_env(settings)}
    handler = relay.handler
    started = time.monotonic()

    # Each run is killed at a random moment after it has begun to send.
    boundaries: list[int] = []  # len(handler.messages) after each kill
    kills = 0
    for _ in range(KILLS):
        before = len(handler.messages)
        process = subprocess.Popen(
            COMMAND, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            sending = _wait_for(
                lambda before=before, process=process: (
                    len(handler.messages) > before or process.poll() is not None
                ),
                20,
            )
            assert sending and process.poll() is None, "the run ended before it could be killed"
            time.sleep(rng.uniform(0.0, 0.5))
            process.send_signal(signal.SIGKILL)
        finally:
            _, stderr = process.communicate(timeout=20)
        assert process.returncode == -signal.SIGKILL, stderr.decode()
        kills += 1
        time.sleep(0.05)  # let the relay finish reading what the dead client had written
        boundaries.append(len(handler.messages))

    assert len(handler.messages) < SUBSCRIBERS, "sending was too fast to be killed mid-way"
    handler.dot_delay = 0.0  # no more kills: the last run may go at full speed
    final = subprocess.run(COMMAND, env=env, capture_output=True, text=True, timeout=60)
    assert final.returncode == 0, final.stderr
    elapsed = time.monotonic() - started

    # What the relay got: everyone, and duplicates only from kills.
    counts = Counter(handler.recipients())
    assert set(counts) <= set(emails)
    missing = [address for address in emails if counts[address] == 0]
    duplicated = {address: n for address, n in counts.items() if n > 1}
    duplicates = sum(n - 1 for n in duplicated.values())
    first_copy: dict[str, int] = {}
    ids: dict[str, set[str]] = {}
    for index, message in enumerate(handler.messages):
        (recipient,) = message.rcpt_tos
        first_copy.setdefault(recipient, index)
        if recipient in duplicated:
            ids.setdefault(recipient, set()).add(_message_id(message.data))
    # A duplicate's first copy went out in the run that was then killed: count per kill.
    per_kill = Counter(bisect.bisect_right(boundaries, first_copy[a]) for a in duplicated)

    engine = store.open_store(database_url)
    try:
        states = tallies.counts_by_post(engine, post_id=post_id)[post_id]
    finally:
        engine.dispose()

    figures = (
        f"database {backend}\nseed {seed}\nsubscribers {SUBSCRIBERS}\nconnections {CONNECTIONS}\n"
        f"kills {kills}\nmissing {len(missing)}\nduplicates {duplicates} "
        f"(allowed at most {kills * CONNECTIONS}; per kill {dict(sorted(per_kill.items()))})\n"
        f"messages received {len(handler.messages)}, {boundaries[-1]} before the last run\n"
        f"elapsed {elapsed:.1f} s\n"
        f"ledger { ({k: v for k, v in states.items() if v}) }\n"
    )
    print(figures)
    ARTIFACTS.mkdir(exist_ok=True)
    # One block per database: this run's replaces the previous one for the same backend.
    report = ARTIFACTS / "kill_test.txt"
    blocks = report.read_text().split("\n\n") if report.exists() else []
    kept = [b.strip() for b in blocks if b.strip().startswith("database ")]
    kept = [b for b in kept if not b.startswith(f"database {backend}\n")]
    report.write_text("\n\n".join([*kept, figures.strip()]) + "\n")

    assert not missing, f"{len(missing)} subscribers got nothing, e.g. {missing[:5]}"
    assert duplicates <= kills * CONNECTIONS
    assert all(n <= CONNECTIONS for n in per_kill.values()), per_kill
    assert all(n == 2 for n in duplicated.values()), duplicated  # never a third copy
    assert all(len(found) == 1 for found in ids.values()), ids  # same Message-ID
    assert states["sent"] == SUBSCRIBERS and sum(states.values()) == SUBSCRIBERS, states


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_exits_75_and_the_next_finishes(
    sqlite_url: str, relay: FaultServer, signum: signal.Signals
) -> None:
    """Ctrl-C or SIGTERM stops cleanly and says so with EX_TEMPFAIL, for cron and scripts."""
    settings = make_settings(sqlite_url, relay, smtp_connections=2)
    engine = store.open_store(sqlite_url)
    try:
        emails = seed_subscribers(engine, 400)
        announce_post(engine)
    finally:
        engine.dispose()
    env = {**os.environ, **settings_env(settings)}
    relay.handler.dot_delay = 0.02  # 400 readers over 2 connections: several seconds
    process = subprocess.Popen(COMMAND, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _wait_for(lambda: len(relay.handler.messages) > 10 or process.poll() is not None, 20)
        assert process.poll() is None, "the run ended before it could be interrupted"
        process.send_signal(signum)
    finally:
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 75, stderr.decode()
    assert b"stopped early: interrupted" in stdout
    relay.handler.dot_delay = 0.0
    final = subprocess.run(COMMAND, env=env, capture_output=True, text=True, timeout=60)
    assert final.returncode == 0, final.stderr
    assert sorted(set(relay.handler.recipients())) == emails
