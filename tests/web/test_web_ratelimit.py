"""Abuse limits: the per-client limit on POST /subscribe (kept in the database, race-safe),
and who the client is behind trusted proxies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import make_settings
from mailserver import SMTPServer
from sqlalchemy.engine import Engine
from webserver import asgi_client, find_subscriber, open_app

from subscribe.db import store
from subscribe.db.ratelimit import Limit, RateLimiter, rate_event_table
from subscribe.errors import ConfigError
from subscribe.web.clientip import ClientIPResolver, limit_key, parse_networks

pytestmark = pytest.mark.anyio

PROXY = "10.0.0.2"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store_engine(database_url: str) -> Iterator[Engine]:
    engine = store.open_store(database_url)
    yield engine
    engine.dispose()


def now() -> datetime:
    return datetime.now(UTC)


async def test_429_after_the_limit(
    database_url: str, smtp_server: SMTPServer, store_engine: Engine
) -> None:
    settings = make_settings(database_url, smtp_server, subscribe_rate_limit=3)
    with open_app(settings) as app:
        async with asgi_client(app) as client:
            for n in range(3):
                ok = await client.post("/subscribe", data={"email": f"r{n}@example.org"})
                assert ok.status_code == 200
            refused = await client.post("/subscribe", data={"email": "r3@example.org"})
            as_json = await client.post(
                "/subscribe",
                data={"email": "r4@example.org"},
                headers={"Accept": "application/json"},
            )
        async with asgi_client(app, client_ip="198.51.100.9") as neighbour:
            other = await neighbour.post("/subscribe", data={"email": "n@example.org"})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert "Too many requests" in refused.text
    assert as_json.status_code == 429 and as_json.json()["ok"] is False
    assert find_subscriber(store_engine, "r3@example.org") is None
    assert other.status_code == 200  # another client has its own budget
    assert len(smtp_server.messages) == 4


async def test_zero_switches_the_limit_off(database_url: str, smtp_server: SMTPServer) -> None:
    settings = make_settings(database_url, smtp_server, subscribe_rate_limit=0)
    with open_app(settings) as app:
        async with asgi_client(app) as client:
            for n in range(12):
                response = await client.post("/subscribe", data={"email": f"z{n}@example.org"})
                assert response.status_code == 200


async def test_forwarded_for_is_read_from_trusted_proxies_only(
    database_url: str, smtp_server: SMTPServer, store_engine: Engine
) -> None:
    settings = make_settings(
        database_url, smtp_server, subscribe_rate_limit=1, trusted_proxies=f"{PROXY}, 192.0.2.0/24"
    )
    with open_app(settings) as app:
        async with asgi_client(app, client_ip=PROXY) as via_proxy:
            for n, client in enumerate(["198.51.100.1", "198.51.100.2"]):
                response = await via_proxy.post(
                    "/subscribe",
                    data={"email": f"p{n}@example.org"},
                    headers={"X-Forwarded-For": f"6.6.6.6, {client}"},
                )
                assert response.status_code == 200  # one each: two different clients
        async with asgi_client(app, client_ip="198.51.100.77") as direct:
            # Not a proxy of ours: its X-Forwarded-For is a lie and changes nothing.
            first = await direct.post(
                "/subscribe",
                data={"email": "d1@example.org"},
                headers={"X-Forwarded-For": "1.1.1.1"},
            )
            second = await direct.post(
                "/subscribe",
                data={"email": "d2@example.org"},
                headers={"X-Forwarded-For": "2.2.2.2"},
            )
    assert first.status_code == 200 and second.status_code == 429
    recorded = find_subscriber(store_engine, "p1@example.org")
    assert recorded is not None and recorded.consent_ip == "198.51.100.2"
    direct_row = find_subscriber(store_engine, "d1@example.org")
    assert direct_row is not None and direct_row.consent_ip == "198.51.100.77"


def test_the_limit_holds_under_concurrency(store_engine: Engine) -> None:
    """Sixteen threads (each its own connection, as separate processes would be) race for
    five slots: exactly five win, on SQLite and on PostgreSQL."""
    limiter = RateLimiter(store_engine, Limit("race", 5, timedelta(minutes=1)))
    barrier = threading.Barrier(16)
    results: list[bool] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        allowed = limiter.hit("203.0.113.1", now=now())
        with lock:
            results.append(allowed)

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [False] * 11 + [True] * 5


def test_old_events_expire_and_are_pruned(store_engine: Engine) -> None:
    limiter = RateLimiter(store_engine, Limit("prune", 2, timedelta(minutes=1)))
    other = RateLimiter(store_engine, Limit("other", 2, timedelta(hours=1)))
    start = now()
    assert limiter.hit("a", now=start) and limiter.hit("a", now=start)
    assert not limiter.hit("a", now=start + timedelta(seconds=30))
    assert other.hit("a", now=start)
    # A minute later the window has moved on: room again, and the old rows are gone.
    assert limiter.hit("b", now=start + timedelta(minutes=2))
    assert limiter.hit("a", now=start + timedelta(minutes=2))
    with store_engine.connect() as connection:
        buckets = connection.execute(sa.select(rate_event_table.c.bucket)).scalars().all()
    # Another limit's rows are not this limiter's to prune.
    assert sorted(buckets) == ["other:a", "prune:a", "prune:b"]


# -- who the client is (no database) --------------------------------------------------------


def resolver(*trusted: str) -> ClientIPResolver:
    return ClientIPResolver(parse_networks(trusted))


def test_client_ip_without_trusted_proxies() -> None:
    assert resolver().resolve("198.51.100.5", ["1.2.3.4"]) == "198.51.100.5"


def test_client_ip_through_a_chain_of_proxies() -> None:
    chain = resolver("10.0.0.0/8", "2001:db8::1")
    # client -> CDN (10.1.1.1) -> load balancer (10.0.0.2) -> us; the client forged 6.6.6.6.
    assert chain.resolve("10.0.0.2", ["6.6.6.6, 198.51.100.5", "10.1.1.1"]) == "198.51.100.5"
    assert chain.resolve("2001:db8::1", ["2001:db8:1::7"]) == "2001:db8:1::7"
    assert chain.resolve("10.0.0.2", []) == "10.0.0.2"  # a proxy's own health check
    assert chain.resolve("10.0.0.2", ["garbage"]) == "10.0.0.2"
    assert chain.resolve("::ffff:198.51.100.5", ["1.1.1.1"]) == "198.51.100.5"
    assert chain.resolve(None, []) == "unknown"


def test_bad_trusted_proxy_setting() -> None:
    with pytest.raises(ConfigError, match="SUBSCRIBE_TRUSTED_PROXIES"):
        parse_networks(["10.0.0.300"])


def test_ipv6_clients_are_limited_per_64() -> None:
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::9")
    assert limit_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("198.51.100.5") == "198.51.100.5"
