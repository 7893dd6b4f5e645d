"""Bounce parsing: a corpus of real-world-shaped bounces, the RFC 3464 rules, and garbage."""

from __future__ import annotations

import mailbox
import random
from dataclasses import dataclass, field
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path

import pytest

from subscribe.bounces.complaints import parse_complaint
from subscribe.bounces.parse import (
    DIAGNOSTIC_MAX,
    BounceKind,
    BounceReport,
    iter_maildir,
    iter_mbox,
    parse_bounce,
)

CORPUS = Path(__file__).parent / "bounce_corpus"
BOUNCES = "bounces@example.org"
HARD, SOFT = BounceKind.HARD, BounceKind.SOFT


@dataclass(frozen=True)
class Expected:
    recipients: list[tuple[str, BounceKind, str]]  # (address, kind, status)
    tokens: list[str] = field(default_factory=list)
    message_id: str | None = None


# file -> what parse_bounce must say about it (None: not a bounce)
EXPECTED: dict[str, Expected | None] = {
    "postfix_hard_5.1.1_user_unknown.eml": Expected(
        [("alice@example.com", HARD, "5.1.1")],
        ["MTAx.Zk3xQw.AbCdEf_gh-12"],
        "<post-42.sub-101@example.org>",
    ),
    "postfix_soft_4.2.2_mailbox_full.eml": Expected(
        [("bob@example.com", SOFT, "4.2.2")],
        ["MTAy.Zk3xRA.Xy_z-9QwErTy"],
        "<post-42.sub-102@example.org>",
    ),
    "postfix_delayed_4.4.1_soft.eml": None,  # still being tried: not a bounce
    "postfix_relayed_success_not_a_bounce.eml": None,
    "exim_dsn_hard_5.1.1_original_attached.eml": Expected(
        # Status: 5.0.0 refined by the diagnostic's more specific 5.1.1
        [("dave@example.com", HARD, "5.1.1")],
        ["MTA0.Zk3xRg.Q1w2E3r4_T5"],
        "<post-42.sub-104@example.org>",
    ),
    "exim_text_hard_550_no_such_user.eml": Expected(
        [("erin@example.com", HARD, "")],
        ["MTA1.Zk3xRw.zZ-yY_xX9"],
        "<post-42.sub-105@example.org>",
    ),
    "exim_text_delayed_warning_soft.eml": None,  # a delay warning: not a bounce
    "gmail_dsn_hard_5.1.1.eml": Expected(
        [("frank@example.com", HARD, "5.1.1")],
        ["MTA2.Zk3xSA.GmAiL_t0k-en"],
        "<post-42.sub-106@example.org>",
    ),
    "gmail_text_hard_5.2.1_account_disabled.eml": Expected(
        [("peggy@example.com", HARD, "5.2.1")],
        ["MTEy.Zk3xTg.gM41lTxt-_q"],
        "<post-42.sub-112@example.org>",
    ),
    "outlook_dsn_hard_5.1.10_recipient_not_found.eml": Expected(
        [("grace@example.com", HARD, "5.1.10")],
        ["MTA3.Zk3xSQ.0utL00k-Tok_1"],
        "<post-42.sub-107@example.org>",
    ),
    "exchange_text_hard_5.5.0_mailbox_unavailable.eml": Expected(
        [("heidi@example.com", HARD, "5.5.0")],
        ["MTA4.Zk3xSg.ExCh-4nGe_9"],  # only in the quoted original headers
        "<post-42.sub-108@example.org>",
    ),
    "yahoo_text_hard_554_no_account.eml": Expected(
        [("ivan@example.com", HARD, "")],
        ["MTA5.Zk3xSw.yAh00_T0k-3n"],
        "<post-42.sub-109@example.org>",
    ),
    "qmail_text_hard_5.1.1.eml": Expected(
        [("judy@example.com", HARD, "5.1.1")],
        ["MTEw.Zk3xTA.qMa1l-_T0k"],
        "<post-42.sub-110@example.org>",
    ),
    "sendmail_dsn_hard_verp_only_in_original_headers.eml": Expected(
        # local part kept as written, domain lowercased; the delivered recipient is skipped
        [("Kim@example.com", HARD, "5.1.1")],
        ["MTEx.Zk3xTQ.SeNdM41l_-x"],
        "<post-42.sub-111@example.org>",
    ),
    "postfix_smtputf8_global_dsn.eml": Expected(
        # message/global-delivery-status: parsed as one enclosed message, 8-bit UTF-8 fields
        [("jörg@bücher.example", HARD, "5.1.1")],
        ["MT401.Zk3x.c0rpUs-401"],
        "<post-42.sub-401@example.org>",  # from message/global-headers
    ),
    "gateway_dsn_part_base64_encoded.eml": Expected(
        # a base64-encoded delivery-status part (RFC 2046 forbids it; gateways do it)
        [("lars@example.se", HARD, "5.1.1")],
        ["MT400.Zk3x.c0rpUs-400"],
        "<post-42.sub-400@example.org>",
    ),
    "not_bounce_auto_reply_out_of_office.eml": None,
    "not_bounce_newsletter_reply.eml": None,
    "garbage_binary.eml": None,
    "garbage_truncated_multipart.eml": None,
}


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def summary(report: BounceReport | None) -> Expected | None:
    if report is None:
        return None
    return Expected(
        [(r.address, r.kind, r.status) for r in report.recipients],
        report.verp_tokens,
        report.message_id,
    )


# --- the corpus ----------------------------------------------------------------------------


def test_the_parse_expectations_name_corpus_files() -> None:
    # Every file's reasons are in corpus_reasons.py; these are the parser's finer details.
    assert set(EXPECTED) <= {p.name for p in CORPUS.glob("*.eml")}
    assert len(EXPECTED) >= 12


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus(name: str) -> None:
    assert summary(parse_bounce(corpus(name), bounce_address=BOUNCES)) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_crlf_and_lf_line_endings_parse_alike(name: str) -> None:
    lf = corpus(name)
    crlf = lf.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert parse_bounce(crlf, bounce_address=BOUNCES) == parse_bounce(lf, bounce_address=BOUNCES)


def test_diagnostic_is_the_unfolded_diagnostic_code() -> None:
    report = parse_bounce(corpus("postfix_hard_5.1.1_user_unknown.eml"), bounce_address=BOUNCES)
    assert report is not None
    assert report.recipients[0].diagnostic == (
        "smtp; 550 5.1.1 <alice@example.com>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )


def test_text_bounce_diagnostic_is_the_line_with_the_code() -> None:
    report = parse_bounce(corpus("yahoo_text_hard_554_no_account.eml"))
    assert report is not None
    assert report.recipients[0].diagnostic.startswith("554: delivery error: dd This user")


def test_no_bounce_address_means_no_tokens() -> None:
    report = parse_bounce(corpus("postfix_hard_5.1.1_user_unknown.eml"))
    assert report is not None
    assert report.verp_tokens == []
    assert report.recipients[0].address == "alice@example.com"


# --- Message-ID of the original ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message_id"),
    [
        ("postfix_hard_5.1.1_user_unknown.eml", "<post-42.sub-101@example.org>"),  # headers part
        ("exim_dsn_hard_5.1.1_original_attached.eml", "<post-42.sub-104@example.org>"),  # rfc822
        ("qmail_text_hard_5.1.1.eml", "<post-42.sub-110@example.org>"),  # quoted in the body
    ],
)
def test_original_message_id(name: str, message_id: str | None) -> None:
    report = parse_bounce(corpus(name), bounce_address=BOUNCES)
    assert report is not None
    assert report.message_id == message_id


def test_complaint_with_a_base64_encoded_original_still_names_our_tokens() -> None:
    complaint = parse_complaint(
        corpus("arf_original_base64_encoded_rfc822.eml"), bounce_address=BOUNCES
    )
    assert complaint is not None
    assert complaint.unsubscribe_tokens == ["402.uNsUb-402"]
    assert complaint.verp_tokens == ["MT402.Zk3x.c0rpUs-402"]
    assert complaint.message_id == "<post-42.sub-402@example.org>"
    assert complaint.addresses == ["wren@isp.example"]


def test_bounce_with_original_attached_as_message_rfc822() -> None:
    original = MIMEText("Hello, a new post is up.\n", "plain", "utf-8")
    original["Return-Path"] = "<bounces+MTIz.AbCdEf_gh-12@example.org>"
    original["From"] = "Example Blog <newsletter@example.org>"
    original["To"] = "paul@example.com"
    original["Message-ID"] = "<post-7.sub-3@example.org>"
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.net>"
    report["To"] = "newsletter@example.org"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.attach(MIMEText("The mail system\n\n<paul@example.com>: bounced\n"))
    report.attach(
        _delivery_status(
            "Final-Recipient: rfc822; paul@example.com\nAction: failed\nStatus: 5.1.1\n"
            "Diagnostic-Code: smtp; 550 5.1.1 unknown user\n"
        )
    )
    report.attach(MIMEMessage(original))
    parsed = parse_bounce(report.as_bytes(), bounce_address=BOUNCES)
    assert summary(parsed) == Expected(
        [("paul@example.com", HARD, "5.1.1")], ["MTIz.AbCdEf_gh-12"], "<post-7.sub-3@example.org>"
    )


# --- RFC 3464 rules ------------------------------------------------------------------------


def _delivery_status(recipient_blocks: str) -> MIMEMessage:
    text = f"Reporting-MTA: dns; mx.example.net\n\n{recipient_blocks}"
    return MIMEMessage(BytesParser(policy=compat32).parsebytes(text.encode()), "delivery-status")


def dsn(*blocks: str, to: str = "bounces+tok@example.org") -> bytes:
    blocks_text = "\n".join(blocks)
    return (
        "From: MAILER-DAEMON@mx.example.net\n"
        f"To: {to}\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n'
        "\n"
        "--B\n"
        "Content-Type: text/plain\n"
        "\n"
        "Delivery report.\n"
        "--B\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; mx.example.net\n"
        "\n"
        f"{blocks_text}"
        "--B--\n"
    ).encode()


def block(address: str, action: str, status: str = "", diagnostic: str = "") -> str:
    lines = [f"Final-Recipient: rfc822; {address}", f"Action: {action}"]
    if status:
        lines.append(f"Status: {status}")
    if diagnostic:
        lines.append(f"Diagnostic-Code: {diagnostic}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("action", "status", "diagnostic", "expected"),
    [
        ("failed", "5.1.1", "smtp; 550 5.1.1 no such user", (HARD, "5.1.1")),
        ("failed", "4.2.2", "smtp; 452 4.2.2 mailbox full", (SOFT, "4.2.2")),
        ("delayed", "4.4.7", "", None),  # still being tried: never a bounce
        ("delayed", "5.0.0", "", None),
        ("failed", "5.0.0", "smtp; 550 5.2.1 account disabled", (HARD, "5.2.1")),
        ("failed", "5.0.0", "smtp; 451 4.3.0 try later", (HARD, "5.0.0")),  # class differs
        ("failed", "", "smtp; 550 user unknown", (HARD, "")),
        ("failed", "", "smtp; 452 mailbox full", (SOFT, "")),
        ("Failed (permanent)", "5.1.1 (bad mailbox)", "", (HARD, "5.1.1")),
        ("failed", "", "", None),  # nothing to go by
        ("failed", "2.0.0", "", None),
        ("delivered", "2.0.0", "", None),
        ("relayed", "2.0.0", "", None),
        ("expanded", "2.0.0", "", None),
    ],
)
def test_dsn_rules(action: str, status: str, diagnostic: str, expected: tuple | None) -> None:
    report = parse_bounce(dsn(block("Zoe@Example.COM", action, status, diagnostic)))
    if expected is None:
        assert report is None
    else:
        assert report is not None
        assert [(r.address, r.kind, r.status) for r in report.recipients] == [
            ("Zoe@example.com", *expected)
        ]


def test_dsn_keeps_only_failed_recipients_and_prefers_original_recipient() -> None:
    forwarded = (
        "Final-Recipient: rfc822; amy.smith@mail.example.net\n"
        "Original-Recipient: rfc822; amy@example.com\n"
        "Action: failed\nStatus: 5.1.1\n"
    )
    report = parse_bounce(
        dsn(
            block("ok@example.com", "delivered", "2.0.0"),
            forwarded,
            block("late@example.com", "delayed", "4.4.1"),
        )
    )
    assert report is not None
    assert [(r.address, r.kind) for r in report.recipients] == [("amy@example.com", HARD)]


def test_diagnostic_is_one_line_and_truncated() -> None:
    long = "smtp; 550 5.1.1 " + "very long explanation\n  continued " * 40
    report = parse_bounce(dsn(block("x@example.com", "failed", "5.1.1", long)))
    assert report is not None
    diagnostic = report.recipients[0].diagnostic
    assert len(diagnostic) == DIAGNOSTIC_MAX
    assert "\n" not in diagnostic
    assert diagnostic.startswith("smtp; 550 5.1.1 very long explanation continued")


def test_unknown_charset_and_8bit_bytes() -> None:
    raw = dsn(block("x@example.com", "failed", "5.1.1", "smtp; 550 Benutzer unbekannt XX"))
    raw = raw.replace(b"XX", b"\xfc\xff").replace(
        b"Content-Type: text/plain", b"Content-Type: text/plain; charset=x-no-such-charset"
    )
    report = parse_bounce(raw)
    assert report is not None
    assert report.recipients[0].kind == HARD
    assert report.recipients[0].diagnostic.startswith("smtp; 550 Benutzer unbekannt")


def test_text_bounce_in_unknown_charset() -> None:
    raw = (
        b"From: MAILER-DAEMON@mx.example.net\nSubject: failure notice\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\n"
        b"Content-Transfer-Encoding: 8bit\n\n"
        b"<b\xfcro@example.com> <a@example.com>:\n550 5.1.1 Benutzer unbekannt \xfc\xff\n"
    )
    report = parse_bounce(raw)
    assert report is not None
    assert [(r.address, r.kind, r.status) for r in report.recipients] == [
        ("a@example.com", HARD, "5.1.1")
    ]


# --- VERP tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "tokens"),
    [
        ("bounces+MTIz.AbCdEf_gh-12@example.org", ["MTIz.AbCdEf_gh-12"]),
        ("<BOUNCES+MTIz.AbCdEf_gh-12@Example.ORG>", ["MTIz.AbCdEf_gh-12"]),
        ("Blog <bounces+a.b@example.org>, bounces+c_d-e@example.org", ["a.b", "c_d-e"]),
        ("bounces@example.org", []),
        ("notbounces+tok@example.org", []),
        ("bounces+tok@example.org.evil.test", []),
        ("bounces+tok@sub.example.org", []),
        ("bounces+tok@evil-example.org", []),
    ],
)
def test_verp_tokens(to: str, tokens: list[str]) -> None:
    report = parse_bounce(
        dsn(block("x@example.com", "failed", "5.1.1"), to=to), bounce_address=BOUNCES
    )
    assert report is not None
    assert report.verp_tokens == tokens


def test_verp_tokens_are_deduplicated_in_order_of_appearance() -> None:
    report = parse_bounce(corpus("gmail_dsn_hard_5.1.1.eml"), bounce_address="Bounces@Example.org")
    assert report is not None
    assert report.verp_tokens == ["MTA2.Zk3xSA.GmAiL_t0k-en"]


# --- text heuristics -----------------------------------------------------------------------


def text_bounce(
    body: str, *, sender: str = "MAILER-DAEMON@mx.example.net", extra: str = ""
) -> bytes:
    return (
        f"From: {sender}\nTo: bounces+tok@example.org\nSubject: failure notice\n{extra}\n{body}"
    ).encode()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<a@example.com>:\nuser unknown\n", ("a@example.com", HARD, "")),
        ("<a@example.com>:\nno such user here\n", ("a@example.com", HARD, "")),
        ("<a@example.com>:\nmailbox full, over quota\n", ("a@example.com", SOFT, "")),
        ("<a@example.com>:\nmailbox temporarily unavailable\n", ("a@example.com", SOFT, "")),
        ("<a@example.com>:\n421 4.7.0 try again later\n", ("a@example.com", SOFT, "4.7.0")),
        ("<a@example.com>:\n550 mailbox unavailable\n", ("a@example.com", HARD, "")),
        ("550 5.1.1 <a@example.com>: Recipient rejected\n", ("a@example.com", HARD, "5.1.1")),
    ],
)
def test_text_bounce_evidence(body: str, expected: tuple[str, BounceKind, str]) -> None:
    report = parse_bounce(text_bounce(body), bounce_address=BOUNCES)
    assert report is not None
    assert [(r.address, r.kind, r.status) for r in report.recipients] == [expected]
    assert report.verp_tokens == ["tok"]


def test_text_bounce_with_several_addresses() -> None:
    body = (
        "The following address(es) failed:\n\n"
        "  one@example.com\n    550 5.1.1 user unknown\n\n"
        "  two@example.com\n    452 4.2.2 mailbox full\n\n"
        "  three@example.com\n    (no reason given)\n"
    )
    report = parse_bounce(text_bounce(body))
    assert report is not None
    assert [(r.address, r.kind, r.status) for r in report.recipients] == [
        ("one@example.com", HARD, "5.1.1"),
        ("two@example.com", SOFT, "4.2.2"),
    ]


def test_text_bounce_without_evidence_is_not_a_bounce() -> None:
    assert parse_bounce(text_bounce("<a@example.com>:\nsomething happened\n")) is None


def test_text_from_a_person_is_not_a_bounce_even_with_scary_words() -> None:
    body = "Hi, <a@example.com> said 550 user unknown when I wrote to her.\n"
    assert parse_bounce(text_bounce(body, sender="Reader <reader@example.com>")) is None


def test_auto_reply_is_not_a_bounce_even_when_it_looks_like_one() -> None:
    raw = text_bounce(
        "I'm away; this mailbox is full and a@example.com is unavailable.\n",
        sender="Reader <reader@example.com>",
        extra="Auto-Submitted: auto-replied\nX-Autoreply: yes\n",
    ).replace(b"Subject: failure notice", b"Subject: Out of Office: failure notice")
    assert parse_bounce(raw) is None


def test_addresses_of_the_copy_of_the_original_are_not_recipients() -> None:
    body = (
        "<a@example.com>:\n550 5.1.1 user unknown\n\n"
        "--- Below this line is a copy of the message.\n\n"
        "Return-Path: <bounces+tok@example.org>\nTo: other@example.com\n"
        "Message-ID: <m1@example.org>\n\nWrite to help@example.com, 550 things\n"
    )
    report = parse_bounce(text_bounce(body), bounce_address=BOUNCES)
    assert report is not None
    assert [r.address for r in report.recipients] == ["a@example.com"]
    assert report.message_id == "<m1@example.org>"


def test_broken_encoded_words_in_headers_do_not_hide_a_bounce() -> None:
    raw = text_bounce("<a@example.com>:\n550 5.1.1 user unknown\n").replace(
        b"Subject: failure notice", b"Subject: =?utf-8?b?Y?= =?x-bad?q?a?= =?utf-8?q?=FF?="
    )
    report = parse_bounce(raw)
    assert report is not None
    assert report.recipients[0].address == "a@example.com"


# --- garbage -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\n\n\n",
        b"\x00\xff\xfe",
        b"From: MAILER-DAEMON@x\n",
        b"Content-Type: multipart/report; boundary=\n\n--\n--",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\n"
        b"Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n!!!!",
        b"Content-Type: message/rfc822\n\n" * 50,
        b'Content-Type: text/plain; charset="=?utf-8?q?x"\n\n\xff\xfe',
    ],
)
def test_garbage_is_none(raw: bytes) -> None:
    assert parse_bounce(raw, bounce_address=BOUNCES) is None


def test_never_raises_on_random_bytes() -> None:
    rng = random.Random(0)
    for _ in range(200):
        raw = rng.randbytes(rng.randrange(0, 2048))
        assert parse_bounce(raw, bounce_address=BOUNCES) is None


def test_never_raises_on_mangled_bounces() -> None:
    rng = random.Random(0)
    sources = [corpus(name) for name in sorted(EXPECTED)]
    for _ in range(200):
        raw = bytearray(rng.choice(sources))
        for _ in range(rng.randrange(1, 20)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        cut = bytes(raw[: rng.randrange(len(raw) + 1)])
        result = parse_bounce(cut, bounce_address=BOUNCES)
        assert result is None or isinstance(result, BounceReport)


# --- mailboxes -----------------------------------------------------------------------------


def test_iter_mbox_reads_every_message_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bounces.mbox"
    box = mailbox.mbox(path)
    box.add(corpus("postfix_hard_5.1.1_user_unknown.eml"))
    box.add(corpus("not_bounce_newsletter_reply.eml"))
    box.add(corpus("qmail_text_hard_5.1.1.eml"))
    box.close()
    before = path.read_bytes()

    messages = list(iter_mbox(path))

    assert len({key for key, _ in messages}) == 3
    results = [summary(parse_bounce(raw, bounce_address=BOUNCES)) for _, raw in messages]
    assert results == [
        EXPECTED["postfix_hard_5.1.1_user_unknown.eml"],
        None,
        EXPECTED["qmail_text_hard_5.1.1.eml"],
    ]
    assert path.read_bytes() == before


def test_iter_maildir_reads_new_and_cur_and_moves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "Maildir"
    box = mailbox.Maildir(path, create=True)
    box.add(corpus("yahoo_text_hard_554_no_account.eml"))
    seen = mailbox.MaildirMessage(corpus("exim_dsn_hard_5.1.1_original_attached.eml"))
    seen.set_subdir("cur")
    box.add(seen)
    box.close()
    (path / "tmp" / "123.partial").write_bytes(b"still being written")
    listing = sorted(str(p.relative_to(path)) for p in path.rglob("*"))

    messages = dict(iter_maildir(path))

    assert len(messages) == 2
    reports = [parse_bounce(raw, bounce_address=BOUNCES) for raw in messages.values()]
    assert sorted(r.recipients[0].address for r in reports if r) == [
        "dave@example.com",
        "ivan@example.com",
    ]
    assert sorted(str(p.relative_to(path)) for p in path.rglob("*")) == listing


def test_missing_mailboxes_raise_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(iter_mbox(tmp_path / "nope.mbox"))
    with pytest.raises(FileNotFoundError):
        list(iter_maildir(tmp_path / "nope"))


def test_a_refusal_naming_our_return_path_never_removes_the_reader() -> None:
    # "User unknown" about <bounces+TOKEN@...>: the receiver checked our MAIL FROM.
    def bounce(diagnostic: str) -> bytes:
        return (
            "Return-Path: <>\nFrom: MAILER-DAEMON@relay.example.net\n"
            f"To: {BOUNCES}\nSubject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
            "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; relay\n\n"
            "Final-Recipient: rfc822; ann@example.net\nAction: failed\nStatus: 5.1.1\n"
            f"Diagnostic-Code: smtp; {diagnostic}\n\n--b--\n"
        ).encode()

    ours = bounce("550 5.1.1 <bounces+MTAx.Zk3x@example.org>: User unknown")
    [recipient] = parse_bounce(ours, bounce_address=BOUNCES).recipients  # type: ignore[union-attr]
    assert recipient.reason == "policy" and recipient.kind == HARD
    theirs = bounce("550 5.1.1 <ann@example.net>: User unknown")
    [recipient] = parse_bounce(theirs, bounce_address=BOUNCES).recipients  # type: ignore[union-attr]
    assert recipient.reason == "user_unknown"
    # another address on our domain is not our return path
    other = bounce("550 5.1.1 <newsbounces@example.org> is fine; <ann@example.net>: User unknown")
    [recipient] = parse_bounce(other, bounce_address=BOUNCES).recipients  # type: ignore[union-attr]
    assert recipient.reason == "user_unknown"
