"""`subscribe bounces process`: bounces judged by their reason, counts that decay, complaints;
forgeries change nothing."""

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


def _add(engine: Engine, settings: Settings, *addresses: str) -> None:
    with Session(engine) as session:
        for address in addresses:
            subscribers.add(session, settings, email=address, confirmed=True, now=utcnow())


def test_bounces_mark_subscribers_through_verp(
    verp_settings: Settings, engine: Engine, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    _add(engine, verp_settings, "hard@example.com", "soft@example.com", "fine@example.com")
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
    assert (
        "4 messages: 1 addresses gone, 1 counted, 0 about the sender, 0 complaints; "
        "1 subscribers marked bounced, 2 left for review"
    ) in result.stdout
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


# --- reasons, decay, complaints --------------------------------------------------------------


def _post(n: int) -> None:
    result = run("notify", "--title", f"T{n}", "--url", f"https://blog.example/{n}", "--yes")
    assert result.exit_code == 0, result.output


def _verp(smtp_server: SMTPServer, recipient: str) -> list[str]:
    """The VERP tokens of the messages sent to ``recipient``, oldest first."""
    return [
        m.mail_from.split("@")[0].removeprefix("bounces+")
        for m in smtp_server.messages
        if m.rcpt_tos == [recipient]
    ]


def _process(tmp_path: Path, messages: list[bytes]) -> str:
    path = tmp_path / f"box{len(list(tmp_path.glob('box*')))}.mbox"
    box = mailbox.mbox(path)
    for raw in messages:
        box.add(raw)
    box.close()
    result = run("bounces", "process", "--mbox", str(path))
    assert result.exit_code == 0, result.output
    return result.stdout


def _set_sent_at(engine: Engine, settings: Settings, token: str, days: float) -> None:
    """Place a delivery on a timeline: sent ``days`` after an origin a year ago."""
    from datetime import timedelta

    from subscribe.db.models import delivery_table
    from subscribe.readers.tokens import tokens_for

    delivery_id = tokens_for(settings).read_bounce(token)
    origin = utcnow() - timedelta(days=365)
    with engine.begin() as connection:
        connection.execute(
            delivery_table.update()
            .where(delivery_table.c.id == delivery_id)
            .values(sent_at=origin + timedelta(days=days))
        )


def _status(engine: Engine, address: str) -> tuple[str, int]:
    with Session(engine) as session:
        reader = subscribers.find(session, email=address)
        return reader.status, reader.bounce_count


def test_refusals_about_the_sender_never_touch_readers_and_are_reported(
    verp_settings: Settings, engine: Engine, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    readers = ["a@example.com", "b@example.com", "c@example.net"]
    _add(engine, verp_settings, *readers)
    for n in range(6):  # a reputation incident lasting six posts
        _post(n)
    bounces = []
    for address in readers:
        template = (
            "postfix_spamhaus_5.7.1.eml" if address.endswith(".com") else "gmail_dmarc_5.7.26.eml"
        )
        original = "cal@example.com" if address.endswith(".com") else "tia@gmail.com"
        for token in _verp(smtp_server, address):
            bounces.append(bounce_for(template, token=token, original=original, recipient=address))
    out = _process(tmp_path, bounces)
    assert "0 addresses gone, 0 counted, 18 about the sender" in out
    assert "refused for reasons about the sender" in out
    assert "  12 x blocked at example.com" in out and "  6 x authentication at example.net" in out
    for address in readers:
        assert _status(engine, address) == ("confirmed", 0)
    stats = run("stats")
    assert stats.exit_code == 0, stats.output
    assert "  2 x blocked at example.com" in stats.stdout  # readers, by their latest refusal
    assert "  1 x authentication at example.net" in stats.stdout


def test_counted_bounces_remove_only_five_in_a_row(
    verp_settings: Settings, engine: Engine, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    _add(engine, verp_settings, "full@example.com", "gap@example.com", "read@example.com")
    for n in range(6):
        _post(n)

    def full(address: str, token: str) -> bytes:
        return bounce_for(
            "postfix_soft_4.2.2_mailbox_full.eml",
            token=token,
            original="bob@example.com",
            recipient=address,
        )

    # Weekly posts, each bounced by a full mailbox: the fifth removes the reader.
    tokens = _verp(smtp_server, "full@example.com")
    for week, token in enumerate(tokens):
        _set_sent_at(engine, verp_settings, token, 7 * week)
    out = _process(tmp_path, [full("full@example.com", t) for t in tokens[:4]])
    assert _status(engine, "full@example.com") == ("confirmed", 4)
    out = _process(tmp_path, [full("full@example.com", tokens[4])])
    assert "bounced: full@example.com" in out
    assert _status(engine, "full@example.com") == ("bounced", 5)

    # Forty days between the second and third bounce: the count starts again.
    tokens = _verp(smtp_server, "gap@example.com")
    for n, days in enumerate([0, 7, 47, 54, 61, 68]):
        _set_sent_at(engine, verp_settings, tokens[n], days)
    _process(tmp_path, [full("gap@example.com", t) for t in tokens[:5]])
    assert _status(engine, "gap@example.com") == ("confirmed", 3)

    # A delivery in between that did not bounce: the reader reads again, the count resets.
    tokens = _verp(smtp_server, "read@example.com")
    for week, token in enumerate(tokens):
        _set_sent_at(engine, verp_settings, token, 7 * week)
    bounced = [tokens[n] for n in (0, 1, 2, 4, 5)]  # the fourth post was delivered
    _process(tmp_path, [full("read@example.com", t) for t in bounced])
    assert _status(engine, "read@example.com") == ("confirmed", 2)

    stats = run("stats")
    assert "readers with counted bounces (last 30 days): 0" in stats.stdout  # a year ago


def _complaint(template: str, *, verp: str, unsubscribe: str, message_id: str) -> bytes:
    text = (CORPUS / template).read_text()
    text = re.sub(r"bounces\+[\w.-]+@", f"bounces+{verp}@", text)
    text = re.sub(r"/unsubscribe/[\w.-]+", f"/unsubscribe/{unsubscribe}", text)
    return re.sub(r"<post-42\.sub-\d+@example\.org>", message_id, text).encode()


def test_complaints_unsubscribe_at_once_and_are_counted(
    verp_settings: Settings, engine: Engine, smtp_server: SMTPServer, tmp_path: Path
) -> None:
    _add(engine, verp_settings, "aol@example.com", "jmrp@example.com", "kept@example.com")
    _post(1)
    sent = {m.rcpt_tos[0]: m for m in smtp_server.messages}

    def headers(address: str) -> dict[str, str]:
        message = sent[address].message()
        link = str(message["List-Unsubscribe"]).strip("<>")
        return {
            "verp": sent[address].mail_from.split("@")[0].removeprefix("bounces+"),
            "unsubscribe": link.rsplit("/", 1)[1],
            "message_id": str(message["Message-ID"]),
        }

    aol = headers("aol@example.com")
    # The recipient is redacted: only the signed unsubscribe link names the reader.
    redacted = _complaint("arf_aol_redacted_recipient.eml", **{**aol, "verp": "forged.verp.token"})
    jmrp = _complaint("jmrp_microsoft_complaint.eml", **headers("jmrp@example.com"))
    kept = headers("kept@example.com")
    forged = _complaint(
        "arf_comcast_headers_only_redacted.eml",
        verp="forged.token",
        unsubscribe="forged.unsubscribe",
        message_id=kept["message_id"],  # public: not enough without a visible address
    )
    out = _process(tmp_path, [redacted, jmrp, forged])
    assert "unsubscribed after a complaint: aol@example.com" in out
    assert "unsubscribed after a complaint: jmrp@example.com" in out
    assert "left in place, matches no delivery: 2" in out
    assert "0 addresses gone, 0 counted, 0 about the sender, 2 complaints" in out
    assert _status(engine, "aol@example.com") == ("unsubscribed", 0)
    assert _status(engine, "jmrp@example.com") == ("unsubscribed", 0)
    assert _status(engine, "kept@example.com") == ("confirmed", 0)
    stats = run("stats")
    assert "complaints: 2 (unsubscribed)" in stats.stdout
