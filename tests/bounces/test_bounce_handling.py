"""`subscribe bounces process`: bounces after acceptance mark subscribers, forgeries do not."""

from __future__ import annotations

import mailbox
import re
from pathlib import Path

import pytest
from clihelp import run, settings_env
from mailserver import SMTPServer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from subscribe.config import Settings
from subscribe.db.models import utcnow
from subscribe.readers import subscribers

CORPUS = Path(__file__).parent / "bounce_corpus"


@pytest.fixture
def verp_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = settings.model_copy(update={"bounce_address": "bounces@example.org"})
    settings_env(monkeypatch, settings)
    return settings


def bounce_for(template: str, *, token: str, original: str, recipient: str) -> bytes:
    """A corpus bounce, re-addressed to one of this test's deliveries."""
    text = (CORPUS / template).read_text()
    text = re.sub(r"bounces\+[\w.-]+@", f"bounces+{token}@", text)
    return text.replace(original, recipient).encode()


def test_bounces_mark_subscribers_through_verp(
    verp_settings: Settings, engine: Engine, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    with Session(engine) as session:
        for address in ("hard@example.com", "soft@example.com", "fine@example.com"):
            subscribers.add(session, verp_settings, email=address, confirmed=True, now=utcnow())
    assert run("notify", "--title", "T", "--url", "https://blog.example/t", "--yes").exit_code == 0
    tokens = {}
    for received in smtp_server.messages:
        local = received.mail_from.split("@")[0]
        assert local.startswith("bounces+")  # VERP return path
        tokens[received.rcpt_tos[0]] = local.removeprefix("bounces+")

    box_path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(box_path)
    box.add(
        bounce_for(
            "postfix_hard_5.1.1_user_unknown.eml",
            token=tokens["hard@example.com"],
            original="alice@example.com",
            recipient="hard@example.com",
        )
    )
    box.add(
        bounce_for(
            "postfix_soft_4.2.2_mailbox_full.eml",
            token=tokens["soft@example.com"],
            original="bob@example.com",
            recipient="soft@example.com",
        )
    )
    # A forged bounce: a well-formed DSN whose token was not signed by us.
    box.add(
        bounce_for(
            "postfix_hard_5.1.1_user_unknown.eml",
            token="NDI.forged.signature",
            original="alice@example.com",
            recipient="fine@example.com",
        )
    )
    box.add((CORPUS / "not_bounce_auto_reply_out_of_office.eml").read_bytes())
    box.flush()
    box.close()
    before = box_path.read_bytes()

    result = run("bounces", "process", "--mbox", str(box_path))
    assert result.exit_code == 0, result.output
    assert "bounced: hard@example.com" in result.stdout
    assert "1 hard and 1 soft bounces, 1 subscribers marked bounced, 2 left for review" in (
        result.stdout
    )
    assert box_path.read_bytes() == before  # nothing deleted or moved
    with Session(engine) as session:
        assert subscribers.find(session, email="hard@example.com").status == "bounced"
        soft = subscribers.find(session, email="soft@example.com")
        assert soft.status == "confirmed" and soft.bounce_count == 1
        assert subscribers.find(session, email="fine@example.com").status == "confirmed"


def test_bounces_process_needs_one_source(verp_settings: Settings, tmp_path: Path) -> None:
    assert run("bounces", "process").exit_code == 1
    missing = run("bounces", "process", "--maildir", str(tmp_path / "nope"))
    assert missing.exit_code == 1 and "cannot read" in missing.stderr


def test_bounces_from_imap_are_read_without_changing_the_folder(
    verp_settings: Settings,
    engine: Engine,
    smtp_server: SMTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from imapserver import Folder, IMAPServer

    with Session(engine) as session:
        subscribers.add(
            session, verp_settings, email="gone@example.com", confirmed=True, now=utcnow()
        )
    assert run("notify", "--title", "T", "--url", "https://blog.example/t", "--yes").exit_code == 0
    token = smtp_server.messages[0].mail_from.split("@")[0].removeprefix("bounces+")
    folder = Folder(
        messages=[
            bounce_for(
                "postfix_hard_5.1.1_user_unknown.eml",
                token=token,
                original="alice@example.com",
                recipient="gone@example.com",
            ).replace(b"\n", b"\r\n"),
            (CORPUS / "not_bounce_auto_reply_out_of_office.eml").read_bytes(),
        ]
    )
    server = IMAPServer(folder).start()
    try:
        for name, value in {
            "HOST": "127.0.0.1",
            "PORT": str(server.port),
            "SECURITY": "none",
            "USERNAME": "bounces",
            "PASSWORD": "secret",
        }.items():
            monkeypatch.setenv(f"SUBSCRIBE_BOUNCE_IMAP_{name}", value)
        result = run("bounces", "process", "--imap")
        assert result.exit_code == 0, result.output
        assert "bounced: gone@example.com" in result.stdout
        assert "left in place, not a bounce: imap:2" in result.stdout
        verbs = {
            command.split(" ")[0] + " " + command.split(" ")[1]
            if command.startswith("UID")
            else command.split(" ")[0]
            for command in folder.commands
        }
        assert "EXAMINE" in verbs and "SELECT" not in verbs  # read-only
        assert not verbs & {"STORE", "UID STORE", "COPY", "UID COPY", "EXPUNGE", "UID MOVE"}
        assert all("PEEK" in c for c in folder.commands if c.startswith("UID FETCH"))

        monkeypatch.setenv("SUBSCRIBE_BOUNCE_IMAP_PASSWORD", "wrong")
        refused = run("bounces", "process", "--imap")
        assert refused.exit_code == 1 and "cannot read bounces from IMAP" in refused.stderr
    finally:
        server.stop()
    with Session(engine) as session:
        assert subscribers.find(session, email="gone@example.com").status == "bounced"
