"""Reasons and actions: every corpus message judged as its table says, and the rules that
matter most tested one by one (misleading codes, words in other languages, 4xx)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clihelp import run
from corpus_reasons import COMPLAINT, CORPUS, EXPECTED_REASONS

from subscribe.bounces.classify import JSON_KEYS, classify
from subscribe.refusals import ACTIONS, Action, Reason
from subscribe.refusals.diagnosis import WORDS_MAX, reason_for, reason_in_words

R = Reason


def test_every_corpus_file_has_a_reason_expectation() -> None:
    assert {p.name for p in CORPUS.glob("*.eml")} == set(EXPECTED_REASONS)
    systems = {name.split("_")[0] for name in EXPECTED_REASONS}
    assert len(systems) >= 30  # Google Groups to X.400


@pytest.mark.parametrize("name", sorted(EXPECTED_REASONS))
def test_corpus_reasons_and_actions(name: str) -> None:
    [verdict] = classify([(name, (CORPUS / name).read_bytes())], bounce_address="bounces@x.org")
    expected = EXPECTED_REASONS[name]
    if expected == COMPLAINT:
        assert verdict.rows == [] and verdict.note.startswith("complaint")
    elif expected is None:
        assert verdict.rows == [] and verdict.note == "not a bounce"
    else:
        got = [(r.address, r.reason, r.action) for r in verdict.rows]
        assert got == [(a, reason.value, ACTIONS[reason].value) for a, reason in expected]


def test_every_corpus_message_is_judged_alike_with_crlf_line_endings() -> None:
    # Mailboxes, IMAP and Maildir hand messages over with either line ending.
    for name in sorted(EXPECTED_REASONS):
        lf = (CORPUS / name).read_bytes().replace(b"\r\n", b"\n")
        [a] = classify([(name, lf)], bounce_address="bounces@x.org")
        [b] = classify([(name, lf.replace(b"\n", b"\r\n"))], bounce_address="bounces@x.org")
        assert (b.rows, b.note) == (a.rows, a.note), name


def test_leading_blank_lines_and_an_mbox_from_line_change_nothing() -> None:
    for name in ("postfix_hard_5.1.1_user_unknown.eml", "arf_yahoo_abuse_complaint.eml"):
        raw = (CORPUS / name).read_bytes()
        [plain] = classify([(name, raw)])
        for variant in (
            b"\n\n" + raw,
            b"\r\n" + raw,
            b"From MAILER-DAEMON  Tue Nov 12 2024\n" + raw,
        ):
            [got] = classify([(name, variant)])
            assert (got.rows, got.note) == (plain.rows, plain.note), (name, variant[:20])


def test_every_reason_has_one_action_as_the_issue_says() -> None:
    assert set(ACTIONS) == set(Reason)
    remove = {R.USER_UNKNOWN, R.HOST_UNKNOWN, R.DISABLED}
    count = {R.MAILBOX_FULL, R.SUSPENDED, R.EXPIRED, R.SYSTEM_ERROR, R.UNDETERMINED}
    assert {r for r, a in ACTIONS.items() if a == Action.REMOVE} == remove
    assert {r for r, a in ACTIONS.items() if a == Action.COUNT} == count


@pytest.mark.parametrize(
    ("status", "text", "reason"),
    [
        # a misleading class or subject: the words decide
        ("5.1.1", "550 5.1.1 Client host [198.51.100.7] blocked using zen.spamhaus.org", R.BLOCKED),
        ("5.7.1", "550 5.7.1 No such user!", R.USER_UNKNOWN),
        ("5.0.0", "550 5.0.0 mailbox is full", R.MAILBOX_FULL),
        (
            "5.4.1",
            "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)",
            R.USER_UNKNOWN,
        ),
        ("5.1.1", "550 5.1.1 sorry, not listed at sbl.spamhaus.org", R.BLOCKED),
        # the status alone, when the words say nothing known
        ("5.1.1", "", R.USER_UNKNOWN),
        ("5.1.2", "", R.HOST_UNKNOWN),
        ("5.2.2", "", R.MAILBOX_FULL),
        ("5.2.3", "", R.TOO_BIG),
        ("5.3.4", "", R.TOO_BIG),
        ("4.4.7", "", R.EXPIRED),
        ("5.7.26", "", R.AUTHENTICATION),
        ("5.7.515", "", R.AUTHENTICATION),
        ("5.7.25", "", R.NO_PTR),
        ("4.7.28", "", R.RATE_LIMITED),
        ("5.7.28", "", R.RATE_LIMITED),
        ("5.7.1", "", R.POLICY),
        ("5.0.0", "", R.UNDETERMINED),
        ("", "", R.UNDETERMINED),
        # no status at all: the words, then the reply code
        ("", "421 Too many concurrent connections from your IP", R.RATE_LIMITED),
        ("", "421 service closing transmission channel", R.RATE_LIMITED),
        ("", "553 5.7.1 Sender address rejected: not owned by user", R.POLICY),
        ("", "550 Requested action not taken: mailbox unavailable", R.USER_UNKNOWN),
        ("", "550 Benutzer unbekannt", R.USER_UNKNOWN),
        ("", "552 Postfach voll", R.MAILBOX_FULL),
        ("", "SMTP; 550 TLS required for this domain", R.TLS_REQUIRED),
        ("", "550 This account has been disabled or discontinued", R.DISABLED),
        ("", "550 DMARC policy of example.org rejects this message", R.AUTHENTICATION),
        ("", "554 Your message looks like spam", R.SPAM),
        ("", "554 rejected: your domain has a poor reputation", R.BLOCKED),
        # a 4xx never says an address is gone, only that something is wrong for now
        (
            "4.1.1",
            "450 4.1.1 <a@example.com>: Recipient address rejected: User unknown",
            R.SYSTEM_ERROR,
        ),
        (
            "4.4.3",
            "Host or domain name not found. Name service error: Host not found, try again",
            R.SYSTEM_ERROR,
        ),
    ],
)
def test_reason_for(status: str, text: str, reason: Reason) -> None:
    assert reason_for(status, text) == reason


def test_the_report_text_is_read_only_when_the_diagnostic_and_status_say_nothing() -> None:
    boilerplate = "Your message could not be delivered: our spam filter FAQ is at ..."
    assert reason_for("5.1.1", "", more_text=boilerplate) == R.USER_UNKNOWN
    assert reason_for("5.0.0", "", more_text=boilerplate) == R.SPAM


def test_hostile_diagnostics_are_read_quickly() -> None:
    import time

    hostile = ("mailbox " * 50_000) + ("user " * 50_000) + ("a" * 1_000_000)
    start = time.perf_counter()
    for _ in range(10):
        assert reason_for("", hostile, more_text=hostile) == R.UNDETERMINED
        assert reason_in_words(hostile) is None
    # Only the first WORDS_MAX characters are read: a few ms each, whatever the length.
    assert time.perf_counter() - start < 5
    assert reason_for("", "x" * WORDS_MAX + " user unknown") == R.UNDETERMINED


# --- subscribe bounces classify -------------------------------------------------------------


def test_classify_prints_one_line_per_recipient_and_notes_the_rest() -> None:
    files = [
        CORPUS / "postfix_spamhaus_5.7.1.eml",
        CORPUS / "arf_yahoo_abuse_complaint.eml",
        CORPUS / "not_bounce_vacation_auto_submitted.eml",
    ]
    result = run("bounces", "classify", *map(str, files))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{files[0]}\tcal@example.com\thard\t5.7.1\tblocked\tignore"
    ]
    assert f"{files[1]}: complaint (abuse)" in result.stderr
    assert f"{files[2]}: not a bounce" in result.stderr


def test_classify_json_has_exactly_the_contract_keys(tmp_path: Path) -> None:
    import mailbox

    box = mailbox.mbox(tmp_path / "b.mbox")
    for name in ("gmail_dmarc_5.7.26.eml", "yahoo_text_hard_554_no_account.eml"):
        box.add((CORPUS / name).read_bytes())
    box.close()
    result = run("bounces", "classify", "--json", "--mbox", str(tmp_path / "b.mbox"))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [list(row) for row in rows] == [list(JSON_KEYS)] * 2
    assert list(JSON_KEYS) == ["file", "address", "kind", "status", "reason", "action"]
    assert [(r["address"], r["reason"], r["action"], r["status"]) for r in rows] == [
        ("tia@gmail.com", "authentication", "ignore", "5.7.26"),
        ("ivan@example.com", "user_unknown", "remove", ""),
    ]


def test_classify_judges_with_the_configured_bounce_address_as_process_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "User unknown" about our own VERP return path: the receiver refused our MAIL FROM.
    # `bounces process` never removes the reader for it; the dry run must say the same.
    bounce = tmp_path / "ours.eml"
    bounce.write_bytes(
        b"Return-Path: <>\nFrom: MAILER-DAEMON@relay.example.net\n"
        b"To: bounces+MTAx.Zk3x@example.org\nSubject: Undelivered Mail Returned to Sender\n"
        b"MIME-Version: 1.0\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; relay\n\n"
        b"Final-Recipient: rfc822; ann@example.net\nAction: failed\nStatus: 5.1.1\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 <bounces+MTAx.Zk3x@example.org>: User unknown\n"
        b"\n--b--\n"
    )
    unconfigured = run("bounces", "classify", str(bounce))
    assert "\tuser_unknown\tremove" in unconfigured.stdout
    monkeypatch.setenv("SUBSCRIBE_BOUNCE_ADDRESS", "bounces@example.org")
    configured = run("bounces", "classify", str(bounce))
    assert configured.exit_code == 0, configured.output
    assert configured.stdout.splitlines() == [
        f"{bounce}\tann@example.net\thard\t5.1.1\tpolicy\tignore"
    ]
    monkeypatch.setenv("SUBSCRIBE_SMTP_PORT", "not a port")  # settings that do not load
    assert run("bounces", "classify", str(bounce)).exit_code == 0


def test_classify_needs_no_database_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "never.db"
    monkeypatch.setenv("SUBSCRIBE_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.chdir(tmp_path)
    result = run("bounces", "classify", str(CORPUS / "postfix_hard_5.1.1_user_unknown.eml"))
    assert result.exit_code == 0, result.output
    assert "alice@example.com\thard\t5.1.1\tuser_unknown\tremove" in result.stdout
    assert not database.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give one or more FILEs"),
        (("nope.eml",), "cannot read nope.eml"),
        (("--maildir", "nope"), "cannot read nope"),
    ],
)
def test_classify_user_errors_are_one_line(
    args: tuple[str, ...], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("bounces", "classify", *args)
    assert result.exit_code == 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("status", "text", "reason"),
    [
        # our own envelope refused: never the reader's address, whatever else the text says
        ("", "550-Verification failed for <bounces@x.org> 550-Unrouteable address", R.POLICY),
        ("", "550 Sender verify failed", R.POLICY),
        ("", "550 Sender verification is required but it failed", R.POLICY),
        ("5.1.1", "550 5.1.1 Sender address unknown", R.POLICY),
        ("", "550 Your domain example.org has no MX record", R.POLICY),
        ("", "550 5.7.1 Our mail server does not accept mail from example.org", R.POLICY),
        ("", "501 5.1.0 Emetteur invalide. Invalid Sender. OFR_405 [405]", R.POLICY),
        ("", "550 Absender unbekannt", R.POLICY),
        ("", "550 Absenderadresse ungültig", R.POLICY),
        ("", "550 mittente sconosciuto", R.POLICY),
        ("", "550 remitente desconocido", R.POLICY),
        ("", "550 Benutzer unbekannt", R.USER_UNKNOWN),
        ("", "550 utente sconosciuto", R.USER_UNKNOWN),
        # the network on the way is system trouble, not a policy refusal
        ("4.4.1", "connect to mx.example.net[203.0.113.1]:25: Connection refused", R.SYSTEM_ERROR),
        ("", "Malformed or unexpected name server reply", R.SYSTEM_ERROR),
        ("", "554 Connection refused from 203.0.113.1: listed at zen.spamhaus.org", R.BLOCKED),
        ("", "all relevant MX records point to non-existent hosts", R.HOST_UNKNOWN),
        # ... while a domain that takes no mail at all is gone
        ("", "556 5.1.10 Domain example.net does not accept mail (nullMX)", R.HOST_UNKNOWN),
        ("", "550 The domain example.net does not exist", R.HOST_UNKNOWN),
        # the message's size is no mailbox quota, and a full file system is one
        ("", "Mail size limit exceeded. For explanation visit ...", R.TOO_BIG),
        (
            "5.2.2",
            "cannot update mailbox /var/mail/o for user o. error writing message: File too large",
            R.MAILBOX_FULL,
        ),
        ("", "Unable to deliver message: a@acme.example's mail file is full", R.MAILBOX_FULL),
        # providers' own words and codes
        ("", "550 Ip frequency limited http://service.mail.qq.com/detail/122/172", R.RATE_LIMITED),
        ("5.2.0", "550 5.2.0 Mail rejete. Mail rejected. OFR_506 [506]", R.SPAM),
        (
            "5.5.0",
            "550 5.5.0 Les emails envoyes vers Laposte.net ont ete bloques LPN007_102",
            R.BLOCKED,
        ),
        ("5.2.1", "521 5.2.1 : AOL will not accept delivery of this message.", R.BLOCKED),
        ("", "554 DT:SPM 163 mx14,QMCowAD3,0 1731406501", R.SPAM),
        # words in other languages, no code at all
        (
            "",
            "Benutzer nico (n@acme.example) nicht im Domino-Verzeichnis aufgeführt",
            R.USER_UNKNOWN,
        ),
        ("", "550 Empfaengeradresse ungueltig", R.USER_UNKNOWN),
        ("", "550 adresse e-mail invalide", R.USER_UNKNOWN),
        ("", "A caixa postal do destinatário está cheia.", R.MAILBOX_FULL),
        ("", "la boîte aux lettres du destinataire est pleine", R.MAILBOX_FULL),
        ("", "原因：该用户不存在。", R.USER_UNKNOWN),
        ("", "받는 사람의 메일 주소가 존재하지 않습니다.", R.USER_UNKNOWN),
        ("", "받는 사람의 메일함 용량이 가득 찼습니다.", R.MAILBOX_FULL),
        ("", "Skrzynka odbiorcy jest przepełniona", R.MAILBOX_FULL),
        ("", "Adres nie istnieje", R.USER_UNKNOWN),
        ("", "550 Votre message a été refusé par le destinataire", R.POLICY),
        ("", "450 User is receiving mail too quickly", R.RATE_LIMITED),
        ("", "451 Message temporarily deferred due to unresolvable RFC.5321 from domain", R.POLICY),
        ("", "550 Message headers are not RFC compliant", R.SPAM),
        ("", "554 smtpin001.me.com ESMTP not accepting connections", R.BLOCKED),
        ("5.1.6", "550 5.1.6 recipient no longer on server: x@icloud.com", R.DISABLED),
    ],
)
def test_reason_for_wordings_seen_in_the_wider_corpus(
    status: str, text: str, reason: Reason
) -> None:
    assert reason_for(status, text) == reason
