"""The subscriber commands, against a real SQLite/PostgreSQL store and a real SMTP server."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from clihelp import run, settings_env
from mailserver import SMTPServer
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from subscribe.config import Settings
from subscribe.db import bulk, store
from subscribe.db.models import Subscriber, SubscriberStatus, utcnow
from subscribe.readers import subscribers
from subscribe.readers.tokens import Tokens


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    settings_env(monkeypatch, settings)


@pytest.fixture
def status_of(engine: Engine) -> Callable[[str], str]:
    def status(email: str) -> str:
        with Session(engine) as session:
            return subscribers.find(session, email=email).status

    return status


def test_double_opt_in_through_the_cli(
    settings: Settings,
    smtp_server: SMTPServer,
    tokens: Tokens,
    engine: Engine,
    status_of: Callable[[str], str],
) -> None:
    result = run("add", "Ada@Example.ORG", "--name", "Ada Lovelace")
    assert result.exit_code == 0, result.output
    assert "sent a confirmation email" in result.stdout
    assert status_of("ada@example.org") == "pending"

    [received] = smtp_server.messages
    assert received.rcpt_tos == ["Ada@example.org"]
    message = received.message()
    assert message["To"] == "Ada Lovelace <Ada@example.org>"
    assert "List-Unsubscribe" not in message  # not subscribed yet: nothing to leave
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = re.search(r"http://testserver/confirm/(\S+)", text)
    assert link is not None and link.group(0) in html

    subject = tokens.read_confirm(link.group(1))
    with Session(engine) as session:
        subscriber, first = subscribers.confirm(session, subject=subject, now=utcnow())
        assert first and subscriber.status == SubscriberStatus.CONFIRMED
        _, again = subscribers.confirm(session, subject=subject, now=utcnow())
        assert again is False  # replay is harmless


def test_add_twice_and_cooldown(settings: Settings, smtp_server: SMTPServer) -> None:
    assert run("add", "bob@example.org").exit_code == 0
    second = run("add", "BOB@example.org")
    assert second.exit_code == 1
    assert "already on the list (pending)" in second.stderr
    assert len(smtp_server.messages) == 1


def test_add_confirmed_sends_nothing(
    settings: Settings, smtp_server: SMTPServer, status_of: Callable[[str], str]
) -> None:
    result = run("add", "carol@example.org", "--confirmed")
    assert result.exit_code == 0 and "confirmed" in result.stdout
    assert smtp_server.messages == []
    assert status_of("Carol@EXAMPLE.org") == "confirmed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "not-an-address"], "not a valid email address"),
        (["add", "x" * 300 + "@example.org"], "too long"),
        (["unsubscribe", "nobody@example.org"], "not on the list"),
        (["remove", "nobody@example.org"], "not on the list"),
        (["import", "missing.csv"], "cannot read missing.csv"),
        (["notify", "--title", "T", "--url", "ftp://x", "--yes"], "--url must be an http"),
        (["notify", "--yes"], "say what to announce"),
        (["notify", "--post", "nope.md", "--yes"], "cannot read nope.md"),
        (["notify", "--feed", "nope.xml", "--yes"], "cannot read the feed nope.xml"),
        (["status", "https://unknown.example/"], "no post announced"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_unsubscribe_and_remove(settings: Settings, status_of: Callable[[str], str]) -> None:
    assert run("add", "dan@example.org", "--confirmed").exit_code == 0
    assert "Unsubscribed" in run("unsubscribe", "DAN@example.org").stdout
    assert "already left" in run("unsubscribe", "dan@example.org").stdout
    assert status_of("dan@example.org") == "unsubscribed"
    assert run("remove", "dan@example.org").exit_code == 0
    listing = run("list")
    assert "dan@example.org" not in listing.stdout


def test_export_and_list(settings: Settings) -> None:
    run("add", "fay@example.org", "--confirmed", "--name", 'Fay, "the" reader')
    run("add", "gil@example.org")
    exported = run("export")
    assert exported.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [r["email"] for r in rows] == ["fay@example.org", "gil@example.org"]
    assert rows[0]["name"] == 'Fay, "the" reader'
    assert rows[0]["status"] == "confirmed" and rows[0]["confirmed_at"]
    assert {"email", "name", "status", "created_at", "confirmed_at"} <= set(rows[0])
    listed = run("list", "--status", "pending")
    assert listed.stdout.split("\t")[0] == "gil@example.org"
    stats = run("stats")
    assert "confirmed 1" in stats.stdout and "pending 1" in stats.stdout


def test_keyset_listing_walks_every_page(settings: Settings, engine: Engine) -> None:
    engine = engine
    with engine.begin() as connection:
        rows = [
            {
                "email": f"r{i}@example.org",
                "email_key": f"r{i}@example.org",
                "name": "",
                "status": "confirmed",
                "created_at": utcnow(),
                "consent_source": "",
                "consent_ip": "",
                "consent_user_agent": "",
                "confirmation_day": "",
                "confirmations_that_day": 0,
                "bounce_count": 0,
            }
            for i in range(2500)
        ]
        bulk.insert_subscribers(connection, rows=rows)
    with Session(engine) as session:
        seen = [s.email for s in store.iter_subscribers(session, page_size=1000)]
    assert len(seen) == 2500 and len(set(seen)) == 2500


def test_missing_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUBSCRIBE_SECRET_KEY")
    result = run("add", "x@example.org")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: SUBSCRIBE_SECRET_KEY is not set")
    notify = run("notify", "--title", "T", "--url", "https://e.org/", "--yes")
    assert notify.exit_code == 1 and "SUBSCRIBE_SECRET_KEY" in notify.stderr


def test_a_short_secret_key_is_refused_with_how_to_make_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUBSCRIBE_SECRET_KEY", "x")
    result = run("add", "x@example.org")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: SUBSCRIBE_SECRET_KEY is 1 characters long")
    assert "secrets.token_urlsafe" in result.stderr and len(result.stderr.splitlines()) == 1
    assert "x@example.org" not in run("list").stdout  # refused before anything was stored
    # Rotating off a weak key: the old one may stay (to verify), the new one signs.
    monkeypatch.setenv("SUBSCRIBE_SECRET_KEY", "x, a-new-key-of-24-characters")
    assert run("add", "x@example.org").exit_code == 0


def test_serve_refuses_a_port_out_of_range() -> None:
    result = run("serve", "--port", "99999")
    assert result.exit_code == 2
    assert "--port" in result.stderr and "65535" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SUBSCRIBE_SMTP_PORT", "abc", "SUBSCRIBE_SMTP_PORT:"),
        ("SUBSCRIBE_SMTP_SECURITY", "tls2", "SUBSCRIBE_SMTP_SECURITY:"),
        ("SUBSCRIBE_MAIL_FROM", "Just A Name", "SUBSCRIBE_MAIL_FROM: must look like"),
        ("SUBSCRIBE_BASE_URL", "example.org", "SUBSCRIBE_BASE_URL: must start with http"),
        ("SUBSCRIBE_DATABASE_URL", "nonsense", "SUBSCRIBE_DATABASE_URL"),
    ],
)
def test_bad_settings(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = run("list")
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_settings_from_dot_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Settings
) -> None:
    monkeypatch.delenv("SUBSCRIBE_SMTP_PORT")
    (tmp_path / ".env").write_text("SUBSCRIBE_SMTP_PORT=notaport\n")
    result = run("list")
    assert result.exit_code == 1 and "SUBSCRIBE_SMTP_PORT" in result.stderr


def test_one_subscriber_per_address_whatever_the_case(settings: Settings, engine: Engine) -> None:
    run("add", "Mixed.Case@Example.org", "--confirmed")
    with Session(engine) as session:
        found = subscribers.find(session, email="mixed.case@EXAMPLE.ORG")
        assert found.email == "Mixed.Case@example.org"  # kept as typed, domain lowercased
        assert session.exec(select(func.count()).select_from(Subscriber)).one() == 1
