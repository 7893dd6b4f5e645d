"""Daily limit, the worker command, and resume."""

from __future__ import annotations

import pytest
from clihelp import run, settings_env
from mailserver import SMTPServer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.content import PostSpec
from subscribe.db.models import utcnow
from subscribe.posts import campaign
from subscribe.readers import subscribers
from subscribe.sending import tallies


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    settings_env(monkeypatch, settings)


def add_readers(settings: Settings, engine: Engine, count: int) -> None:
    with Session(engine) as session:
        for n in range(count):
            subscribers.add(
                session, settings, email=f"r{n}@example.org", confirmed=True, now=utcnow()
            )


def test_daily_limit_stops_cleanly_and_the_next_run_continues(
    settings: Settings, engine: Engine, smtp_server: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_readers(settings, engine, 5)
    monkeypatch.setenv("SUBSCRIBE_DAILY_LIMIT", "3")
    first = run("notify", "--title", "Capped", "--url", "https://blog.example/cap", "--yes")
    assert first.exit_code == 0, first.output
    assert "sent 3," in first.stdout and "daily limit reached" in first.stdout
    assert len(smtp_server.messages) == 3
    same_day = run("resume")
    assert "sent 0," in same_day.stdout and "daily limit reached" in same_day.stdout
    monkeypatch.setenv("SUBSCRIBE_DAILY_LIMIT", "10")  # as if tomorrow's budget had come
    later = run("resume")
    assert "sent 2," in later.stdout
    assert sorted(r for m in smtp_server.messages for r in m.rcpt_tos) == [
        f"r{n}@example.org" for n in range(5)
    ]
    [counts] = tallies.counts_by_post(engine).values()
    assert counts["sent"] == 5 and counts["queued"] == 0


def test_worker_until_idle_sends_everything_due(
    settings: Settings, engine: Engine, smtp_server: SMTPServer
) -> None:
    add_readers(settings, engine, 4)
    with Session(engine) as session:
        campaign.announce(
            session, [PostSpec("k", "Queued", "https://blog.example/q")], now=utcnow()
        )
    result = run("worker", "--until-idle")
    assert result.exit_code == 0, result.output
    assert "sent 4," in result.stdout
    assert len(smtp_server.messages) == 4
    idle = run("worker", "--until-idle")
    assert idle.exit_code == 0 and idle.stdout == ""


def test_worker_until_idle_fails_when_the_relay_is_down(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_readers(settings, engine, 1)
    with Session(engine) as session:
        campaign.announce(session, [PostSpec("k", "Down", "https://blog.example/d")], now=utcnow())
    monkeypatch.setenv("SUBSCRIBE_SMTP_PORT", "9")
    result = run("worker", "--until-idle")
    assert result.exit_code == 1
    assert "cannot reach the relay" in result.stderr
