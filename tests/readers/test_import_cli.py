"""`subscribe import`: formats, statuses, encodings and all-or-nothing, through the CLI
against a real SQLite/PostgreSQL store and a real SMTP server."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from clihelp import run
from mailserver import SMTPServer
from sqlalchemy.engine import Engine

from subscribe.config import Settings
from subscribe.db import store
from subscribe.db.models import utcnow
from subscribe.readers import subscribers
from subscribe.readers.tokens import Tokens

pytestmark = pytest.mark.usefixtures("cli_env")


def test_import_reports_bad_rows_and_skips_duplicates(
    settings: Settings, tmp_path: Path, status_of: Callable[[str], str]
) -> None:
    csv_file = tmp_path / "readers.csv"
    csv_file.write_text(
        "Email,Name\n"
        "ann@example.org,Ann\n"
        "not an address,Nobody\n"
        "ANN@example.org,Ann again\n"
        "ben@bücher.de,Ben\n"
        ",empty\n",
        encoding="utf-8",
    )
    result = run("import", str(csv_file), "--confirmed")
    assert result.exit_code == 0, result.output
    assert "imported 2 (confirmed 2), already present 1" in result.stdout
    assert "skipped 2" in result.stdout
    assert "line 3:" in result.stderr and "line 6:" in result.stderr
    again = run("import", str(csv_file))
    assert "imported 0, already present 3" in again.stdout
    assert status_of("ben@BÜCHER.de") == "confirmed"


def test_import_without_confirmed_sends_each_new_reader_one_confirmation(
    settings: Settings,
    engine: Engine,
    smtp_server: SMTPServer,
    tokens: Tokens,
    status_of: Callable[[str], str],
    tmp_path: Path,
) -> None:
    path = tmp_path / "pending.csv"
    path.write_text("email,name\ncat@example.org,Cat\ndan@example.org,\n", encoding="utf-8")
    result = run("import", str(path))
    assert result.exit_code == 0, result.output
    assert "imported 2" in result.stdout and "confirmation emails: 2 sent" in result.stdout
    assert sorted(r for m in smtp_server.messages for r in m.rcpt_tos) == [
        "cat@example.org",
        "dan@example.org",
    ]
    text = smtp_server.messages[0].message().get_body(("plain",)).get_content()
    link = re.search(r"http://testserver/confirm/(\S+)", text)
    assert link is not None and tokens.read_confirm(link.group(1))
    assert status_of("cat@example.org") == "pending"
    # Again: nobody new, nobody mailed twice; the form's cooldown counts the import's email.
    again = run("import", str(path))
    assert "imported 0, already present 2" in again.stdout and "confirmation" not in again.stdout
    assert len(smtp_server.messages) == 2
    with store.write_session(engine) as session:
        form = subscribers.request_subscription(
            session, settings, email="cat@example.org", consent=subscribers.Consent(), now=utcnow()
        )
    assert form.confirmation_due is False


def test_import_no_confirmation_email_stores_pending_and_mails_nobody(
    smtp_server: SMTPServer, status_of: Callable[[str], str], tmp_path: Path
) -> None:
    path = tmp_path / "quiet.csv"
    path.write_text("email\neve@example.org\n", encoding="utf-8")
    result = run("import", str(path), "--no-confirmation-email")
    assert result.exit_code == 0, result.output
    assert status_of("eve@example.org") == "pending" and smtp_server.messages == []
    assert "confirmation emails" not in run("stats").stdout  # nothing queued either


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name\nAnn\n", "not a header row with an email column"),
        (b"email\nann@example.org\n\x00bad\n", "line 3: a NUL byte"),
    ],
)
def test_import_unreadable_csv(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = run("import", str(path))
    assert result.exit_code == 1
    assert message in result.stderr


def test_removed_address_cannot_be_imported_again(settings: Settings, tmp_path: Path) -> None:
    assert run("add", "eve@example.org", "--confirmed").exit_code == 0
    assert run("remove", "eve@example.org").exit_code == 0
    path = tmp_path / "again.csv"
    path.write_text("email\nEVE@example.org\n")
    result = run("import", str(path), "--confirmed")
    assert "imported 0" in result.stdout and "suppressed (removed earlier) 1" in result.stdout
    refused = run("add", "eve@example.org", "--confirmed")
    assert refused.exit_code == 1 and "removed at their request" in refused.stderr
    # A fresh double opt-in is still allowed.
    assert run("add", "eve@example.org").exit_code == 0


def test_a_removed_address_stays_suppressed_after_the_keys_rotate(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = "the-old-key-that-signed-for-years"
    monkeypatch.setenv("SUBSCRIBE_SECRET_KEY", old)
    assert run("add", "eve@example.org", "--confirmed").exit_code == 0
    assert run("remove", "eve@example.org").exit_code == 0
    # Rotated as documented: the old key stays to verify, the new one signs.
    monkeypatch.setenv("SUBSCRIBE_SECRET_KEY", f"{old}, the-new-key-that-signs-from-now-on")
    refused = run("add", "Eve@Example.org", "--confirmed")
    assert refused.exit_code == 1 and "removed at their request" in refused.stderr
    path = tmp_path / "again.csv"
    path.write_text("email\nfrank@example.org\neve@example.org\n")
    result = run("import", str(path), "--confirmed")
    assert "imported 1" in result.stdout and "suppressed (removed earlier) 1" in result.stdout
    # Erased again under the new key: still one suppression, and still recognised.
    assert run("remove", "frank@example.org").exit_code == 0
    assert run("add", "frank@example.org", "--confirmed").exit_code == 1
    assert "eve@example.org" not in run("list").stdout
