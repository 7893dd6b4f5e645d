"""No email is ever lost: confirmations and welcomes go through the ledger, sent by the loop
inside `serve`, end to end against a real SMTP server and a real `subscribe serve`.

- the relay is down when the visitor subscribes and back 30 s later: the confirmation
  arrives within 60 s of that, with `serve` left running;
- `serve` is killed with SIGKILL right after answering: the next start sends it;
- a burst of 2,000 sign-ups: all stored, all confirmed by email, over at most
  SUBSCRIBE_SMTP_CONNECTIONS connections;
- the cooldown counts requests, not sends that failed: the visitor who subscribed while
  the relay was down is not told to wait, their email simply arrives later.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from conftest import IN_CI, make_settings
from faultserver import FaultServer, SilentServer, settings_env
from mailserver import SMTPServer
from pgserver import PostgresServer, postgres_available
from webserver import find_subscriber, link_in, running_server, wait_for

from subscribe.config import Settings
from subscribe.db import store
from subscribe.db.models import SubscriberStatus
from subscribe.devmail import free_port
from subscribe.web import create_app

RELAY_DOWN_SECONDS = 30
SERVE = [sys.executable, "-c", "from subscribe.cli import main; main()", "serve"]


@pytest.mark.timeout(150)
def test_a_confirmation_waits_for_the_relay_and_arrives_once_it_is_back(
    sqlite_url: str, request: pytest.FixtureRequest
) -> None:
    # One outage for both databases at once: a `serve` on SQLite and one on PostgreSQL,
    # sharing the relay, so the 30 s wait is paid once. Without a PostgreSQL server the
    # SQLite half still runs (and CI, which has one, fails instead).
    relay = SMTPServer()  # its port is chosen, nothing listens yet: connections are refused
    databases = {"sqlite": sqlite_url}
    missing = postgres_available()
    if missing is None:
        server: PostgresServer = request.getfixturevalue("postgres")
        databases["postgresql"] = server.create_database(f"relay_down_{time.monotonic_ns()}")
    elif IN_CI:
        pytest.fail(f"required service missing in CI: {missing}")
    with ExitStack() as servers:
        base_urls: dict[str, str] = {}
        for name, url in databases.items():
            settings = make_settings(url, relay)

            def make_app(base_url: str, settings: Settings = settings) -> object:
                return create_app(settings.model_copy(update={"base_url": base_url}))

            base_urls[name] = servers.enter_context(running_server(make_app))  # type: ignore[arg-type]
        for name, base_url in base_urls.items():
            answer = httpx.post(f"{base_url}/subscribe", data={"email": f"{name}@example.org"})
            assert answer.status_code == 200 and "Check your inbox" in answer.text
        time.sleep(RELAY_DOWN_SECONDS)
        relay.start()
        try:
            back = time.monotonic()
            wait_for(
                lambda: len(relay.messages) >= 2, timeout=60, what="confirmations after the outage"
            )
            assert time.monotonic() - back < 60
            # The cooldown counted the request, not the failed sends: the visitor was never
            # asked to wait, and the same confirmation came once.
            time.sleep(1)
            by_reader = {received.rcpt_tos[0]: received for received in relay.messages}
            assert len(relay.messages) == 2 and set(by_reader) == {
                f"{name}@example.org" for name in databases
            }
            for name, base_url in base_urls.items():
                link = link_in(by_reader[f"{name}@example.org"].message(), "/confirm/")
                assert link.startswith(base_url)
        finally:
            relay.stop()


@contextmanager
def _serve(settings: Settings, port: int, folder: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, **settings_env(settings), "SUBSCRIBE_BASE_URL": f"http://127.0.0.1:{port}"}
    log = (folder / f"serve-{time.monotonic_ns()}.log").open("wb")
    process = subprocess.Popen(
        [*SERVE, "--port", str(port)], env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for(lambda: _healthy(port) or process.poll() is not None, timeout=30, what="serve")
        assert process.poll() is None, (folder / log.name).read_text()
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)
        log.close()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.timeout(120)
def test_serve_killed_right_after_answering_sends_the_confirmation_after_restart(
    database_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    silent = SilentServer()  # takes the connection and never answers: the send hangs
    port = free_port()
    try:
        hanging = make_settings(database_url, None, smtp_port=silent.port, smtp_timeout=30)
        with _serve(hanging, port, tmp_path) as process:
            answer = httpx.post(
                f"http://127.0.0.1:{port}/subscribe", data={"email": "killed@example.org"}
            )
            assert answer.status_code == 200
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
    finally:
        silent.stop()
    assert smtp_server.messages == []
    engine = store.open_store(database_url)
    try:
        subscriber = find_subscriber(engine, "killed@example.org")
        assert subscriber is not None and subscriber.status == SubscriberStatus.PENDING
    finally:
        engine.dispose()

    working = make_settings(database_url, smtp_server)
    with _serve(working, port, tmp_path):
        wait_for(lambda: smtp_server.messages, timeout=30, what="the confirmation after restart")
        time.sleep(1)
    assert [m.rcpt_tos for m in smtp_server.messages] == [["killed@example.org"]]
    assert "/confirm/" in link_in(smtp_server.messages[0].message(), "/confirm/")


@pytest.mark.timeout(120)
def test_serve_stopped_while_sending_records_what_it_sent_and_never_sends_it_again(
    database_url: str, tmp_path: Path
) -> None:
    # SIGTERM (a restart, a deploy) while a confirmation is on the wire: the relay takes
    # it and answers late. `serve` lets that exchange finish and records it as sent, so
    # the next start has nothing to send again.
    relay = FaultServer().start()
    relay.handler.stall_after_dot("restart@example.org", 1.5, times=1)
    port = free_port()
    settings = make_settings(database_url, relay)
    try:
        with _serve(settings, port, tmp_path) as process:
            answer = httpx.post(
                f"http://127.0.0.1:{port}/subscribe", data={"email": "restart@example.org"}
            )
            assert answer.status_code == 200
            wait_for(lambda: relay.handler.messages, timeout=10, what="the message on the wire")
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        engine = store.open_store(database_url)
        try:
            with engine.connect() as connection:
                status = connection.execute(
                    sa.text("SELECT status FROM delivery WHERE kind = 'confirm'")
                ).scalar_one()
        finally:
            engine.dispose()
        assert status == "sent"
        with _serve(settings, port, tmp_path):
            time.sleep(2)  # the poll's first pass has run
        assert relay.handler.recipients() == ["restart@example.org"]
    finally:
        relay.stop()


BURST = 2000
CONCURRENCY = 16


@pytest.mark.timeout(240)
def test_a_burst_of_sign_ups_is_stored_and_confirmed_over_a_few_connections(
    database_url: str, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    settings = make_settings(database_url, smtp_server, smtp_connections=4, subscribe_rate_limit=0)
    port = free_port()
    addresses = [f"burst{n:04d}@example.org" for n in range(BURST)]
    with _serve(settings, port, tmp_path):
        started = time.monotonic()
        statuses = asyncio.run(_sign_up_all(f"http://127.0.0.1:{port}", addresses))
        elapsed = time.monotonic() - started
        assert Counter(statuses) == {200: BURST}
        wait_for(
            lambda: len(smtp_server.messages) >= BURST,
            timeout=120,
            what=f"{BURST} confirmations",
        )
        time.sleep(1)
    print(f"\n{BURST} sign-ups in {elapsed:.1f} s ({BURST / elapsed:.0f}/s)")
    received = Counter(r for m in smtp_server.messages for r in m.rcpt_tos)
    assert sorted(received) == addresses and set(received.values()) == {1}
    assert len(smtp_server.handler.peers) <= settings.smtp_connections
    engine = store.open_store(database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(sa.text("SELECT count(*) FROM subscriber")).scalar()
            queued = connection.execute(
                sa.text("SELECT count(*) FROM delivery WHERE kind = 'confirm' AND status = 'sent'")
            ).scalar()
        assert stored == BURST and queued == BURST
    finally:
        engine.dispose()


async def _sign_up_all(base_url: str, addresses: list[str]) -> list[int]:
    pending = iter(addresses)
    statuses: list[int] = []

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            for email in pending:
                response = await http.post("/subscribe", data={"email": email})
                statuses.append(response.status_code)

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return statuses
